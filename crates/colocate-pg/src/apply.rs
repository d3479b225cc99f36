//! Converging a database to its plan: the executor behind `apply` and the declarative
//! migration steps.
//!
//! One advisory lock for the whole run, held by the caller's session. Citus functions run one
//! statement at a time outside transaction blocks, in Citus's sequential mode (one connection
//! per node) except for large tables, on a working session renewed every
//! [`CONVERSIONS_PER_SESSION`] conversions when the caller allows more connections. Every foreign key dropped to break a cycle is written, with its exact
//! definition, to a journal table in the same transaction that drops it, and restored (`NOT
//! VALID`, then `VALIDATE CONSTRAINT`) once its tables are converted; a run that was killed at
//! any point is finished by the next one, which reads the journal, re-plans from what the
//! database now is (a converted table is simply done), converges, and restores what the journal
//! still holds. Afterwards every converted table is checked: its role, column and colocation as
//! planned, every foreign key present, its row count unchanged.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use colocate_core::distribution::DistributionConfig;
use colocate_core::plan::{plan, Finding, State, UnenforcedKey};
use colocate_core::schema::QualifiedName;
use colocate_core::scope::{online_refusal, Scope};
use colocate_core::step::{Action, Distribute, Setting, Step, StepKind};
use postgres::Client;
use serde::Serialize;

use crate::connect::Target;
use crate::error::{Cause, Done, ErrorKind, KeysAfterFailure, PgError};
use crate::introspect::introspect;
use crate::journal::{Dropped, Journal};
use crate::lock::Lock;
use crate::split_guard::Claim;
use crate::topology::settle;
use crate::verify::{all_keys, count_rows_many, verify, Before, Verification};
use crate::wake::Waker;

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Print the statements; change nothing.
    pub dry_run: bool,
    /// Distribute tables with more than `online_threshold` estimated rows with
    /// `create_distributed_table_concurrently`, so writes continue during the copy.
    pub online: bool,
    pub online_threshold: i64,
    /// Leave blocked and conflicting tables as they are and converge the rest.
    pub skip_blocked: bool,
    pub lock_timeout: Duration,
    pub journal_table: String,
    /// Only these tables (declarative steps); `None` = the whole plan.
    pub only: Option<BTreeSet<QualifiedName>>,
    /// Where apply may open more connections to the same database: the steps run on a fresh
    /// working session every [`CONVERSIONS_PER_SESSION`] conversions (each conversion in a
    /// session is slower than the one before: measured on Citus 13.2, 250 tables in one session
    /// took 19.3 s, in sessions of 25 tables 14.0 s), and online steps get a waker (see
    /// [`crate::wake`]). `None`: everything runs on the caller's connection.
    pub more_connections: Option<Target>,
    /// With `more_connections`: wake Citus's catch-up wait during online steps (on by default;
    /// off only to measure what the waker saves).
    pub online_waker: bool,
}

/// Conversions a working session runs before apply replaces it (with `more_connections`).
pub const CONVERSIONS_PER_SESSION: usize = 20;

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            dry_run: false,
            online: false,
            online_threshold: 1_000_000,
            skip_blocked: false,
            lock_timeout: Duration::from_secs(60),
            journal_table: crate::journal::DEFAULT_TABLE.into(),
            only: None,
            more_connections: None,
            online_waker: true,
        }
    }
}

/// What the executor tells its caller as it goes.
#[derive(Debug)]
pub enum ApplyEvent<'a> {
    Waiting {
        holder: &'a str,
    },
    Start {
        index: usize,
        total: usize,
        step: &'a Step,
        online: bool,
    },
    Done {
        index: usize,
        total: usize,
        step: &'a Step,
        elapsed: Duration,
    },
    Repair {
        what: &'a str,
    },
}

/// One statement the run executed (or would, on a dry run).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    pub index: usize,
    pub kind: StepKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<QualifiedName>,
    pub sql: String,
    pub elapsed_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CitusOutcome {
    /// No citus extension can be created here: nothing to do.
    Absent,
    Present,
    /// This run created the extension.
    Created,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApplyReport {
    pub dry_run: bool,
    pub citus: CitusOutcome,
    pub steps: Vec<StepRecord>,
    /// Why Citus is absent, where the server has its package but cannot load it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
    /// Foreign keys from the journal (dropped by an interrupted run, or by a rolled-back
    /// declarative step) restored by this one.
    pub repaired: Vec<String>,
    /// Foreign keys in the journal that Citus does not accept between their tables as they are
    /// (a plain table and a Citus table): they wait until both are converted alike.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<String>,
    /// Blocked or conflicting tables left as they are (`--skip-blocked`).
    pub skipped: Vec<Finding>,
    /// Foreign keys that do not hold after the run, not by its doing (a key from a plain table
    /// into a table distributed earlier, a `NOT VALID` key; on a dry run or a run with nothing
    /// to do, those of the database as it is): warnings, `check` fails on each. A key the run
    /// itself left unenforced fails its verification instead.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unenforced: Vec<UnenforcedKey>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<Verification>,
    /// Time spent inside Citus functions (conversion and cleanup steps).
    pub citus_ms: f64,
    pub total_ms: f64,
    /// Working sessions the run opened (see [`CONVERSIONS_PER_SESSION`]); 0 when everything ran
    /// on the caller's session.
    pub sessions: usize,
}

impl ApplyReport {
    pub fn nothing_to_do(&self) -> bool {
        self.steps.is_empty() && self.repaired.is_empty()
    }
}

/// Converge the connected database to the plan for `config`.
pub fn apply(
    c: &mut Client,
    config: &DistributionConfig,
    opts: &ApplyOptions,
    events: &mut dyn FnMut(ApplyEvent<'_>),
) -> Result<ApplyReport, PgError> {
    let started = Instant::now();
    let lock = if opts.dry_run {
        None
    } else {
        Some(Lock::converge(c, opts.lock_timeout, &mut |h| {
            events(ApplyEvent::Waiting { holder: h })
        })?)
    };
    let mut settings = Vec::new();
    let res = run(c, config, opts, events, started, &mut settings);
    // The session may be a migration runner's, whose later migrations expect the server's
    // defaults; a failed reset only matters to that session, and the run's outcome stands.
    for s in &settings {
        let _ = c.batch_execute(&s.reset_sql());
    }
    if let Some(l) = lock {
        l.release(c);
    }
    res
}

fn run(
    c: &mut Client,
    config: &DistributionConfig,
    opts: &ApplyOptions,
    events: &mut dyn FnMut(ApplyEvent<'_>),
    started: Instant,
    // The session settings the run made, for the caller to reset.
    settings: &mut Vec<Setting>,
) -> Result<ApplyReport, PgError> {
    let journal = Journal::new(&opts.journal_table);
    let open = journal.open(c)?;
    if !opts.dry_run {
        settle(c)?;
    }
    let schema = introspect(c, &config.schema_filter())?;
    let mut report = ApplyReport {
        dry_run: opts.dry_run,
        citus: if schema.citus.installed.is_some() {
            CitusOutcome::Present
        } else if schema.citus.available {
            CitusOutcome::Created
        } else {
            CitusOutcome::Absent
        },
        steps: Vec::new(),
        note: (schema.citus.installed.is_none() && schema.citus.not_preloaded)
            .then_some(colocate_core::schema::CITUS_NOT_PRELOADED),
        repaired: Vec::new(),
        waiting: Vec::new(),
        skipped: Vec::new(),
        unenforced: Vec::new(),
        verified: None,
        citus_ms: 0.0,
        total_ms: 0.0,
        sessions: 0,
    };
    if report.citus == CitusOutcome::Absent {
        return Ok(report);
    }
    let plan = plan(&schema, config);
    // What does not hold already; replaced by what verification finds after a run.
    report.unenforced = plan
        .after_run(&schema, &[], None, &plan.unenforced)
        .unenforced;
    let scoped = plan.scoped(
        &schema,
        &Scope {
            only: opts.only.as_ref(),
            online_from_rows: opts.online.then_some(opts.online_threshold),
        },
    );
    if !scoped.problems.is_empty() {
        if !opts.skip_blocked {
            return Err(ErrorKind::Blocked {
                findings: scoped.problems,
                journal_open: open.len(),
            }
            .into());
        }
        report.skipped = scoped.problems;
    }
    let steps = scoped.steps;
    if steps.iter().any(Step::concurrently) {
        online_preflight(c)?;
    }
    let converting = steps.iter().any(|s| s.table().is_some());
    if report.citus == CitusOutcome::Created && !converting {
        report.citus = CitusOutcome::Present;
    }

    if opts.dry_run {
        for (i, s) in steps.iter().enumerate() {
            report.steps.push(StepRecord {
                index: i + 1,
                kind: s.kind(),
                table: s.table().cloned(),
                sql: s.sql(),
                elapsed_ms: 0.0,
            });
        }
        for d in &open {
            report.repaired.push(format!(
                "would restore foreign key {} on {} from {}",
                d.name,
                d.table,
                journal.table.display()
            ));
        }
        return Ok(report);
    }
    if steps.is_empty() && open.is_empty() {
        report.total_ms = ms(started.elapsed());
        return Ok(report);
    }

    // What must still be true afterwards.
    let converted: Vec<QualifiedName> = steps
        .iter()
        .filter(|s| s.kind().converts())
        .filter_map(|s| s.table().cloned())
        .collect();
    // Every table in scope, not only those converted: the cleanup truncates with CASCADE, and
    // a row lost anywhere must be an error, not a surprise. Not a table an earlier run already
    // converted: this run's steps cannot touch the rows in its shards (the cleanup empties the
    // coordinator's leftover copy only), while the application may well write into it. And
    // with `--online` none at all: the application keeps writing into every table during such
    // a run, so a count taken before means nothing after; placement and keys are verified.
    let own = QualifiedName::parse(&opts.journal_table, "public");
    let counted: Vec<&QualifiedName> = schema
        .tables
        .keys()
        .filter(|t| {
            **t != own
                && (opts.only.as_ref().is_none_or(|o| o.contains(*t)) || converted.contains(t))
                && plan.table(t).is_none_or(|p| p.state != State::Done)
        })
        .collect();
    let (rows_before, rows_not_compared) = if opts.online {
        (BTreeMap::new(), counted.into_iter().cloned().collect())
    } else {
        (count_rows_many(c, counted)?, Vec::new())
    };
    let mut keys_before: BTreeSet<(String, String)> = all_keys(&schema);
    for d in &open {
        keys_before.insert((d.table.clone(), d.name.clone()));
    }

    if steps.iter().any(|s| s.kind() == StepKind::DropForeignKey) {
        journal.ensure(c)?;
    }
    let mut online_tables: Vec<QualifiedName> = Vec::new();
    // Journal rows of the keys online steps detached, restored as soon as Citus accepts them.
    let mut detached: Vec<i64> = Vec::new();
    let total = steps.len();
    let mut work = WorkSession {
        target: opts.more_connections.as_ref(),
        client: None,
        conversions: 0,
        settings,
        opened: 0,
    };
    let main = &mut *c;
    let mut lost_commits = 0;
    crate::topology::lost_commits_since(&mut lost_commits);
    for (i, step) in steps.iter().enumerate() {
        if step.concurrently() {
            online_tables.extend(step.table().cloned());
        }
        events(ApplyEvent::Start {
            index: i + 1,
            total,
            step,
            online: step.concurrently(),
        });
        let t0 = Instant::now();
        let sql = step.sql();
        let mut on_main = Ok(());
        if let Action::SessionSetting(setting) = &step.action {
            // On the caller's session too, which takes over if a new session cannot be made.
            work.settings.push(setting.clone());
            if work.client().is_some() {
                on_main = exec(main, &sql);
            }
        }
        if step.kind().converts() {
            work.before_conversion();
        }
        let c: &mut Client = match work.client() {
            Some(w) => w,
            None => &mut *main,
        };
        let waker = match &opts.more_connections {
            Some(target) if step.concurrently() && opts.online_waker => Waker::start(c, target),
            _ => None,
        };
        let res = on_main.and_then(|_| match &step.action {
            Action::DropForeignKey { table, key } => journal.drop_key(c, table, key).map(|_| ()),
            Action::RestoreForeignKey { table, key } => journal.restore_key(c, table, key),
            Action::ValidateForeignKey { table, key } => journal.validate_key(c, table, key),
            Action::CreateDistributedTable(d) if d.concurrently.is_some() => {
                run_online(c, &journal, d, &mut detached)
            }
            _ => exec(c, &sql).and_then(|_| {
                if step.kind().converts() {
                    restore_detached(c, &journal, &detached)
                } else {
                    Ok(())
                }
            }),
        });
        if let Some(w) = waker {
            w.stop(c);
        }
        if let Err(cause) = res {
            let done = done_so_far(&report);
            let err = PgError::from(ErrorKind::StepFailed {
                index: i + 1,
                total,
                sql,
                cause,
            })
            .with_done(done);
            return Err(match keys_after_failure(main, &journal, &report) {
                Some(keys) => err.with_keys(keys),
                None => err,
            });
        }
        if crate::topology::lost_commits_since(&mut lost_commits) {
            // A worker kept a prepared transaction: finish it before the next step needs its
            // shards (it would wait for the maintenance daemon, a minute by default).
            settle(c).map_err(|e| e.with_done(done_so_far(&report)))?;
        }
        let elapsed = t0.elapsed();
        if step.kind().in_citus() {
            report.citus_ms += ms(elapsed);
        }
        events(ApplyEvent::Done {
            index: i + 1,
            total,
            step,
            elapsed,
        });
        report.steps.push(StepRecord {
            index: i + 1,
            kind: step.kind(),
            table: step.table().cloned(),
            sql,
            elapsed_ms: ms(elapsed),
        });
    }

    report.sessions = work.opened;
    drop(work);
    // What a concurrent distribution leaves for Citus's deferred cleanup goes now, not whenever
    // the maintenance daemon gets to it; and a commit whose second phase a lost connection cut
    // (Citus only warns: the run goes on) is finished now, not in a minute, since the prepared
    // transaction locks its shards against the verification below.
    settle(c)?;

    // Keys an interrupted run dropped (their tables are converted now), and keys a rolled-back
    // declarative step dropped, once Citus accepts them between their tables again.
    let done = journal
        .restore_open(c, &mut |what| events(ApplyEvent::Repair { what }))
        .map_err(|e| {
            e.with_done(Done::Statements(
                report.steps.iter().map(|s| s.sql.clone()).collect(),
            ))
        })?;
    report.repaired = done.restored;
    for d in done.forgotten.iter().chain(&done.waiting) {
        keys_before.remove(&(d.table.clone(), d.name.clone()));
    }
    report.waiting = done.waiting.iter().map(Dropped::describe).collect();

    let before = Before {
        rows: &rows_before,
        keys: &keys_before,
        unenforced: &plan.unenforced,
    };
    let (mut verified, unenforced) = verify(c, config, &converted, opts.only.as_ref(), &before)?;
    verified.rows_not_compared = rows_not_compared;
    report.unenforced = unenforced;
    report.verified = Some(verified);
    report.total_ms = ms(started.elapsed());
    Ok(report)
}

/// The session the steps run on: the caller's, or (with `more_connections`) one that apply
/// opens at the first conversion and replaces every [`CONVERSIONS_PER_SESSION`] conversions,
/// replaying the session settings made so far. If a new session cannot be made, the rest of
/// the run goes on in the caller's session, which has the settings too.
struct WorkSession<'t> {
    target: Option<&'t Target>,
    client: Option<Client>,
    conversions: usize,
    /// The session settings made so far, in order.
    settings: &'t mut Vec<Setting>,
    /// Sessions opened so far.
    opened: usize,
}

impl WorkSession<'_> {
    fn before_conversion(&mut self) {
        let Some(target) = self.target else {
            return;
        };
        if self.client.is_some() && self.conversions < CONVERSIONS_PER_SESSION {
            self.conversions += 1;
            return;
        }
        // Close the old session before opening the next: one extra connection at most.
        self.client = None;
        let fresh = target
            .connect("colocate apply (work)")
            .ok()
            .and_then(|mut c| {
                self.settings
                    .iter()
                    .all(|s| c.batch_execute(&s.sql()).is_ok())
                    .then_some(c)
            });
        match fresh {
            Some(c) => {
                self.client = Some(c);
                self.conversions = 1;
                self.opened += 1;
            }
            None => self.target = None,
        }
    }

    fn client(&mut self) -> Option<&mut Client> {
        self.client.as_mut()
    }
}

/// Drop the keys Citus refuses around a concurrent conversion into the journal, convert, and
/// restore those it accepts now, with those earlier online steps of the run detached (`ids`);
/// the rest wait for their tables (the next conversion, or [`Journal::restore_open`] at the
/// end). A key an earlier step detached is not in `d`'s list (see `colocate_core::scope`).
fn run_online(
    c: &mut Client,
    journal: &Journal,
    d: &Distribute,
    ids: &mut Vec<i64>,
) -> Result<(), Cause> {
    let detach = d
        .concurrently
        .as_ref()
        .map(|o| o.detach.as_slice())
        .unwrap_or_default();
    if !detach.is_empty() {
        journal
            .ensure(c)
            .map_err(|e| Cause::client(e.to_string()))?;
    }
    for (t, fk) in detach {
        ids.push(journal.drop_key(c, t, fk)?);
    }
    // Alone on the server: Citus loses the writes of overlapping splits in two databases.
    let claim = Claim::take(c)?;
    // Outside a transaction block: the setting for the session, around the one call.
    let unsafe_on = if d.unsafe_triggers {
        exec(c, "SET citus.enable_unsafe_triggers TO on")
    } else {
        Ok(())
    };
    let converted = unsafe_on.and_then(|_| exec(c, &d.call()));
    if d.unsafe_triggers {
        let _ = exec(c, "RESET citus.enable_unsafe_triggers");
    }
    claim.release(c);
    converted?;
    restore_detached(c, journal, ids)
}

/// Restore the keys online steps detached that Citus accepts between their tables now.
fn restore_detached(c: &mut Client, journal: &Journal, ids: &[i64]) -> Result<(), Cause> {
    if ids.is_empty() {
        return Ok(());
    }
    journal
        .restore(c, &mut |_| {}, Some(ids))
        .map(|_| ())
        .map_err(|e| Cause::client(e.to_string()))
}

/// Refuse an online run, before it changes anything, on a server whose settings make Citus
/// refuse `create_distributed_table_concurrently` half way (see [`online_refusal`]).
fn online_preflight(c: &mut Client) -> Result<(), PgError> {
    let row = c
        .query_one(
            "SELECT current_setting('wal_level'), current_setting('output_plugin_libraries', true)",
            &[],
        )
        .map_err(|e| PgError::query("read wal_level and output_plugin_libraries", &e))?;
    match online_refusal(
        &row.get::<_, String>(0),
        row.get::<_, Option<String>>(1).as_deref(),
    ) {
        Some(s) => Err(ErrorKind::OnlineRefused {
            setting: s.name,
            value: s.value,
            needs: s.needs,
        }
        .into()),
        None => Ok(()),
    }
}

/// A `create_distributed_table_concurrently` that failed part way leaves shard relations that
/// Citus lists for cleanup; remove them before reading the schema, or they would look like
/// tables of the application.
/// After a failed step: put back every journaled key Citus accepts between its tables as they
/// are now (both still plain, or both converted alike), and list what stays down, so the error
/// says which keys are unenforced until the next run. `None` when no key is down or was put
/// back. When the session cannot tell, the keys this run dropped are listed as still down.
fn keys_after_failure(
    c: &mut Client,
    journal: &Journal,
    report: &ApplyReport,
) -> Option<KeysAfterFailure> {
    let restored = journal
        .restore_open(c, &mut |_| {})
        .map(|r| r.restored)
        .unwrap_or_default();
    let still_down: Vec<String> = match journal.open(c) {
        Ok(open) => open.iter().map(Dropped::describe_with_state).collect(),
        Err(_) => report
            .steps
            .iter()
            .filter(|s| s.kind == StepKind::DropForeignKey)
            .map(|s| s.sql.clone())
            .collect(),
    };
    (!restored.is_empty() || !still_down.is_empty()).then_some(KeysAfterFailure {
        restored,
        still_down,
    })
}

/// What a failed run had already done: its statements, for the partial report.
fn done_so_far(report: &ApplyReport) -> Done {
    Done::Statements(report.steps.iter().map(|s| s.sql.clone()).collect())
}

fn exec(c: &mut Client, sql: &str) -> Result<(), Cause> {
    c.batch_execute(sql).map_err(|e| Cause::from_postgres(&e))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
