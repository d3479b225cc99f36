//! The one error of colocate-pg, [`PgError`]: what failed ([`ErrorKind`], keeping the
//! server's SQLSTATE, detail and hint) and, when a run had already done something, what it had
//! done ([`Done`]), in one place (refinery's `Error { kind, report }`). Every module of the
//! crate returns it; this file imports none of them.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use colocate_core::history::Refusal;
use colocate_core::plan::Finding;
use colocate_core::schema::QualifiedName;
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

/// Which way a migration run goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Direction {
    /// `migrate`: up parts.
    #[serde(rename = "migration")]
    Migrate,
    /// `rollback`: down parts.
    #[serde(rename = "rollback")]
    Rollback,
}

impl Direction {
    /// How messages name a run of this direction (`migration failed`, `rollback failed`).
    pub fn label(self) -> &'static str {
        match self {
            Direction::Migrate => "migration",
            Direction::Rollback => "rollback",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A migration (or its down part) that failed, with where it failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigrationFailure {
    pub file: String,
    pub version: String,
    pub direction: Direction,
    /// 1-based line in the file, when it could be told.
    pub line: Option<usize>,
    /// (1-based statement number, statements in the section), outside a transaction only.
    pub statement: Option<(usize, usize)>,
    pub in_transaction: bool,
    pub cause: Cause,
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

/// What a failed run had already done when it stopped; that stays done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// Migrations the run applied (or rolled back) before the failure.
    Migrations {
        direction: Direction,
        files: Vec<String>,
    },
    /// Statements of an `apply` or `undistribute` run completed before the failure.
    Statements(Vec<String>),
}

/// Everything that can fail in colocate-pg: the failure ([`ErrorKind`]) and what the run had
/// already done ([`Done`]), if it had started.
#[derive(Debug)]
pub struct PgError {
    kind: Box<ErrorKind>,
    done: Option<Done>,
    keys: Option<KeysAfterFailure>,
}

/// The foreign keys a failed run had taken down: those it put back before giving up, and those
/// still down (waiting in the journal for the next run), each described. Every error of a run
/// that dropped keys says which.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeysAfterFailure {
    pub restored: Vec<String>,
    pub still_down: Vec<String>,
}

/// Why a connection failed, as far as it tells the user what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectFailure {
    /// No server answered at the address (refused, unreachable, timed out).
    NoServer { defaults: bool },
    /// The server has no database of that name.
    NoDatabase { name: String },
    /// The server has no role of that name.
    NoRole { name: String },
    /// The server refused the password, or asked for one none was given for.
    Password { missing: bool },
    /// Anything else the server or the network said.
    Other { defaults: bool },
}

impl ConnectFailure {
    /// Said after the address when nothing named one: where it came from.
    fn tried(&self) -> &'static str {
        match self {
            ConnectFailure::NoServer { defaults: true } | ConnectFailure::Other { defaults: true } => {
                " (neither --database-url nor DATABASE_URL is set: tried libpq's defaults and the PG* variables)"
            }
            _ => "",
        }
    }

    fn hint(&self) -> Cow<'static, str> {
        match self {
            ConnectFailure::NoServer { defaults: true } | ConnectFailure::Other { defaults: true } => {
                "set DATABASE_URL (or pass --database-url) to your server, e.g. postgres://user@host:5432/database".into()
            }
            ConnectFailure::NoServer { defaults: false } => {
                "check the host and port in --database-url / DATABASE_URL (or PGHOST, PGPORT) and that the server is running and accepts TCP connections there".into()
            }
            ConnectFailure::NoDatabase { .. } => {
                "create it (createdb, or CREATE DATABASE) or name an existing database in --database-url / DATABASE_URL (or PGDATABASE)".into()
            }
            ConnectFailure::NoRole { .. } => {
                "connect as a role that exists: the user in --database-url / DATABASE_URL, or PGUSER".into()
            }
            ConnectFailure::Password { missing: true } => {
                "the server asks for a password: give it in --database-url / DATABASE_URL (percent-encoded) or in PGPASSWORD".into()
            }
            ConnectFailure::Password { missing: false } => {
                "check the user and password in --database-url / DATABASE_URL (or PGUSER, PGPASSWORD)".into()
            }
            ConnectFailure::Other { defaults: false } => {
                "check --database-url / DATABASE_URL (or the PG* variables) and that the server is running".into()
            }
        }
    }
}

/// What failed. Each variant names its subject (file, table, statement, setting).
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    #[error("invalid database URL: {0}")]
    BadUrl(String),
    #[error("cannot connect to {target}{}: {reason}", why.tried())]
    Connect {
        target: String,
        reason: String,
        why: ConnectFailure,
    },
    #[error("{context}: {cause}")]
    Query { context: String, cause: Cause },
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
    Failed(MigrationFailure),
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
        "apply stopped before changing anything: {} in the plan ({})",
        problems(findings),
        summarize(findings)
    )]
    Blocked {
        findings: Vec<Finding>,
        /// Foreign keys an interrupted run dropped, still waiting in the journal.
        journal_open: usize,
    },
    /// `apply --online` on a server whose settings make Citus refuse the concurrent form.
    #[error(
        "apply --online stopped before changing anything: create_distributed_table_concurrently needs {setting} to be {needs}, and it is '{value}'"
    )]
    OnlineRefused {
        setting: &'static str,
        value: String,
        needs: &'static str,
    },
    #[error("step {index} of {total} failed: {cause}\n  statement: {sql}")]
    StepFailed {
        index: usize,
        total: usize,
        sql: String,
        cause: Cause,
    },
    /// Putting back a journaled foreign key failed: it stays in the journal, not enforced.
    #[error("restoring foreign key {key} failed: {cause}\n  statement: {sql}")]
    RestoreFailed {
        key: String,
        sql: String,
        cause: Cause,
    },
    #[error("verification failed: {}", problems.iter().chain(unenforced).cloned().collect::<Vec<_>>().join("; "))]
    Verify {
        problems: Vec<String>,
        /// Foreign keys from a table that stays plain into a table the run distributed
        /// ([`colocate_core::plan::BrokenKey::describe`]).
        unenforced: Vec<String>,
    },
    #[error("column {column} does not exist in {table}")]
    NoSuchColumn { table: String, column: String },
    /// A declarative step (`.toml` migration) that failed; `source` says why.
    #[error("{file}: {direction} failed")]
    StepFile {
        file: String,
        version: String,
        direction: Direction,
        #[source]
        source: PgError,
    },
    /// A step of `undistribute` that failed (`source`), so the hint names the command that
    /// finishes the job.
    #[error("undistribute failed")]
    UndistributeFailed {
        #[source]
        source: PgError,
    },
    /// `undistribute` of a table that is not in Citus.
    #[error("{0} is not a Citus table")]
    NotCitus(QualifiedName),
    /// `undistribute` of a table joined by foreign keys to Citus tables not named.
    #[error("{table} is joined by foreign keys to {} not named: {}", colocate_core::words::count(others.len(), "Citus table"), first_few(others, 8))]
    Connected {
        table: QualifiedName,
        others: Vec<QualifiedName>,
    },
    /// A declarative step colocating with a root that is not distributed.
    #[error("{root} is not a distributed table yet, so nothing can be colocated with it")]
    RootNotDistributed { root: QualifiedName },
    /// A declarative step's down part dropping the extension while Citus tables remain.
    #[error(
        "cannot drop extension citus: {} {} ({})",
        colocate_core::words::count(tables.len(), "Citus table"),
        colocate_core::words::verb(tables.len(), "remains", "remain"),
        first_few(tables, 5)
    )]
    CitusInUse { tables: Vec<String> },
    /// `demo`: no server binaries to start a local PostgreSQL with.
    #[error("no PostgreSQL server binaries found (looked in {0})")]
    NoServer(String),
    /// `demo`: a step of starting the local server (initdb, pg_ctl, ...).
    #[error("{step} failed: {output}")]
    LocalServer { step: String, output: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The first `n` items, then how many more.
fn first_few<T: fmt::Display>(items: &[T], n: usize) -> String {
    let shown: Vec<String> = items.iter().take(n).map(|t| t.to_string()).collect();
    match items.len().saturating_sub(shown.len()) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// `3 blockers and 1 conflict`: the plan's findings that stop a run, counted by kind.
fn problems(findings: &[Finding]) -> String {
    use colocate_core::plan::Severity;
    use colocate_core::words::count;
    let blockers = findings
        .iter()
        .filter(|f| f.severity == Severity::Blocker)
        .count();
    let conflicts = findings.len() - blockers;
    match (blockers, conflicts) {
        (b, 0) => count(b, "blocker"),
        (0, c) => count(c, "conflict"),
        (b, c) => format!("{} and {}", count(b, "blocker"), count(c, "conflict")),
    }
}

fn summarize(findings: &[Finding]) -> String {
    let mut tables: Vec<String> = findings.iter().map(|f| f.table.to_string()).collect();
    tables.dedup();
    first_few(&tables, 5)
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for PgError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.kind.source()
    }
}

impl From<ErrorKind> for PgError {
    fn from(kind: ErrorKind) -> PgError {
        PgError {
            kind: Box::new(kind),
            done: None,
            keys: None,
        }
    }
}

impl From<Refusal> for PgError {
    fn from(r: Refusal) -> PgError {
        ErrorKind::from(r).into()
    }
}

impl From<std::io::Error> for PgError {
    fn from(e: std::io::Error) -> PgError {
        ErrorKind::from(e).into()
    }
}

impl PgError {
    pub fn query(context: impl Into<String>, e: &postgres::Error) -> PgError {
        ErrorKind::Query {
            context: context.into(),
            cause: Cause::from_postgres(e),
        }
        .into()
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// This error as a failed `undistribute` step, when it is a failed step (other errors
    /// say what fixes them already).
    pub(crate) fn in_undistribute(self) -> PgError {
        match self.kind() {
            ErrorKind::StepFailed { .. } => ErrorKind::UndistributeFailed { source: self }.into(),
            _ => self,
        }
    }

    /// What the run had already done when it failed.
    pub fn done(&self) -> Option<&Done> {
        self.done.as_ref()
    }

    /// The foreign keys the failed run had taken down, and what became of them.
    pub fn keys(&self) -> Option<&KeysAfterFailure> {
        self.keys.as_ref()
    }

    pub(crate) fn with_keys(mut self, keys: KeysAfterFailure) -> PgError {
        self.keys = Some(keys);
        self
    }

    /// This error, reporting `done` as what the run had already done.
    pub(crate) fn with_done(mut self, done: Done) -> PgError {
        self.done = Some(done);
        self
    }

    /// The server's detail, when there is one.
    pub fn detail(&self) -> Option<&str> {
        self.server()?.detail.as_deref()
    }

    /// A hint for the user: the server's own, else ours.
    pub fn hint(&self) -> Option<Cow<'static, str>> {
        if let Some(h) = self.server().and_then(|s| s.hint.clone()) {
            return Some(h.into());
        }
        let ours = match self.kind() {
            ErrorKind::BadUrl(_) => "write it as postgres://user:password@host:port/database (percent-encode special characters) or as key=value pairs",
            ErrorKind::Connect { why, .. } => return Some(why.hint()),
            ErrorKind::LockTimeout { .. } => "wait for the other run to finish, or raise --lock-timeout",
            ErrorKind::Refused(r) => return r.hint(),
            ErrorKind::Blocked { .. } => "fix them (`colocate plan` shows each with its SQL), or pass --skip-blocked to converge the other tables",
            ErrorKind::StepFile { source, .. } => match source.kind() {
                ErrorKind::Blocked { .. } => "fix them (`colocate plan` shows each with its SQL) or take those tables out of the step file, then run migrate again",
                ErrorKind::StepFailed { .. } | ErrorKind::UndistributeFailed { .. } => "fix the cause and run migrate again: the step resumes from what the database now is",
                _ => return source.hint(),
            },
            ErrorKind::RestoreFailed { .. } => "the key stays in colocate_journal and is not enforced: fix what it refuses (rows that break it, named in the detail), then run the command again; it restores journaled keys first",
            ErrorKind::RootNotDistributed { .. } => "distribute it in an earlier step (a [distribute] file without colocate_with), or list it in this one",
            ErrorKind::CitusInUse { .. } => "undo the steps that converted them first (`colocate rollback`), or `colocate undistribute --all`",
            ErrorKind::NotCitus(_) => "it is a plain PostgreSQL table already: there is nothing to undistribute",
            ErrorKind::NoSuchTable(_) => "check the name, and write it as schema.table when it is not in public",
            ErrorKind::Connected { .. } => "name those tables too, or pass --cascade to undistribute the whole group",
            ErrorKind::OnlineRefused { setting, .. } => {
                return Some(match *setting {
                    "wal_level" => "set wal_level = logical in postgresql.conf and restart the server, or run apply without --online".into(),
                    _ => format!("add citus to {setting} (ALTER SYSTEM SET {setting} = '<the current list>, citus'; SELECT pg_reload_conf()), or run apply without --online").into(),
                })
            }
            ErrorKind::UndistributeFailed { source } => match source.kind() {
                ErrorKind::StepFailed { .. } => "fix the cause and run undistribute again: it goes on from what the database now is, and restores any foreign key it dropped from the journal",
                _ => return source.hint(),
            },
            ErrorKind::StepFailed { .. } => "fix the cause and run apply again: it resumes from what the database now is, and restores any dropped foreign key from the journal",
            ErrorKind::Verify { unenforced, .. } if !unenforced.is_empty() => "such a key checks nothing on the shards: fix the blockers of the table that stays plain (`colocate plan` names them) and run apply again, which converts it, or `colocate undistribute` the table it references to enforce the key again; `colocate check` lists every such key",
            ErrorKind::Verify { problems, .. } if problems.iter().any(|p| p.contains(" rows before apply ")) => "row counts are compared before and after the run: writes by the application in between change them too; run apply while nothing writes, or with --online (which compares no row counts)",
            ErrorKind::Failed(f) => match f.cause.server() {
                Some(s) if s.sqlstate == "25001" => "this statement cannot run in a transaction block: mark the section `-- migrate:up transaction:false`",
                _ if f.statement.is_some() => "fix the failing statement and run again: the statements before it are recorded and will not run twice",
                _ => return None,
            },
            ErrorKind::NoServer(_) => "install Debian's postgresql-15 (apt-get install postgresql-15) or set COLOCATE_PG_BIN to its bin directory",
            _ => return None,
        };
        Some(ours.into())
    }

    fn server(&self) -> Option<&ServerError> {
        match self.kind() {
            ErrorKind::Query { cause, .. } => cause.server(),
            ErrorKind::StepFailed { cause, .. } | ErrorKind::RestoreFailed { cause, .. } => {
                cause.server()
            }
            ErrorKind::Failed(f) => f.cause.server(),
            ErrorKind::StepFile { source, .. } | ErrorKind::UndistributeFailed { source } => {
                source.server()
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_row_counts_get_a_hint_about_concurrent_writes_and_lost_keys_do_not() {
        let counts = PgError::from(ErrorKind::Verify {
            problems: vec!["public.events had 10 rows before apply and has 12".into()],
            unenforced: Vec::new(),
        });
        assert!(counts.hint().unwrap().contains("--online"));
        let keys = PgError::from(ErrorKind::Verify {
            problems: vec!["foreign key k on public.t is missing after apply".into()],
            unenforced: Vec::new(),
        });
        assert_eq!(keys.hint(), None);
        let unenforced = PgError::from(ErrorKind::Verify {
            problems: Vec::new(),
            unenforced: vec![
                "foreign key k on public.t references public.r, which this run distributed, ..."
                    .into(),
            ],
        });
        assert!(unenforced
            .to_string()
            .contains("foreign key k on public.t references"));
        assert!(unenforced.hint().unwrap().contains("colocate undistribute"));
    }

    fn tables(n: usize) -> Vec<QualifiedName> {
        (0..n)
            .map(|i| QualifiedName::new("public", format!("t{i}")))
            .collect()
    }

    #[test]
    fn the_former_command_errors_keep_their_messages_and_hints() {
        let t = tables(10);
        let connected = PgError::from(ErrorKind::Connected {
            table: t[0].clone(),
            others: t[1..].to_vec(),
        });
        assert_eq!(
            connected.to_string(),
            "public.t0 is joined by foreign keys to 9 Citus tables not named: public.t1, public.t2, public.t3, public.t4, public.t5, public.t6, public.t7, public.t8 and 1 more"
        );
        assert!(connected.hint().unwrap().contains("--cascade"));
        let not_citus = PgError::from(ErrorKind::NotCitus(t[0].clone()));
        assert_eq!(not_citus.to_string(), "public.t0 is not a Citus table");
        assert!(not_citus
            .hint()
            .unwrap()
            .contains("plain PostgreSQL table already"));
        let in_use = PgError::from(ErrorKind::CitusInUse {
            tables: t.iter().take(6).map(|t| t.to_string()).collect(),
        });
        assert_eq!(
            in_use.to_string(),
            "cannot drop extension citus: 6 Citus tables remain (public.t0, public.t1, public.t2, public.t3, public.t4 and 1 more)"
        );
        assert!(in_use.hint().unwrap().contains("colocate rollback"));
        let no_server = PgError::from(ErrorKind::NoServer("/usr/lib".into()));
        assert!(no_server.hint().unwrap().contains("COLOCATE_PG_BIN"));
    }

    #[test]
    fn a_step_file_reports_its_migrations_and_keeps_the_step_as_its_source() {
        let step = PgError::from(ErrorKind::StepFailed {
            index: 2,
            total: 3,
            sql: "SELECT 1".into(),
            cause: Cause::client("gone"),
        })
        .with_done(Done::Statements(vec!["SELECT 0".into()]));
        let file = PgError::from(ErrorKind::StepFile {
            file: "m/20240101000000_x.toml".into(),
            version: "20240101000000".into(),
            direction: Direction::Rollback,
            source: step,
        })
        .with_done(Done::Migrations {
            direction: Direction::Rollback,
            files: Vec::new(),
        });
        assert_eq!(file.to_string(), "m/20240101000000_x.toml: rollback failed");
        let source = std::error::Error::source(&file)
            .and_then(|s| s.downcast_ref::<PgError>())
            .expect("the step's error is the source");
        assert_eq!(
            source.done(),
            Some(&Done::Statements(vec!["SELECT 0".into()]))
        );
        assert!(file.hint().unwrap().contains("run migrate again"));
    }

    #[test]
    fn a_failed_undistribute_step_says_to_run_undistribute_again() {
        let step = || {
            PgError::from(ErrorKind::StepFailed {
                index: 1,
                total: 2,
                sql: "SELECT undistribute_table('t')".into(),
                cause: Cause::client("gone"),
            })
        };
        let e = step().in_undistribute();
        let hint = e.hint().unwrap();
        assert!(hint.contains("run undistribute again"), "{hint}");
        assert!(!hint.contains("apply"), "{hint}");
        // Inside a declarative step's down part, migrate (rollback) is what runs it again.
        let file = PgError::from(ErrorKind::StepFile {
            file: "m/20240101000000_x.toml".into(),
            version: "20240101000000".into(),
            direction: Direction::Rollback,
            source: step().in_undistribute(),
        });
        assert!(file.hint().unwrap().contains("run migrate again"));
        // Other errors keep their own hint.
        let other = PgError::from(ErrorKind::NotCitus(QualifiedName::new("public", "t")));
        assert!(matches!(
            other.in_undistribute().kind(),
            ErrorKind::NotCitus(_)
        ));
    }
}
