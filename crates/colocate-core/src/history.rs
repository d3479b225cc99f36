//! What the history table says, compared with the migration files: status, what `migrate` would
//! run, what `rollback` would undo. Pure functions over rows the database crate read.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::migration::{Migration, MigrationId, MigrationSet, Section};

/// The state a history row is in. Only migrations that run outside a transaction can stop half
/// way; their row records how many statements already ran so the next run neither repeats nor
/// skips one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum RowState {
    /// Every statement of the up part ran.
    Applied,
    /// `progress` statements of the up part ran, then it stopped (failure or crash).
    Partial { progress: usize },
    /// `progress` statements of the down part ran, then it stopped.
    Reverting { progress: usize },
}

impl RowState {
    pub fn as_db(&self) -> (&'static str, Option<usize>) {
        match self {
            RowState::Applied => ("applied", None),
            RowState::Partial { progress } => ("partial", Some(*progress)),
            RowState::Reverting { progress } => ("reverting", Some(*progress)),
        }
    }

    pub fn from_db(state: &str, progress: Option<i32>) -> Option<RowState> {
        let p = progress.unwrap_or(0).max(0) as usize;
        match state {
            "applied" => Some(RowState::Applied),
            "partial" => Some(RowState::Partial { progress: p }),
            "reverting" => Some(RowState::Reverting { progress: p }),
            _ => None,
        }
    }
}

/// One row of the history table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppliedMigration {
    pub version: MigrationId,
    pub name: String,
    pub source_dir: String,
    pub checksum: String,
    pub batch: i32,
    /// As the server formatted it (ISO 8601, UTC).
    pub applied_at: String,
    pub duration_ms: f64,
    #[serde(flatten)]
    pub state: RowState,
    /// SHA-256 of the statements that ran, for `Partial`/`Reverting` rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_checksum: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// SHA-256 over the first `n` statements of a section: what a partial row remembers, so a resumed
/// run can tell whether the statements that already ran are still the ones in the file.
pub fn prefix_checksum(section: &Section, n: usize) -> String {
    let mut h = Sha256::new();
    for s in section.statements.iter().take(n) {
        h.update(s.sql.as_bytes());
        h.update([0u8]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Applied and the file is unchanged.
    Applied,
    /// A file with no history row.
    Pending,
    /// Applied, but the file's checksum differs from the one recorded.
    Changed,
    /// A history row whose file is in none of the migration directories.
    Missing,
    /// Stopped part way through its up part (outside a transaction).
    Partial,
    /// Stopped part way through its down part (outside a transaction).
    Reverting,
}

impl Status {
    pub fn label(&self) -> &'static str {
        match self {
            Status::Applied => "applied",
            Status::Pending => "pending",
            Status::Changed => "changed",
            Status::Missing => "missing",
            Status::Partial => "partial",
            Status::Reverting => "reverting",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusEntry {
    pub version: MigrationId,
    pub name: String,
    pub status: Status,
    /// The directory the file is in (local), else the one recorded.
    pub dir: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<String>,
    /// For partial/reverting rows: statements done of the section's total.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<(usize, usize)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    pub applied: usize,
    pub pending: usize,
    pub changed: usize,
    pub missing: usize,
    pub partial: usize,
    pub reverting: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    pub entries: Vec<StatusEntry>,
    pub counts: StatusCounts,
}

impl StatusReport {
    /// What `status --check` fails on: anything not plainly applied.
    pub fn needs_attention(&self) -> bool {
        let c = &self.counts;
        c.pending + c.changed + c.partial + c.reverting > 0
    }
}

/// Index history rows by version.
pub fn by_version(rows: &[AppliedMigration]) -> BTreeMap<MigrationId, &AppliedMigration> {
    rows.iter().map(|r| (r.version, r)).collect()
}

pub fn status(set: &MigrationSet, rows: &[AppliedMigration]) -> StatusReport {
    let applied = by_version(rows);
    let mut entries = Vec::with_capacity(set.len() + rows.len());
    let mut counts = StatusCounts::default();
    for m in set.iter() {
        let entry = match applied.get(&m.id) {
            None => {
                counts.pending += 1;
                entry(m.id, &m.name, Status::Pending, dir_of(m), None, None)
            }
            Some(row) => {
                let (status, progress) = match row.state {
                    RowState::Applied if row.checksum != m.checksum.to_string() => {
                        counts.changed += 1;
                        (Status::Changed, None)
                    }
                    RowState::Applied => {
                        counts.applied += 1;
                        (Status::Applied, None)
                    }
                    RowState::Partial { progress } => {
                        counts.partial += 1;
                        (Status::Partial, Some((progress, m.up.statements.len())))
                    }
                    RowState::Reverting { progress } => {
                        counts.reverting += 1;
                        let total = m.down.as_ref().map_or(0, |d| d.statements.len());
                        (Status::Reverting, Some((progress, total)))
                    }
                };
                StatusEntry {
                    progress,
                    ..entry(m.id, &m.name, status, dir_of(m), Some(row.batch), Some(row))
                }
            }
        };
        entries.push(entry);
    }
    for row in rows {
        if set.get(row.version).is_none() {
            counts.missing += 1;
            entries.push(entry(
                row.version,
                &row.name,
                Status::Missing,
                row.source_dir.clone(),
                Some(row.batch),
                Some(row),
            ));
        }
    }
    entries.sort_by_key(|e| e.version);
    StatusReport { entries, counts }
}

fn dir_of(m: &Migration) -> String {
    m.dir.display().to_string()
}

fn entry(
    version: MigrationId,
    name: &str,
    status: Status,
    dir: String,
    batch: Option<i32>,
    row: Option<&AppliedMigration>,
) -> StatusEntry {
    StatusEntry {
        version,
        name: name.to_string(),
        status,
        dir,
        batch,
        applied_at: row.map(|r| r.applied_at.clone()),
        progress: None,
    }
}

/// Why `migrate` or `rollback` refuses to start. Nothing has run when one of these is returned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("target version {0} is not in any migration directory")]
    UnknownTarget(MigrationId),
    #[error(
        "{count} pending migration(s) are older than the newest applied one ({newest}), first {first}"
    )]
    OutOfOrder {
        count: usize,
        first: String,
        newest: MigrationId,
    },
    #[error("migration {0} stopped part way and its file is no longer in any migration directory")]
    PartialMissing(String),
    #[error(
        "migration {name} stopped after {done} statement(s) and the statements that ran have changed in the file since"
    )]
    PartialChanged { name: String, done: usize },
    #[error(
        "migration {0} is half rolled back; run `colocate rollback` again to finish undoing it"
    )]
    Reverting(String),
    #[error(
        "migration {0} stopped part way; run `colocate migrate` to finish it before rolling back"
    )]
    PartialBlocksRollback(String),
    #[error("cannot roll back {}: no down part ({})", .0.len(), .0.join(", "))]
    NoDown(Vec<String>),
    #[error("cannot roll back {0}: its file is in none of the migration directories")]
    RollbackMissing(String),
    #[error("nothing is applied at or after version {0}, and {0} is not applied")]
    UnknownRollbackTarget(MigrationId),
}

impl Refusal {
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self {
            Refusal::UnknownTarget(_) => "run `colocate status` to list the versions",
            Refusal::OutOfOrder { .. } => {
                "give the file a newer timestamp, or pass --allow-out-of-order if running it late is intended"
            }
            Refusal::PartialMissing(_) => "restore the file so the run can finish or be undone",
            Refusal::PartialChanged { .. } => {
                "restore the statements that already ran; only the failed statement and those after it may change"
            }
            Refusal::NoDown(_) => "add a `-- migrate:down` section to each file named",
            Refusal::RollbackMissing(_) => "restore the file (its down part is needed to undo it)",
            _ => return None,
        })
    }
}

/// One migration `migrate` will run, and the statement to start at (non-zero when it resumes a
/// migration that stopped part way outside a transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRun {
    pub version: MigrationId,
    pub resume_at: usize,
}

/// Decide what `migrate` runs: partial migrations first (resumed), then pending ones in version
/// order, up to and including `target`.
pub fn plan_migrate(
    set: &MigrationSet,
    rows: &[AppliedMigration],
    target: Option<MigrationId>,
    allow_out_of_order: bool,
) -> Result<Vec<PlannedRun>, Refusal> {
    if let Some(t) = target {
        if set.get(t).is_none() {
            return Err(Refusal::UnknownTarget(t));
        }
    }
    let applied = by_version(rows);
    let mut runs = Vec::new();
    for row in rows {
        match row.state {
            RowState::Applied => {}
            RowState::Reverting { .. } => return Err(Refusal::Reverting(display(row))),
            RowState::Partial { progress } => {
                let m = set
                    .get(row.version)
                    .ok_or_else(|| Refusal::PartialMissing(display(row)))?;
                if row.prefix_checksum.as_deref() != Some(&prefix_checksum(&m.up, progress))
                    || m.up.transaction
                {
                    return Err(Refusal::PartialChanged {
                        name: m.file_name(),
                        done: progress,
                    });
                }
                runs.push(PlannedRun {
                    version: m.id,
                    resume_at: progress,
                });
            }
        }
    }
    let newest = rows.iter().map(|r| r.version).max();
    let pending: Vec<&Migration> = set
        .iter()
        .filter(|m| !applied.contains_key(&m.id))
        .filter(|m| target.is_none_or(|t| m.id <= t))
        .collect();
    if let (Some(newest), false) = (newest, allow_out_of_order) {
        let late: Vec<&&Migration> = pending.iter().filter(|m| m.id < newest).collect();
        if let Some(first) = late.first() {
            return Err(Refusal::OutOfOrder {
                count: late.len(),
                first: first.file_name(),
                newest,
            });
        }
    }
    runs.extend(pending.iter().map(|m| PlannedRun {
        version: m.id,
        resume_at: 0,
    }));
    Ok(runs)
}

fn display(row: &AppliedMigration) -> String {
    format!("{}_{}", row.version, row.name)
}

/// Which applied migrations `rollback` undoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackScope {
    /// Every migration of the newest batch.
    LastBatch,
    /// The newest N migrations.
    Steps(usize),
    /// Everything applied after this version (the version itself stays). `None` = everything.
    To(Option<MigrationId>),
}

/// One migration `rollback` will undo, and the down statement to start at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRevert {
    pub version: MigrationId,
    pub resume_at: usize,
}

/// Decide what `rollback` undoes, newest first. Refuses, before anything runs, when any of them
/// lacks a down part or a file, or when a migration stopped part way.
pub fn plan_rollback(
    set: &MigrationSet,
    rows: &[AppliedMigration],
    scope: RollbackScope,
) -> Result<Vec<PlannedRevert>, Refusal> {
    let mut ordered: Vec<&AppliedMigration> = rows.iter().collect();
    ordered.sort_by_key(|r| std::cmp::Reverse(r.version));
    // A half-reverted migration is finished first, whatever the scope.
    let reverting: Vec<&AppliedMigration> = ordered
        .iter()
        .copied()
        .filter(|r| matches!(r.state, RowState::Reverting { .. }))
        .collect();
    if let Some(p) = ordered
        .iter()
        .find(|r| matches!(r.state, RowState::Partial { .. }))
    {
        return Err(Refusal::PartialBlocksRollback(display(p)));
    }
    let applied: Vec<&AppliedMigration> = ordered
        .iter()
        .copied()
        .filter(|r| r.state == RowState::Applied)
        .collect();
    let chosen: Vec<&AppliedMigration> = if !reverting.is_empty() {
        reverting
    } else {
        match scope {
            RollbackScope::LastBatch => {
                let last = applied.iter().map(|r| r.batch).max();
                applied
                    .into_iter()
                    .filter(|r| Some(r.batch) == last)
                    .collect()
            }
            RollbackScope::Steps(n) => applied.into_iter().take(n).collect(),
            RollbackScope::To(None) => applied,
            RollbackScope::To(Some(v)) => {
                if !rows.iter().any(|r| r.version == v) && set.get(v).is_none() {
                    return Err(Refusal::UnknownRollbackTarget(v));
                }
                applied.into_iter().filter(|r| r.version > v).collect()
            }
        }
    };
    let mut no_down = Vec::new();
    let mut plan = Vec::with_capacity(chosen.len());
    for row in chosen {
        let m = set
            .get(row.version)
            .ok_or_else(|| Refusal::RollbackMissing(display(row)))?;
        if m.down.is_none() {
            no_down.push(m.file_name());
        }
        let resume_at = match row.state {
            RowState::Reverting { progress } => progress,
            _ => 0,
        };
        plan.push(PlannedRevert {
            version: m.id,
            resume_at,
        });
    }
    if !no_down.is_empty() {
        return Err(Refusal::NoDown(no_down));
    }
    Ok(plan)
}
