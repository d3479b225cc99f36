//! Reversing `apply`: turn Citus tables back into plain local tables, data and foreign keys kept.
//!
//! Tables joined by foreign keys are undistributed together (`undistribute_table` with
//! `cascade_via_foreign_keys`), one connected group at a time. `undistribute_table` refuses
//! tables with identity columns, and Citus refuses `DROP IDENTITY` on them, so each identity is
//! journaled (kind, sequence options, next value), dropped on the coordinator's table alone, and
//! re-added with the same options once the table is local again; a run killed in between is
//! finished by the next one from the journal.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use colocate_core::schema::{ForeignKey, QualifiedName, Schema, SchemaFilter};
use postgres::Client;
use postgres_protocol::escape::escape_identifier;
use serde::Serialize;

use colocate_core::journal::{journaled_drop_line, State};

use crate::error::{Cause, Done, ErrorKind, PgError};
use crate::introspect::introspect;
use crate::journal::{describe_key, Journal};
use crate::lock::Lock;
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
    let schema = introspect(c, &opts.filter)?;
    let mut report = UndistributeReport {
        dry_run: opts.dry_run,
        citus_installed: schema.citus.installed.is_some(),
        groups: Vec::new(),
        identities: Vec::new(),
        rows: 0,
        detached: Vec::new(),
        restored_keys: Vec::new(),
        waiting_keys: Vec::new(),
    };
    if !report.citus_installed {
        return Ok(report);
    }
    if !opts.dry_run {
        report
            .identities
            .extend(restore_identities(c, &journal, &schema)?);
    }
    let groups = groups(&schema, opts)?;
    let total = groups.len();
    for (i, group) in groups.into_iter().enumerate() {
        events(UndistributeEvent::Start {
            index: i + 1,
            total,
            tables: &group,
        });
        let cross = if opts.detach {
            crossing_keys(&schema, &group)
        } else {
            Vec::new()
        };
        let call = format!(
            "SELECT undistribute_table({}, cascade_via_foreign_keys => true);",
            group[0].regclass_literal()
        );
        let mut sql: String = cross
            .iter()
            .map(|(t, fk)| journaled_drop_line(t, fk))
            .collect();
        sql.push_str(&call);
        if opts.dry_run {
            report.groups.push(Group {
                tables: group,
                sql,
                elapsed_ms: 0.0,
            });
            continue;
        }
        let t0 = Instant::now();
        let before = count_rows_many(c, &group)?;
        let mut keys_before = keys(&schema, &group);
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
        for (t, fk) in &cross {
            journal
                .drop_key(c, t, fk)
                .map_err(|cause| failed(&sql, cause, &report))?;
            keys_before.remove(&(t.to_string(), fk.name.clone()));
            report
                .detached
                .push(describe_key(&fk.name, &t.sql(), Some(&fk.ref_table.sql())));
        }
        for t in &group {
            drop_identities(c, &journal, t, &schema)?;
        }
        c.batch_execute(&call)
            .map_err(|e| failed(&call, Cause::from_postgres(&e), &report))?;
        let after_schema = introspect(c, &opts.filter)?;
        report
            .identities
            .extend(restore_identities(c, &journal, &after_schema)?);
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
        for (t, k) in keys_before.difference(&keys(&after_schema, &group)) {
            problems.push(format!("foreign key {k} on {t} is missing"));
        }
        if !problems.is_empty() {
            return Err(ErrorKind::Verify { problems }.into());
        }
        report.groups.push(Group {
            tables: group,
            sql,
            elapsed_ms: t0.elapsed().as_secs_f64() * 1000.0,
        });
    }
    if !opts.dry_run {
        let done = journal.restore_open(c, &mut |_| {})?;
        report.restored_keys = done.restored;
        report.waiting_keys = done.waiting.iter().map(|d| d.describe()).collect();
    }
    Ok(report)
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

fn keys(schema: &Schema, group: &[QualifiedName]) -> BTreeSet<(String, String)> {
    group
        .iter()
        .filter_map(|q| schema.table(q))
        .flat_map(|t| {
            t.foreign_keys
                .iter()
                .map(move |fk| (t.name.to_string(), fk.name.clone()))
        })
        .collect()
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
            .query_one(
                include_str!("sql/identity_options.sql"),
                &[&t.sql(), &col.name],
            )
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
fn restore_identities(
    c: &mut Client,
    journal: &Journal,
    schema: &Schema,
) -> Result<Vec<String>, PgError> {
    if !journal.table.exists(c)? {
        return Ok(Vec::new());
    }
    journal.ensure(c)?; // a journal from an older colocate gains its newer columns
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
        let still_citus = schema
            .tables
            .values()
            .any(|t| t.name.sql() == table && t.citus.is_some());
        if still_citus {
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
