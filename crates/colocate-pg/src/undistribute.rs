//! Reversing `apply`: turn Citus tables back into plain local tables, giving back exactly what
//! was there: data, foreign keys and everything `undistribute_table` does not carry over.
//!
//! Tables joined by foreign keys are undistributed one connected group at a time, but never
//! with Citus's cascade, which takes the locks of the whole group in one transaction (83 tables
//! exceed the default `max_locks_per_transaction`) and makes a later call for a table it already
//! took fail. Instead every key to or from the group's tables is dropped into the journal, each
//! table is undistributed alone (`cascade_via_foreign_keys => false`; one already local is
//! done), and the keys come back from the journal exactly (`NOT VALID` stays `NOT VALID`, with
//! their comments).
//!
//! What `undistribute_table` loses (found by comparing `pg_dump --schema-only` before and after
//! on Citus 13.2: comments, `NOT VALID` checks, column options, rules, grants on the views it
//! re-creates; see `colocate_core::undistribute::LOST_SQL`) is journaled as the statements that put it
//! back, before the table is touched, and put back once it is local. `undistribute_table`
//! refuses tables with identity columns, and Citus refuses `DROP IDENTITY` on them, so each
//! identity is journaled (kind, sequence options, next value), dropped on the coordinator's
//! table alone, and re-added with the same options once the table is local again. A run killed
//! anywhere in between is finished by the next one from the journal.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use colocate_core::schema::{ForeignKey, QualifiedName, Schema, SchemaFilter};
use postgres::Client;
use postgres_protocol::escape::escape_identifier;
use serde::Serialize;

use colocate_core::journal::{drop_key_sql, journaled_drop_line, State};
use colocate_core::undistribute::{call, IDENTITY_OPTIONS_SQL, LOST_SQL, NOT_VALID_CHECKS_SQL};

use crate::error::{Cause, Done, ErrorKind, PgError};
use crate::introspect::introspect;
use crate::journal::{describe_key, Journal};
use crate::lock::Lock;
use crate::topology::settle;
use crate::verify::count_rows_many;

#[derive(Debug, Clone)]
pub struct UndistributeOptions {
    /// The tables to undistribute; `None` = every Citus table.
    pub tables: Option<Vec<QualifiedName>>,
    /// Also undistribute tables joined to the named ones by foreign keys.
    pub cascade: bool,
    /// Instead of cascading, drop the foreign keys between the named tables and other Citus
    /// tables, journaled: only the named tables become local (a declarative step's down part,
    /// which must not undo the tables of earlier steps). Each key is restored from the journal
    /// once Citus accepts it between its tables again: when the named tables are converted
    /// again, or the other side is undistributed too.
    pub detach: bool,
    pub dry_run: bool,
    pub lock_timeout: Duration,
    pub journal_table: String,
    pub filter: SchemaFilter,
}

impl Default for UndistributeOptions {
    fn default() -> Self {
        UndistributeOptions {
            tables: None,
            cascade: false,
            detach: false,
            dry_run: false,
            lock_timeout: Duration::from_secs(60),
            journal_table: crate::journal::DEFAULT_TABLE.into(),
            filter: SchemaFilter::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub tables: Vec<QualifiedName>,
    pub sql: String,
    pub elapsed_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UndistributeReport {
    pub dry_run: bool,
    pub citus_installed: bool,
    pub groups: Vec<Group>,
    /// Identity columns dropped for the operation and re-added afterwards.
    pub identities: Vec<String>,
    /// What `undistribute_table` does not carry over (comments, `NOT VALID` checks, column
    /// options, rules, grants on views), journaled before and put back after.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<String>,
    pub rows: i64,
    /// Foreign keys to or from other Citus tables dropped into the journal (`detach`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub detached: Vec<String>,
    /// Journaled foreign keys restored because both their tables are alike again.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restored_keys: Vec<String>,
    /// Journaled foreign keys still waiting (a plain table and a Citus table).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting_keys: Vec<String>,
}

/// Progress for the caller.
#[derive(Debug)]
pub enum UndistributeEvent<'a> {
    Waiting {
        holder: &'a str,
    },
    Start {
        index: usize,
        total: usize,
        tables: &'a [QualifiedName],
    },
    /// The group is local again (on a dry run: at once, nothing having run).
    Done {
        index: usize,
        total: usize,
        tables: &'a [QualifiedName],
        elapsed: Duration,
    },
}

pub fn undistribute(
    c: &mut Client,
    opts: &UndistributeOptions,
    events: &mut dyn FnMut(UndistributeEvent<'_>),
) -> Result<UndistributeReport, PgError> {
    let lock = if opts.dry_run {
        None
    } else {
        Some(Lock::converge(c, opts.lock_timeout, &mut |h| {
            events(UndistributeEvent::Waiting { holder: h })
        })?)
    };
    let res = run(c, opts, events).map_err(PgError::in_undistribute);
    if let Some(l) = lock {
        l.release(c);
    }
    res
}

fn run(
    c: &mut Client,
    opts: &UndistributeOptions,
    events: &mut dyn FnMut(UndistributeEvent<'_>),
) -> Result<UndistributeReport, PgError> {
    let journal = Journal::new(&opts.journal_table);
    if !opts.dry_run {
        // As apply does: prepared transactions an interrupted run left on a worker hold their
        // shards' locks, and this run's first undistribute would wait for them.
        settle(c)?;
    }
    let schema = introspect(c, &opts.filter)?;
    let mut report = UndistributeReport {
        dry_run: opts.dry_run,
        citus_installed: schema.citus.installed.is_some(),
        groups: Vec::new(),
        identities: Vec::new(),
        properties: Vec::new(),
        rows: 0,
        detached: Vec::new(),
        restored_keys: Vec::new(),
        waiting_keys: Vec::new(),
    };
    if let Some(q) = opts
        .tables
        .iter()
        .flatten()
        .find(|q| schema.table(q).is_none())
    {
        return Err(ErrorKind::NoSuchTable(q.to_string()).into());
    }
    if !report.citus_installed {
        return Ok(report);
    }
    if !opts.dry_run && journal.table.exists(c)? {
        // A journal from an older colocate gains its newer columns, once per run.
        journal.ensure(c)?;
        // What an interrupted run left: identities and properties of tables already local.
        report.identities.extend(restore_identities(c, &journal)?);
        report.properties.extend(restore_properties(c, &journal)?);
    }
    let groups = groups(&schema, opts)?;
    let total = groups.len();
    for (i, group) in groups.into_iter().enumerate() {
        events(UndistributeEvent::Start {
            index: i + 1,
            total,
            tables: &group,
        });
        // Every key to or from a table of the group: Citus refuses `undistribute_table` without
        // its cascade for a table that references or is referenced by any table (a
        // self-reference included). Keys to Citus tables outside the group (`detach`) wait in
        // the journal; the others come back as soon as the group is local.
        let keys = schema.keys_between(|q| group.contains(q), |_| true);
        let crossing: BTreeSet<(String, String)> = if opts.detach {
            crossing_keys(&schema, &group)
                .into_iter()
                .map(|(t, fk)| (t.to_string(), fk.name.clone()))
                .collect()
        } else {
            BTreeSet::new()
        };
        let calls: Vec<String> = group.iter().map(undistribute_call).collect();
        let mut sql: String = keys
            .iter()
            .map(|(t, fk)| journaled_drop_line(t, fk))
            .collect();
        sql.push_str(&calls.join("\n"));
        if opts.dry_run {
            events(UndistributeEvent::Done {
                index: i + 1,
                total,
                tables: &group,
                elapsed: Duration::ZERO,
            });
            report.groups.push(Group {
                tables: group,
                sql,
                elapsed_ms: 0.0,
            });
            continue;
        }
        let t0 = Instant::now();
        let before = count_rows_many(c, &group)?;
        let keys_before: BTreeSet<(String, String)> = keys
            .iter()
            .map(|(t, fk)| (t.to_string(), fk.name.clone()))
            .filter(|k| !crossing.contains(k))
            .collect();
        journal.ensure(c)?;
        let failed = |sql: &str, cause: Cause, report: &UndistributeReport| {
            PgError::from(ErrorKind::StepFailed {
                index: i + 1,
                total,
                sql: sql.to_string(),
                cause,
            })
            .with_done(Done::Statements(
                report.groups.iter().map(|g| g.sql.clone()).collect(),
            ))
        };
        for t in &group {
            record_properties(c, &journal, t)?;
        }
        let mut dropped = Vec::new();
        for (t, fk) in &keys {
            let id = journal
                .drop_key(c, t, fk)
                .map_err(|cause| failed(&drop_key_sql(t, &fk.name), cause, &report))?;
            dropped.push(id);
            if crossing.contains(&(t.to_string(), fk.name.clone())) {
                report
                    .detached
                    .push(describe_key(&fk.name, &t.sql(), Some(&fk.ref_table.sql())));
            }
        }
        // One table at a time: no more locks than one conversion, and a table an interrupted
        // run already turned local is simply done.
        for (t, call) in group.iter().zip(&calls) {
            if !is_citus(c, t)? {
                continue;
            }
            drop_identities(c, &journal, t, &schema)?;
            c.batch_execute(call)
                .map_err(|e| failed(call, Cause::from_postgres(&e), &report))?;
            report.identities.extend(restore_identities(c, &journal)?);
            report.properties.extend(restore_properties(c, &journal)?);
        }
        journal.restore(c, &mut |_| {}, Some(&dropped))?;
        let after_schema = introspect(c, &opts.filter)?;
        let mut problems = Vec::new();
        let counts = count_rows_many(c, before.keys())?;
        for (t, n) in &before {
            let now = counts[t];
            report.rows += now;
            if now != *n {
                problems.push(format!("{t} had {n} rows and has {now}"));
            }
            if after_schema.table(t).is_some_and(|x| x.citus.is_some()) {
                problems.push(format!("{t} is still a Citus table"));
            }
        }
        let keys_after: BTreeSet<(String, String)> = after_schema
            .keys_between(|q| group.contains(q), |_| true)
            .into_iter()
            .map(|(t, fk)| (t.to_string(), fk.name.clone()))
            .collect();
        for (t, k) in keys_before.difference(&keys_after) {
            problems.push(format!("foreign key {k} on {t} is missing"));
        }
        if !problems.is_empty() {
            return Err(ErrorKind::Verify {
                problems,
                unenforced: Vec::new(),
            }
            .into());
        }
        let elapsed = t0.elapsed();
        events(UndistributeEvent::Done {
            index: i + 1,
            total,
            tables: &group,
            elapsed,
        });
        report.groups.push(Group {
            tables: group,
            sql,
            elapsed_ms: elapsed.as_secs_f64() * 1000.0,
        });
    }
    if !opts.dry_run {
        let done = journal.restore_open(c, &mut |_| {})?;
        report.restored_keys = done.restored;
        report.waiting_keys = done.waiting.iter().map(|d| d.describe()).collect();
    }
    Ok(report)
}

/// `undistribute_table` for one table alone.
fn undistribute_call(t: &QualifiedName) -> String {
    format!("SELECT {};", call(t))
}

/// Whether `t` is a Citus table now.
fn is_citus(c: &mut Client, t: &QualifiedName) -> Result<bool, PgError> {
    is_citus_sql(c, &t.sql())
}

fn is_citus_sql(c: &mut Client, table_sql: &str) -> Result<bool, PgError> {
    c.query_one(
        "SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = to_regclass($1))",
        &[&table_sql],
    )
    .map(|r| r.get(0))
    .map_err(|e| PgError::query(format!("look up {table_sql} in pg_dist_partition"), &e))
}

/// Journal what `undistribute_table` would lose on `t` ([`LOST_SQL`]), unless
/// an interrupted run journaled it already, then drop the `NOT VALID` check constraints it
/// would bring back valid (or fail on, when a row violates them); they come back from the
/// journal `NOT VALID`.
fn record_properties(c: &mut Client, journal: &Journal, t: &QualifiedName) -> Result<(), PgError> {
    let sql = journal.sql();
    let what = || format!("journal what undistribute_table loses on {t}");
    let open: bool = c
        .query_one(&sql.has_open_properties(), &[&t.sql()])
        .map_err(|e| PgError::query(what(), &e))?
        .get(0);
    let mut tx = c.transaction().map_err(|e| PgError::query("begin", &e))?;
    if !open {
        let rows = tx
            .query(LOST_SQL, &[&t.sql()])
            .map_err(|e| PgError::query(what(), &e))?;
        for r in rows {
            let (label, statement): (String, String) = (r.get(0), r.get(1));
            tx.execute(&sql.record_property(), &[&t.sql(), &label, &statement])
                .map_err(|e| PgError::query(what(), &e))?;
        }
    }
    let checks: Vec<String> = tx
        .query(NOT_VALID_CHECKS_SQL, &[&t.sql()])
        .map_err(|e| PgError::query(format!("read the NOT VALID checks of {t}"), &e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for drop in &checks {
        tx.batch_execute(drop)
            .map_err(|e| PgError::query(format!("drop a NOT VALID check of {t}"), &e))?;
    }
    tx.commit().map_err(|e| PgError::query("commit", &e))
}

/// Put back the journaled properties of every table that is local again, each with its
/// journal row in one transaction; rows of tables that no longer exist are forgotten.
/// Returns what was put back.
fn restore_properties(c: &mut Client, journal: &Journal) -> Result<Vec<String>, PgError> {
    if !journal.table.exists(c)? {
        return Ok(Vec::new());
    }
    let sql = journal.sql();
    let rows = c
        .query(&sql.open_properties(), &[])
        .map_err(|e| PgError::query(format!("read {}", journal.table.display()), &e))?;
    let mut done = Vec::new();
    let mut local: BTreeMap<String, Option<bool>> = BTreeMap::new();
    for r in rows {
        let (id, table, label, statement): (i64, String, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let state = match local.get(&table) {
            Some(s) => *s,
            None => {
                let s = table_state(c, &table)?;
                local.insert(table.clone(), s);
                s
            }
        };
        match state {
            // Gone (a migration dropped it): what it had went with it.
            None => {
                c.execute(&sql.forget_row(), &[&id]).map_err(|e| {
                    PgError::query(format!("update {}", journal.table.display()), &e)
                })?;
            }
            Some(true) => {}
            Some(false) => {
                let mut tx = c.transaction().map_err(|e| PgError::query("begin", &e))?;
                tx.batch_execute(&statement).map_err(|e| {
                    PgError::from(ErrorKind::StepFailed {
                        index: 1,
                        total: 1,
                        sql: statement.clone(),
                        cause: Cause::from_postgres(&e),
                    })
                })?;
                tx.execute(&sql.mark_row(State::Validated), &[&id])
                    .map_err(|e| PgError::query("update journal", &e))?;
                tx.commit().map_err(|e| PgError::query("commit", &e))?;
                done.push(label);
            }
        }
    }
    Ok(done)
}

/// `None`: `table_sql` does not exist; `Some(true)`: a Citus table; `Some(false)`: local.
fn table_state(c: &mut Client, table_sql: &str) -> Result<Option<bool>, PgError> {
    let exists: bool = c
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table_sql])
        .map_err(|e| PgError::query(format!("look up {table_sql}"), &e))?
        .get(0);
    if !exists {
        return Ok(None);
    }
    is_citus_sql(c, table_sql).map(Some)
}

/// Foreign keys between `group` and Citus tables outside it, either way (`detach`).
fn crossing_keys<'s>(
    schema: &'s Schema,
    group: &[QualifiedName],
) -> Vec<(QualifiedName, &'s ForeignKey)> {
    let citus = |q: &QualifiedName| schema.table(q).is_some_and(|t| t.citus.is_some());
    schema.keys_between(|q| group.contains(q), |q| !group.contains(q) && citus(q))
}

/// Connected groups of Citus tables to undistribute, each sorted, in name order.
fn groups(schema: &Schema, opts: &UndistributeOptions) -> Result<Vec<Vec<QualifiedName>>, PgError> {
    let citus: BTreeSet<&QualifiedName> = schema
        .tables
        .values()
        .filter(|t| t.citus.is_some())
        .map(|t| &t.name)
        .collect();
    // Union-find over foreign keys between Citus tables, both directions.
    let mut parent: BTreeMap<&QualifiedName, &QualifiedName> =
        citus.iter().map(|q| (*q, *q)).collect();
    fn find<'a>(
        p: &mut BTreeMap<&'a QualifiedName, &'a QualifiedName>,
        x: &'a QualifiedName,
    ) -> &'a QualifiedName {
        let mut r = x;
        while p[r] != r {
            r = p[r];
        }
        p.insert(x, r);
        r
    }
    // Detaching: the named tables are joined only through keys among themselves.
    let joins = |a: &QualifiedName, b: &QualifiedName| match (&opts.tables, opts.detach) {
        (Some(named), true) => named.contains(a) && named.contains(b),
        _ => true,
    };
    for t in schema.tables.values().filter(|t| citus.contains(&t.name)) {
        for fk in &t.foreign_keys {
            if let Some(target) = citus.get(&fk.ref_table).filter(|r| joins(&t.name, r)) {
                let a = find(&mut parent, &t.name);
                let b = find(&mut parent, target);
                if a != b {
                    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
                    parent.insert(hi, lo);
                }
            }
        }
    }
    let mut comps: BTreeMap<&QualifiedName, Vec<QualifiedName>> = BTreeMap::new();
    for q in &citus {
        let r = find(&mut parent, q);
        comps.entry(r).or_default().push((*q).clone());
    }
    let all: Vec<Vec<QualifiedName>> = comps.into_values().collect();
    let Some(named) = &opts.tables else {
        return Ok(all);
    };
    let mut out = Vec::new();
    for q in named {
        if !citus.contains(q) {
            return Err(ErrorKind::NotCitus(q.clone()).into());
        }
        let comp = all
            .iter()
            .find(|c| c.contains(q))
            .cloned()
            .unwrap_or_default();
        let others: Vec<QualifiedName> = comp
            .iter()
            .filter(|t| !named.contains(t))
            .cloned()
            .collect();
        if !others.is_empty() && !opts.cascade && !opts.detach {
            return Err(ErrorKind::Connected {
                table: q.clone(),
                others,
            }
            .into());
        }
        if !out.contains(&comp) {
            out.push(comp);
        }
    }
    Ok(out)
}

/// Journal, then drop, every identity column of `t` on the coordinator's table only.
fn drop_identities(
    c: &mut Client,
    journal: &Journal,
    t: &QualifiedName,
    schema: &Schema,
) -> Result<(), PgError> {
    let Some(table) = schema.table(t) else {
        return Ok(());
    };
    for col in table.columns.iter().filter(|c| c.identity.is_some()) {
        let row = c
            .query_one(IDENTITY_OPTIONS_SQL, &[&t.sql(), &col.name])
            .map_err(|e| PgError::query(format!("read identity of {t}.{}", col.name), &e))?;
        let clause: String = row.get(0);
        let restart: i64 = row.get(1);
        let mut tx = c.transaction().map_err(|e| PgError::query("begin", &e))?;
        tx.execute(
            &journal.sql().record_identity(),
            &[&t.sql(), &col.name, &clause, &restart],
        )
        .map_err(|e| PgError::query(format!("journal identity of {t}"), &e))?;
        // Citus refuses DROP IDENTITY on its tables; drop it on the coordinator's table alone
        // (the shards have no identity of their own).
        tx.batch_execute(&format!(
            "SET LOCAL citus.enable_ddl_propagation TO off; ALTER TABLE {} ALTER COLUMN {} DROP IDENTITY",
            t.sql(),
            escape_identifier(&col.name)
        ))
        .map_err(|e| PgError::query(format!("drop identity of {t}.{}", col.name), &e))?;
        tx.commit().map_err(|e| PgError::query("commit", &e))?;
    }
    Ok(())
}

/// Re-add journaled identities whose tables are local again.
fn restore_identities(c: &mut Client, journal: &Journal) -> Result<Vec<String>, PgError> {
    if !journal.table.exists(c)? {
        return Ok(Vec::new());
    }
    let rows = c
        .query(&journal.sql().open_identities(), &[])
        .map_err(|e| PgError::query(format!("read {}", journal.table.display()), &e))?;
    let mut done = Vec::new();
    for r in rows {
        let id: i64 = r.get(0);
        let table: String = r.get(1);
        let column: String = r.get(2);
        let clause: String = r.get(3);
        let restart: i64 = r.get(4);
        if is_citus_sql(c, &table)? {
            continue;
        }
        let col = escape_identifier(&column);
        // The next value: past both the recorded one and whatever the table holds now.
        let next: i64 = c
            .query_one(
                &format!(
                    "SELECT greatest($1::bigint, coalesce(max({col})::bigint + 1, 1)) FROM {table}"
                ),
                &[&restart],
            )
            .map_err(|e| PgError::query(format!("read {table}.{column}"), &e))?
            .get(0);
        let mut tx = c.transaction().map_err(|e| PgError::query("begin", &e))?;
        tx.batch_execute(&format!(
            "ALTER TABLE {table} ALTER COLUMN {col} ADD {clause}; ALTER TABLE {table} ALTER COLUMN {col} RESTART WITH {next}"
        ))
        .map_err(|e| PgError::query(format!("restore identity of {table}.{column}"), &e))?;
        tx.execute(&journal.sql().mark_row(State::Validated), &[&id])
            .map_err(|e| PgError::query("update journal", &e))?;
        tx.commit().map_err(|e| PgError::query("commit", &e))?;
        done.push(format!("{table}.{column}"));
    }
    Ok(done)
}
