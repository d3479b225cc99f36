//! The history table (`colocate_migrations` unless configured): one row per applied migration.

use colocate_core::history::{AppliedMigration, RowState};
use colocate_core::MigrationId;
use postgres::GenericClient;
use postgres_protocol::escape::{escape_identifier, escape_literal};

use crate::error::{ErrorKind, PgError};

/// A table named in configuration or on the command line: `table` or `schema.table`, written
/// without quotes; each part is quoted by the driver's escaping when sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    schema: Option<String>,
    table: String,
}

impl TableName {
    /// Parts may be double-quoted like every configured name (`"Ops"."hist"`); configuration is
    /// validated before it gets here, so a name that splits into nothing is taken whole.
    pub fn new(name: &str) -> TableName {
        match colocate_core::schema::split_table_name(name) {
            Ok((schema, table)) => TableName { schema, table },
            Err(_) => TableName {
                schema: None,
                table: name.to_string(),
            },
        }
    }

    /// The name as SQL text, every part quoted.
    pub fn sql(&self) -> String {
        qualified(self.schema.as_deref(), &self.table)
    }

    /// The name as the user wrote it, for messages.
    pub fn display(&self) -> String {
        match &self.schema {
            Some(s) => format!("{s}.{}", self.table),
            None => self.table.clone(),
        }
    }

    /// Whether the table exists.
    pub fn exists(&self, c: &mut impl GenericClient) -> Result<bool, PgError> {
        let row = c
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&self.sql()])
            .map_err(|e| PgError::query(format!("look up {}", self.display()), &e))?;
        Ok(row.get(0))
    }
}

/// The history table's name (`colocate_migrations` unless configured).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryTable(TableName);

pub const DEFAULT_HISTORY_TABLE: &str = "colocate_migrations";

impl std::ops::Deref for HistoryTable {
    type Target = TableName;
    fn deref(&self) -> &TableName {
        &self.0
    }
}

impl HistoryTable {
    pub fn new(name: &str) -> HistoryTable {
        HistoryTable(TableName::new(name))
    }

    pub fn ensure(&self, c: &mut impl GenericClient) -> Result<(), PgError> {
        if self.exists(c)? {
            return Ok(());
        }
        let mut sql = String::new();
        if let Some(s) = &self.0.schema {
            sql.push_str(&format!(
                "CREATE SCHEMA IF NOT EXISTS {};\n",
                escape_identifier(s)
            ));
        }
        sql.push_str(&format!(
            include_str!("sql/create_history.sql"),
            table = self.sql(),
            comment = escape_literal(colocate_core::history::HISTORY_COMMENT),
        ));
        c.batch_execute(&sql)
            .map_err(|e| PgError::query(format!("create history table {}", self.display()), &e))
    }

    /// Every row, oldest version first. A missing table reads as no rows.
    pub fn read(&self, c: &mut impl GenericClient) -> Result<Vec<AppliedMigration>, PgError> {
        if !self.exists(c)? {
            return Ok(Vec::new());
        }
        let sql = format!(include_str!("sql/read_history.sql"), table = self.sql());
        let rows = c
            .query(&sql, &[])
            .map_err(|e| PgError::query(format!("read {}", self.display()), &e))?;
        rows.iter()
            .map(|r| {
                let version: i64 = r.get(0);
                let state: String = r.get(7);
                let parsed = MigrationId::parse(&format!("{version:014}")).ok();
                let row_state = RowState::from_db(&state, r.get(8));
                match (parsed, row_state) {
                    (Some(v), Some(s)) => Ok(AppliedMigration {
                        version: v,
                        name: r.get(1),
                        source_dir: r.get(2),
                        checksum: r.get(3),
                        batch: r.get(4),
                        applied_at: r.get(5),
                        duration_ms: r.get(6),
                        state: s,
                        prefix_checksum: r.get(9),
                        error: r.get(10),
                    }),
                    _ => Err(ErrorKind::BadHistory {
                        table: self.display(),
                        version: version.to_string(),
                        state,
                    }
                    .into()),
                }
            })
            .collect()
    }

    /// The batch number the next run records.
    pub fn next_batch(&self, c: &mut impl GenericClient) -> Result<i32, PgError> {
        let sql = format!("SELECT coalesce(max(batch), 0) + 1 FROM {}", self.sql());
        let row = c
            .query_one(&sql, &[])
            .map_err(|e| PgError::query(format!("read {}", self.display()), &e))?;
        Ok(row.get(0))
    }

    pub fn upsert_sql(&self) -> String {
        format!(include_str!("sql/upsert_history.sql"), table = self.sql())
    }

    pub fn delete_sql(&self) -> String {
        format!("DELETE FROM {} WHERE version = $1", self.sql())
    }

    pub fn reverting_sql(&self) -> String {
        format!(
            "UPDATE {} SET state = 'reverting', progress = $2, prefix_checksum = $3, error = $4 WHERE version = $1",
            self.sql()
        )
    }
}

/// `schema.table` or `table`, every part quoted by the driver's escaping.
pub fn qualified(schema: Option<&str>, table: &str) -> String {
    match schema {
        Some(s) => format!("{}.{}", escape_identifier(s), escape_identifier(table)),
        None => escape_identifier(table),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted() {
        assert_eq!(
            HistoryTable::new("colocate_migrations").sql(),
            "\"colocate_migrations\""
        );
        // Configured names are quoted identifiers: `"My ""hist"""` is the table `My "hist"`.
        assert_eq!(
            HistoryTable::new("ops.\"My \"\"hist\"\"\"").sql(),
            "\"ops\".\"My \"\"hist\"\"\""
        );
        assert_eq!(HistoryTable::new("Ops.T").sql(), "\"Ops\".\"T\"");
    }
}
