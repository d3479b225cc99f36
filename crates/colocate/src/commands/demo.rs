//! `colocate demo`: the whole job on an embedded default. Start a throwaway PostgreSQL (a Citus
//! coordinator, with `--workers N` workers on loopback ports, when Citus is installed), write the
//! bundled example application (examples/psa: base and enterprise migrations and the Citus
//! track) to a temporary folder, run the merged chain, load sample data for three tenants, then
//! show status, the colocation groups, where a few tenants' rows live, and `check`. Nothing
//! outside the temporary folder is touched.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use colocate_core::plan::plan;
use colocate_core::schema::QualifiedName;
use colocate_core::MigrationSet;
use colocate_pg::history::DEFAULT_HISTORY_TABLE;
use colocate_pg::introspect::introspect;
use colocate_pg::local::LocalServer;
use colocate_pg::{topology, HistoryTable, MigrateOptions, Runner, Target};

use crate::cli::{DemoArgs, Global};
use crate::commands::migrate::on_event;
use crate::context::{EXIT_FINDINGS, EXIT_OK};
use crate::progress::Progress;
use crate::render;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/example_files.rs"));
}

fn write_example(root: &Path) -> Result<()> {
    for (rel, body) in embedded::EXAMPLE {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, body).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

fn file(rel: &str) -> &'static str {
    embedded::EXAMPLE
        .iter()
        .find(|(r, _)| *r == rel)
        .map(|(_, b)| *b)
        .unwrap_or("")
}

#[derive(serde::Deserialize)]
struct ExampleConfig {
    migration_dirs: Vec<PathBuf>,
    distribution: colocate_core::distribution::DistributionConfig,
}

pub fn run(g: &Global, a: &DemoArgs) -> Result<u8> {
    let started = Instant::now();
    eprintln!("starting a throwaway PostgreSQL on 127.0.0.1 ...");
    let server = LocalServer::start(a.keep, usize::from(a.workers))?;
    if server.citus() {
        eprintln!(
            "citus is installed: a coordinator{}",
            match server.worker_ports().len() {
                0 => " that holds the shards itself".to_string(),
                n => format!(
                    " with {} on ports {:?}",
                    colocate_core::words::count(n, "worker"),
                    server.worker_ports()
                ),
            }
        );
    } else {
        eprintln!(
            "citus is not installed here: plain PostgreSQL; the Citus steps of the chain are recorded no-ops"
        );
    }
    let url = server.create_database("psa")?;

    let work = std::env::temp_dir().join(format!("colocate-demo-psa-{}", std::process::id()));
    write_example(&work)?;
    // Relative to the example, which becomes the working directory: output shows the layout a
    // real project has rather than a temporary path.
    std::env::set_current_dir(&work)?;
    let config: ExampleConfig = toml::from_str(file("colocate.toml"))?;
    let set = MigrationSet::load(&config.migration_dirs)?;
    eprintln!(
        "migrating the example application: {} migrations from {} directories, merged by version",
        set.len(),
        config.migration_dirs.len()
    );
    let target = Target::new(Some(&url))?;
    let mut client = target.connect("colocate demo")?;
    let mut runner = Runner::new(
        &mut client,
        HistoryTable::new(DEFAULT_HISTORY_TABLE),
        std::time::Duration::from_secs(30),
    );
    let mut progress = Progress::new(g, Some((&target, "colocate demo")));
    let report = runner.migrate(
        &set,
        &MigrateOptions::default(),
        &mut on_event(&mut progress),
    )?;
    progress.finish();
    render::history::migrate(&report);
    println!();
    render::history::status(&runner.status(&set)?);

    client
        .batch_execute(file("sample_data.sql"))
        .context("load the sample data")?;
    println!("\nloaded sample data for three tenants");

    let mut code = EXIT_OK;
    if server.citus() {
        println!("\nCOLOCATION GROUPS");
        for g in topology::colocation_groups(&mut client)? {
            let kind = if g.shard_count <= 1 {
                "reference".to_string()
            } else {
                format!("{} shards", g.shard_count)
            };
            println!(
                "  group {:>3}  {kind:<10}  {}: {}",
                g.colocation_id,
                colocate_core::words::count(g.tables.len(), "table"),
                shorten(&g.tables)
            );
        }
        println!("\nWHERE TENANTS' ROWS LIVE (tickets, colocated with tenants)");
        let placements = topology::tenant_placements(
            &mut client,
            &QualifiedName::new("public", "tickets"),
            "tenant",
            3,
        )?;
        for p in &placements {
            println!("  tenant {}  shard {}  on {}", p.tenant, p.shard, p.node);
        }
        let nodes: std::collections::BTreeSet<&str> =
            placements.iter().map(|p| p.node.as_str()).collect();
        let workers = server.worker_ports().len();
        if workers > 1 {
            println!(
                "  the sample tenants' rows are spread over {} of the {workers} workers; each tenant's rows, in every colocated table, stay together on one",
                nodes.len()
            );
        }
    }
    let schema = introspect(&mut client, &config.distribution.schema_filter())?;
    let p = plan(&schema, &config.distribution);
    let check = render::plan::CheckReport::new(&p);
    println!("\nCHECK");
    render::plan::check_human(&check);
    if check.citus_installed && !check.converged {
        code = EXIT_FINDINGS;
    }

    std::env::set_current_dir(std::env::temp_dir())?;
    let _ = std::fs::remove_dir_all(&work);
    if a.keep {
        println!("\nthe servers keep running: {url}");
        for cmd in server.stop_commands() {
            println!("stop with: {cmd}");
        }
        println!("then remove their data: {}", server.remove_command());
    }
    eprintln!("demo finished in {:.1} s", started.elapsed().as_secs_f64());
    Ok(code)
}

fn shorten(tables: &[String]) -> String {
    let shown: Vec<&str> = tables.iter().take(6).map(String::as_str).collect();
    match tables.len().saturating_sub(shown.len()) {
        0 => shown.join(", "),
        more => format!("{}, ... and {more} more", shown.join(", ")),
    }
}
