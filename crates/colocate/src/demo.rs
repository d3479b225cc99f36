//! `colocate demo`: the whole job on an embedded default. Start a throwaway PostgreSQL, write the
//! bundled example migrations (a base directory and an enterprise directory) to a temporary
//! folder, migrate, and print status. Nothing outside the temporary folder is touched.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use colocate_core::MigrationSet;
use colocate_pg::history::DEFAULT_HISTORY_TABLE;
use colocate_pg::local::LocalServer;
use colocate_pg::{HistoryTable, MigrateOptions, Runner, Target};

use crate::cli::{DemoArgs, Global};
use crate::{render, EXIT_OK};

macro_rules! bundled {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../../examples/demo/", $path)))),*]
    };
}

/// The example migration set, compiled into the binary so `demo` works from anywhere.
const EXAMPLE: &[(&str, &str)] = bundled![
    "server/migrations/20240105090000_create_tenants.sql",
    "server/migrations/20240105090100_create_users.sql",
    "server/migrations/20240110083000_create_tickets.sql",
    "ee/server/migrations/20240106120000_create_audit_log.sql",
    "ee/server/migrations/20240112100000_index_audit_log_concurrently.sql",
];

fn write_example(root: &Path) -> Result<Vec<PathBuf>> {
    for (rel, body) in EXAMPLE {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, body).with_context(|| format!("write {}", path.display()))?;
    }
    // Relative to `root`, which becomes the working directory: output shows the layout a real
    // project has rather than a temporary path.
    std::env::set_current_dir(root)?;
    Ok(vec![
        PathBuf::from("server/migrations"),
        PathBuf::from("ee/server/migrations"),
    ])
}

pub fn run(_g: &Global, a: &DemoArgs) -> Result<u8> {
    let started = Instant::now();
    eprintln!("starting a throwaway PostgreSQL on 127.0.0.1 ...");
    let server = LocalServer::start(a.keep, 0)?;
    let work =
        std::env::temp_dir().join(format!("colocate-demo-migrations-{}", std::process::id()));
    let dirs = write_example(&work)?;
    let set = MigrationSet::load(&dirs)?;
    eprintln!(
        "migrating {} example migrations from {} directories (base and enterprise), merged by version",
        set.len(),
        dirs.len()
    );
    let url = server.url("postgres");
    let target = Target::new(Some(&url))?;
    let mut client = target.connect("colocate demo")?;
    let mut runner = Runner::new(
        &mut client,
        HistoryTable::new(DEFAULT_HISTORY_TABLE),
        std::time::Duration::from_secs(30),
    );
    let report = runner.migrate(&set, &MigrateOptions::default(), &mut |_| {})?;
    render::migrate(&report);
    println!();
    render::status(&runner.status(&set)?);
    if !server.citus() {
        eprintln!("\ncitus is not installed here: the Citus steps are skipped (plain PostgreSQL)");
    }
    std::env::set_current_dir(std::env::temp_dir())?;
    let _ = std::fs::remove_dir_all(&work);
    if a.keep {
        println!("\nthe server keeps running: {url}");
        for cmd in server.stop_commands() {
            println!("stop it with: {cmd}");
        }
    }
    eprintln!("demo finished in {:.1} s", started.elapsed().as_secs_f64());
    Ok(EXIT_OK)
}
