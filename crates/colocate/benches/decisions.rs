//! Decisions at scale, against the real test cluster (`scripts/pg-test-cluster start --workers
//! 2`), without a benchmark framework: every figure is printed with what it measures.
//!
//! A generated schema of 500 tables with blockers in a real schema's proportions
//! (`colocate_testkit::synth::schema(500, 1)`: 1 in 10 tables with a key lacking the tenant, 1
//! in 15 with a foreign key lacking it, 1 in 15 with a refused key action, a few triggers, a
//! varchar tenant column, tenant-less children, cascades 9 levels deep, a cycle) is carried to
//! Citus the way a user does it, with the release binary, twice, each in a fresh database on a
//! coordinator with two workers:
//!
//! 1. the default path: `colocate.toml` without decisions; `generate --with-fixes --format sql`,
//!    then `migrate`;
//! 2. with decisions: the decisions-only `colocate.toml` of `synth::decisions_toml`; the same.
//!
//! For each: `plan` wall time (median of 3 runs of the binary, connection included), the open
//! decisions and fixes the plan lists, the tables distributed and made reference afterwards, the
//! tenant tables left plain, the keys left from a plain table into a distributed one (must be 0),
//! `check`'s exit code, and whether a second `migrate` runs nothing. For the decisions: how many
//! decisions and how many lines of configuration they take.
//!
//! Without Citus on the test cluster it prints why and exits 0. `cargo bench -p colocate --bench
//! decisions` runs it; `cargo test --all-targets` builds it and runs it with a 60-table schema.
//! With `COLOCATE_BENCH_KEEP=DIR` the summary also goes to `DIR/decisions-summary.txt`.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use colocate_testkit::synth;
use colocate_testkit::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_colocate");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn colocate(dir: &Path, url: &str, args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .arg("--database-url")
        .arg(url)
        .args(args)
        .output()
        .expect("run colocate");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

struct Outcome {
    plan_ms: f64,
    open_decisions: usize,
    open_cases: usize,
    fixes: usize,
    distributed: i64,
    reference: i64,
    tenant_tables_plain: i64,
    keys_into_distributed: i64,
    check: i32,
    second_migrate_idle: bool,
}

fn count(db: &TestDb, sql: &str) -> i64 {
    db.connect().query_one(sql, &[]).unwrap().get(0)
}

fn path(s: &synth::Synth, decisions: bool) -> Outcome {
    let db = TestDb::new();
    db.citus_with_workers();
    {
        let mut c = db.connect();
        for chunk in &s.sql {
            c.batch_execute(chunk).expect("the generated schema loads");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = String::from("migration_dirs = [\"migrations\"]\n");
    if decisions {
        config.push_str(&synth::decisions_toml(&s.facts));
    } else {
        config.push_str(
            "[distribution]\nroot = \"tenants\"\ncolumns = [\"tenant\", \"tenant_id\"]\n",
        );
    }
    fs::write(dir.path().join("colocate.toml"), &config).unwrap();
    fs::create_dir_all(dir.path().join("migrations")).unwrap();

    let mut times = Vec::new();
    let mut plan = None;
    for _ in 0..3 {
        let t0 = Instant::now();
        let r = colocate(dir.path(), db.url(), &["plan", "--format", "json"]);
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
        plan = Some(r);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let plan = plan.unwrap();
    let v: serde_json::Value = serde_json::from_str(&plan.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", plan.stdout, plan.stderr));
    let empty = Vec::new();
    let decisions_open = v["decisions"].as_array().unwrap_or(&empty);
    let open_cases = decisions_open
        .iter()
        .map(|d| d["cases"].as_array().map_or(0, Vec::len))
        .sum();
    let fixes = v["fixes"].as_array().map_or(0, Vec::len);

    let g = colocate(
        dir.path(),
        db.url(),
        &[
            "generate",
            "--with-fixes",
            "--format",
            "sql",
            "--out",
            "migrations",
        ],
    );
    assert_eq!(g.code, 0, "{}{}", g.stdout, g.stderr);
    let m = colocate(dir.path(), db.url(), &["migrate", "-q"]);
    assert_eq!(m.code, 0, "{}{}", m.stdout, m.stderr);
    let check = colocate(dir.path(), db.url(), &["check"]).code;
    let again = colocate(dir.path(), db.url(), &["migrate"]);
    let tenant_list = s
        .facts
        .tenant_tables
        .iter()
        .chain(&s.facts.tenant_id_tables)
        .map(|t| format!("'{}'", t.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ");
    Outcome {
        plan_ms: times[1],
        open_decisions: decisions_open.len(),
        open_cases,
        fixes,
        distributed: count(
            &db,
            "SELECT count(*) FROM pg_dist_partition WHERE partmethod = 'h'",
        ),
        reference: count(
            &db,
            "SELECT count(*) FROM pg_dist_partition WHERE repmodel = 't'",
        ),
        tenant_tables_plain: count(
            &db,
            &format!(
                "SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace \
                 AND c.relkind IN ('r', 'p') AND c.relname IN ({tenant_list}) \
                 AND NOT EXISTS (SELECT 1 FROM pg_dist_partition d WHERE d.logicalrelid = c.oid)"
            ),
        ),
        keys_into_distributed: count(
            &db,
            "SELECT count(*) FROM pg_constraint c WHERE c.contype = 'f' AND c.conrelid <> c.confrelid \
             AND EXISTS (SELECT 1 FROM pg_dist_partition d WHERE d.logicalrelid = c.confrelid AND d.partmethod = 'h') \
             AND NOT EXISTS (SELECT 1 FROM pg_dist_partition d WHERE d.logicalrelid = c.conrelid AND d.partmethod = 'h')",
        ),
        check,
        second_migrate_idle: again.code == 0 && again.stdout.contains("nothing to apply"),
    }
}

fn main() {
    if !colocate_testkit::citus_available() {
        println!("decisions bench: Citus is not preloaded on the test cluster; nothing measured");
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let tables = if full { 500 } else { 60 };
    let s = synth::schema(tables, 1);
    let f = &s.facts;
    if let Ok(dir) = std::env::var("COLOCATE_BENCH_DUMP") {
        // The material, to look at by hand: the schema's SQL and the decisions.
        fs::write(Path::new(&dir).join("synth.sql"), s.sql.join("\n")).unwrap();
        fs::write(
            Path::new(&dir).join("decisions.toml"),
            synth::decisions_toml(f),
        )
        .unwrap();
    }
    let decisions_text = synth::decisions_toml(f);
    let config_lines = decisions_text
        .lines()
        .filter(|l| {
            let l = l.trim();
            !l.is_empty() && !l.starts_with('#')
        })
        .count();
    let kinds = decisions_text
        .lines()
        .filter(|l| l.contains("= { choice ="))
        .count();
    let exceptions = decisions_text
        .matches("[[distribution.decisions.except]]")
        .count();

    let mut out = String::new();
    out.push_str(&format!(
        "decisions bench: synth::schema({tables}, 1): {} tenant tables ({} by tenant_id); blockers: {} keys lacking the tenant ({} on natural values), {} foreign keys lacking it, {} refused key actions, {} triggers, {} varchar tenant columns, {} tenant-less children; cascade depth {}\n",
        f.tenant_tables.len(),
        f.tenant_id_tables.len(),
        f.key_lacking_tenant_surrogate.len() + f.key_lacking_tenant_natural.len(),
        f.key_lacking_tenant_natural.len(),
        f.fk_lacking_tenant.len(),
        f.refused_key_action.len(),
        f.triggers.len(),
        f.varchar_tenant.len(),
        f.tenantless_children.len(),
        f.cascade_depth,
    ));
    for (label, decided) in [
        ("default path (no decisions)", false),
        ("with decisions", true),
    ] {
        let o = path(&s, decided);
        out.push_str(&format!(
            "  {label}: plan {:.0} ms (median of 3, binary and connection included); {} open decisions ({} cases), {} fixes; after generate --with-fixes + migrate: {} distributed, {} reference, {} tenant tables left plain, {} keys from a plain table into a distributed one; check exit {}; second migrate idle: {}\n",
            o.plan_ms,
            o.open_decisions,
            o.open_cases,
            o.fixes,
            o.distributed,
            o.reference,
            o.tenant_tables_plain,
            o.keys_into_distributed,
            o.check,
            o.second_migrate_idle,
        ));
        assert_eq!(
            o.keys_into_distributed, 0,
            "{label}: no key is left unenforced"
        );
    }
    out.push_str(&format!(
        "  decisions: {kinds} kind lines + {exceptions} exceptions, {config_lines} lines of configuration (comments and blank lines not counted)\n"
    ));
    print!("{out}");
    if let Ok(dir) = std::env::var("COLOCATE_BENCH_KEEP") {
        let _ = fs::write(Path::new(&dir).join("decisions-summary.txt"), &out);
    }
}
