//! Running declarative migration steps (`.toml` files) inside `migrate` and `rollback`.
//!
//! A reference or distribute step is the apply engine restricted to the listed tables, planned
//! with only what the file says, so it is idempotent (tables already as asked are skipped) and
//! crash-safe the way `apply` is. Its down part is `undistribute` of the listed tables with the
//! tables foreign keys join to them. The extension step creates `citus` where the server offers
//! it and drops it again only when no Citus table is left. On a server without Citus every step
//! is a no-op that says so, so one migration chain runs on plain PostgreSQL and on Citus.
//! The extension step records in the journal that it created `citus`; its down part drops the
//! extension only then, so an extension that existed before the chain stays.

use colocate_core::schema::name_list as names;
use std::collections::BTreeSet;
use std::time::Duration;

use colocate_core::declarative::DeclarativeStep;
use colocate_core::schema::QualifiedName;
use postgres::Client;

use crate::apply::{apply, ApplyEvent, ApplyOptions, CitusOutcome};
use crate::error::{ErrorKind, PgError};
use crate::journal::Journal;
use crate::undistribute::{undistribute, UndistributeEvent, UndistributeOptions};

/// What a step reports while it runs.
#[derive(Debug)]
pub enum StepEvent<'a> {
    /// The converge lock is held by another session; the step waits.
    Waiting { holder: &'a str },
    /// A statement of the step starts, e.g. `create_distributed_table public.users`.
    Progress { message: &'a str },
}

/// Whether Citus can be used here: offered by the server, and created in this database.
#[derive(Debug, Clone, Copy)]
struct CitusHere {
    available: bool,
    installed: bool,
    not_preloaded: bool,
}

impl CitusHere {
    /// Why the step is a no-op here.
    fn skipped(&self) -> String {
        if self.not_preloaded {
            format!("skipped: {}", colocate_core::schema::CITUS_NOT_PRELOADED)
        } else {
            "skipped: citus is not available on this server (plain PostgreSQL)".into()
        }
    }
}

fn citus_here(c: &mut Client) -> Result<CitusHere, PgError> {
    let row = c
        .query_one(
            &format!(
                "SELECT {}, EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus'), {}",
                colocate_core::schema::CITUS_LOADABLE_SQL,
                colocate_core::schema::CITUS_NOT_PRELOADED_SQL
            ),
            &[],
        )
        .map_err(|e| PgError::query("look up the citus extension", &e))?;
    Ok(CitusHere {
        available: row.get(0),
        installed: row.get(1),
        not_preloaded: row.get(2),
    })
}

/// Run a step's up part. Returns what it did, one line each. `chain` holds the distribution
/// columns of every `[distribute]` step in the step's migration chain
/// ([`colocate_core::declarative::chain_columns`]): the step plans the tables outside it with
/// them, so a table another step distributes does not look like one that stays plain.
pub fn up(
    c: &mut Client,
    step: &DeclarativeStep,
    chain: &[String],
    lock_timeout: Duration,
    events: &mut dyn FnMut(StepEvent<'_>),
) -> Result<Vec<String>, PgError> {
    let here = citus_here(c)?;
    if !here.available && !here.installed {
        let what = match step {
            DeclarativeStep::Extension => here.skipped(),
            _ => format!(
                "{}; {} stay local tables",
                here.skipped(),
                names(step.tables())
            ),
        };
        return Ok(vec![what]);
    }
    if let DeclarativeStep::Extension = step {
        if here.installed {
            return Ok(vec![
                "extension citus already exists: the down part keeps it".into(),
            ]);
        }
        events(StepEvent::Progress {
            message: "CREATE EXTENSION citus",
        });
        // Created and journaled together: the down part drops only what this created.
        let journal = Journal::new(crate::journal::DEFAULT_TABLE);
        journal.ensure(c)?;
        let mut tx = c.transaction().map_err(|e| PgError::query("begin", &e))?;
        tx.batch_execute("CREATE EXTENSION IF NOT EXISTS citus")
            .map_err(|e| PgError::query("create extension citus", &e))?;
        tx.execute(&journal.sql().record_extension(), &[&"citus"])
            .map_err(|e| PgError::query("journal extension citus", &e))?;
        tx.commit().map_err(|e| PgError::query("commit", &e))?;
        return Ok(vec!["created extension citus".into()]);
    }

    let mut wanted: Vec<QualifiedName> = step.tables().to_vec();
    let root = step.root().filter(|r| !step.tables().contains(r)).cloned();
    wanted.extend(root.clone());
    if let Some(missing) = missing_tables(c, &wanted)?.into_iter().next() {
        return Err(ErrorKind::NoSuchTable(missing.to_string()).into());
    }
    let mut root_column = None;
    if let Some(root) = root {
        root_column = match here.installed {
            true => distribution_column(c, &root)?,
            false => None,
        };
        if root_column.is_none() {
            return Err(ErrorKind::RootNotDistributed { root }.into());
        }
    }

    let Some(mut config) = step.config_in_chain(root_column.as_deref(), chain) else {
        return Ok(Vec::new());
    };
    if here.installed {
        // Tables earlier steps converted keep their place in this step's plan, whatever their
        // column: a `tenant_id` step's tables may reference `tenant` tables, and a lookup both
        // reference must not look referenced by local tables (its cleanup would wait forever).
        for (t, column) in converted_tables(c)? {
            let name = colocate_core::declarative::config_name(&t);
            if step.tables().contains(&t) || config.tables.contains_key(&name) {
                continue;
            }
            match column {
                Some(col) => {
                    config.tables.insert(
                        name,
                        colocate_core::distribution::TableOverride {
                            column: Some(col),
                            role: Some(colocate_core::distribution::ForcedRole::Distributed),
                            reason: Some("already distributed".into()),
                        },
                    );
                }
                None => config
                    .reference
                    .push(colocate_core::distribution::Forced::Name(name)),
            }
        }
    }
    let only: BTreeSet<QualifiedName> = step.tables().iter().cloned().collect();
    let opts = ApplyOptions {
        only: Some(only.clone()),
        lock_timeout,
        ..ApplyOptions::default()
    };
    let report = apply(c, &config, &opts, &mut |e| match e {
        ApplyEvent::Waiting { holder } => events(StepEvent::Waiting { holder }),
        ApplyEvent::Start { step, .. } => {
            let message = match step.table() {
                Some(t) => format!("{} {t}", step.kind().label()),
                None => step.kind().label().to_string(),
            };
            events(StepEvent::Progress { message: &message });
        }
        ApplyEvent::Repair { what } => events(StepEvent::Progress { message: what }),
        ApplyEvent::Done { .. } => {}
    })?;

    let mut notes = Vec::new();
    if report.citus == CitusOutcome::Created {
        notes.push("created extension citus".to_string());
    }
    let mut converted = Vec::new();
    for s in &report.steps {
        if let (true, Some(t)) = (s.kind.converts(), &s.table) {
            converted.push(t.clone());
        }
    }
    if !converted.is_empty() {
        let verb = match step {
            DeclarativeStep::Reference { .. } => {
                colocate_core::words::noun(converted.len(), "made reference table")
            }
            _ => "distributed".to_string(),
        };
        notes.push(format!("{verb}: {}", names(&converted)));
    }
    let already: Vec<QualifiedName> = step
        .tables()
        .iter()
        .filter(|t| !converted.contains(t))
        .cloned()
        .collect();
    if !already.is_empty() {
        let what = if converted.is_empty() {
            "nothing to do, already as asked"
        } else {
            "already as asked"
        };
        notes.push(format!("{what}: {}", names(&already)));
    }
    for r in &report.repaired {
        notes.push(format!("restored foreign key {r} from the journal"));
    }
    for w in &report.waiting {
        notes.push(format!(
            "foreign key {w} waits in the journal until both its tables are converted alike"
        ));
    }
    Ok(notes)
}

/// Run a step's automatic down part. Returns what it did, one line each.
pub fn down(
    c: &mut Client,
    step: &DeclarativeStep,
    lock_timeout: Duration,
    events: &mut dyn FnMut(StepEvent<'_>),
) -> Result<Vec<String>, PgError> {
    let here = citus_here(c)?;
    if !here.installed {
        let what = match step {
            DeclarativeStep::Extension => "nothing to undo: extension citus is not installed",
            _ => "nothing to undo: citus is not installed in this database",
        };
        return Ok(vec![what.into()]);
    }
    if let DeclarativeStep::Extension = step {
        let journal = Journal::new(crate::journal::DEFAULT_TABLE);
        let created: bool = journal.table.exists(c)?
            && c.query_one(&journal.sql().extension_created(), &[&"citus"])
                .map_err(|e| PgError::query("read the journal", &e))?
                .get(0);
        if !created {
            return Ok(vec![
                "kept extension citus: it existed before this migration".into(),
            ]);
        }
        let remaining: Vec<String> = c
            .query(
                "SELECT logicalrelid::regclass::text FROM pg_dist_partition ORDER BY 1",
                &[],
            )
            .map_err(|e| PgError::query("list Citus tables", &e))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if !remaining.is_empty() {
            return Err(ErrorKind::CitusInUse { tables: remaining }.into());
        }
        events(StepEvent::Progress {
            message: "DROP EXTENSION citus",
        });
        let mut tx = c.transaction().map_err(|e| PgError::query("begin", &e))?;
        tx.batch_execute("DROP EXTENSION citus")
            .map_err(|e| PgError::query("drop extension citus", &e))?;
        tx.execute(&journal.sql().extension_undone(), &[&"citus"])
            .map_err(|e| PgError::query("journal extension citus", &e))?;
        tx.commit().map_err(|e| PgError::query("commit", &e))?;
        return Ok(vec!["dropped extension citus".into()]);
    }

    let listed = step.tables();
    let citus = citus_tables(c, listed)?;
    if citus.is_empty() {
        return Ok(vec![format!(
            "nothing to undo: {} already local",
            names(listed)
        )]);
    }
    // Only this step's tables: keys to the tables of other steps go to the journal and come
    // back when this step runs again (or the other side is undone too).
    let opts = UndistributeOptions {
        tables: Some(citus.clone()),
        detach: true,
        lock_timeout,
        ..UndistributeOptions::default()
    };
    let report = undistribute(c, &opts, &mut |e| match e {
        UndistributeEvent::Waiting { holder } => events(StepEvent::Waiting { holder }),
        UndistributeEvent::Start { tables, .. } => {
            let message = format!("undistribute_table {}", names(tables));
            events(StepEvent::Progress { message: &message });
        }
        UndistributeEvent::Done { .. } => {}
    })?;
    let mut notes = vec![format!("undistributed: {}", names(&citus))];
    let others: Vec<QualifiedName> = report
        .groups
        .iter()
        .flat_map(|g| g.tables.iter())
        .filter(|t| !listed.contains(t))
        .cloned()
        .collect();
    if !others.is_empty() {
        notes.push(format!(
            "the cascade through foreign keys also undistributed: {}",
            names(&others)
        ));
    }
    if !report.detached.is_empty() {
        notes.push(format!(
            "foreign keys to the tables of other steps kept in the journal until this step runs again: {}",
            report.detached.join(", ")
        ));
    }
    if !report.restored_keys.is_empty() {
        notes.push(format!(
            "foreign keys restored from the journal: {}",
            report.restored_keys.join(", ")
        ));
    }
    let local: Vec<QualifiedName> = listed
        .iter()
        .filter(|t| !citus.contains(t))
        .cloned()
        .collect();
    if !local.is_empty() {
        notes.push(format!("already local: {}", names(&local)));
    }
    if !report.identities.is_empty() {
        notes.push(format!(
            "identity columns kept: {}",
            report.identities.join(", ")
        ));
    }
    Ok(notes)
}

/// The listed tables that do not exist, in list order.
fn missing_tables(c: &mut Client, tables: &[QualifiedName]) -> Result<Vec<QualifiedName>, PgError> {
    let sql: Vec<String> = tables.iter().map(|t| t.sql()).collect();
    let rows = c
        .query(
            "SELECT i::int FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i) \
             WHERE to_regclass(t) IS NULL ORDER BY i",
            &[&sql],
        )
        .map_err(|e| PgError::query("look up the step's tables", &e))?;
    Ok(rows
        .iter()
        .map(|r| tables[r.get::<_, i32>(0) as usize - 1].clone())
        .collect())
}

/// The listed tables that are Citus tables now, in list order.
fn citus_tables(c: &mut Client, tables: &[QualifiedName]) -> Result<Vec<QualifiedName>, PgError> {
    let sql: Vec<String> = tables.iter().map(|t| t.sql()).collect();
    let rows = c
        .query(
            "SELECT i::int FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i) \
             WHERE to_regclass(t) IN (SELECT logicalrelid FROM pg_dist_partition) ORDER BY i",
            &[&sql],
        )
        .map_err(|e| PgError::query("look up the step's Citus tables", &e))?;
    Ok(rows
        .iter()
        .map(|r| tables[r.get::<_, i32>(0) as usize - 1].clone())
        .collect())
}

/// The column `t` is hash-distributed by, if it is.
/// Every hash-distributed table with its column, and every reference table (column `None`).
fn converted_tables(c: &mut Client) -> Result<Vec<(QualifiedName, Option<String>)>, PgError> {
    let rows = c
        .query(
            "SELECT n.nspname, k.relname, \
                    CASE WHEN p.partmethod = 'h' THEN column_to_column_name(p.logicalrelid, p.partkey) END \
             FROM pg_dist_partition p \
             JOIN pg_class k ON k.oid = p.logicalrelid \
             JOIN pg_namespace n ON n.oid = k.relnamespace \
             WHERE p.partmethod = 'h' OR p.repmodel = 't'",
            &[],
        )
        .map_err(|e| PgError::query("read Citus tables", &e))?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1)),
                r.get(2),
            )
        })
        .collect())
}

fn distribution_column(c: &mut Client, t: &QualifiedName) -> Result<Option<String>, PgError> {
    c.query_opt(
        "SELECT column_to_column_name(logicalrelid, partkey) FROM pg_dist_partition \
         WHERE logicalrelid = to_regclass($1) AND partmethod = 'h'",
        &[&t.sql()],
    )
    .map(|r| r.map(|r| r.get(0)))
    .map_err(|e| PgError::query(format!("look up {t} in pg_dist_partition"), &e))
}
