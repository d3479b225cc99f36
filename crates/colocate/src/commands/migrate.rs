//! `migrate`, `rollback`, `status`, `new` and `baseline`: load the configuration and the merged
//! migration set (bad input fails here, before any connection), then hand over to the runner.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use colocate_core::history::RollbackScope;
use colocate_core::{parse_file_name, MigrationId, MigrationSet};
use colocate_pg::baseline::BaselineSource;
use colocate_pg::copy_progress::Watched;
use colocate_pg::{Event, HistoryTable, MigrateOptions, Runner, Target};

use crate::cli::{
    BaselineArgs, Format, Global, MigrateArgs, NewArgs, RollbackArgs, RollbackTo, StatusArgs,
};
use crate::config::{self, Config, ConfigError};
use crate::context::{confirm, connect, EXIT_FINDINGS, EXIT_OK};
use crate::progress::Progress;
use crate::render::{self, history as r};

/// The configuration and the merged migration set.
pub fn load(g: &Global) -> Result<(Config, MigrationSet)> {
    load_with(g, MigrationSet::load_labeled)
}

type Loader = fn(&[(PathBuf, String)]) -> Result<MigrationSet, colocate_core::MigrationError>;

fn load_with(g: &Global, loader: Loader) -> Result<(Config, MigrationSet)> {
    let config = config::load_from(g.config.as_deref())?;
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    let dirs = config.labeled_dirs(&g.dirs, &cwd)?;
    let set = loader(&dirs)?;
    Ok((config, set))
}

/// The application names the runs connect with (the progress watch finds their sessions by
/// them).
const MIGRATE: &str = "colocate migrate";
const ROLLBACK: &str = "colocate rollback";

/// The runner's events, shown by `progress`. Any migration may copy rows (a `COPY`, a Citus
/// conversion): each one, and each statement of a declarative step, is watched for copies.
pub fn on_event(progress: &mut Progress) -> impl FnMut(Event<'_>) + '_ {
    move |e| match e {
        Event::Waiting { lock, holder } => {
            progress.say(&format!("waiting for the {lock}, held by {holder}"))
        }
        Event::Progress { message, .. } => progress.detail(message, Some(Watched::default())),
        Event::Start {
            migration,
            index,
            total,
            resume_at,
        } => {
            let mut what = migration.file_name();
            if resume_at > 0 {
                what.push_str(&format!(" (resuming at statement {})", resume_at + 1));
            }
            progress.start(index, total, what, Some(Watched::default()));
        }
        Event::Done { duration, .. } => progress.done(duration),
    }
}

pub fn migrate(g: &Global, a: &MigrateArgs) -> Result<u8> {
    let (config, set) = load(g)?;
    let target = Target::new(g.database_url.as_deref())?;
    let mut client = target.connect(MIGRATE)?;
    let mut runner = Runner::new(
        &mut client,
        HistoryTable::new(config.history_table()),
        a.lock.lock_timeout,
    );
    let opts = MigrateOptions {
        target: a.target,
        allow_out_of_order: a.allow_out_of_order,
        dry_run: a.dry_run,
    };
    let mut progress = Progress::new(g, (!a.dry_run).then_some((&target, MIGRATE)));
    let report = runner.migrate(&set, &opts, &mut on_event(&mut progress))?;
    progress.finish();
    r::changed_warning(&report.changed);
    match a.format {
        Format::Json => render::json("migrate", &report),
        Format::Human => r::migrate(&report),
    }
    Ok(EXIT_OK)
}

pub fn rollback(g: &Global, a: &RollbackArgs) -> Result<u8> {
    let (config, set) = load(g)?;
    let scope = match (a.steps, a.to) {
        (Some(n), _) => RollbackScope::Steps(n),
        (None, Some(RollbackTo::Zero)) => RollbackScope::To(None),
        (None, Some(RollbackTo::Version(v))) => RollbackScope::To(Some(v)),
        (None, None) => RollbackScope::LastBatch,
    };
    let target = Target::new(g.database_url.as_deref())?;
    let mut client = target.connect(ROLLBACK)?;
    let mut runner = Runner::new(
        &mut client,
        HistoryTable::new(config.history_table()),
        a.lock.lock_timeout,
    );
    let mut progress = Progress::new(g, (!a.dry_run).then_some((&target, ROLLBACK)));
    let preview = runner.rollback(&set, scope, true, &mut on_event(&mut progress))?;
    if a.dry_run || preview.reverted.is_empty() {
        progress.finish();
        match a.format {
            Format::Json => render::json("rollback", &preview),
            Format::Human => r::rollback(&preview),
        }
        return Ok(EXIT_OK);
    }
    let names: Vec<String> = preview
        .reverted
        .iter()
        .map(|r| format!("{}_{}", r.version, r.name))
        .collect();
    confirm(
        g,
        &format!(
            "roll back {}: {}",
            colocate_core::words::count(names.len(), "migration"),
            names.join(", ")
        ),
    )?;
    let report = runner.rollback(&set, scope, false, &mut on_event(&mut progress))?;
    progress.finish();
    match a.format {
        Format::Json => render::json("rollback", &report),
        Format::Human => r::rollback(&report),
    }
    Ok(EXIT_OK)
}

pub fn status(g: &Global, a: &StatusArgs) -> Result<u8> {
    // A file just made by `colocate new` is listed as empty, not an error.
    let (config, set) = load_with(g, MigrationSet::load_for_status)?;
    let mut client = connect(g, "colocate status")?;
    let mut runner = Runner::new(
        &mut client,
        HistoryTable::new(config.history_table()),
        Default::default(),
    );
    let mut report = runner.status(&set)?;
    // Rows recorded by older versions hold the absolute path of the machine that ran them:
    // shown relative where they are under this run's base.
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    let base = config.label_base(&g.dirs, &cwd);
    for e in &mut report.entries {
        if Path::new(&e.dir).is_absolute() {
            e.dir = config::relative_label(Path::new(&e.dir), &base);
        }
    }
    match a.format {
        Format::Json => render::json("status", &report),
        Format::Human => r::status(&report),
    }
    Ok(if a.check && report.needs_attention(a.allow_missing) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}

pub fn baseline(g: &Global, a: &BaselineArgs) -> Result<u8> {
    let (config, set) = load(g)?;
    let source = match (&a.from_table, a.to) {
        (Some(t), _) => BaselineSource::Table {
            table: t.clone(),
            column: a.column.clone(),
        },
        (None, Some(v)) => BaselineSource::UpTo(v),
        (None, None) => unreachable!("clap requires --from-table or --to"),
    };
    let mut client = connect(g, "colocate baseline")?;
    let mut runner = Runner::new(
        &mut client,
        HistoryTable::new(config.history_table()),
        a.lock.lock_timeout,
    );
    let mut progress = Progress::new(g, None);
    let report = runner.baseline(&set, &source, &mut on_event(&mut progress))?;
    progress.finish();
    match a.format {
        Format::Json => render::json("baseline", &report),
        Format::Human => r::baseline(&report),
    }
    Ok(EXIT_OK)
}

pub fn new(g: &Global, a: &NewArgs) -> Result<u8> {
    let config = config::load_from(g.config.as_deref())?;
    let dir = match &a.in_dir {
        Some(d) => d.clone(),
        None => {
            let dirs = config.dirs(&g.dirs)?;
            if dirs.len() > 1 {
                bail!(ConfigError {
                    message: format!(
                        "{} migration directories are configured; which one?",
                        dirs.len()
                    ),
                    hint: Some(format!(
                        "pass --in with one of: {}",
                        dirs.iter()
                            .map(|d| d.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                });
            }
            dirs[0].clone()
        }
    };
    let name = snake_case(&a.name);
    if name.is_empty() {
        bail!(ConfigError {
            message: format!("'{}' has no letters or digits to name a migration", a.name),
            hint: Some("e.g. colocate new add_invoice_due_date".into()),
        });
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    // Stay after every existing version, so the new file sorts last even if clocks disagree.
    let mut existing: Vec<PathBuf> = config.dirs(&g.dirs).unwrap_or_default();
    existing.push(dir.clone());
    existing.retain(|d| d.is_dir());
    // File names only: a freshly created, still empty file must not stop the next `new`.
    let newest = existing
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| parse_file_name(&e.file_name().to_string_lossy()).ok())
        .map(|(id, _)| id)
        .max();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut id = MigrationId::from_unix_seconds(now);
    if let Some(n) = newest.filter(|n| *n >= id) {
        id = n.next_second();
    }
    let path = dir.join(format!("{id}_{name}.sql"));
    let opt = if a.no_transaction {
        " transaction:false"
    } else {
        ""
    };
    let body = format!("-- migrate:up{opt}\n\n\n-- migrate:down{opt}\n\n");
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut f| f.write_all(body.as_bytes()))
        .with_context(|| format!("cannot create {}", path.display()))?;
    println!("{}", path.display());
    eprintln!(
        "write its up part (and a down part, so it can be rolled back) before running migrate"
    );
    Ok(EXIT_OK)
}

fn snake_case(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn names_become_snake_case() {
        assert_eq!(snake_case("Add invoice due-date!"), "add_invoice_due_date");
        assert_eq!(snake_case("  __x__ "), "x");
        assert_eq!(snake_case("!!"), "");
    }
}
