//! How errors reach the user: `error: …` on one line, then the server's detail and a hint
//! naming what fixes it.

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
    if let Some(h) = hint {
        eprintln!("hint: {h}");
    }
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
