//! What the history table says, compared with the migration files: status, what `migrate` would
//! run, what `rollback` would undo. Pure functions over rows the database crate read.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::migration::{Migration, MigrationId, MigrationSet, Section};

/// The history table's comment: it marks the table as colocate's own, so planning leaves it
/// out whatever its configured name.
pub const HISTORY_COMMENT: &str = "applied migrations, kept by colocate; do not edit by hand";

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
    /// A file with nothing in its up part yet (just made by `colocate new`).
    Empty,
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
            Status::Empty => "empty",
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
    /// Files with an empty up part (listed by `status` only; `migrate` refuses them).
    #[serde(skip_serializing_if = "is_zero")]
    pub empty: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    pub entries: Vec<StatusEntry>,
    pub counts: StatusCounts,
}

impl StatusReport {
    /// What `status --check` fails on: anything not plainly applied.
    /// What `status --check` fails on: pending, changed, part-way or reverting migrations, and
    /// unless `allow_missing`, history rows whose file is in no directory (most often a
    /// directory left out of the run, as a forgotten `--dir`).
    pub fn needs_attention(&self, allow_missing: bool) -> bool {
        let c = &self.counts;
        let missing = if allow_missing { 0 } else { c.missing };
        c.pending + c.changed + c.partial + c.reverting + c.empty + missing > 0
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
    for e in &set.empty {
        // Emptied after it ran: changed; else a file still to be written.
        let (status, row) = match applied.get(&e.id) {
            Some(row) => {
                counts.changed += 1;
                (Status::Changed, Some(*row))
            }
            None => {
                counts.empty += 1;
                (Status::Empty, None)
            }
        };
        entries.push(entry(
            e.id,
            &e.name,
            status,
            e.source.clone(),
            row.map(|r| r.batch),
            row,
        ));
    }
    for row in rows {
        if set.get(row.version).is_none() && !set.empty.iter().any(|e| e.id == row.version) {
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
    m.source.clone()
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

fn pending_older(n: usize) -> String {
    format!(
        "{} {}",
        crate::words::count(n, "pending migration"),
        crate::words::verb(n, "is", "are")
    )
}

fn no_down(n: usize) -> String {
    format!(
        "{} {}",
        crate::words::count(n, "migration"),
        crate::words::verb(n, "has", "have")
    )
}

/// Why `migrate` or `rollback` refuses to start. Nothing has run when one of these is returned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("target version {0} is not in any migration directory")]
    UnknownTarget(MigrationId),
    #[error(
        "{} older than the newest applied one ({newest}), first {first}",
        pending_older(*count)
    )]
    OutOfOrder {
        count: usize,
        first: String,
        newest: MigrationId,
    },
    #[error("migration {0} stopped part way and its file is no longer in any migration directory")]
    PartialMissing(String),
    #[error(
        "migration {name} stopped after {} and the statements that ran have changed in the file since",
        crate::words::count(*done, "statement")
    )]
    PartialChanged { name: String, done: usize },
    #[error(
        "migration {name} stopped after {} outside a transaction, but its file now runs it in one",
        crate::words::count(*done, "statement")
    )]
    PartialNowTransactional { name: String, done: usize },
    #[error(
        "migration {0} is half rolled back; run `colocate rollback` again to finish undoing it"
    )]
    Reverting(String),
    #[error(
        "migration {0} stopped part way; run `colocate migrate` to finish it before rolling back"
    )]
    PartialBlocksRollback(String),
    #[error("cannot roll back: {} no down part ({})", no_down(.0.len()), .0.join(", "))]
    NoDown(Vec<String>),
    #[error("cannot roll back {0}: its file is in none of the migration directories")]
    RollbackMissing(String),
    #[error("nothing is applied at or after version {0}, and {0} is not applied")]
    UnknownRollbackTarget(MigrationId),
}

impl Refusal {
    pub fn hint(&self) -> Option<Cow<'static, str>> {
        Some(Cow::Borrowed(match self {
            Refusal::UnknownTarget(_) => "run `colocate status` to list the versions",
            Refusal::OutOfOrder { .. } => {
                "give the file a newer timestamp, or pass --allow-out-of-order if running it late is intended"
            }
            Refusal::PartialMissing(_) => "restore the file so the run can finish or be undone",
            Refusal::PartialChanged { .. } => {
                "restore the statements that already ran; only the failed statement and those after it may change"
            }
            Refusal::NoDown(_) => "add a `-- migrate:down` section to each file named",
            Refusal::PartialNowTransactional { .. } => {
                "keep `transaction:false` on its up section until it has finished"
            }
            Refusal::RollbackMissing(_) => "restore the file (its down part is needed to undo it)",
            _ => return None,
        }))
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
                if m.step.is_some() {
                    // A declarative step is idempotent: it simply runs again.
                    runs.push(PlannedRun {
                        version: m.id,
                        resume_at: 0,
                    });
                    continue;
                }
                if m.up.transaction {
                    return Err(Refusal::PartialNowTransactional {
                        name: m.file_name(),
                        done: progress,
                    });
                }
                if row.prefix_checksum.as_deref() != Some(&prefix_checksum(&m.up, progress)) {
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
        // A declarative step's down part is automatic.
        if m.down.is_none() && m.step.is_none() {
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn mig(file: &str, body: &str) -> Migration {
        Migration::parse(
            Path::new("db"),
            &Path::new("db").join(file),
            body.as_bytes(),
        )
        .unwrap()
    }

    fn set(ms: Vec<Migration>) -> MigrationSet {
        MigrationSet::from_migrations(ms).unwrap()
    }

    fn id(s: &str) -> MigrationId {
        s.parse().unwrap()
    }

    fn row(m: &Migration, batch: i32, state: RowState) -> AppliedMigration {
        AppliedMigration {
            version: m.id,
            name: m.name.clone(),
            source_dir: "db".into(),
            checksum: m.checksum.to_string(),
            batch,
            applied_at: "2024-01-01T00:00:00Z".into(),
            duration_ms: 1.0,
            state,
            prefix_checksum: match state {
                RowState::Partial { progress } => Some(prefix_checksum(&m.up, progress)),
                _ => None,
            },
            error: None,
        }
    }

    const UPDOWN: &str =
        "-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n";
    const NOTX: &str = "-- migrate:up transaction:false\nSELECT 1;\nSELECT 2;\nSELECT 3;\n";

    fn three() -> Vec<Migration> {
        vec![
            mig("20240101000000_a.sql", UPDOWN),
            mig("20240102000000_b.sql", UPDOWN),
            mig("20240103000000_c.sql", UPDOWN),
        ]
    }

    #[test]
    fn status_classifies_every_case() {
        let ms = three();
        let mut changed = row(&ms[1], 1, RowState::Applied);
        changed.checksum = "0".repeat(64);
        let gone = mig("20231231000000_gone.sql", UPDOWN);
        let rows = vec![
            row(&ms[0], 1, RowState::Applied),
            changed,
            row(&gone, 1, RowState::Applied),
        ];
        let r = status(&set(ms), &rows);
        let got: Vec<(String, Status)> = r
            .entries
            .iter()
            .map(|e| (e.name.clone(), e.status))
            .collect();
        assert_eq!(
            got,
            vec![
                ("gone".into(), Status::Missing),
                ("a".into(), Status::Applied),
                ("b".into(), Status::Changed),
                ("c".into(), Status::Pending),
            ]
        );
        assert!(r.needs_attention(true));
        assert_eq!(
            (r.counts.missing, r.counts.changed, r.counts.pending),
            (1, 1, 1)
        );
    }

    #[test]
    fn missing_alone_fails_check_unless_allowed() {
        let ms = three();
        let rows: Vec<_> = ms.iter().map(|m| row(m, 1, RowState::Applied)).collect();
        let r = status(&set(ms[..2].to_vec()), &rows);
        assert_eq!(r.counts.missing, 1);
        assert!(r.needs_attention(false));
        assert!(!r.needs_attention(true));
        let all = status(&set(ms.to_vec()), &rows);
        assert!(!all.needs_attention(false));
    }

    #[test]
    fn migrate_runs_pending_in_order_up_to_target() {
        let ms = three();
        let s = set(ms.clone());
        let all = plan_migrate(&s, &[], None, false).unwrap();
        assert_eq!(
            all.iter().map(|r| r.version).collect::<Vec<_>>(),
            ms.iter().map(|m| m.id).collect::<Vec<_>>()
        );
        let two = plan_migrate(&s, &[], Some(id("20240102000000")), false).unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(
            plan_migrate(&s, &[], Some(id("20240105000000")), false),
            Err(Refusal::UnknownTarget(id("20240105000000")))
        );
    }

    #[test]
    fn out_of_order_is_refused_unless_allowed() {
        let ms = three();
        let rows = vec![
            row(&ms[0], 1, RowState::Applied),
            row(&ms[2], 1, RowState::Applied),
        ];
        let s = set(ms);
        let err = plan_migrate(&s, &rows, None, false).unwrap_err();
        assert!(matches!(err, Refusal::OutOfOrder { count: 1, .. }), "{err}");
        assert!(err.to_string().contains("20240102000000_b.sql"), "{err}");
        let ok = plan_migrate(&s, &rows, None, true).unwrap();
        assert_eq!(
            ok,
            vec![PlannedRun {
                version: id("20240102000000"),
                resume_at: 0
            }]
        );
    }

    #[test]
    fn partial_migrations_resume_only_when_what_ran_is_unchanged() {
        let m = mig("20240101000000_n.sql", NOTX);
        let rows = vec![row(&m, 1, RowState::Partial { progress: 2 })];
        let plan = plan_migrate(&set(vec![m.clone()]), &rows, None, false).unwrap();
        assert_eq!(
            plan,
            vec![PlannedRun {
                version: m.id,
                resume_at: 2
            }]
        );
        // Statement 3 changed: still resumes.
        let fixed = mig(
            "20240101000000_n.sql",
            "-- migrate:up transaction:false\nSELECT 1;\nSELECT 2;\nSELECT 33;\n",
        );
        assert!(plan_migrate(&set(vec![fixed]), &rows, None, false).is_ok());
        // Statement 1 changed: refused.
        let edited = mig(
            "20240101000000_n.sql",
            "-- migrate:up transaction:false\nSELECT 11;\nSELECT 2;\nSELECT 3;\n",
        );
        let err = plan_migrate(&set(vec![edited]), &rows, None, false).unwrap_err();
        assert!(
            matches!(err, Refusal::PartialChanged { done: 2, .. }),
            "{err}"
        );
        // File gone: refused.
        let err = plan_migrate(&set(vec![]), &rows, None, false).unwrap_err();
        assert!(matches!(err, Refusal::PartialMissing(_)));
    }

    #[test]
    fn rollback_scopes() {
        let ms = three();
        let rows = vec![
            row(&ms[0], 1, RowState::Applied),
            row(&ms[1], 2, RowState::Applied),
            row(&ms[2], 2, RowState::Applied),
        ];
        let s = set(ms);
        let versions = |scope| {
            plan_rollback(&s, &rows, scope)
                .unwrap()
                .iter()
                .map(|p| p.version.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            versions(RollbackScope::LastBatch),
            ["20240103000000", "20240102000000"]
        );
        assert_eq!(versions(RollbackScope::Steps(1)), ["20240103000000"]);
        assert_eq!(
            versions(RollbackScope::To(Some(id("20240101000000")))),
            ["20240103000000", "20240102000000"]
        );
        assert_eq!(versions(RollbackScope::To(None)).len(), 3);
        assert!(matches!(
            plan_rollback(&s, &rows, RollbackScope::To(Some(id("20220101000000")))),
            Err(Refusal::UnknownRollbackTarget(_))
        ));
    }

    #[test]
    fn rollback_refuses_without_down_parts_naming_all_of_them() {
        let ms = vec![
            mig("20240101000000_a.sql", "-- migrate:up\nSELECT 1;\n"),
            mig("20240102000000_b.sql", UPDOWN),
            mig(
                "20240103000000_c.sql",
                "-- migrate:up\nSELECT 1;\n-- migrate:down\n-- nothing\n",
            ),
        ];
        let rows: Vec<_> = ms.iter().map(|m| row(m, 1, RowState::Applied)).collect();
        let err = plan_rollback(&set(ms), &rows, RollbackScope::LastBatch).unwrap_err();
        assert_eq!(
            err,
            Refusal::NoDown(vec![
                "20240103000000_c.sql".into(),
                "20240101000000_a.sql".into()
            ])
        );
    }

    #[test]
    fn declarative_steps_have_an_automatic_down_part_and_a_checksum() {
        let step = |file: &str, body: &str| {
            Migration::parse(
                Path::new("citus"),
                &Path::new("citus").join(file),
                body.as_bytes(),
            )
            .unwrap()
        };
        let ms = vec![
            mig("20240101000000_a.sql", UPDOWN),
            step("20240102000000_citus.toml", "[citus]\nextension = true\n"),
            step(
                "20240103000000_lookups.toml",
                "[reference]\ntables = [\"countries\"]\n",
            ),
        ];
        let rows: Vec<_> = ms.iter().map(|m| row(m, 1, RowState::Applied)).collect();
        let s = set(ms.clone());
        let plan = plan_rollback(&s, &rows, RollbackScope::To(None)).unwrap();
        assert_eq!(plan.len(), 3);
        assert_eq!(plan[0].version, id("20240103000000"));
        // The checksum is the file's: an edited step shows as changed.
        let edited = step(
            "20240103000000_lookups.toml",
            "[reference]\ntables = [\"countries\", \"currencies\"]\n",
        );
        let r = status(&set(vec![ms[0].clone(), ms[1].clone(), edited]), &rows);
        assert_eq!(r.counts.changed, 1);
        assert_eq!(r.entries[2].status, Status::Changed);
        // A step is idempotent: one recorded part way simply runs again from the start.
        let mut partial = row(&ms[2], 1, RowState::Partial { progress: 0 });
        partial.prefix_checksum = None;
        let runs = plan_migrate(
            &s,
            &[rows[0].clone(), rows[1].clone(), partial],
            None,
            false,
        )
        .unwrap();
        assert_eq!(
            runs,
            vec![PlannedRun {
                version: id("20240103000000"),
                resume_at: 0
            }]
        );
    }

    #[test]
    fn a_half_reverted_migration_is_finished_first_and_a_partial_one_blocks() {
        let ms = three();
        let rows = vec![
            row(&ms[0], 1, RowState::Applied),
            row(&ms[1], 1, RowState::Reverting { progress: 1 }),
            row(&ms[2], 2, RowState::Applied),
        ];
        let s = set(ms.clone());
        let plan = plan_rollback(&s, &rows, RollbackScope::LastBatch).unwrap();
        assert_eq!(
            plan,
            vec![PlannedRevert {
                version: ms[1].id,
                resume_at: 1
            }]
        );
        assert!(matches!(
            plan_migrate(&s, &rows, None, false),
            Err(Refusal::Reverting(_))
        ));
        let partial = vec![row(&ms[0], 1, RowState::Partial { progress: 0 })];
        assert!(matches!(
            plan_rollback(&s, &partial, RollbackScope::LastBatch),
            Err(Refusal::PartialBlocksRollback(_))
        ));
    }
}
