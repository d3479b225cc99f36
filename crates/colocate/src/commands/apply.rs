//! `apply` and `undistribute`: converge the database to the plan, or take Citus tables back to
//! local ones, with progress on stderr and the report on stdout.

use anyhow::Result;
use colocate_core::schema::QualifiedName;
use colocate_core::step::{Step, StepKind};
use colocate_pg::apply::{ApplyEvent, ApplyOptions};
use colocate_pg::copy_progress::Watched;
use colocate_pg::undistribute::{UndistributeEvent, UndistributeOptions};
use colocate_pg::Target;

use crate::cli::{ApplyArgs, ApplyFormat, Format, Global, UndistributeArgs};
use crate::config;
use crate::config::ConfigError;
use crate::context::{confirm, connect, EXIT_OK};
use crate::progress::Progress;
use crate::render::{self, plan as r};

/// The application names the runs connect with (the progress watch finds their sessions by
/// them).
const APPLY: &str = "colocate apply";
const UNDISTRIBUTE: &str = "colocate undistribute";

/// How progress names a step: its kind as users read it and its table.
fn what(step: &Step) -> String {
    match step.table() {
        Some(t) => format!("{} {t}", step.kind().label()),
        None => step.kind().label().to_string(),
    }
}

/// What a step copies: a conversion copies its table into the shards (the whole table to
/// every node, for a reference table).
fn copies(step: &Step) -> Option<Watched> {
    step.kind().converts().then(|| Watched {
        table: step.table().cloned(),
        replicated: step.kind() == StepKind::CreateReferenceTable,
    })
}

pub fn apply(g: &Global, a: &ApplyArgs) -> Result<u8> {
    if a.format == ApplyFormat::Sql && !a.dry_run {
        anyhow::bail!(ConfigError {
            message:
                "apply --format sql prints statements without running them: it needs --dry-run"
                    .into(),
            hint: Some("colocate apply --dry-run --format sql > converge.sql".into()),
        });
    }
    let config = config::load_from(g.config.as_deref())?;
    let target = Target::new(g.database_url.as_deref())?;
    let mut client = target.connect(APPLY)?;
    let opts = ApplyOptions {
        dry_run: a.dry_run,
        online: a.online,
        online_threshold: a.online_threshold,
        skip_blocked: a.skip_blocked,
        lock_timeout: a.lock.lock_timeout,
        more_connections: Some(target.clone()),
        ..ApplyOptions::default()
    };
    let json = a.format == ApplyFormat::Json;
    let mut progress = Progress::new(g, (!a.dry_run).then_some((&target, APPLY)));
    let mut on_event = |e: ApplyEvent<'_>| match e {
        ApplyEvent::Waiting { holder } => {
            progress.say(&format!("waiting for the converge lock, held by {holder}"))
        }
        ApplyEvent::Start {
            index,
            total,
            step,
            online,
        } => {
            let mode = if online { " (online)" } else { "" };
            progress.start(index, total, format!("{}{mode}", what(step)), copies(step));
        }
        ApplyEvent::Done {
            index,
            total,
            step,
            elapsed,
        } => {
            progress.done(elapsed);
            if json {
                let line = serde_json::json!({
                    "version": render::JSON_VERSION,
                    "event": "step",
                    "index": index,
                    "total": total,
                    "kind": step.kind(),
                    "table": step.table(),
                    "sql": step.sql(),
                    "elapsed_ms": elapsed.as_secs_f64() * 1000.0,
                });
                progress.suspend(|| println!("{line}"));
            }
        }
        ApplyEvent::Repair { what } => progress.say(&format!("repair: {what}")),
    };
    let report =
        colocate_pg::apply::apply(&mut client, &config.distribution, &opts, &mut on_event)?;
    progress.finish();
    if json {
        let mut v = serde_json::to_value(&report)?;
        if let serde_json::Value::Object(m) = &mut v {
            m.insert("version".into(), render::JSON_VERSION.into());
            m.insert("event".into(), "summary".into());
        }
        println!("{v}");
    } else if a.format == ApplyFormat::Sql {
        print!("{}", r::apply_sql(&report));
    } else {
        r::apply_human(&report);
    }
    Ok(EXIT_OK)
}

pub fn undistribute(g: &Global, a: &UndistributeArgs) -> Result<u8> {
    let config = config::load_from(g.config.as_deref())?;
    let mut client = connect(g, UNDISTRIBUTE)?;
    let mut opts = UndistributeOptions {
        tables: (!a.all).then(|| {
            a.tables
                .iter()
                .map(|t| QualifiedName::parse(t, "public"))
                .collect()
        }),
        cascade: a.cascade,
        dry_run: true,
        lock_timeout: a.lock.lock_timeout,
        filter: config.distribution.schema_filter(),
        ..UndistributeOptions::default()
    };
    let target = Target::new(g.database_url.as_deref())?;
    let mut progress = Progress::new(g, (!a.dry_run).then_some((&target, UNDISTRIBUTE)));
    let mut events = |e: UndistributeEvent<'_>| match e {
        UndistributeEvent::Waiting { holder } => {
            progress.say(&format!("waiting for the converge lock, held by {holder}"))
        }
        UndistributeEvent::Start {
            index,
            total,
            tables,
        } => {
            let names: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
            // Rows come back from the shards into each table in turn.
            progress.start(
                index,
                total,
                format!("undistribute {}", names.join(", ")),
                Some(Watched::default()),
            );
        }
        UndistributeEvent::Done { elapsed, .. } => progress.done(elapsed),
    };
    let preview = colocate_pg::undistribute::undistribute(&mut client, &opts, &mut |e| {
        if let UndistributeEvent::Waiting { holder } = e {
            eprintln!("waiting for the converge lock, held by {holder}")
        }
    })?;
    let report = if a.dry_run {
        preview
    } else if preview.groups.is_empty() {
        // Nothing to convert, but an interrupted run may have left identities to restore: the
        // real run finishes them from the journal and needs no confirmation.
        opts.dry_run = false;
        colocate_pg::undistribute::undistribute(&mut client, &opts, &mut events)?
    } else {
        let n: usize = preview.groups.iter().map(|g| g.tables.len()).sum();
        confirm(
            g,
            &format!(
                "undistribute {} back to local tables",
                colocate_core::words::count(n, "Citus table")
            ),
        )?;
        opts.dry_run = false;
        colocate_pg::undistribute::undistribute(&mut client, &opts, &mut events)?
    };
    progress.finish();
    match a.format {
        Format::Json => render::json("undistribute", &report),
        Format::Human => r::undistribute_human(&report),
    }
    Ok(EXIT_OK)
}
