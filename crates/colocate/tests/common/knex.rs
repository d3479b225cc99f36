//! Real knex against a test's database: the `knex` and `pg` packages from npm that
//! `scripts/install-deps` installs in `.ci/knex` (see `colocate_testkit::knex_dir`). Two ways in:
//! the knex CLI in the project directory, as a team runs its chain (`knex migrate:latest`), and
//! a set of migration files called one by one through a knex instance, the way knex's migrator
//! calls one migration (in a transaction unless its `config.transaction` is false), for tests
//! that run a file again on purpose, which the migrator would refuse.
//! Tests using either call `colocate_testkit::skip_without_knex` first.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::{run, Project, Run, CONNECTION_ENV};

/// A Citus conversion through knex may take a while on a loaded machine; no run may hang.
const TIMEOUT: Duration = Duration::from_secs(180);

/// `node_modules` holding knex and pg.
pub fn node_modules() -> PathBuf {
    colocate_testkit::knex_dir().join("node_modules")
}

/// Calls each file's `up` or `down` with a knex instance on the database, as knex's migrator
/// does for one migration (`knex.transaction(trx => migration.up(trx))`, or `migration.up(knex)`
/// when the file says `config.transaction: false`). Prints, as JSON, each file with whether it
/// ran in a transaction and how many queries it sent, and the server's notices (knex itself
/// drops them; the pool's `afterCreate` is knex's documented hook onto each connection).
const RUN_FUNCTIONS: &str = r#"
const [knexModule, url, direction, ...files] = process.argv.slice(2);
const notices = [];
const knex = require(knexModule)({
  client: 'pg',
  connection: url,
  pool: {
    afterCreate(conn, done) {
      conn.on('notice', (n) => notices.push(n.message));
      done(null, conn);
    },
  },
});
let queries = 0;
knex.on('query', () => { queries += 1; });
(async () => {
  const ran = [];
  for (const file of files) {
    const migration = require(file);
    if (typeof migration.up !== 'function' || typeof migration.down !== 'function') {
      throw new Error(`${file}: exports.up and exports.down must be functions`);
    }
    const transaction = !(migration.config && migration.config.transaction === false);
    const before = queries;
    try {
      if (transaction) {
        await knex.transaction((trx) => migration[direction](trx));
      } else {
        await migration[direction](knex);
      }
    } catch (e) {
      throw new Error(`${file} ${direction}: ${e.message}`);
    }
    ran.push({ file, transaction, queries: queries - before });
  }
  return ran;
})().then(
  async (ran) => {
    await knex.destroy();
    process.stdout.write(JSON.stringify({ ran, notices }));
  },
  async (e) => {
    console.error(e.message);
    await knex.destroy();
    process.exit(1);
  },
);
"#;

/// One file as [`Project::knex_functions`] ran it.
#[derive(Debug)]
pub struct Ran {
    pub file: PathBuf,
    pub transaction: bool,
    pub queries: u64,
}

/// A project whose directory is set up as a knex application's.
impl Project {
    /// `node_modules` in the project directory, as after `npm install knex pg`: a link to the
    /// installed packages, so `node_modules/.bin/knex` finds its local knex and knex its pg.
    pub fn knex_install(&self) {
        let link = self.root().join("node_modules");
        if !link.exists() {
            std::os::unix::fs::symlink(node_modules(), &link).expect("link node_modules");
        }
    }

    /// `node_modules/.bin/knex ARGS` in the project directory, with `DATABASE_URL` set to this
    /// test's database (the knexfile reads it) and no other connection settings inherited.
    pub fn knex(&self, args: &[&str]) -> Run {
        self.knex_install();
        let mut cmd = assert_cmd::Command::new(self.root().join("node_modules/.bin/knex"));
        for var in CONNECTION_ENV {
            cmd.env_remove(var);
        }
        cmd.current_dir(self.root())
            .env("DATABASE_URL", self.db.url())
            .env("NO_COLOR", "1")
            .args(args)
            .timeout(TIMEOUT);
        run(cmd)
    }

    /// Each file's `up` (in order) or `down` (newest first) through a knex instance, as knex's
    /// migrator runs one migration; panics naming the file when one fails. Returns what ran and
    /// the server's notices.
    pub fn knex_functions(&self, files: &[PathBuf], direction: &str) -> (Vec<Ran>, Vec<String>) {
        let script = self.root().join("run-knex-functions.cjs");
        std::fs::write(&script, RUN_FUNCTIONS).expect("write the knex runner");
        let ordered: Vec<&PathBuf> = match direction {
            "up" => files.iter().collect(),
            _ => files.iter().rev().collect(),
        };
        let mut cmd = assert_cmd::Command::new("node");
        cmd.arg(&script)
            .arg(node_modules().join("knex"))
            .arg(self.db.url())
            .arg(direction)
            .args(ordered)
            .timeout(TIMEOUT);
        let r = run(cmd);
        assert_eq!(
            r.code,
            Some(0),
            "knex {direction}: {}\n{}",
            r.stderr,
            r.stdout
        );
        let v: Value = serde_json::from_str(&r.stdout).expect("the runner's JSON");
        let ran = v["ran"]
            .as_array()
            .expect("ran")
            .iter()
            .map(|f| Ran {
                file: PathBuf::from(f["file"].as_str().unwrap()),
                transaction: f["transaction"].as_bool().unwrap(),
                queries: f["queries"].as_u64().unwrap(),
            })
            .collect();
        let notices = v["notices"]
            .as_array()
            .expect("notices")
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect();
        (ran, notices)
    }
}

/// The lines of `knex migrate:list` under "Found N Completed Migration file/files." and
/// "Found N Pending Migration file/files.": (completed, pending).
pub fn listed(stdout: &str) -> (Vec<String>, Vec<String>) {
    let mut completed = Vec::new();
    let mut pending = Vec::new();
    // 0: outside a list, 1: completed, 2: pending.
    let mut list = 0;
    for line in stdout.lines().map(str::trim) {
        if line.starts_with("Found ") && line.contains("Completed Migration") {
            list = 1;
        } else if line.starts_with("Found ") && line.contains("Pending Migration") {
            list = 2;
        } else if line.starts_with("No ") || line.is_empty() {
            list = 0;
        } else if list == 1 {
            completed.push(line.to_string());
        } else if list == 2 {
            pending.push(line.to_string());
        }
    }
    (completed, pending)
}

/// `name.ext` without its extension.
pub fn stem(name: &str) -> &str {
    Path::new(name)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(name)
}
