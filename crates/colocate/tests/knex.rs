//! The workflow colocate was first imagined for, with real knex (the npm packages
//! `scripts/install-deps` installs): a base knex chain in `server/migrations`, an enterprise one
//! in `ee/server/migrations`, and the Citus track `colocate generate --format knex` writes into
//! `ee/server/migrations/citus`, all three run by knex itself from its multi-directory
//! configuration, merged by file name (so by timestamp). Forward, the Citus batch back, forward
//! again, then everything back: on PostgreSQL without Citus (every Citus step a no-op that says
//! so), on a single Citus node and on a coordinator with two workers (every tenant table
//! distributed in the root's colocation group, `colocate check` clean, rows and keys kept). Each
//! rollback gives back the schema as it was (pg_dump the judge, knex's own tables aside). And a
//! team adopting colocate as its runner from that state: `colocate baseline --from-table
//! knex_migrations`, after which `colocate status` agrees with `knex migrate:list`.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use colocate_testkit::{skip_without_citus_and_knex, skip_without_knex};
use common::knex::{listed, stem};
use common::{line_diff, migration, Project};
use serde_json::Value;

/// What a team's knexfile says: the three directories, merged (knex sorts their files together
/// by name unless `sortDirsSeparately`), and the server's notices printed, which knex drops
/// otherwise (the generated Citus track says with them what each step did or skipped).
const KNEXFILE: &str = r#"// knexfile.js
module.exports = {
  client: 'pg',
  connection: process.env.DATABASE_URL,
  pool: {
    afterCreate(conn, done) {
      conn.on('notice', (n) => console.log(`${n.severity}: ${n.message}`));
      done(null, conn);
    },
  },
  migrations: {
    directory: ['server/migrations', 'ee/server/migrations', 'ee/server/migrations/citus'],
  },
};
"#;

const CONFIG: &str = r#"
[distribution]
root = "tenants"
columns = ["tenant"]
shard_count = 4

[distribution.decisions]
unique-without-tenant = { choice = "widen", reason = "an SSO entity id is configured per tenant" }
"#;

const BASE: &str = "server/migrations";
const EE: &str = "ee/server/migrations";
const CITUS: &str = "ee/server/migrations/citus";

/// The application's chain: (directory, file, up, down), in timestamp order: base and enterprise
/// files interleave, and knex_migrations' ids show that knex ran them in this order. A tenants
/// root with a comment (which `undistribute_table` loses), a lookup table, tenant tables with
/// composite keys and keys between them, a `bigserial` as knex's `bigIncrements` makes, a local
/// table, and one blocker whose fix the configuration decides: a unique key without the tenant
/// on a natural value (widened by decision).
const CHAIN: &[(&str, &str, &str, &str)] = &[
    (
        BASE,
        "20240105090000_create_tenants.js",
        "CREATE TABLE tenants (tenant uuid PRIMARY KEY, name text NOT NULL);
COMMENT ON TABLE tenants IS 'one row per customer';
CREATE TABLE countries (code char(2) PRIMARY KEY, name text NOT NULL);
CREATE TABLE feature_flags (name text PRIMARY KEY, enabled boolean NOT NULL DEFAULT false);",
        "DROP TABLE feature_flags, countries, tenants;",
    ),
    (
        BASE,
        "20240105090100_create_users.js",
        "CREATE TABLE users (tenant uuid NOT NULL REFERENCES tenants, id bigint NOT NULL,
    email text NOT NULL, country char(2) REFERENCES countries,
    PRIMARY KEY (tenant, id), UNIQUE (tenant, email));",
        "DROP TABLE users;",
    ),
    (
        EE,
        "20240110120000_create_sso_connections.js",
        "CREATE TABLE sso_connections (tenant uuid NOT NULL REFERENCES tenants, id bigint NOT NULL,
    entity_id text NOT NULL, PRIMARY KEY (tenant, id),
    CONSTRAINT sso_connections_entity_id_key UNIQUE (entity_id));",
        "DROP TABLE sso_connections;",
    ),
    (
        BASE,
        "20240212110000_create_projects.js",
        "CREATE TABLE projects (tenant uuid NOT NULL REFERENCES tenants, id bigint NOT NULL,
    owner_id bigint NOT NULL, name text NOT NULL, PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, owner_id) REFERENCES users (tenant, id));",
        "DROP TABLE projects;",
    ),
    (
        EE,
        "20240301080000_create_audit_log.js",
        "CREATE TABLE audit_log (tenant uuid NOT NULL REFERENCES tenants, id bigserial,
    user_id bigint NOT NULL, action text NOT NULL, PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, user_id) REFERENCES users (tenant, id));",
        "DROP TABLE audit_log;",
    ),
];

/// Rows the application wrote before the Citus track (six tenants, so two workers both hold
/// some).
const DATA: &str = "
INSERT INTO countries VALUES ('NZ', 'New Zealand'), ('FR', 'France');
INSERT INTO feature_flags VALUES ('beta', true);
INSERT INTO tenants SELECT ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'tenant ' || g
    FROM generate_series(1, 6) g;
INSERT INTO users SELECT tenant, u, 'u' || u || '@example.com', (ARRAY['NZ', 'FR'])[1 + u % 2]
    FROM tenants, generate_series(1, 3) u;
INSERT INTO sso_connections SELECT tenant, 1, 'https://idp.example/' || tenant FROM tenants;
INSERT INTO projects SELECT tenant, p, 1 + p % 3, 'project ' || p FROM tenants, generate_series(1, 2) p;
INSERT INTO audit_log (tenant, user_id, action) SELECT tenant, 1, 'login' FROM tenants, generate_series(1, 2);
";

const TENANT_TABLES: &[&str] = &[
    "tenants",
    "users",
    "sso_connections",
    "projects",
    "audit_log",
];

/// knex's own tables (and their sequences), left out of every schema comparison.
const KNEX_TABLES: &[&str] = &["public.knex_migrations*"];

/// A knex migration raising its SQL as knex users write one.
fn knex_file(up: &str, down: &str) -> String {
    let lit = |s: &str| serde_json::to_string(s).unwrap();
    format!(
        "exports.up = function (knex) {{\n  return knex.raw({});\n}};\n\n\
         exports.down = function (knex) {{\n  return knex.raw({});\n}};\n",
        lit(up),
        lit(down)
    )
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Server {
    /// PostgreSQL without Citus.
    Plain,
    /// Citus created in the database (single node, or a coordinator with workers).
    Citus,
}

fn dump(p: &Project) -> String {
    p.schema_dump_without(KNEX_TABLES)
}

#[track_caller]
fn same_schema(p: &Project, expected: &str, when: &str) {
    let now = dump(p);
    assert!(
        now == expected,
        "pg_dump --schema-only differs {when}:\n{}",
        line_diff(expected, &now)
    );
}

/// knex_migrations, in the order knex ran them.
fn knex_ran(p: &Project) -> Vec<String> {
    p.db.connect()
        .query("SELECT name FROM knex_migrations ORDER BY id", &[])
        .expect("read knex_migrations")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The application's tables (not knex's, not colocate's journal).
fn app_tables(p: &Project) -> Vec<String> {
    p.tables_in(&["public"])
        .into_iter()
        .filter(|t| !t.starts_with("public.knex_") && !t.starts_with("public.colocate_"))
        .collect()
}

/// Every tenant table hash-distributed by `tenant` in the root's colocation group, the lookup a
/// reference table, the rest plain, and no rows left on the coordinator's shells.
fn assert_distributed(p: &Project) {
    let citus = p.citus_tables();
    let root = &citus["public.tenants"];
    for t in TENANT_TABLES {
        let c = &citus[&format!("public.{t}")];
        assert_eq!(c.method, "h", "{t}");
        assert_eq!(c.column.as_deref(), Some("tenant"), "{t}");
        assert_eq!(
            c.colocation, root.colocation,
            "{t} in the root's colocation group"
        );
    }
    assert_eq!(citus["public.countries"].repmodel, "t");
    let citus_names: BTreeSet<&str> = citus.keys().map(String::as_str).collect();
    for local in [
        "public.feature_flags",
        "public.knex_migrations",
        "public.knex_migrations_lock",
    ] {
        assert!(!citus_names.contains(local), "{local} stays local");
    }
    assert_eq!(citus.len(), TENANT_TABLES.len() + 1, "{citus_names:?}");
    assert_eq!(p.coordinator_leftovers(), Vec::<(String, i64)>::new());
}

fn workflow(p: &Project, server: Server) {
    std::fs::write(p.root().join("knexfile.js"), KNEXFILE).unwrap();
    std::fs::write(p.root().join("colocate.toml"), CONFIG).unwrap();
    for (dir, file, up, down) in CHAIN {
        p.write(dir, file, &knex_file(up, down));
    }
    // The Citus directory is in the knexfile from the start; knex needs it to exist.
    p.dir(CITUS);
    let empty = dump(p);

    // The application's chain, merged by timestamp across both directories.
    let r = p.knex(&["migrate:latest"]).expect(0);
    assert!(
        r.stdout.contains("Batch 1 run: 5 migrations"),
        "{}",
        r.all()
    );
    let app: Vec<String> = CHAIN.iter().map(|(_, f, _, _)| f.to_string()).collect();
    assert_eq!(knex_ran(p), app, "knex ran the directories merged by name");
    p.db.connect()
        .batch_execute(DATA)
        .expect("application rows");
    let tables = app_tables(p);
    assert_eq!(tables.len(), 7, "{tables:?}");
    let sums = p.checksums(&tables);
    let keys = p.foreign_keys(&tables);
    assert_eq!(keys.len(), 7);
    let before_citus = dump(p);

    // The Citus track, written by colocate into knex's third directory, after both chains.
    let r = p
        .colocate(
            &[BASE, EE],
            &[
                "generate",
                "--format",
                "knex",
                "--with-fixes",
                "--out",
                CITUS,
            ],
        )
        .expect(0);
    let track: Vec<String> = r
        .stdout
        .lines()
        .map(|l| {
            let path = PathBuf::from(l);
            assert_eq!(path.parent(), Some(std::path::Path::new(CITUS)), "{l}");
            path.file_name().unwrap().to_string_lossy().into_owned()
        })
        .collect();
    assert!(track.len() >= 5, "{track:?}");
    assert!(track[0].ends_with("_citus_fixes.cjs"), "{track:?}");
    assert!(track.iter().all(|f| f.ends_with(".cjs")));
    assert!(
        track[0] > app[app.len() - 1],
        "the track sorts after the chain"
    );

    // A look at adopting colocate as the runner later needs the same plan as dbmate SQL: see
    // `adopt` below.
    let sql_port = p
        .colocate(
            &[BASE, EE],
            &[
                "generate",
                "--format",
                "sql",
                "--with-fixes",
                "--out",
                "scratch/citus-sql",
            ],
        )
        .expect(0);

    let r = p.knex(&["migrate:latest"]).expect(0);
    assert!(
        r.stdout
            .contains(&format!("Batch 2 run: {} migrations", track.len())),
        "{}",
        r.all()
    );
    let all: Vec<String> = app.iter().chain(&track).cloned().collect();
    assert_eq!(knex_ran(p), all);
    let converged = |p: &Project, stdout: &str| match server {
        Server::Citus => {
            assert!(
                stdout.contains("NOTICE: colocate: extension citus already exists"),
                "{stdout}"
            );
            assert_distributed(p);
            let r = p.colocate(&[], &["check"]).expect(0);
            assert!(r.stdout.contains("converged"), "{}", r.all());
        }
        Server::Plain => {
            for said in [
                "NOTICE: colocate: citus is not available on this server (plain PostgreSQL): skipped",
                "NOTICE: colocate: citus is not installed: public.tenants stays a local table",
                "NOTICE: colocate: citus is not installed: public.audit_log stays a local table",
            ] {
                assert!(stdout.contains(said), "{said} not in:\n{stdout}");
            }
            assert_eq!(
                p.count("SELECT count(*) FROM pg_extension WHERE extname = 'citus'"),
                0
            );
            p.colocate(&[], &["check"]).expect(0);
            p.colocate(&[], &["check", "--require-citus"]).expect(1);
        }
    };
    converged(p, &r.stdout);
    // The fix ran, in the one file knex wraps in a transaction.
    assert_eq!(
        p.count(
            "SELECT count(*) FROM pg_constraint WHERE conname = 'sso_connections_entity_id_key' \
             AND pg_get_constraintdef(oid) = 'UNIQUE (tenant, entity_id)'"
        ),
        1
    );
    assert_eq!(p.checksums(&tables), sums, "every row kept");
    assert_eq!(p.foreign_keys(&tables), keys, "every foreign key kept");

    adopt(p, &all, &sql_port.stdout);

    // The Citus batch back: the schema as before the track, rows and keys kept.
    let r = p.knex(&["migrate:rollback"]).expect(0);
    assert!(
        r.stdout
            .contains(&format!("Batch 2 rolled back: {} migrations", track.len())),
        "{}",
        r.all()
    );
    assert_eq!(knex_ran(p), app);
    assert!(p.citus_tables().is_empty());
    same_schema(p, &before_citus, "after rolling the Citus batch back");
    assert_eq!(p.checksums(&tables), sums);
    assert_eq!(p.foreign_keys(&tables), keys);

    // Forward again (a release rolled back and redone), then the whole chain back.
    let r = p.knex(&["migrate:latest"]).expect(0);
    converged(p, &r.stdout);
    assert_eq!(knex_ran(p), all);
    assert_eq!(p.checksums(&tables), sums);
    assert_eq!(p.foreign_keys(&tables), keys);
    let r = p.knex(&["migrate:rollback", "--all"]).expect(0);
    assert!(knex_ran(p).is_empty(), "{}", r.all());
    same_schema(p, &empty, "after rolling everything back");
}

/// A team moving from knex to colocate as its runner, from this state: each knex file ported
/// to a dbmate `.sql` file of the same version and name (the chain's SQL as it is; the Citus
/// track as `colocate generate --format sql` writes the same plan, given the knex files'
/// versions), then `colocate baseline --from-table knex_migrations`. colocate's `status` then
/// lists as applied exactly what `knex migrate:list` lists as completed, nothing pending, and
/// `migrate` has nothing to do. The look ends by dropping colocate's history: knex stays this
/// test's runner.
fn adopt(p: &Project, knex_files: &[String], sql_port: &str) {
    let ported = |dir: &str| match dir {
        BASE => "db/server",
        EE => "db/ee",
        _ => "db/citus",
    };
    for (dir, file, up, down) in CHAIN {
        p.write(
            ported(dir),
            &format!("{}.sql", stem(file)),
            &migration(up, Some(down)),
        );
    }
    let sql: Vec<PathBuf> = sql_port.lines().map(PathBuf::from).collect();
    let citus: Vec<&String> = knex_files.iter().filter(|f| f.ends_with(".cjs")).collect();
    assert_eq!(sql.len(), citus.len());
    for (sql, cjs) in sql.iter().zip(&citus) {
        let sql_name = sql.file_name().unwrap().to_string_lossy().into_owned();
        // The same file of the same plan: only the timestamp differs.
        assert_eq!(&stem(&sql_name)[14..], &stem(cjs)[14..]);
        std::fs::create_dir_all(p.root().join("db/citus")).unwrap();
        std::fs::rename(
            p.root().join(sql),
            p.root().join("db/citus").join(format!("{}.sql", stem(cjs))),
        )
        .unwrap();
    }
    let dirs = ["db/server", "db/ee", "db/citus"];

    let (completed, pending) = listed(&p.knex(&["migrate:list"]).expect(0).stdout);
    assert_eq!(completed, knex_files);
    assert!(pending.is_empty(), "{pending:?}");

    let r = p
        .colocate(&dirs, &["baseline", "--from-table", "knex_migrations"])
        .expect(0);
    assert!(
        r.stdout.contains(&format!(
            "{} migrations marked applied as batch 1, 0 already recorded",
            knex_files.len()
        )),
        "{}",
        r.all()
    );
    assert_eq!(r.stderr, "", "every knex name matched a file");

    let r = p.colocate(&dirs, &["status", "--format", "json"]).expect(0);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let applied: Vec<String> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["status"], "applied", "{e}");
            format!(
                "{}_{}",
                e["version"].as_str().unwrap(),
                e["name"].as_str().unwrap()
            )
        })
        .collect();
    let knex_stems: Vec<String> = completed.iter().map(|f| stem(f).to_string()).collect();
    assert_eq!(applied, knex_stems, "colocate status agrees with knex");
    p.colocate(&dirs, &["status", "--check"]).expect(0);
    let r = p.colocate(&dirs, &["migrate", "--dry-run"]).expect(0);
    assert!(r.stdout.contains("nothing to apply"), "{}", r.all());

    p.db.connect()
        .batch_execute("DROP TABLE colocate_migrations")
        .unwrap();
    std::fs::remove_dir_all(p.root().join("db")).unwrap();
}

#[test]
fn plain_postgres_knex_runs_the_merged_chain_and_the_citus_track_forward_and_back() {
    if skip_without_knex(
        "plain_postgres_knex_runs_the_merged_chain_and_the_citus_track_forward_and_back",
    ) {
        return;
    }
    let p = Project::new();
    p.hide_citus();
    workflow(&p, Server::Plain);
}

#[test]
fn citus_single_node_knex_runs_the_merged_chain_and_the_citus_track_forward_and_back() {
    let name = "citus_single_node_knex_runs_the_merged_chain_and_the_citus_track_forward_and_back";
    if skip_without_citus_and_knex(name) {
        return;
    }
    let p = Project::new();
    p.db.citus_single_node();
    workflow(&p, Server::Citus);
}

#[test]
fn citus_workers_knex_runs_the_merged_chain_and_the_citus_track_forward_and_back() {
    let name = "citus_workers_knex_runs_the_merged_chain_and_the_citus_track_forward_and_back";
    if skip_without_citus_and_knex(name) {
        return;
    }
    let p = Project::new();
    p.db.citus_with_workers();
    workflow(&p, Server::Citus);
}
