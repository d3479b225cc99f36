//! How errors reach the user: `error: …` on one line, then the server's detail and a hint
//! naming what fixes it. Printed through anstream, which colours the prefixes only where
//! stderr takes colour (see `style`).

use anstream::eprintln;
use colocate_core::words::{count, verb};

use std::borrow::Cow;

use colocate_core::MigrationError;
use colocate_pg::{Direction, Done, ErrorKind, PgError};

use crate::config::ConfigError;
use crate::style;

pub fn print(err: &anyhow::Error) {
    // The outermost context first, then the cause, on one line.
    let message = err
        .chain()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ");
    eprintln!("{} {message}", style::error());
    let (detail, hint) = details(err);
    if let Some(d) = detail {
        eprintln!("detail: {d}");
    }
    if let Some(done) = completed(err) {
        eprintln!("{} {done}", style::note());
    }
    for e in err.chain().filter_map(|c| c.downcast_ref::<PgError>()) {
        if let ErrorKind::Blocked {
            findings,
            journal_open,
        } = e.kind()
        {
            for f in findings {
                eprintln!("  [{}] {}", style::code(&f.code), f.message);
                if let Some(fix) = &f.fix {
                    for line in fix.lines() {
                        eprintln!("      {line}");
                    }
                }
            }
            if *journal_open > 0 {
                eprintln!(
                    "{} {} dropped by an interrupted run {} in colocate_journal; the next successful apply restores them",
                    style::note(),
                    count(*journal_open, "foreign key"),
                    verb(*journal_open, "waits", "wait")
                );
            }
        }
        if let Some(keys) = e.keys() {
            if !keys.restored.is_empty() {
                eprintln!(
                    "{} put back {} this run had dropped: {}",
                    style::note(),
                    count(keys.restored.len(), "foreign key"),
                    keys.restored.join(", ")
                );
            }
            if !keys.still_down.is_empty() {
                eprintln!(
                    "{} {} NOT enforced until the next successful apply restores them from colocate_journal: {}",
                    style::note(),
                    format!(
                        "{} {}",
                        count(keys.still_down.len(), "foreign key"),
                        verb(keys.still_down.len(), "is", "are")
                    ),
                    keys.still_down.join(", ")
                );
            }
        }
        if let Some(Done::Statements(done)) = e.done() {
            eprintln!(
                "{} {} of this run completed before the failure",
                style::note(),
                count(done.len(), "statement")
            );
        }
    }
    if let Some(h) = hint {
        eprintln!("{} {h}", style::hint());
    }
}

/// What a failed run had already done (a note): those migrations stay as they are.
fn completed(err: &anyhow::Error) -> Option<String> {
    let (direction, completed) =
        err.chain()
            .find_map(|c| match c.downcast_ref::<PgError>()?.done()? {
                Done::Migrations { direction, files } => Some((*direction, files)),
                Done::Statements(_) => None,
            })?;
    let verb = match direction {
        Direction::Rollback => "rolled back",
        Direction::Migrate => "applied",
    };
    if completed.is_empty() {
        return Some(format!("this run {verb} nothing before the failure"));
    }
    Some(format!(
        "this run {verb} {} before the failure, and {} {verb}: {}",
        count(completed.len(), "migration"),
        if completed.len() == 1 {
            "it stays"
        } else {
            "they stay"
        },
        completed.join(", ")
    ))
}

fn details(err: &anyhow::Error) -> (Option<String>, Option<String>) {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<PgError>() {
            return (
                e.detail().map(str::to_string),
                e.hint().map(Cow::into_owned),
            );
        }
        if let Some(e) = cause.downcast_ref::<MigrationError>() {
            return (None, e.hint().map(Cow::into_owned));
        }
        if let Some(e) = cause.downcast_ref::<ConfigError>() {
            return (None, e.hint.clone());
        }
    }
    (None, None)
}
