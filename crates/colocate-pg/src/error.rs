//! Errors from the database side, keeping the server's SQLSTATE, detail and hint.

use std::fmt;
use std::time::Duration;

use colocate_core::history::Refusal;
use serde::Serialize;

/// An error the server raised, with everything it said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerError {
    pub sqlstate: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// 1-based character position in the statement sent, when the server gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
}

impl ServerError {
    pub fn from_postgres(e: &postgres::Error) -> Option<ServerError> {
        let db = e.as_db_error()?;
        Some(ServerError {
            sqlstate: db.code().code().to_string(),
            message: db.message().to_string(),
            detail: db.detail().map(str::to_string),
            hint: db.hint().map(str::to_string),
            position: match db.position() {
                Some(postgres::error::ErrorPosition::Original(p)) => Some(*p),
                _ => None,
            },
        })
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (SQLSTATE {})", self.message, self.sqlstate)
    }
}

/// What the server or the connection said when something failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Cause {
    Server(ServerError),
    Client { message: String },
}

impl Cause {
    pub fn from_postgres(e: &postgres::Error) -> Cause {
        match ServerError::from_postgres(e) {
            Some(s) => Cause::Server(s),
            None => Cause::Client {
                message: e.to_string(),
            },
        }
    }

    /// A failure on this side of the connection, said in words.
    pub fn client(message: impl Into<String>) -> Cause {
        Cause::Client {
            message: message.into(),
        }
    }

    pub fn server(&self) -> Option<&ServerError> {
        match self {
            Cause::Server(s) => Some(s),
            Cause::Client { .. } => None,
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Server(s) => s.fmt(f),
            Cause::Client { message } => f.write_str(message),
        }
    }
}

/// Who holds the advisory lock, as `pg_stat_activity` tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockHolder {
    pub pid: i32,
    pub application: String,
    pub user: String,
    pub client: String,
    pub since: String,
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid {} (application '{}', user {}, from {}, connected since {})",
            self.pid, self.application, self.user, self.client, self.since
        )
    }
}

/// A migration (or its down part) that failed, with where and what had run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigrationFailure {
    pub file: String,
    pub version: String,
    pub direction: &'static str,
    /// 1-based line in the file, when it could be told.
    pub line: Option<usize>,
    /// (1-based statement number, statements in the section), outside a transaction only.
    pub statement: Option<(usize, usize)>,
    pub in_transaction: bool,
    pub cause: Cause,
    /// Migrations this run completed before the failure (they stay applied / reverted).
    pub completed: Vec<String>,
}

impl fmt::Display for MigrationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {} failed", self.direction)?;
        match self.statement {
            Some((i, n)) => write!(f, " at statement {i} of {n} (outside a transaction)")?,
            None => write!(f, " (rolled back, nothing kept)")?,
        }
        write!(f, ": {}", self.cause)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("invalid database URL: {0}")]
    BadUrl(String),
    #[error("cannot connect to {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("{context}: {cause}")]
    Query { context: String, cause: Box<Cause> },
    #[error("another run holds the {lock}: {holder}; gave up after {}s", waited.as_secs_f64())]
    LockTimeout {
        /// Which lock, e.g. "migration lock on colocate_migrations".
        lock: String,
        holder: String,
        waited: Duration,
    },
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("{0}")]
    Failed(Box<MigrationFailure>),
    #[error("history table {table} has a row for version {version} in unknown state '{state}'")]
    BadHistory {
        table: String,
        version: String,
        state: String,
    },
    #[error("journal table {table} has a row {id} in unknown state '{state}'")]
    BadJournal {
        table: String,
        id: i64,
        state: String,
    },
    #[error("table {0} does not exist")]
    NoSuchTable(String),
    #[error(
        "apply stopped before changing anything: {} blocker(s) or conflict(s) in the plan ({})",
        findings.len(),
        summarize(findings)
    )]
    Blocked {
        findings: Vec<colocate_core::plan::Finding>,
        /// Foreign keys an interrupted run dropped, still waiting in the journal.
        journal_open: usize,
    },
    #[error("step {index} of {total} failed: {cause}\n  statement: {sql}")]
    StepFailed {
        index: usize,
        total: usize,
        sql: String,
        cause: Box<Cause>,
        /// Statements this run completed before the failure.
        done: Vec<String>,
    },
    #[error("verification failed: {}", problems.join("; "))]
    Verify { problems: Vec<String> },
    #[error(transparent)]
    Undistribute(#[from] crate::undistribute::UndistributeError),
    #[error("column {column} does not exist in {table}")]
    NoSuchColumn { table: String, column: String },
    /// A declarative step (`.toml` migration) that failed; `source` says why.
    #[error("{file}: {direction} failed")]
    StepFile {
        file: String,
        version: String,
        /// `migration` or `rollback`.
        direction: &'static str,
        /// Migrations this run completed before the failure (they stay applied / reverted).
        completed: Vec<String>,
        #[source]
        source: Box<PgError>,
    },
    #[error(transparent)]
    Declarative(#[from] crate::declarative::DeclarativeError),
}

fn summarize(findings: &[colocate_core::plan::Finding]) -> String {
    let mut tables: Vec<String> = findings.iter().map(|f| f.table.to_string()).collect();
    tables.dedup();
    let shown: Vec<&str> = tables.iter().take(5).map(String::as_str).collect();
    let more = tables.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

impl PgError {
    pub fn query(context: impl Into<String>, e: &postgres::Error) -> PgError {
        PgError::Query {
            context: context.into(),
            cause: Box::new(Cause::from_postgres(e)),
        }
    }

    /// The server's detail, when there is one.
    pub fn detail(&self) -> Option<&str> {
        self.server()?.detail.as_deref()
    }

    /// A hint for the user: the server's own, else ours.
    pub fn hint(&self) -> Option<String> {
        if let Some(h) = self.server().and_then(|s| s.hint.clone()) {
            return Some(h);
        }
        match self {
            PgError::BadUrl(_) => Some(
                "write it as postgres://user:password@host:port/database (percent-encode special characters) or as key=value pairs"
                    .into(),
            ),
            PgError::Connect { .. } => Some(
                "check --database-url / DATABASE_URL (or the PG* variables) and that the server is running"
                    .into(),
            ),
            PgError::LockTimeout { .. } => Some(
                "wait for the other run to finish, or raise --lock-timeout".into(),
            ),
            PgError::Refused(r) => r.hint().map(str::to_string),
            PgError::Blocked { .. } => Some(
                "fix them (`colocate plan` shows each with its SQL), or pass --skip-blocked to converge the other tables"
                    .into(),
            ),
            PgError::StepFile { source, .. } => match source.as_ref() {
                PgError::Blocked { .. } => Some(
                    "fix them (`colocate plan` shows each with its SQL) or take those tables out of the step file, then run migrate again"
                        .into(),
                ),
                PgError::StepFailed { .. } => Some(
                    "fix the cause and run migrate again: the step resumes from what the database now is"
                        .into(),
                ),
                other => other.hint(),
            },
            PgError::Declarative(e) => Some(e.hint().into()),
            PgError::Undistribute(crate::undistribute::UndistributeError::Connected { .. }) => Some(
                "name those tables too, or pass --cascade to undistribute the whole group".into(),
            ),
            PgError::StepFailed { .. } => Some(
                "fix the cause and run apply again: it resumes from what the database now is, and restores any dropped foreign key from the journal"
                    .into(),
            ),
            PgError::Verify { problems } if problems.iter().any(|p| p.contains(" rows before apply ")) => Some(
                "row counts are compared before and after the run: writes by the application in between change them too; run apply while nothing writes, or with --online for large tables (their counts are not compared)"
                    .into(),
            ),
            PgError::Failed(f) => match f.cause.server() {
                Some(s) if s.sqlstate == "25001" => Some(
                    "this statement cannot run in a transaction block: mark the section `-- migrate:up transaction:false`"
                        .into(),
                ),
                _ if f.statement.is_some() => Some(
                    "fix the failing statement and run again: the statements before it are recorded and will not run twice"
                        .into(),
                ),
                _ => None,
            },
            _ => None,
        }
    }

    fn server(&self) -> Option<&ServerError> {
        match self {
            PgError::Query { cause, .. } => cause.server(),
            PgError::StepFailed { cause, .. } => cause.server(),
            PgError::Failed(f) => f.cause.server(),
            PgError::StepFile { source, .. } => source.server(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_row_counts_get_a_hint_about_concurrent_writes_and_lost_keys_do_not() {
        let counts = PgError::Verify {
            problems: vec!["public.events had 10 rows before apply and has 12".into()],
        };
        assert!(counts.hint().unwrap().contains("--online"));
        let keys = PgError::Verify {
            problems: vec!["foreign key k on public.t is missing after apply".into()],
        };
        assert_eq!(keys.hint(), None);
    }
}
