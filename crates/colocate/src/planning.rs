//! `plan` and `check`: introspect the live schema, plan it (pure), render the result.

use anyhow::Result;
use colocate_core::plan::{plan as make_plan, Plan};
use colocate_pg::introspect::introspect;

use colocate_core::schema::QualifiedName;
use colocate_pg::apply::{ApplyEvent, ApplyOptions};
use colocate_pg::undistribute::{UndistributeEvent, UndistributeOptions};
use colocate_pg::Target;

use crate::cli::{
    ApplyArgs, CheckArgs, CheckFormat, Format, Global, PlanArgs, PlanFormat, UndistributeArgs,
};
use crate::config;
use crate::migrate::connect;
use crate::plan_render as r;
use crate::{EXIT_FINDINGS, EXIT_OK};

/// Read the configuration, introspect the database and plan it.
pub fn load_plan(g: &Global, application: &str) -> Result<Plan> {
    let config = config::load_from(g.config.as_deref())?;
    let dist = &config.distribution;
    let mut client = connect(g, application)?;
    let schema = introspect(&mut client, &dist.schema_filter())?;
    Ok(make_plan(&schema, dist))
}

pub fn plan(g: &Global, a: &PlanArgs) -> Result<u8> {
    let p = load_plan(g, "colocate plan")?;
    match a.format {
        PlanFormat::Human => r::human(&p),
        PlanFormat::Json => crate::render::json("plan", &p),
        PlanFormat::Sql => print!("{}", r::sql(&p)),
        PlanFormat::Dot => print!("{}", r::dot(&p)),
        PlanFormat::Mermaid => print!("{}", r::mermaid(&p)),
    }
    Ok(if p.has_problems() {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}

pub fn apply(g: &Global, a: &ApplyArgs) -> Result<u8> {
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
    let show = crate::show_progress(g.verbose);
    let json = a.format == Format::Json;
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
                "version": crate::render::JSON_VERSION,
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
            m.insert("version".into(), crate::render::JSON_VERSION.into());
            m.insert("event".into(), "summary".into());
        }
        println!("{v}");
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
    let show = crate::show_progress(g.verbose);
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
        crate::migrate::confirm(
            g,
            &format!("undistribute {n} Citus table(s) back to local tables"),
        )?;
        opts.dry_run = false;
        colocate_pg::undistribute::undistribute(&mut client, &opts, &mut events)?
    };
    match a.format {
        Format::Json => crate::render::json("undistribute", &report),
        Format::Human => r::undistribute_human(&report),
    }
    Ok(EXIT_OK)
}

pub fn check(g: &Global, a: &CheckArgs) -> Result<u8> {
    let p = load_plan(g, "colocate check")?;
    let report = r::CheckReport::new(&p);
    match a.format {
        CheckFormat::Human => r::check_human(&report),
        CheckFormat::Json => crate::render::json("check", &report),
        CheckFormat::Github => r::check_github(&report, a.require_citus),
    }
    if !report.citus_installed {
        return Ok(if a.require_citus {
            EXIT_FINDINGS
        } else {
            EXIT_OK
        });
    }
    Ok(if report.drift.is_empty() {
        EXIT_OK
    } else {
        EXIT_FINDINGS
    })
}
