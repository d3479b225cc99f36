//! Verification after a run: every converted table placed as planned, every foreign key still
//! there and enforced, every row still there. Row counts come from the shards where Citus can
//! tell (one command per node), else from batched `count(*)`.
//!
//! A key is enforced when it does not lead from a table that stays plain into a distributed one
//! (Citus keeps such a key on the coordinator's shell, where it checks nothing): one into a
//! table this run distributed is an error; one that did not hold before the run either, or a
//! `NOT VALID` one, is a warning the report carries (`check` fails on each).

use std::collections::{BTreeMap, BTreeSet};

use colocate_core::distribution::DistributionConfig;
use colocate_core::plan::{plan, BrokenKey, Plan, State, UnenforcedKey};
use colocate_core::schema::{QualifiedName, Schema};
use postgres::Client;
use serde::Serialize;

use crate::error::{ErrorKind, PgError};
use crate::introspect::introspect;
use crate::topology::citus_installed;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Verification {
    pub tables: usize,
    pub foreign_keys: usize,
    pub rows: i64,
    /// With `--online`, every table whose rows a run without it compares: the application
    /// keeps writing during such a run, so their row counts are not compared (their role,
    /// column, colocation and keys are).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rows_not_compared: Vec<QualifiedName>,
}

pub(crate) fn count_rows(c: &mut Client, t: &QualifiedName) -> Result<i64, PgError> {
    c.query_one(&format!("SELECT count(*) FROM {}", t.sql()), &[])
        .map(|r| r.get(0))
        .map_err(|e| PgError::query(format!("count rows of {t}"), &e))
}

/// The row counts of the Citus tables among `tables` whose every shard was counted on the
/// nodes (see [`count_rows_many`]); nothing when Citus is not installed or the command fails.
pub fn count_shard_rows(
    c: &mut Client,
    tables: &[&QualifiedName],
) -> Result<BTreeMap<QualifiedName, i64>, PgError> {
    let mut counts = BTreeMap::new();
    if tables.is_empty() || !citus_installed(c)? {
        return Ok(counts);
    }
    let by_name: BTreeMap<String, &QualifiedName> = tables.iter().map(|t| (t.sql(), *t)).collect();
    let names: Vec<&String> = by_name.keys().collect();
    // A failure here only means the slower count(*) for every table.
    let Ok(rows) = c.query(include_str!("sql/count_shard_rows.sql"), &[&names]) else {
        return Ok(counts);
    };
    for r in rows {
        let (name, shards, counted, n): (String, i64, i64, i64) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        if let (Some(t), true) = (by_name.get(&name), shards == counted) {
            counts.insert((*t).clone(), n);
        }
    }
    Ok(counts)
}

/// How many tables one counting query covers.
const COUNT_BATCH: usize = 50;

/// The row counts of `tables`. Citus tables are counted from their shards, every node counting
/// its own in one command (`sql/count_shard_rows.sql`: 280 tables of 32 shards on two workers
/// in ~0.4 s instead of ~1 s of distributed `count(*)`); the rest, and any Citus table whose
/// shards could not all be counted, [`COUNT_BATCH`] tables to a query
/// (`SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b), ...`). When a batch fails, its
/// tables are counted one by one so the error names the table.
pub fn count_rows_many<'a>(
    c: &mut Client,
    tables: impl IntoIterator<Item = &'a QualifiedName>,
) -> Result<BTreeMap<QualifiedName, i64>, PgError> {
    let tables: Vec<&QualifiedName> = tables.into_iter().collect();
    let mut counts = count_shard_rows(c, &tables)?;
    let rest: Vec<&QualifiedName> = tables
        .into_iter()
        .filter(|t| !counts.contains_key(*t))
        .collect();
    for batch in rest.chunks(COUNT_BATCH) {
        let columns: Vec<String> = batch
            .iter()
            .map(|t| format!("(SELECT count(*) FROM {})", t.sql()))
            .collect();
        match c.query_one(&format!("SELECT {}", columns.join(", ")), &[]) {
            Ok(row) => {
                for (i, t) in batch.iter().enumerate() {
                    counts.insert((*t).clone(), row.get(i));
                }
            }
            Err(_) => {
                for t in batch {
                    counts.insert((*t).clone(), count_rows(c, t)?);
                }
            }
        }
    }
    Ok(counts)
}

pub(crate) fn all_keys(schema: &Schema) -> BTreeSet<(String, String)> {
    schema
        .tables
        .values()
        .flat_map(|t| {
            t.foreign_keys
                .iter()
                .map(move |fk| (t.name.sql(), fk.name.clone()))
        })
        .collect()
}

/// What a run started from, for [`verify`] to compare with.
pub(crate) struct Before<'a> {
    pub(crate) rows: &'a BTreeMap<QualifiedName, i64>,
    pub(crate) keys: &'a BTreeSet<(String, String)>,
    /// The keys that did not hold when the run started.
    pub(crate) unenforced: &'a [UnenforcedKey],
}

/// After the run: every converted table as planned, every foreign key present and enforced (see
/// the module documentation), rows unchanged. `only`: the tables of a declarative step, whose
/// keys from tables a later step converts are no error. Also returns the keys that do not hold,
/// not by the run's doing (warnings).
pub(crate) fn verify(
    c: &mut Client,
    config: &DistributionConfig,
    converted: &[QualifiedName],
    only: Option<&BTreeSet<QualifiedName>>,
    before: &Before<'_>,
) -> Result<(Verification, Vec<UnenforcedKey>), PgError> {
    let (rows_before, keys_before) = (before.rows, before.keys);
    let schema = introspect(c, &config.schema_filter())?;
    let after: Plan = plan(&schema, config);
    let mut problems = Vec::new();
    for name in converted {
        match after.table(name) {
            Some(t) if t.state == State::Done => {}
            Some(t) => problems.push(format!(
                "{name} is not as planned after apply (state {:?}, role {})",
                t.state,
                t.role.label()
            )),
            None => problems.push(format!("{name} disappeared during apply")),
        }
    }
    let keys_after = all_keys(&schema);
    for (table, key) in keys_before.difference(&keys_after) {
        problems.push(format!(
            "foreign key {key} on {table} is missing after apply"
        ));
    }
    let mut rows = 0;
    let counts = count_rows_many(c, rows_before.keys())?;
    for (name, before) in rows_before {
        let now = counts[name];
        rows += now;
        if now != *before {
            problems.push(format!(
                "{name} had {before} rows before apply and has {now}"
            ));
        }
    }
    let keys = after.after_run(&schema, converted, only, before.unenforced);
    if !problems.is_empty() || !keys.broken.is_empty() {
        return Err(ErrorKind::Verify {
            problems,
            unenforced: keys.broken.iter().map(BrokenKey::describe).collect(),
        }
        .into());
    }
    let verified = Verification {
        tables: converted.len(),
        foreign_keys: keys_after.len(),
        rows,
        rows_not_compared: Vec::new(),
    };
    Ok((verified, keys.unenforced))
}
