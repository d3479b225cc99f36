//! `generate` into a chain that already holds its files: it reads the declarative steps and the
//! files it wrote (in the output directory and the migration directories, applied or pending)
//! and writes only what they do not cover yet. Twice in a row, the second run writes nothing
//! and says so, in every format; a table added since gets one file of its own after the newest
//! migration; files `migrate` already applied count; a file converting a table otherwise than
//! the plan is refused, naming it, and nothing is written. On Citus the chain of both runs
//! migrates (by colocate, or by knex for the knex set) and `check` passes.

mod common;

use std::path::{Path, PathBuf};

use colocate_testkit::{skip_without_citus, skip_without_citus_and_knex};
use common::{migration, Project, Run};

const BASE_VERSION: &str = "20240101000000";

/// A root, a lookup table, a tenant table, and a table whose key lacks the tenant column (left
/// out, or fixed with `--with-fixes`).
const SCHEMA: &str = r#"
CREATE TABLE tenants (tenant uuid PRIMARY KEY, name text NOT NULL);
CREATE TABLE countries (code text PRIMARY KEY, name text NOT NULL);
CREATE TABLE users (tenant uuid NOT NULL REFERENCES tenants, user_id bigint NOT NULL,
    country text REFERENCES countries, PRIMARY KEY (tenant, user_id));
CREATE TABLE tokens (tenant uuid NOT NULL, token text PRIMARY KEY);
INSERT INTO tenants SELECT gen_random_uuid(), 't' || g FROM generate_series(1, 4) g;
INSERT INTO countries VALUES ('NZ', 'New Zealand'), ('FR', 'France');
INSERT INTO users SELECT tenant, 1, 'NZ' FROM tenants;
INSERT INTO tokens SELECT tenant, 'tok-' || name FROM tenants;
"#;

const DROP: &str = "DROP TABLE tokens, users, countries, tenants;";

/// The tenant table a later migration adds, referencing users.
const NOTES: &str = r#"
CREATE TABLE notes (tenant uuid NOT NULL, id bigint NOT NULL, user_id bigint NOT NULL,
    body text, PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, user_id) REFERENCES users (tenant, user_id));
INSERT INTO notes SELECT tenant, 1, 1, 'hello' FROM tenants;
"#;

/// Tokens are natural values: widening their key is a decision, taken here.
const CONFIG: &str = r#"
[distribution]
columns = ["tenant"]

[distribution.decisions]
unique-without-tenant = { choice = "widen", reason = "tokens are looked up with their tenant" }
"#;

fn project() -> Project {
    let p = Project::new();
    std::fs::write(p.root().join("colocate.toml"), CONFIG).unwrap();
    p.write(
        "base",
        &format!("{BASE_VERSION}_schema.sql"),
        &migration(SCHEMA, Some(DROP)),
    );
    p.colocate(&["base"], &["migrate"]).expect(0);
    p
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    Toml,
    Sql,
    Knex,
}

impl Format {
    fn arg(self) -> &'static str {
        match self {
            Format::Toml => "toml",
            Format::Sql => "sql",
            Format::Knex => "knex",
        }
    }
}

/// `colocate --dir base generate --out OUT --format F EXTRA...`.
fn generate(p: &Project, out: &str, format: Format, extra: &[&str]) -> Run {
    let mut args = vec!["generate", "--out", out, "--format", format.arg()];
    args.extend_from_slice(extra);
    p.colocate(&["base"], &args)
}

/// The paths a run printed, each written.
fn written(r: &Run) -> Vec<PathBuf> {
    let files: Vec<PathBuf> = r.stdout.lines().map(PathBuf::from).collect();
    for f in &files {
        assert!(f.is_file(), "{} was printed but not written", f.display());
    }
    files
}

/// The run said `line` on stderr (a line of its own).
#[track_caller]
fn said(r: &Run, line: &str) {
    assert!(
        r.stderr.lines().any(|l| l == line),
        "expected the line {line:?} on stderr\n--- stderr\n{}",
        r.stderr
    );
}

/// The run wrote nothing, saying the chain covers the plan.
#[track_caller]
fn nothing(r: &Run) {
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with("nothing to generate: the chain already covers the plan (")),
        "{}",
        r.stderr
    );
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn version(f: &Path) -> String {
    f.file_name().unwrap().to_string_lossy()[..14].to_string()
}

/// The tables a file converts, as its markers (or its step) say.
fn converts(f: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(f).unwrap();
    if f.extension().unwrap() == "toml" {
        let tables = text
            .lines()
            .find_map(|l| l.strip_prefix("tables = "))
            .unwrap_or("[]");
        return serde_json::from_str(tables).unwrap();
    }
    text.lines()
        .filter_map(|l| {
            l.strip_prefix("-- colocate:covers ")
                .or_else(|| l.strip_prefix("// colocate:covers "))
        })
        .filter_map(|json| {
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            let kind = v.as_object()?.values().next()?;
            Some(kind["table"][1].as_str()?.to_string())
        })
        .collect()
}

#[test]
fn generating_twice_writes_nothing_the_second_time_in_every_format() {
    let p = project();
    for (format, extra) in [
        (Format::Toml, &[][..]),
        (Format::Sql, &[][..]),
        (Format::Knex, &[][..]),
        (Format::Sql, &["--with-fixes"][..]),
        (
            Format::Knex,
            &["--with-fixes", "--tables-per-file", "1"][..],
        ),
    ] {
        let out = p
            .root()
            .join(format!("out-{}-{}", format.arg(), extra.len()));
        let out_arg = out.display().to_string();
        let first = written(&generate(&p, &out_arg, format, extra).expect(0));
        assert!(first.len() >= 4, "{format:?} {extra:?}: {first:?}");
        let before = listing(&out);
        let r = generate(&p, &out_arg, format, extra).expect(0);
        assert_eq!(r.stdout, "", "{format:?} {extra:?}");
        said(
            &r,
            &format!(
                "nothing to generate: the chain already covers the plan ({} files)",
                first.len()
            ),
        );
        assert_eq!(listing(&out), before, "{format:?} {extra:?}");
    }
    // A set made with the fixes covers a plan that leaves tokens out; one made without them
    // does not cover the fixes: they come next, with the table they unblock.
    let out = p.root().join("out-sql-1");
    let r = generate(&p, &out.display().to_string(), Format::Sql, &[]).expect(0);
    nothing(&r);
    let out = p.root().join("out-sql-0").display().to_string();
    let r = generate(&p, &out, Format::Sql, &["--with-fixes"]).expect(0);
    let files = written(&r);
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files[0].to_string_lossy().ends_with("_citus_fixes.sql"));
    assert_eq!(converts(&files[1]), ["tokens"]);
    said(
        &r,
        "the chain already covers 3 tables of the plan (4 files): writing only the rest",
    );
}

/// A migration in `base` adding `notes`, versioned a year after `after` (so after the set).
fn add_notes(p: &Project, after: &str) -> String {
    let year: u32 = after[..4].parse().unwrap();
    let v = format!("{}{}", year + 1, &after[4..]);
    p.write(
        "base",
        &format!("{v}_notes.sql"),
        &migration(NOTES, Some("DROP TABLE notes;")),
    );
    v
}

#[test]
fn a_table_added_since_gets_one_file_after_the_newest_migration() {
    let p = project();
    let formats = [Format::Toml, Format::Sql, Format::Knex];
    let out = |f: Format| {
        p.root()
            .join(format!("citus-{}", f.arg()))
            .display()
            .to_string()
    };
    let first: Vec<Vec<PathBuf>> = formats
        .iter()
        .map(|&f| written(&generate(&p, &out(f), f, &[]).expect(0)))
        .collect();
    let newest = first
        .iter()
        .map(|fs| version(fs.last().unwrap()))
        .max()
        .unwrap();
    let notes = add_notes(&p, &newest);
    p.colocate(&["base"], &["migrate"]).expect(0);
    for (format, first) in formats.into_iter().zip(&first) {
        let r = generate(&p, &out(format), format, &[]).expect(0);
        let second = written(&r);
        assert_eq!(second.len(), 1, "{format:?}: {second:?}");
        // After the newest migration, the one adding the table included.
        assert!(version(&second[0]) > notes, "{format:?}");
        assert_eq!(converts(&second[0]), ["notes"], "{format:?}");
        // users is in layer 1: notes, which references it, is in layer 2, as in a whole set.
        assert!(
            second[0]
                .to_string_lossy()
                .contains("_citus_distribute_layer_2."),
            "{second:?}"
        );
        said(
            &r,
            &format!(
                "the chain already covers 3 tables of the plan ({} files): writing only the rest",
                first.len()
            ),
        );
        // Then nothing more.
        let r = generate(&p, &out(format), format, &[]).expect(0);
        assert!(r.stdout.is_empty(), "{}", r.stdout);
        nothing(&r);
    }
}

#[test]
fn files_migrate_applied_count_as_covered() {
    let p = project();
    p.hide_citus();
    for format in [Format::Toml, Format::Sql] {
        let dir = format!("citus-{}", format.arg());
        let out = p.root().join(&dir);
        let first = written(&generate(&p, &out.display().to_string(), format, &[]).expect(0));
        p.colocate(&["base", &dir], &["migrate"]).expect(0);
        let st = p
            .colocate(&["base", &dir], &["status", "--check"])
            .expect(0);
        assert!(st.stdout.contains("0 pending"), "{}", st.stdout);
        // The directory is a configured one now, and the output directory elsewhere.
        let elsewhere = p.root().join(format!("scratch-{}", format.arg()));
        let r = p
            .colocate(
                &["base", &dir],
                &[
                    "generate",
                    "--out",
                    &elsewhere.display().to_string(),
                    "--format",
                    format.arg(),
                ],
            )
            .expect(0);
        said(
            &r,
            &format!(
                "nothing to generate: the chain already covers the plan ({} files)",
                first.len()
            ),
        );
        assert!(!elsewhere.exists());
        p.colocate(
            &["base", &dir],
            &["rollback", "--to", BASE_VERSION, "--yes"],
        )
        .expect(0);
    }
}

#[test]
fn a_file_converting_a_table_otherwise_is_refused_naming_it_and_nothing_is_written() {
    let p = project();
    let out = p.root().join("citus");
    let first = written(&generate(&p, &out.display().to_string(), Format::Sql, &[]).expect(0));
    // A step written by hand that distributes users by another column, and one that makes the
    // root a reference table.
    let users = p.write(
        "citus",
        "20240301000000_users.toml",
        "[distribute]\ncolumn = \"user_id\"\ncolocate_with = \"tenants\"\ntables = [\"users\"]\n",
    );
    let before = listing(&out);
    let r = generate(&p, &out.display().to_string(), Format::Sql, &[]).expect(2);
    assert_eq!(
        r.only_error(),
        format!(
            "error: the chain converts public.users differently from the plan: {} distributes it by user_id, colocated with public.tenants, where the plan distributes it by tenant, colocated with public.tenants; nothing written",
            users.display()
        )
    );
    assert!(
        r.hint_line().unwrap().contains("colocate.toml"),
        "{}",
        r.stderr
    );
    assert_eq!(listing(&out), before);
    // Several at once are all named; a file the chain holds elsewhere counts too.
    p.write(
        "more",
        "20240301000001_ref.toml",
        "[reference]\ntables = [\"tenants\"]\n",
    );
    let r = p
        .colocate(
            &["base", "more"],
            &["generate", "--out", &out.display().to_string()],
        )
        .expect(2);
    let line = r.only_error();
    assert!(
        line.starts_with(
            "error: the chain converts 2 tables differently from the plan: public.users: "
        ),
        "{line}"
    );
    assert!(
        line.contains("more/20240301000001_ref.toml makes it a reference table, where the plan distributes it by tenant as the root of its colocation group"),
        "{line}"
    );
    assert_eq!(listing(&out), before);
    // A generated file edited into something unreadable is named too.
    std::fs::remove_file(&users).unwrap();
    let text = std::fs::read_to_string(&first[1]).unwrap();
    std::fs::write(
        &first[1],
        text.replacen("-- colocate:covers {", "-- colocate:covers {,", 1),
    )
    .unwrap();
    let r = generate(&p, &out.display().to_string(), Format::Sql, &[]).expect(2);
    let line = r.only_error();
    assert!(
        line.starts_with(&format!(
            "error: cannot read the chain generate writes into: {}: line ",
            first[1].display()
        )),
        "{line}"
    );
}

#[test]
fn files_of_an_earlier_generate_without_markers_cover_nothing_and_are_named() {
    let p = project();
    let out = p.root().join("citus");
    let first = written(&generate(&p, &out.display().to_string(), Format::Sql, &[]).expect(0));
    // As a generate before the markers wrote them.
    for f in &first {
        let text = std::fs::read_to_string(f).unwrap();
        let old: String = text
            .lines()
            .filter(|l| {
                !l.starts_with("-- colocate:covers ") && !l.starts_with("-- What this file")
            })
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(f, old).unwrap();
    }
    let r = generate(&p, &out.display().to_string(), Format::Sql, &[]).expect(0);
    assert_eq!(written(&r).len(), first.len());
    said(
        &r,
        &format!(
            "note: {} files ({} first) were written by an earlier colocate generate, without the `colocate:covers` lines that say what they convert: they count as covering nothing",
            first.len(),
            first[0].display()
        ),
    );
}

// --- Citus -----------------------------------------------------------------------------------

/// First run (with the fixes), migrate, a table added, second run, migrate: converged, `check`
/// clean, rows kept. The toml and sql sets by `colocate migrate`, the knex set by knex.
fn grows_on_citus(format: Format) {
    let p = project();
    p.db.citus_single_node();
    let dir = format!("citus-{}", format.arg());
    let out = p.root().join(&dir).display().to_string();
    let first = written(&generate(&p, &out, format, &["--with-fixes"]).expect(0));
    let run = |files: &[PathBuf]| match format {
        Format::Knex => {
            p.knex_functions(files, "up");
        }
        _ => {
            p.colocate(&["base", &dir], &["migrate"]).expect(0);
        }
    };
    run(&first);
    // Applied: nothing to add.
    let r = generate(&p, &out, format, &["--with-fixes"]).expect(0);
    nothing(&r);

    let newest = version(first.last().unwrap());
    add_notes(&p, &newest);
    let dirs: &[&str] = match format {
        Format::Knex => &["base"],
        _ => &["base", &dir],
    };
    p.colocate(dirs, &["migrate"]).expect(0);
    let check = p.colocate(&[], &["check"]);
    assert_eq!(
        check.code,
        Some(1),
        "notes is not distributed yet: {}",
        check.all()
    );
    assert!(check.stdout.contains("notes"), "{}", check.stdout);

    let second = written(&generate(&p, &out, format, &["--with-fixes"]).expect(0));
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(converts(&second[0]), ["notes"]);
    run(&second);
    let r = p.colocate(&[], &["check"]).expect(0);
    assert!(r.stdout.contains("converged"), "{}", r.all());
    assert_eq!(
        p.count(
            "SELECT count(DISTINCT colocationid) FROM pg_dist_partition WHERE partmethod = 'h'"
        ),
        1,
        "notes is colocated with the rest"
    );
    assert_eq!(
        p.count("SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'notes'::regclass AND partmethod = 'h'"),
        1
    );
    assert_eq!(p.count("SELECT count(*) FROM notes"), 4);
    assert_eq!(
        p.count("SELECT count(*) FROM pg_constraint WHERE conrelid = 'notes'::regclass AND contype = 'f' AND convalidated"),
        1
    );
    let r = generate(&p, &out, format, &["--with-fixes"]).expect(0);
    nothing(&r);
}

#[test]
fn citus_toml_chain_of_two_runs_migrates_and_checks_clean() {
    if skip_without_citus("citus_toml_chain_of_two_runs_migrates_and_checks_clean") {
        return;
    }
    grows_on_citus(Format::Toml);
}

#[test]
fn citus_sql_chain_of_two_runs_migrates_and_checks_clean() {
    if skip_without_citus("citus_sql_chain_of_two_runs_migrates_and_checks_clean") {
        return;
    }
    grows_on_citus(Format::Sql);
}

#[test]
fn citus_knex_chain_of_two_runs_runs_under_knex_and_checks_clean() {
    if skip_without_citus_and_knex("citus_knex_chain_of_two_runs_runs_under_knex_and_checks_clean")
    {
        return;
    }
    grows_on_citus(Format::Knex);
}
