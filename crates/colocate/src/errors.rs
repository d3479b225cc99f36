//! How errors reach the user: `error: …` on one line, then the server's detail and a hint
//! naming what fixes it.

use std::error::Error;

use colocate_core::MigrationError;
use colocate_pg::local::LocalError;
use colocate_pg::PgError;

use crate::config::ConfigError;

pub fn print(err: &anyhow::Error) {
    // The outermost context first, then the cause, on one line.
    let message = err
        .chain()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ");
    eprintln!("error: {message}");
    let (detail, hint) = details(err);
    if let Some(d) = detail {
        eprintln!("detail: {d}");
    }
    if let Some(done) = completed(err) {
        eprintln!("{done}");
    }
    for cause in err.chain() {
        match pg(cause) {
            Some(PgError::Blocked {
                findings,
                journal_open,
            }) => {
                for f in findings {
                    eprintln!("  [{}] {}", f.code, f.message);
                    if let Some(fix) = &f.fix {
                        for line in fix.lines() {
                            eprintln!("      {line}");
                        }
                    }
                }
                if *journal_open > 0 {
                    eprintln!(
                        "note: {journal_open} foreign key(s) dropped by an interrupted run wait in colocate_journal; the next successful apply restores them"
                    );
                }
            }
            Some(PgError::StepFailed { done, .. }) => {
                eprintln!(
                    "note: {} statement(s) of this run completed before the failure",
                    done.len()
                );
            }
            _ => {}
        }
    }
    if let Some(h) = hint {
        eprintln!("hint: {h}");
    }
}

/// What a failed run had already done: those migrations stay as they are.
fn completed(err: &anyhow::Error) -> Option<String> {
    let (direction, completed) = err.chain().find_map(|c| match pg(c) {
        Some(PgError::Failed(f)) => Some((f.direction, &f.completed)),
        Some(PgError::StepFile {
            direction,
            completed,
            ..
        }) => Some((*direction, completed)),
        _ => None,
    })?;
    let verb = if direction == "rollback" {
        "rolled back"
    } else {
        "applied"
    };
    if completed.is_empty() {
        return Some(format!("note: this run {verb} nothing before the failure"));
    }
    Some(format!(
        "note: this run {verb} {} migration(s) before the failure, and they stay {verb}: {}",
        completed.len(),
        completed.join(", ")
    ))
}

/// The database error a cause is, also when it is the boxed source of another (a declarative
/// step's failure holds the engine's error that way).
fn pg<'e>(cause: &'e (dyn Error + 'static)) -> Option<&'e PgError> {
    cause
        .downcast_ref::<PgError>()
        .or_else(|| cause.downcast_ref::<Box<PgError>>().map(|b| b.as_ref()))
}

fn details(err: &anyhow::Error) -> (Option<String>, Option<String>) {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<PgError>() {
            return (e.detail().map(str::to_string), e.hint());
        }
        if let Some(e) = cause.downcast_ref::<MigrationError>() {
            return (None, e.hint().map(str::to_string));
        }
        if let Some(e) = cause.downcast_ref::<ConfigError>() {
            return (None, e.hint.clone());
        }
        if let Some(e) = cause.downcast_ref::<LocalError>() {
            return (None, e.hint().map(str::to_string));
        }
    }
    (None, None)
}
