//! The journal's I/O: the protocol of [`colocate_core::journal`] (drop a key into the journal,
//! restore it `NOT VALID`, validate it) carried out on the server with the statements core
//! renders. `apply` drops keys to convert tables and restores them after; `undistribute` drops
//! keys between a table it turns plain and other Citus tables; both, and every run after a
//! crash, finish whatever the journal still holds once Citus accepts each key between its
//! tables.

use colocate_core::journal::{
    comment_key_sql, drop_key_sql, lock_key_tables_sql, restore_key_sql,
    restore_partitioned_key_sql, validate_key_sql, was_valid, KeyLock, State, Statements,
};
use colocate_core::schema::{ForeignKey, QualifiedName};
use postgres::Client;

use crate::error::{Cause, Done, ErrorKind, PgError};
use crate::history::TableName;
use crate::topology::citus_installed;

/// The journal table's default name.
pub const DEFAULT_TABLE: &str = colocate_core::journal::DEFAULT_TABLE;

/// A journal row: a foreign key dropped on purpose and not yet validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dropped {
    id: i64,
    pub(crate) table: String,
    pub(crate) name: String,
    definition: String,
    state: State,
    /// The referenced table (rows from older versions have none).
    ref_table: Option<String>,
    /// The key's comment when it was dropped.
    comment: Option<String>,
}

impl Dropped {
    /// The row as the schema model keeps it.
    pub(crate) fn journaled(&self) -> colocate_core::schema::JournaledKey {
        colocate_core::schema::JournaledKey {
            table: self.table.clone(),
            key: self.name.clone(),
            state: self.state.as_str().to_string(),
        }
    }

    /// [`Dropped::describe`], with how far the key got: `(dropped)` or `(restored NOT VALID)`.
    pub(crate) fn describe_with_state(&self) -> String {
        let state = match self.state {
            State::Dropped => "dropped",
            _ => "restored NOT VALID, not validated",
        };
        format!("{} ({state})", self.describe())
    }

    pub(crate) fn describe(&self) -> String {
        describe_key(&self.name, &self.table, self.ref_table.as_deref())
    }
}

/// How reports name a journaled foreign key: `name on "s"."t" (to "s"."r")`.
pub(crate) fn describe_key(name: &str, table_sql: &str, ref_table_sql: Option<&str>) -> String {
    match ref_table_sql {
        Some(r) => format!("{name} on {table_sql} (to {r})"),
        None => format!("{name} on {table_sql}"),
    }
}

/// The journal table a run uses.
pub(crate) struct Journal {
    pub(crate) table: TableName,
}

impl Journal {
    pub(crate) fn new(name: &str) -> Journal {
        Journal {
            table: TableName::new(name),
        }
    }

    /// The statements for this journal table.
    pub(crate) fn sql(&self) -> Statements {
        Statements::new(self.table.sql())
    }

    pub(crate) fn ensure(&self, c: &mut Client) -> Result<(), PgError> {
        c.batch_execute(&self.sql().create())
            .map_err(|e| PgError::query(format!("create {}", self.table.display()), &e))
    }

    /// Rows not yet validated, oldest first.
    pub(crate) fn open(&self, c: &mut Client) -> Result<Vec<Dropped>, PgError> {
        if !self.table.exists(c)? {
            return Ok(Vec::new());
        }
        let read =
            |e: &postgres::Error| PgError::query(format!("read {}", self.table.display()), e);
        let rows = c
            .query(&self.sql().open_keys(), &[])
            .map_err(|e| read(&e))?;
        rows.iter()
            .map(|r| {
                let state: &str = r.get(4);
                Ok(Dropped {
                    id: r.get(0),
                    table: r.get(1),
                    name: r.get(2),
                    definition: r.get(3),
                    state: state.parse().map_err(|_| ErrorKind::BadJournal {
                        table: self.table.display(),
                        id: r.get(0),
                        state: state.to_string(),
                    })?,
                    ref_table: r.get(5),
                    comment: r.get(6),
                })
            })
            .collect()
    }

    /// Step 1: record a foreign key and drop it, in one transaction.
    pub(crate) fn drop_key(
        &self,
        c: &mut Client,
        table: &QualifiedName,
        fk: &ForeignKey,
    ) -> Result<i64, Cause> {
        retrying(c, Retry::Locks, |c| self.drop_key_once(c, table, fk))
    }

    fn drop_key_once(
        &self,
        c: &mut Client,
        table: &QualifiedName,
        fk: &ForeignKey,
    ) -> Result<i64, Cause> {
        let mut tx = c.transaction().map_err(|e| Cause::from_postgres(&e))?;
        tx.batch_execute(&lock_key_tables_sql(
            &table.sql(),
            &fk.ref_table.sql(),
            KeyLock::Drop,
        ))
        .map_err(|e| Cause::from_postgres(&e))?;
        let id: i64 = tx
            .query_one(
                &self.sql().record_key(),
                &[&table.sql(), &fk.name, &fk.definition, &fk.ref_table.sql()],
            )
            .map_err(|e| Cause::from_postgres(&e))?
            .get(0);
        tx.batch_execute(&drop_key_sql(table, &fk.name))
            .map_err(|e| Cause::from_postgres(&e))?;
        tx.commit().map_err(|e| Cause::from_postgres(&e))?;
        Ok(id)
    }

    /// Step 2 as a plan's step: re-add a key `NOT VALID` with the comment the journal holds
    /// for it, and mark it restored, in one transaction.
    pub(crate) fn restore_key(
        &self,
        c: &mut Client,
        table: &QualifiedName,
        key: &ForeignKey,
    ) -> Result<(), Cause> {
        retrying(c, Retry::Locks, |c| self.restore_key_once(c, table, key))
    }

    fn restore_key_once(
        &self,
        c: &mut Client,
        table: &QualifiedName,
        key: &ForeignKey,
    ) -> Result<(), Cause> {
        let mut tx = c.transaction().map_err(|e| Cause::from_postgres(&e))?;
        tx.batch_execute(&lock_key_tables_sql(
            &table.sql(),
            &key.ref_table.sql(),
            KeyLock::Add,
        ))
        .map_err(|e| Cause::from_postgres(&e))?;
        tx.batch_execute(&restore_key_sql(&table.sql(), &key.name, &key.definition))
            .map_err(|e| Cause::from_postgres(&e))?;
        let comment: Option<String> = tx
            .query_opt(&self.sql().key_comment(), &[&table.sql(), &key.name])
            .map_err(|e| Cause::from_postgres(&e))?
            .and_then(|r| r.get(0));
        if let Some(comment) = comment {
            tx.batch_execute(&comment_key_sql(&table.sql(), &key.name, &comment))
                .map_err(|e| Cause::from_postgres(&e))?;
        }
        tx.execute(
            &self.sql().mark_key(State::Restored),
            &[&table.sql(), &key.name],
        )
        .map_err(|e| Cause::from_postgres(&e))?;
        tx.commit().map_err(|e| Cause::from_postgres(&e))
    }

    /// Step 3 as a plan's step: validate a restored key, then mark it validated.
    pub(crate) fn validate_key(
        &self,
        c: &mut Client,
        table: &QualifiedName,
        key: &str,
    ) -> Result<(), Cause> {
        validate(c, &validate_key_sql(&table.sql(), key))?;
        c.execute(
            &self.sql().mark_key(State::Validated),
            &[&table.sql(), &key],
        )
        .map(|_| ())
        .map_err(|e| Cause::from_postgres(&e))
    }

    /// Steps 2 and 3 for a row left by an interrupted run: re-add the key if it is missing,
    /// then validate it.
    fn repair(&self, c: &mut Client, d: &Dropped) -> Result<(), Cause> {
        let row = c
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2), \
                        EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass($1) AND relkind = 'p')",
                &[&d.table, &d.name],
            )
            .map_err(|e| Cause::from_postgres(&e))?;
        let (exists, partitioned): (bool, bool) = (row.get(0), row.get(1));
        let sql = self.sql();
        if !exists || d.state == State::Dropped {
            retrying(c, Retry::Locks, |c| self.re_add(c, d, exists, partitioned))?;
        }
        if was_valid(&d.definition) && !partitioned {
            validate(c, &validate_key_sql(&d.table, &d.name))?;
        }
        c.execute(&sql.mark_row(State::Validated), &[&d.id])
            .map(|_| ())
            .map_err(|e| Cause::from_postgres(&e))
    }

    /// [`Journal::repair`]'s step 2: re-add the key unless it `exists`, and mark it restored,
    /// in one transaction.
    fn re_add(
        &self,
        c: &mut Client,
        d: &Dropped,
        exists: bool,
        partitioned: bool,
    ) -> Result<(), Cause> {
        let sql = self.sql();
        {
            let mut tx = c.transaction().map_err(|e| Cause::from_postgres(&e))?;
            if let (false, Some(r)) = (exists, &d.ref_table) {
                tx.batch_execute(&lock_key_tables_sql(&d.table, r, KeyLock::Add))
                    .map_err(|e| Cause::from_postgres(&e))?;
            }
            if !exists {
                // PostgreSQL 15 adds no NOT VALID key to a partitioned table: checked at once.
                let add = match partitioned {
                    true => restore_partitioned_key_sql(&d.table, &d.name, &d.definition),
                    false => restore_key_sql(&d.table, &d.name, &d.definition),
                };
                tx.batch_execute(&add)
                    .map_err(|e| Cause::from_postgres(&e))?;
                if let Some(comment) = &d.comment {
                    tx.batch_execute(&comment_key_sql(&d.table, &d.name, comment))
                        .map_err(|e| Cause::from_postgres(&e))?;
                }
            }
            tx.execute(&sql.mark_row(State::Restored), &[&d.id])
                .map_err(|e| Cause::from_postgres(&e))?;
            tx.commit().map_err(|e| Cause::from_postgres(&e))
        }
    }

    /// Restore every journaled key that Citus accepts between its two tables as they are now;
    /// the others stay in the journal, except those whose table is gone, which are forgotten.
    pub(crate) fn restore_open(
        &self,
        c: &mut Client,
        events: &mut dyn FnMut(&str),
    ) -> Result<Restoration, PgError> {
        self.restore(c, events, None)
    }

    /// [`Journal::restore_open`] for the rows `only` (all open rows when `None`).
    pub(crate) fn restore(
        &self,
        c: &mut Client,
        events: &mut dyn FnMut(&str),
        only: Option<&[i64]>,
    ) -> Result<Restoration, PgError> {
        let mut restored = Vec::new();
        let mut waiting = Vec::new();
        let mut forgotten = Vec::new();
        let open = self.open(c)?;
        let citus = !open.is_empty() && citus_installed(c)?;
        for d in open
            .into_iter()
            .filter(|d| only.is_none_or(|ids| ids.contains(&d.id)))
        {
            if gone(c, &d)? {
                // Its table was dropped since (a migration rolled back): the key went with it,
                // and a migration that creates the table again creates its keys too.
                c.execute(&self.sql().forget_row(), &[&d.id])
                    .map_err(|e| PgError::query(format!("update {}", self.table.display()), &e))?;
                forgotten.push(d);
                continue;
            }
            if !restorable(c, &d, citus)? {
                waiting.push(d);
                continue;
            }
            let what = format!("restoring foreign key {}", d.describe());
            events(&what);
            self.repair(c, &d).map_err(|cause| {
                PgError::from(ErrorKind::RestoreFailed {
                    key: d.describe(),
                    sql: format!("ALTER TABLE {} ADD CONSTRAINT ... ({})", d.table, d.name),
                    cause,
                })
                .with_done(Done::Statements(restored.clone()))
            })?;
            restored.push(d.describe());
        }
        Ok(Restoration {
            restored,
            waiting,
            forgotten,
        })
    }
}

/// What may be tried again after a failure that left nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// A transaction that drops or adds a key: again after a deadlock or serialization failure
    /// (the server rolled it back whole).
    Locks,
    /// `VALIDATE CONSTRAINT`: also after a violation on a row whose parent it cannot see yet.
    /// An application's transaction that wrote both may have committed on the coordinator while
    /// the second phase of its commit has not reached the parent's worker (Citus finishes it at
    /// recovery, by default within a minute): before each new try, those transactions are
    /// recovered now rather than by the maintenance daemon. A real orphan row fails every try
    /// and is reported.
    Validation,
}

impl Retry {
    /// Tries before the failure is reported.
    const fn attempts(self) -> u32 {
        match self {
            Retry::Locks => 3,
            Retry::Validation => 5,
        }
    }

    /// The wait before try `attempt + 1`.
    const fn pause_ms(self, attempt: u32) -> u64 {
        match self {
            Retry::Locks => 200 * attempt as u64,
            Retry::Validation => 250 * attempt as u64,
        }
    }
}

/// `VALIDATE CONSTRAINT` (`sql`), tried again as [`Retry::Validation`] says.
fn validate(c: &mut Client, sql: &str) -> Result<(), Cause> {
    retrying(c, Retry::Validation, |c| {
        c.batch_execute(sql).map_err(|e| Cause::from_postgres(&e))
    })
}

/// Run `f`, again after a transient failure of kind `what`, up to its number of tries.
fn retrying<T>(
    c: &mut Client,
    what: Retry,
    mut f: impl FnMut(&mut Client) -> Result<T, Cause>,
) -> Result<T, Cause> {
    let mut attempt = 1;
    loop {
        match f(c) {
            Err(cause) if attempt < what.attempts() && transient(&cause, what) => {
                std::thread::sleep(std::time::Duration::from_millis(what.pause_ms(attempt)));
                if what == Retry::Validation {
                    let _ = crate::topology::settle(c);
                }
                attempt += 1;
            }
            done => return done,
        }
    }
}

fn transient(cause: &Cause, what: Retry) -> bool {
    let Some(s) = cause.server() else {
        return false;
    };
    match s.sqlstate.as_str() {
        // deadlock_detected, serialization_failure
        "40P01" | "40001" => true,
        // foreign_key_violation
        "23503" => what == Retry::Validation,
        _ => false,
    }
}

/// What [`Journal::restore_open`] did with the journal's open keys.
pub(crate) struct Restoration {
    /// Restored and validated, described.
    pub(crate) restored: Vec<String>,
    /// Still waiting for their tables to be converted alike.
    pub(crate) waiting: Vec<Dropped>,
    /// Removed from the journal: their table no longer exists.
    pub(crate) forgotten: Vec<Dropped>,
}

/// Whether a journaled key's table, or the table it references, no longer exists.
fn gone(c: &mut Client, d: &Dropped) -> Result<bool, PgError> {
    c.query_one(
        "SELECT to_regclass($1) IS NULL OR ($2::text IS NOT NULL AND to_regclass($2) IS NULL)",
        &[&d.table, &d.ref_table],
    )
    .map(|r| r.get(0))
    .map_err(|e| PgError::query(format!("look up {}", d.table), &e))
}

/// Whether Citus accepts a journaled key between its two tables as they are now: both plain,
/// both distributed in one colocation group, or any Citus table referencing a reference table.
/// A key from a plain table to a Citus table, or from a Citus table to a plain one, waits.
/// `citus`: whether Citus is installed (without it every key is between plain tables).
fn restorable(c: &mut Client, d: &Dropped, citus: bool) -> Result<bool, PgError> {
    let Some(ref_table) = &d.ref_table else {
        return Ok(true);
    };
    if !citus {
        return Ok(true);
    }
    let row = c
        .query_one(
            include_str!("sql/citus_kind_of_pair.sql"),
            &[&d.table, ref_table],
        )
        .map_err(|e| PgError::query(format!("look up {} and {ref_table} in Citus", d.table), &e))?;
    let from: Option<String> = row.get(0);
    let to: Option<String> = row.get(1);
    let (from_group, to_group): (Option<i32>, Option<i32>) = (row.get(2), row.get(3));
    Ok(match (from.as_deref(), to.as_deref()) {
        (None, None) => true,
        (Some(_), Some("reference")) => true,
        (Some("distributed"), Some("distributed")) => from_group == to_group,
        _ => false,
    })
}
