//! `apply` and `undistribute`: converge the database to the plan, or take Citus tables back to
//! local ones, with progress on stderr and the report on stdout.

use anyhow::Result;
use colocate_core::schema::QualifiedName;
use colocate_pg::apply::{ApplyEvent, ApplyOptions};
use colocate_pg::undistribute::{UndistributeEvent, UndistributeOptions};
use colocate_pg::Target;

use crate::cli::{ApplyArgs, ApplyFormat, Format, Global, UndistributeArgs};
use crate::config;
use crate::config::ConfigError;
use crate::context::{confirm, connect, show_progress, EXIT_OK};
use crate::render::{self, plan as r};

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
    let mut client = target.connect("colocate apply")?;
    let opts = ApplyOptions {
        dry_run: a.dry_run,
        online: a.online,
        online_threshold: a.online_threshold,
        skip_blocked: a.skip_blocked,
        lock_timeout: a.lock.lock_timeout,
        more_connections: Some(target),
        ..ApplyOptions::default()
    };
    let show = show_progress(g.verbose);
    let json = a.format == ApplyFormat::Json;
    let started = std::time::Instant::now();
    let mut on_event = |e: ApplyEvent<'_>| match e {
        ApplyEvent::Waiting { holder } => {
            eprintln!("waiting for the converge lock, held by {holder}")
        }
        ApplyEvent::Start {
            index,
            total,
            step,
            online,
        } if show && !json => {
            let what = step.table().map(|t| t.to_string()).unwrap_or_default();
            let mode = if online { " (online)" } else { "" };
            eprintln!(
                "[{index}/{total}] {} {what}{mode}  ({:.1}s elapsed)",
                step.kind().label(),
                started.elapsed().as_secs_f64()
            );
        }
        ApplyEvent::Done {
            index,
            total,
            step,
            elapsed,
        } if json => {
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
            println!("{line}");
        }
        ApplyEvent::Repair { what } => eprintln!("repair: {what}"),
        _ => {}
    };
    let report =
        colocate_pg::apply::apply(&mut client, &config.distribution, &opts, &mut on_event)?;
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
    let mut client = connect(g, "colocate undistribute")?;
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
    let show = show_progress(g.verbose);
    let mut events = |e: UndistributeEvent<'_>| match e {
        UndistributeEvent::Waiting { holder } => {
            eprintln!("waiting for the converge lock, held by {holder}")
        }
        UndistributeEvent::Start {
            index,
            total,
            tables,
        } if show => {
            let names: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
            eprintln!("[{index}/{total}] undistribute {}", names.join(", "));
        }
        _ => {}
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
            &format!("undistribute {n} Citus table(s) back to local tables"),
        )?;
        opts.dry_run = false;
        colocate_pg::undistribute::undistribute(&mut client, &opts, &mut events)?
    };
    match a.format {
        Format::Json => render::json("undistribute", &report),
        Format::Human => r::undistribute_human(&report),
    }
    Ok(EXIT_OK)
}
