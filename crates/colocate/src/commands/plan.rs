//! `plan` and `check`: introspect the live schema, plan it (pure), render the result.

use anyhow::Result;
use colocate_core::plan::{plan as make_plan, Plan};
use colocate_pg::introspect::introspect;

use crate::cli::{CheckArgs, CheckFormat, Global, PlanArgs, PlanFormat};
use crate::config::{self, Config};
use crate::context::{connect, EXIT_FINDINGS, EXIT_OK};
use crate::render::{self, plan as r};

/// Read the configuration (saying which on stderr), introspect the database and plan it.
pub fn load_plan(g: &Global, application: &str) -> Result<(Config, Plan)> {
    let config = config::load_from(g.config.as_deref())?;
    eprintln!("{}", config.describe());
    let dist = &config.distribution;
    let mut client = connect(g, application)?;
    let schema = introspect(&mut client, &dist.schema_filter())?;
    let p = make_plan(&schema, dist);
    Ok((config, p))
}

pub fn plan(g: &Global, a: &PlanArgs) -> Result<u8> {
    let (config, p) = load_plan(g, "colocate plan")?;
    match a.format {
        PlanFormat::Human => r::human(&p),
        PlanFormat::Json => render::json_with("plan", &p, &[("config", config.source_json())]),
        PlanFormat::Sql => print!("{}", r::sql(&p)),
        PlanFormat::Dot => print!("{}", r::dot(&p)),
        PlanFormat::Mermaid => print!("{}", r::mermaid(&p)),
        PlanFormat::Markdown => print!("{}", render::markdown::markdown(&p)),
    }
    Ok(if p.has_problems() {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}

pub fn check(g: &Global, a: &CheckArgs) -> Result<u8> {
    let (config, p) = load_plan(g, "colocate check")?;
    let report = r::CheckReport::new(&p);
    match a.format {
        CheckFormat::Human => r::check_human(&report),
        CheckFormat::Json => {
            render::json_with("check", &report, &[("config", config.source_json())])
        }
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
