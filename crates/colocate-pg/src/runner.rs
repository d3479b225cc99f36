//! Running migrations and rollbacks: one advisory lock around the run, one batch number per run,
//! each migration and its history row committed together, and migrations that opted out of a
//! transaction run statement by statement with their progress recorded after each one.
//! Declarative steps (`.toml` files) run through the apply engine (see [`crate::declarative`]);
//! their history row is written once the step has completed, since the step is idempotent.

use std::time::{Duration, Instant};

use colocate_core::declarative::{chain_columns, DeclarativeStep};
use colocate_core::history::{
    self, plan_migrate, plan_rollback, prefix_checksum, AppliedMigration, RollbackScope,
    StatusReport,
};
use colocate_core::split::line_of_offset;
use colocate_core::{Migration, MigrationId, MigrationSet, Section};
use postgres::Client;
use serde::Serialize;

use crate::declarative::{self, StepEvent};
use crate::error::{Cause, Direction, Done, ErrorKind, MigrationFailure, PgError};
use crate::history::HistoryTable;
use crate::lock::Lock;

/// What the runner tells its caller as it goes (the CLI shows it on stderr).
#[derive(Debug)]
pub enum Event<'a> {
    /// Another session holds `lock` (`migration lock`, or the `converge lock` a declarative
    /// step takes); the run waits.
    Waiting { lock: &'static str, holder: &'a str },
    /// A migration starts (`index` of `total`, 1-based).
    Start {
        migration: &'a Migration,
        index: usize,
        total: usize,
        resume_at: usize,
    },
    /// A migration finished.
    Done {
        migration: &'a Migration,
        duration: Duration,
    },
    /// A declarative step starts one of its statements.
    Progress {
        migration: &'a Migration,
        message: &'a str,
    },
}

#[derive(Debug, Clone, Default)]
pub struct MigrateOptions {
    /// Stop after this version (inclusive).
    pub target: Option<MigrationId>,
    pub allow_out_of_order: bool,
    /// Report what would run; change nothing (not even create the history table).
    pub dry_run: bool,
}

/// One migration a run applied or reverted (or would, on a dry run).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunItem {
    pub version: MigrationId,
    pub name: String,
    pub file: String,
    pub transaction: bool,
    /// Statements skipped because an earlier run already ran them.
    #[serde(skip_serializing_if = "is_zero")]
    pub resumed_at: usize,
    pub duration_ms: f64,
    /// The SQL that runs (dry runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// What a declarative step did, one line each (e.g. that it was skipped without Citus).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigrateReport {
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<i32>,
    pub applied: Vec<RunItem>,
    /// Files of migrations applied earlier whose content has changed since (their checksum
    /// differs from the one recorded): not run again, but someone edited history.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
}

/// The file names of applied migrations whose file no longer matches the recorded checksum.
fn changed_since(set: &MigrationSet, rows: &[AppliedMigration]) -> Vec<String> {
    history::status(set, rows)
        .entries
        .iter()
        .filter(|e| e.status == history::Status::Changed)
        .filter_map(|e| set.get(e.version))
        .map(|m| m.file_name())
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackReport {
    pub dry_run: bool,
    pub reverted: Vec<RunItem>,
}

pub struct Runner<'a> {
    pub(crate) client: &'a mut Client,
    pub(crate) history: HistoryTable,
    lock_timeout: Duration,
}

pub(crate) type Events<'e> = &'e mut dyn FnMut(Event<'_>);

impl<'a> Runner<'a> {
    pub fn new(client: &'a mut Client, history: HistoryTable, lock_timeout: Duration) -> Self {
        Runner {
            client,
            history,
            lock_timeout,
        }
    }

    pub fn history(&self) -> &HistoryTable {
        &self.history
    }

    /// Every migration's state. Takes no lock and changes nothing.
    pub fn status(&mut self, set: &MigrationSet) -> Result<StatusReport, PgError> {
        let rows = self.history.read(self.client)?;
        Ok(history::status(set, &rows))
    }

    /// The history rows as they are.
    pub fn rows(&mut self) -> Result<Vec<AppliedMigration>, PgError> {
        self.history.read(self.client)
    }

    /// Apply what is pending (and finish what stopped part way), as one batch.
    pub fn migrate(
        &mut self,
        set: &MigrationSet,
        opts: &MigrateOptions,
        events: Events<'_>,
    ) -> Result<MigrateReport, PgError> {
        if opts.dry_run {
            let rows = self.history.read(self.client)?;
            let plan = plan_migrate(set, &rows, opts.target, opts.allow_out_of_order)?;
            let applied = plan
                .iter()
                .filter_map(|r| set.get(r.version).map(|m| (m, r.resume_at)))
                .map(|(m, at)| item(m, &m.up, at, 0.0, true))
                .collect();
            return Ok(MigrateReport {
                dry_run: true,
                batch: None,
                applied,
                changed: changed_since(set, &rows),
            });
        }
        self.locked(events, |run, events| {
            // Plan before creating anything: a refusal must leave the database untouched.
            let rows = run.history.read(run.client)?;
            let plan = plan_migrate(set, &rows, opts.target, opts.allow_out_of_order)?;
            let mut report = MigrateReport {
                dry_run: false,
                batch: None,
                applied: Vec::new(),
                changed: changed_since(set, &rows),
            };
            if plan.is_empty() {
                return Ok(report);
            }
            run.history.ensure(run.client)?;
            let batch = run.history.next_batch(run.client)?;
            report.batch = Some(batch);
            let stmts = Prepared::new(run.client, &run.history)?;
            let chain = chain_columns(set.iter().filter_map(|m| m.step.as_ref()));
            let total = plan.len();
            for (i, p) in plan.iter().enumerate() {
                let Some(m) = set.get(p.version) else {
                    continue;
                };
                let place = (i + 1, total, p.resume_at);
                let it = run_one(
                    events,
                    m,
                    &m.up,
                    place,
                    Direction::Migrate,
                    &report.applied,
                    |events| {
                        if let Some(step) = &m.step {
                            run.up_step(m, step, &chain, batch, &stmts, events)
                        } else if m.up.transaction {
                            run.up_in_transaction(m, batch, &stmts).map(|_| Vec::new())
                        } else {
                            run.up_statements(m, p.resume_at, batch, &stmts)
                                .map(|_| Vec::new())
                        }
                    },
                )?;
                report.applied.push(it);
            }
            Ok(report)
        })
    }

    /// Undo applied migrations with their down parts, newest first.
    pub fn rollback(
        &mut self,
        set: &MigrationSet,
        scope: RollbackScope,
        dry_run: bool,
        events: Events<'_>,
    ) -> Result<RollbackReport, PgError> {
        if dry_run {
            let rows = self.history.read(self.client)?;
            let plan = plan_rollback(set, &rows, scope)?;
            let reverted = plan
                .iter()
                .filter_map(|r| set.get(r.version).map(|m| (m, r.resume_at)))
                .filter_map(|(m, at)| m.down.as_ref().map(|d| item(m, d, at, 0.0, true)))
                .collect();
            return Ok(RollbackReport {
                dry_run: true,
                reverted,
            });
        }
        self.locked(events, |run, events| {
            let rows = run.history.read(run.client)?;
            let plan = plan_rollback(set, &rows, scope)?;
            let mut report = RollbackReport {
                dry_run: false,
                reverted: Vec::new(),
            };
            let stmts = Prepared::new(run.client, &run.history)?;
            let total = plan.len();
            for (i, p) in plan.iter().enumerate() {
                let Some(m) = set.get(p.version) else {
                    continue;
                };
                let Some(down) = &m.down else { continue };
                let place = (i + 1, total, p.resume_at);
                let it = run_one(
                    events,
                    m,
                    down,
                    place,
                    Direction::Rollback,
                    &report.reverted,
                    |events| {
                        if let Some(step) = &m.step {
                            run.down_step(m, step, &stmts, events)
                        } else if down.transaction {
                            run.down_in_transaction(m, down, &stmts).map(|_| Vec::new())
                        } else {
                            run.down_statements(m, down, p.resume_at, &stmts)
                                .map(|_| Vec::new())
                        }
                    },
                )?;
                report.reverted.push(it);
            }
            Ok(report)
        })
    }

    pub(crate) fn locked<T>(
        &mut self,
        events: Events<'_>,
        body: impl FnOnce(&mut Self, Events<'_>) -> Result<T, PgError>,
    ) -> Result<T, PgError> {
        let lock = Lock::acquire(self.client, &self.history, self.lock_timeout, &mut |h| {
            events(Event::Waiting {
                lock: "migration lock",
                holder: h,
            })
        })?;
        let res = body(self, events);
        lock.release(self.client);
        res
    }

    /// Run a declarative step, then record it: the step is idempotent, so a crash in between
    /// only means the next run does it again (finding nothing left to do).
    fn up_step(
        &mut self,
        m: &Migration,
        step: &DeclarativeStep,
        chain: &[String],
        batch: i32,
        stmts: &Prepared,
        events: Events<'_>,
    ) -> Result<Vec<String>, PgError> {
        let started = Instant::now();
        let notes = declarative::up(self.client, step, chain, self.lock_timeout, &mut |e| {
            forward(m, e, events)
        })?;
        let params = row_params(m, batch, ms(started.elapsed()), "applied", None, None);
        self.client
            .execute(&stmts.upsert, &params.as_refs())
            .map_err(|e| PgError::query(format!("record {}", m.file_name()), &e))?;
        Ok(notes)
    }

    fn down_step(
        &mut self,
        m: &Migration,
        step: &DeclarativeStep,
        stmts: &Prepared,
        events: Events<'_>,
    ) -> Result<Vec<String>, PgError> {
        let notes = declarative::down(self.client, step, self.lock_timeout, &mut |e| {
            forward(m, e, events)
        })?;
        self.client
            .execute(&stmts.delete, &[&(m.id.as_u64() as i64)])
            .map_err(|e| PgError::query(format!("unrecord {}", m.file_name()), &e))?;
        Ok(notes)
    }

    fn up_in_transaction(
        &mut self,
        m: &Migration,
        batch: i32,
        stmts: &Prepared,
    ) -> Result<(), PgError> {
        let mut tx = self
            .client
            .transaction()
            .map_err(|e| PgError::query("begin", &e))?;
        let started = Instant::now();
        if let Err(e) = run_section(&mut tx, m, &m.up, Direction::Migrate) {
            // Dropping the transaction rolls it back: no history row, no partial DDL.
            drop(tx);
            return Err(e);
        }
        let dur = ms(started.elapsed());
        tx.execute(
            &stmts.upsert,
            &row_params(m, batch, dur, "applied", None, None).as_refs(),
        )
        .map_err(|e| PgError::query(format!("record {}", m.file_name()), &e))?;
        tx.commit()
            .map_err(|e| failure(m, &m.up, Direction::Migrate, None, &e))
    }

    fn up_statements(
        &mut self,
        m: &Migration,
        resume_at: usize,
        batch: i32,
        stmts: &Prepared,
    ) -> Result<(), PgError> {
        let section = &m.up;
        let params = row_params(
            m,
            batch,
            0.0,
            "partial",
            Some(resume_at as i32),
            Some(prefix_checksum(section, resume_at)),
        );
        self.client
            .execute(&stmts.upsert, &params.as_refs())
            .map_err(|e| PgError::query(format!("record {}", m.file_name()), &e))?;
        self.statements(m, section, resume_at, Direction::Migrate, stmts)?;
        let version = m.id.as_u64() as i64;
        self.client
            .execute(&stmts.finish, &[&version])
            .map_err(|e| PgError::query(format!("record {}", m.file_name()), &e))?;
        Ok(())
    }

    fn down_in_transaction(
        &mut self,
        m: &Migration,
        down: &Section,
        stmts: &Prepared,
    ) -> Result<(), PgError> {
        let mut tx = self
            .client
            .transaction()
            .map_err(|e| PgError::query("begin", &e))?;
        if let Err(e) = run_section(&mut tx, m, down, Direction::Rollback) {
            drop(tx);
            return Err(e);
        }
        tx.execute(&stmts.delete, &[&(m.id.as_u64() as i64)])
            .map_err(|e| PgError::query(format!("unrecord {}", m.file_name()), &e))?;
        tx.commit()
            .map_err(|e| failure(m, down, Direction::Rollback, None, &e))
    }

    fn down_statements(
        &mut self,
        m: &Migration,
        down: &Section,
        resume_at: usize,
        stmts: &Prepared,
    ) -> Result<(), PgError> {
        let version = m.id.as_u64() as i64;
        let prefix = prefix_checksum(down, resume_at);
        let progress = resume_at as i32;
        self.client
            .execute(
                &stmts.reverting,
                &[&version, &progress, &prefix, &None::<String>],
            )
            .map_err(|e| PgError::query(format!("record {}", m.file_name()), &e))?;
        self.statements(m, down, resume_at, Direction::Rollback, stmts)?;
        self.client
            .execute(&stmts.delete, &[&version])
            .map_err(|e| PgError::query(format!("unrecord {}", m.file_name()), &e))?;
        Ok(())
    }

    /// Run a section's statements one by one from `from`, recording progress after each.
    fn statements(
        &mut self,
        m: &Migration,
        section: &Section,
        from: usize,
        direction: Direction,
        stmts: &Prepared,
    ) -> Result<(), PgError> {
        let version = m.id.as_u64() as i64;
        let total = section.statements.len();
        for i in from..total {
            let stmt = &section.statements[i];
            let started = Instant::now();
            if let Err(e) = self.client.batch_execute(&stmt.sql) {
                let cause = Cause::from_postgres(&e);
                // Best effort: the connection may be what failed.
                let _ = self
                    .client
                    .execute(&stmts.error, &[&version, &cause.to_string()]);
                let line = position_line(&stmt.sql, &cause).map(|l| stmt.line + l - 1);
                return Err(ErrorKind::Failed(MigrationFailure {
                    file: m.path.display().to_string(),
                    version: m.id.to_string(),
                    direction,
                    line: line.or(Some(stmt.line)),
                    statement: Some((i + 1, total)),
                    in_transaction: false,
                    cause,
                })
                .into());
            }
            let done = (i + 1) as i32;
            let dur = ms(started.elapsed());
            self.client
                .execute(
                    &stmts.progress,
                    &[&version, &done, &prefix_checksum(section, i + 1), &dur],
                )
                .map_err(|e| PgError::query(format!("record progress of {}", m.file_name()), &e))?;
        }
        Ok(())
    }
}

/// Statements prepared once per run, so each migration costs one round trip for its history row.
struct Prepared {
    upsert: postgres::Statement,
    finish: postgres::Statement,
    progress: postgres::Statement,
    error: postgres::Statement,
    delete: postgres::Statement,
    reverting: postgres::Statement,
}

impl Prepared {
    fn new(c: &mut Client, h: &HistoryTable) -> Result<Prepared, PgError> {
        let t = h.sql();
        let mut prep = |sql: &str| {
            c.prepare(sql)
                .map_err(|e| PgError::query(format!("prepare statements on {}", h.display()), &e))
        };
        Ok(Prepared {
            upsert: prep(&h.upsert_sql())?,
            finish: prep(&format!(
                "UPDATE {t} SET state = 'applied', progress = NULL, prefix_checksum = NULL, error = NULL, applied_at = now() WHERE version = $1"
            ))?,
            progress: prep(&format!(
                "UPDATE {t} SET progress = $2, prefix_checksum = $3, duration_ms = duration_ms + $4 WHERE version = $1"
            ))?,
            error: prep(&format!("UPDATE {t} SET error = $2 WHERE version = $1"))?,
            delete: prep(&h.delete_sql())?,
            reverting: prep(&h.reverting_sql())?,
        })
    }
}

/// The values of one history row, in the order of `upsert_history.sql`.
struct RowParams {
    version: i64,
    name: String,
    dir: String,
    checksum: String,
    batch: i32,
    duration_ms: f64,
    state: &'static str,
    progress: Option<i32>,
    prefix: Option<String>,
    error: Option<String>,
}

impl RowParams {
    fn as_refs(&self) -> [&(dyn postgres::types::ToSql + Sync); 10] {
        [
            &self.version,
            &self.name,
            &self.dir,
            &self.checksum,
            &self.batch,
            &self.duration_ms,
            &self.state,
            &self.progress,
            &self.prefix,
            &self.error,
        ]
    }
}

fn row_params(
    m: &Migration,
    batch: i32,
    duration_ms: f64,
    state: &'static str,
    progress: Option<i32>,
    prefix: Option<String>,
) -> RowParams {
    RowParams {
        version: (m.id.as_u64() as i64),
        name: m.name.clone(),
        dir: m.source.clone(),
        checksum: m.checksum.to_string(),
        batch,
        duration_ms,
        state,
        progress,
        prefix,
        error: None,
    }
}

fn forward(m: &Migration, e: StepEvent<'_>, events: Events<'_>) {
    match e {
        StepEvent::Waiting { holder } => events(Event::Waiting {
            lock: "converge lock",
            holder,
        }),
        StepEvent::Progress { message } => events(Event::Progress {
            migration: m,
            message,
        }),
    }
}

/// One migration's part (`section`) run by `body`, between its start and done events; its
/// report item, or the error naming what this run completed before it (`done`).
fn run_one(
    events: Events<'_>,
    m: &Migration,
    section: &Section,
    (index, total, resume_at): (usize, usize, usize),
    direction: Direction,
    done: &[RunItem],
    body: impl FnOnce(Events<'_>) -> Result<Vec<String>, PgError>,
) -> Result<RunItem, PgError> {
    events(Event::Start {
        migration: m,
        index,
        total,
        resume_at,
    });
    let started = Instant::now();
    let notes = body(&mut *events).map_err(|e| {
        let done = done.iter().map(|a| a.file.clone()).collect();
        with_completed(e, m, direction, done)
    })?;
    let duration = started.elapsed();
    events(Event::Done {
        migration: m,
        duration,
    });
    let mut it = item(m, section, resume_at, ms(duration), false);
    it.notes = notes;
    Ok(it)
}

/// A failed migration's error, carrying the migrations this run completed before it. A
/// declarative step's error is wrapped so the message names its file.
fn with_completed(e: PgError, m: &Migration, direction: Direction, files: Vec<String>) -> PgError {
    let done = Done::Migrations { direction, files };
    if m.step.is_some() {
        let file = ErrorKind::StepFile {
            file: m.path.display().to_string(),
            version: m.id.to_string(),
            direction,
            source: e,
        };
        return PgError::from(file).with_done(done);
    }
    match e.kind() {
        ErrorKind::Failed(_) => e.with_done(done),
        _ => e,
    }
}

pub(crate) fn item(
    m: &Migration,
    section: &Section,
    resumed_at: usize,
    duration_ms: f64,
    dry: bool,
) -> RunItem {
    RunItem {
        version: m.id,
        name: m.name.clone(),
        file: m.path.display().to_string(),
        transaction: section.transaction,
        resumed_at,
        duration_ms,
        notes: Vec::new(),
        sql: dry.then(|| {
            if resumed_at == 0 {
                section.sql.trim().to_string()
            } else {
                section.statements[resumed_at..]
                    .iter()
                    .map(|s| format!("{};", s.sql))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        }),
    }
}

/// Run a section inside the caller's transaction. One statement goes as it is; several go one
/// at a time, because Citus refuses several DDL statements on distributed tables sent as one
/// multi-statement query ("cannot execute multiple utility events").
fn run_section(
    tx: &mut postgres::Transaction<'_>,
    m: &Migration,
    section: &Section,
    direction: Direction,
) -> Result<(), PgError> {
    if section.statements.len() <= 1 {
        return tx
            .batch_execute(&section.sql)
            .map_err(|e| failure(m, section, direction, None, &e));
    }
    for stmt in &section.statements {
        if let Err(e) = tx.batch_execute(&stmt.sql) {
            let cause = Cause::from_postgres(&e);
            let line = position_line(&stmt.sql, &cause).map_or(stmt.line, |l| stmt.line + l - 1);
            return Err(ErrorKind::Failed(MigrationFailure {
                file: m.path.display().to_string(),
                version: m.id.to_string(),
                direction,
                line: Some(line),
                statement: None,
                in_transaction: true,
                cause,
            })
            .into());
        }
    }
    Ok(())
}

fn failure(
    m: &Migration,
    section: &Section,
    direction: Direction,
    statement: Option<(usize, usize)>,
    e: &postgres::Error,
) -> PgError {
    let cause = Cause::from_postgres(e);
    let line = position_line(&section.sql, &cause).map(|l| section.first_line + l - 1);
    ErrorKind::Failed(MigrationFailure {
        file: m.path.display().to_string(),
        version: m.id.to_string(),
        direction,
        line,
        statement,
        in_transaction: true,
        cause,
    })
    .into()
}

/// The 1-based line within `sql` of the server's error position (a 1-based character index).
fn position_line(sql: &str, cause: &Cause) -> Option<usize> {
    let pos = cause.server()?.position? as usize;
    let offset = sql
        .char_indices()
        .nth(pos.saturating_sub(1))
        .map(|(o, _)| o)
        .unwrap_or(sql.len());
    Some(line_of_offset(sql, offset))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_positions_map_to_lines() {
        let cause = Cause::Server(crate::error::ServerError {
            sqlstate: "42601".into(),
            message: "syntax error".into(),
            detail: None,
            hint: None,
            position: Some(12),
        });
        assert_eq!(position_line("SELECT 1;\nSELEC 2;", &cause), Some(2));
    }
}
