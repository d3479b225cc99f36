//! `baseline`: adopt a history another tool kept (a knex or dbmate table, or "everything up to
//! this version") by recording those migrations as applied without running them.

use std::collections::BTreeSet;

use colocate_core::history;
use colocate_core::{Migration, MigrationId, MigrationSet};
use postgres::Client;
use serde::Serialize;

use crate::error::{ErrorKind, PgError};
use crate::history::TableName;
use crate::runner::{item, Events, RunItem, Runner};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaselineReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<i32>,
    /// Migrations now recorded as applied.
    pub marked: Vec<RunItem>,
    /// Already in the history: left alone.
    pub already_recorded: usize,
    /// Names in the source table with no migration file of that version.
    pub unmatched: Vec<String>,
}

/// Where `baseline` learns which migrations another tool already applied.
#[derive(Debug, Clone)]
pub enum BaselineSource {
    /// A table with a column holding migration names that start with the version
    /// (`knex_migrations.name`, `schema_migrations.version`, ...).
    Table { table: String, column: String },
    /// Every migration up to and including this version.
    UpTo(MigrationId),
}

impl Runner<'_> {
    /// Record migrations another tool already applied, without running them.
    pub fn baseline(
        &mut self,
        set: &MigrationSet,
        source: &BaselineSource,
        events: Events<'_>,
    ) -> Result<BaselineReport, PgError> {
        self.locked(events, |run, _| {
            let (wanted, unmatched) = match source {
                BaselineSource::UpTo(v) => {
                    if set.get(*v).is_none() {
                        return Err(history::Refusal::UnknownTarget(*v).into());
                    }
                    let ids: BTreeSet<MigrationId> =
                        set.iter().map(|m| m.id).filter(|id| id <= v).collect();
                    (ids, Vec::new())
                }
                BaselineSource::Table { table, column } => {
                    let names = read_names(run.client, &TableName::new(table), column)?;
                    let mut ids = BTreeSet::new();
                    let mut unmatched = Vec::new();
                    for name in names {
                        match leading_version(&name).filter(|id| set.get(*id).is_some()) {
                            Some(id) => {
                                ids.insert(id);
                            }
                            None => unmatched.push(name),
                        }
                    }
                    (ids, unmatched)
                }
            };
            run.history.ensure(run.client)?;
            let rows = run.history.read(run.client)?;
            let recorded = history::by_version(&rows);
            let mut report = BaselineReport {
                batch: None,
                marked: Vec::new(),
                already_recorded: 0,
                unmatched,
            };
            let todo: Vec<&Migration> = wanted
                .iter()
                .filter_map(|id| set.get(*id))
                .filter(|m| {
                    let known = recorded.contains_key(&m.id);
                    report.already_recorded += usize::from(known);
                    !known
                })
                .collect();
            if todo.is_empty() {
                return Ok(report);
            }
            let batch = run.history.next_batch(run.client)?;
            // One statement for the whole set: adopting a history of thousands of migrations
            // costs one round trip, not one per row.
            let versions: Vec<i64> = todo.iter().map(|m| m.id.as_u64() as i64).collect();
            let names: Vec<&str> = todo.iter().map(|m| m.name.as_str()).collect();
            let dirs: Vec<String> = todo.iter().map(|m| m.dir.display().to_string()).collect();
            let sums: Vec<String> = todo.iter().map(|m| m.checksum.to_string()).collect();
            let sql = format!(
                "INSERT INTO {} (version, name, source_dir, checksum, batch, duration_ms, state) \
                 SELECT v, n, d, c, $5, 0, 'applied' FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS u(v, n, d, c)",
                run.history.sql()
            );
            run.client
                .execute(&sql, &[&versions, &names, &dirs, &sums, &batch])
                .map_err(|e| {
                    PgError::query(format!("record baseline in {}", run.history.display()), &e)
                })?;
            report.batch = Some(batch);
            report.marked = todo.iter().map(|m| item(m, &m.up, 0, 0.0, false)).collect();
            Ok(report)
        })
    }
}

/// The version a migration name from another tool starts with (`20240101120000_x.js` → that id).
pub fn leading_version(name: &str) -> Option<MigrationId> {
    let digits: String = name.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.len() != 14 {
        return None;
    }
    MigrationId::parse(&digits).ok()
}

fn read_names(c: &mut Client, table: &TableName, column: &str) -> Result<Vec<String>, PgError> {
    if !table.exists(c)? {
        return Err(ErrorKind::NoSuchTable(table.display()).into());
    }
    let has: bool = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND attnum > 0 AND NOT attisdropped)",
            &[&table.sql(), &column],
        )
        .map_err(|e| PgError::query(format!("look up {}", table.display()), &e))?
        .get(0);
    if !has {
        return Err(ErrorKind::NoSuchColumn {
            table: table.display(),
            column: column.to_string(),
        }
        .into());
    }
    let sql = format!(
        "SELECT {}::text FROM {} WHERE {} IS NOT NULL",
        postgres_protocol::escape::escape_identifier(column),
        table.sql(),
        postgres_protocol::escape::escape_identifier(column),
    );
    let rows = c
        .query(&sql, &[])
        .map_err(|e| PgError::query(format!("read {}", table.display()), &e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_versions() {
        assert_eq!(
            leading_version("20240101120000_create_users.cjs").map(|v| v.to_string()),
            Some("20240101120000".into())
        );
        assert_eq!(leading_version("2024_x.js"), None);
        assert_eq!(leading_version("20241301120000_bad_month.js"), None);
    }
}
