//! Live-schema introspection: reads tables, columns, keys, foreign keys, triggers, policies,
//! partitioning, inheritance, views and Citus metadata into the `colocate-core` schema model.
//!
//! The number of catalog queries is fixed, whatever the number of tables: one query per kind of
//! object (the SQL is in `sql/introspect_*.sql`), each answering for every table at once through
//! a bound `oid[]`. The schema filter is applied once, by the relations query; the others take the
//! oids it selected. Everything is read in one read-only `REPEATABLE READ` transaction, so a
//! migration running meanwhile cannot leave a constraint pointing at a table we did not see.
//! Partitions are folded into their top-level parent here, in `assemble`, which is pure and
//! unit-tested. Columns, keys, foreign keys, triggers and policies are read from top-level
//! tables only: what a partition inherits is its parent's, and what was added to one partition
//! alone (an extra index or trigger) is not reported.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use colocate_core::schema::{
    CitusKind, CitusState, CitusTable, Column, FkAction, ForeignKey, Key, KeyKind, Policy,
    QualifiedName, Schema, SchemaFilter, Table, TableKind, Trigger, View,
};
use postgres::types::ToSql;
use postgres::{Client, IsolationLevel, Row, Transaction};

use crate::error::PgError;

const SERVER_SQL: &str = include_str!("sql/introspect_server.sql");
const RELATIONS_SQL: &str = include_str!("sql/introspect_relations.sql");
const COLUMNS_SQL: &str = include_str!("sql/introspect_columns.sql");
const CONSTRAINTS_SQL: &str = include_str!("sql/introspect_constraints.sql");
const INDEXES_SQL: &str = include_str!("sql/introspect_indexes.sql");
const TRIGGERS_SQL: &str = include_str!("sql/introspect_triggers.sql");
const POLICIES_SQL: &str = include_str!("sql/introspect_policies.sql");
const VIEWS_SQL: &str = include_str!("sql/introspect_views.sql");
const CITUS_TABLES_SQL: &str = include_str!("sql/introspect_citus_tables.sql");
const SHARDS_SQL: &str = include_str!("sql/introspect_citus_shards.sql");
const CITUS_NODES_SQL: &str = include_str!("sql/introspect_citus_nodes.sql");

/// How much one introspection cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntrospectStats {
    /// Catalog queries sent (transaction control and session settings not counted): 8 without
    /// Citus, 10 with it.
    pub queries: usize,
    pub elapsed: Duration,
}

/// The comments that mark colocate's own tables (its history and journal tables, whatever
/// their configured names): introspection leaves them out.
fn own_tables() -> Vec<String> {
    vec![
        colocate_core::history::HISTORY_COMMENT.to_string(),
        colocate_core::journal::COMMENT.to_string(),
    ]
}

/// Read the live schema of the connected database, restricted to `filter`'s schemas.
pub fn introspect(c: &mut Client, filter: &SchemaFilter) -> Result<Schema, PgError> {
    introspect_with_stats(c, filter).map(|(schema, _)| schema)
}

/// [`introspect`], also saying how many queries it sent and how long it took.
pub fn introspect_with_stats(
    c: &mut Client,
    filter: &SchemaFilter,
) -> Result<(Schema, IntrospectStats), PgError> {
    let started = Instant::now();
    let mut tx = c
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(|e| PgError::query("start the introspection transaction", &e))?;
    // The pg_get_*def and format_type texts name objects relative to the search path: with only
    // pg_catalog on it every user object comes out schema-qualified, whatever the caller's path,
    // so definitions can be replayed verbatim from any session. JIT off: the recursive type
    // queries' row estimates are wild, and compiling them took ~0.7 s of a ~10 ms query.
    tx.batch_execute("SET LOCAL search_path TO pg_catalog; SET LOCAL jit TO off")
        .map_err(|e| PgError::query("prepare the introspection session", &e))?;
    let mut catalog = Catalog {
        tx: &mut tx,
        queries: 0,
    };
    let raw = read(&mut catalog, filter)?;
    let queries = catalog.queries;
    tx.commit()
        .map_err(|e| PgError::query("end the introspection transaction", &e))?;
    let mut schema = assemble(raw);
    schema.journal = crate::journal::Journal::new(colocate_core::journal::DEFAULT_TABLE)
        .open(c)?
        .into_iter()
        .map(|d| d.journaled())
        .collect();
    Ok((
        schema,
        IntrospectStats {
            queries,
            elapsed: started.elapsed(),
        },
    ))
}

/// The transaction every catalog query goes through, counting them.
struct Catalog<'t, 'c> {
    tx: &'t mut Transaction<'c>,
    queries: usize,
}

impl Catalog<'_, '_> {
    fn query(
        &mut self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, PgError> {
        self.queries += 1;
        self.tx
            .query(sql, params)
            .map_err(|e| PgError::query(format!("introspect {what}"), &e))
    }
}

/// A table or view as the relations query returns it, before partitions are folded.
#[derive(Debug, Clone, PartialEq)]
struct Relation {
    oid: u32,
    name: QualifiedName,
    /// `pg_class.relkind`: `r`, `p`, `v` or `m`.
    kind: char,
    /// For a partition, its top-level parent (`pg_partition_root`).
    root: Option<u32>,
    rls_enabled: bool,
    reltuples: f64,
    bytes: i64,
    inherits: Vec<QualifiedName>,
    has_inheritors: bool,
}

impl Relation {
    fn is_table(&self) -> bool {
        matches!(self.kind, 'r' | 'p')
    }
}

/// Everything the queries returned, keyed by the owning relation's oid.
#[derive(Debug, Default)]
struct Raw {
    citus: CitusState,
    relations: Vec<Relation>,
    columns: Vec<(u32, Column)>,
    keys: Vec<(u32, Key)>,
    foreign_keys: Vec<(u32, ForeignKey)>,
    triggers: Vec<(u32, Trigger)>,
    policies: Vec<(u32, Policy)>,
    /// (view, a relation it reads); `None` for a view that reads none.
    view_deps: Vec<(u32, Option<QualifiedName>)>,
    citus_tables: Vec<(u32, CitusTable)>,
}

fn read(q: &mut Catalog, filter: &SchemaFilter) -> Result<Raw, PgError> {
    let mut raw = Raw::default();

    let server_sql = SERVER_SQL
        .replace("{loadable}", colocate_core::schema::CITUS_LOADABLE_SQL)
        .replace(
            "{not_preloaded}",
            colocate_core::schema::CITUS_NOT_PRELOADED_SQL,
        );
    let server = q.query("the server's extensions", &server_sql, &[])?;
    let server = server.first();
    raw.citus.available = server.is_some_and(|r| r.get("citus_available"));
    raw.citus.not_preloaded = server.is_some_and(|r| r.get("citus_not_preloaded"));
    raw.citus.installed = server.and_then(|r| r.get("citus_installed"));

    // Shards the coordinator holds are tables in pg_class. Citus hides them from most
    // sessions, but that depends on settings; exclude them by name from its own metadata.
    let shards: Vec<u32> = if raw.citus.installed.is_some() {
        q.query("Citus shards on this node", SHARDS_SQL, &[])?
            .iter()
            .map(|r| r.get(0))
            .collect()
    } else {
        Vec::new()
    };
    raw.relations = q
        .query(
            "tables and views",
            RELATIONS_SQL,
            &[&filter.include, &filter.exclude, &shards, &own_tables()],
        )?
        .iter()
        .map(|r| {
            let parents: Vec<QualifiedName> = r
                .get::<_, Vec<String>>("parent_schemas")
                .into_iter()
                .zip(r.get::<_, Vec<String>>("parent_names"))
                .map(|(s, n)| QualifiedName::new(s, n))
                .collect();
            Relation {
                oid: r.get("oid"),
                name: QualifiedName::new(r.get::<_, String>("schema"), r.get::<_, String>("name")),
                kind: first_char(r.get("kind")),
                root: r.get("root"),
                rls_enabled: r.get("rls_enabled"),
                reltuples: r.get("reltuples"),
                bytes: r.get("bytes"),
                inherits: parents,
                has_inheritors: r.get("has_inheritors"),
            }
        })
        .collect();

    // Top-level tables are what the other queries describe; partitions share their parent's
    // columns and keys, and a partition whose root was not selected is dropped with it.
    let tables: Vec<u32> = raw
        .relations
        .iter()
        .filter(|r| r.is_table() && r.root.is_none())
        .map(|r| r.oid)
        .collect();
    let views: Vec<u32> = raw
        .relations
        .iter()
        .filter(|r| !r.is_table())
        .map(|r| r.oid)
        .collect();

    raw.columns = q
        .query("columns", COLUMNS_SQL, &[&tables])?
        .iter()
        .map(|r| {
            let column = Column {
                name: r.get("name"),
                type_name: r.get("type_name"),
                not_null: r.get("not_null"),
                identity: r.get::<_, Option<String>>("identity").map(first_char),
                generated: r.get("generated"),
                hashable: r.get("hashable"),
                deterministic_collation: r.get("deterministic_collation"),
                default: r.get("default_expr"),
            };
            (r.get("table_oid"), column)
        })
        .collect();

    for r in q.query("constraints", CONSTRAINTS_SQL, &[&tables])? {
        let table: u32 = r.get("table_oid");
        let name: String = r.get("name");
        let definition: String = r.get("definition");
        let columns: Vec<Option<String>> = r.get("columns");
        let kind = match first_char(r.get("kind")) {
            'p' => KeyKind::PrimaryKey,
            'u' => KeyKind::Unique,
            'x' => KeyKind::Exclusion,
            _ => {
                let fk = ForeignKey {
                    name,
                    columns: columns.into_iter().flatten().collect(),
                    ref_table: QualifiedName::new(
                        r.get::<_, String>("ref_schema"),
                        r.get::<_, String>("ref_name"),
                    ),
                    ref_columns: r.get("ref_columns"),
                    on_delete: action(r.get("on_delete")),
                    on_update: action(r.get("on_update")),
                    on_delete_columns: r.get("on_delete_columns"),
                    validated: r.get("validated"),
                    definition,
                };
                raw.foreign_keys.push((table, fk));
                continue;
            }
        };
        let key = Key {
            name,
            kind,
            columns,
            predicate: None,
            definition,
        };
        raw.keys.push((table, key));
    }

    for r in q.query("unique indexes", INDEXES_SQL, &[&tables])? {
        let key = Key {
            name: r.get("name"),
            kind: KeyKind::UniqueIndex,
            columns: r.get("columns"),
            predicate: r.get("predicate"),
            definition: r.get("definition"),
        };
        raw.keys.push((r.get("table_oid"), key));
    }

    raw.triggers = q
        .query("triggers", TRIGGERS_SQL, &[&tables])?
        .iter()
        .map(|r| {
            let trigger = Trigger {
                name: r.get("name"),
                definition: r.get("definition"),
            };
            (r.get("table_oid"), trigger)
        })
        .collect();

    raw.policies = q
        .query("row-level security policies", POLICIES_SQL, &[&tables])?
        .iter()
        .map(|r| {
            let policy = Policy {
                name: r.get("name"),
                using: r.get("using_expr"),
                with_check: r.get("with_check"),
            };
            (r.get("table_oid"), policy)
        })
        .collect();

    raw.view_deps = q
        .query("view dependencies", VIEWS_SQL, &[&views])?
        .iter()
        .map(|r| {
            let schema: Option<String> = r.get("dep_schema");
            let name: Option<String> = r.get("dep_name");
            let dep = schema.zip(name).map(|(s, n)| QualifiedName::new(s, n));
            (r.get("view_oid"), dep)
        })
        .collect();

    // Citus's catalogs exist only where the extension is installed.
    if raw.citus.installed.is_some() {
        raw.citus_tables = q
            .query("citus metadata", CITUS_TABLES_SQL, &[&tables])?
            .iter()
            .map(|r| {
                let kind = citus_kind(
                    first_char(r.get("partmethod")),
                    first_char(r.get("repmodel")),
                    r.get("colocation_id"),
                );
                let table = CitusTable {
                    kind,
                    column: r.get("column_name"),
                    colocation_id: r.get("colocation_id"),
                    shard_count: Some(r.get("shard_count")),
                };
                (r.get("table_oid"), table)
            })
            .collect();
        let nodes = q.query("citus worker nodes", CITUS_NODES_SQL, &[])?;
        let workers: i64 = nodes.first().map_or(0, |r| r.get("workers"));
        raw.citus.workers = usize::try_from(workers).unwrap_or(0);
    }

    Ok(raw)
}

fn first_char(s: String) -> char {
    s.chars().next().unwrap_or(' ')
}

fn action(code: Option<String>) -> FkAction {
    code.map_or(FkAction::NoAction, |c| FkAction::from_code(first_char(c)))
}

/// The table type as Citus itself tells it from `pg_dist_partition` (`IsCitusTableTypeInternal`):
/// hash, range or append → distributed; no partition method with 2PC replication → reference;
/// otherwise a single-shard distributed table when it has a colocation group (schema-based
/// sharding), else a Citus local table.
fn citus_kind(partmethod: char, repmodel: char, colocation_id: i32) -> CitusKind {
    match (partmethod, repmodel) {
        ('h' | 'r' | 'a', _) => CitusKind::Distributed,
        (_, 't') => CitusKind::Reference,
        _ if colocation_id != 0 => CitusKind::Distributed,
        _ => CitusKind::CitusLocal,
    }
}

/// Build the model from the query results: fold partitions into their top-level parent, attach
/// everything else to its table, and sort every listing.
fn assemble(raw: Raw) -> Schema {
    let mut tables: HashMap<u32, Table> = HashMap::new();
    let mut own_tuples: HashMap<u32, f64> = HashMap::new();
    // Leaf partitions' reltuples per root (a partitioned table holds no rows of its own).
    let mut leaf_tuples: HashMap<u32, Vec<f64>> = HashMap::new();
    let mut views: Vec<(u32, View)> = Vec::new();

    for r in raw.relations.iter().filter(|r| r.root.is_none()) {
        match r.kind {
            'r' | 'p' => {
                let mut t = Table::new(&r.name.schema, &r.name.name);
                t.kind = if r.kind == 'p' {
                    TableKind::Partitioned
                } else {
                    TableKind::Ordinary
                };
                t.rls_enabled = r.rls_enabled;
                t.inherits = r.inherits.clone();
                t.has_inheritors = r.has_inheritors;
                own_tuples.insert(r.oid, r.reltuples);
                t.local_bytes = r.bytes;
                tables.insert(r.oid, t);
            }
            kind => views.push((
                r.oid,
                View {
                    name: r.name.clone(),
                    materialized: kind == 'm',
                    depends_on: Vec::new(),
                },
            )),
        }
    }

    for p in &raw.relations {
        let Some(root) = p.root else { continue };
        let Some(parent) = tables.get_mut(&root) else {
            continue; // its root was filtered out
        };
        parent.partitions.push(p.name.clone());
        parent.local_bytes += p.bytes;
        if p.kind == 'p' {
            parent.multi_level_partition = true;
        } else {
            leaf_tuples.entry(root).or_default().push(p.reltuples);
        }
    }

    for (oid, t) in tables.iter_mut() {
        let own = own_tuples.get(oid).copied().unwrap_or(-1.0);
        let leaves = leaf_tuples.get(oid).map_or(&[][..], Vec::as_slice);
        t.row_estimate = row_estimate(t.kind, own, leaves);
    }

    for (oid, column) in raw.columns {
        if let Some(t) = tables.get_mut(&oid) {
            t.columns.push(column); // already in attnum order
        }
    }
    for (oid, key) in raw.keys {
        if let Some(t) = tables.get_mut(&oid) {
            t.keys.push(key);
        }
    }
    for (oid, fk) in raw.foreign_keys {
        if let Some(t) = tables.get_mut(&oid) {
            t.foreign_keys.push(fk);
        }
    }
    for (oid, trigger) in raw.triggers {
        if let Some(t) = tables.get_mut(&oid) {
            t.triggers.push(trigger);
        }
    }
    for (oid, policy) in raw.policies {
        if let Some(t) = tables.get_mut(&oid) {
            t.policies.push(policy);
        }
    }
    for (oid, citus) in raw.citus_tables {
        if let Some(t) = tables.get_mut(&oid) {
            t.citus = Some(citus);
        }
    }

    let mut deps: HashMap<u32, BTreeSet<QualifiedName>> = HashMap::new();
    for (oid, dep) in raw.view_deps {
        let entry = deps.entry(oid).or_default();
        if let Some(dep) = dep {
            entry.insert(dep);
        }
    }
    let mut views: Vec<View> = views
        .into_iter()
        .map(|(oid, mut v)| {
            v.depends_on = deps.remove(&oid).unwrap_or_default().into_iter().collect();
            v
        })
        .collect();
    views.sort_by(|a, b| a.name.cmp(&b.name));

    let mut out: BTreeMap<QualifiedName, Table> = BTreeMap::new();
    for (_, mut t) in tables {
        t.partitions.sort();
        t.keys.sort_by(|a, b| a.name.cmp(&b.name));
        t.foreign_keys.sort_by(|a, b| a.name.cmp(&b.name));
        t.triggers.sort_by(|a, b| a.name.cmp(&b.name));
        t.policies.sort_by(|a, b| a.name.cmp(&b.name));
        out.insert(t.name.clone(), t);
    }
    Schema {
        tables: out,
        views,
        citus: raw.citus,
        journal: Vec::new(),
    }
}

/// Estimated rows: a plain table's `reltuples`; for a partitioned table the sum over its leaf
/// partitions that have been analysed (autovacuum analyses leaves, never the parent), else the
/// parent's own figure from a manual `ANALYZE`. -1 when nothing was ever analysed.
fn row_estimate(kind: TableKind, own: f64, leaves: &[f64]) -> i64 {
    let analysed: Vec<f64> = leaves.iter().copied().filter(|&r| r >= 0.0).collect();
    let rows = match kind {
        TableKind::Partitioned if !analysed.is_empty() => analysed.iter().sum(),
        _ => own,
    };
    if rows < 0.0 {
        -1
    } else {
        rows.round() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn distinct<'a>(names: impl IntoIterator<Item = &'a QualifiedName>) -> bool {
        let mut seen = HashSet::new();
        names.into_iter().all(|n| seen.insert(n))
    }

    fn rel(oid: u32, schema: &str, name: &str, kind: char, root: Option<u32>) -> Relation {
        Relation {
            oid,
            name: QualifiedName::new(schema, name),
            kind,
            root,
            rls_enabled: false,
            reltuples: -1.0,
            bytes: 0,
            inherits: Vec::new(),
            has_inheritors: false,
        }
    }

    #[test]
    fn partitions_fold_into_their_top_level_parent() {
        let mut raw = Raw::default();
        let mut events = rel(1, "app", "events", 'p', None);
        events.reltuples = 999.0; // a stale manual ANALYZE of the parent: leaves win
        let mut y2024 = rel(2, "app", "events_2024", 'r', Some(1));
        y2024.reltuples = 10.0;
        let y2025 = rel(3, "other", "events_2025", 'p', Some(1));
        let mut y2025q1 = rel(4, "app", "events_2025_q1", 'r', Some(1));
        y2025q1.reltuples = 5.0;
        // a partition whose root was filtered out disappears with it
        let orphan = rel(5, "app", "orphan_part", 'r', Some(99));
        raw.relations = vec![y2025q1, events, y2024, y2025, orphan];
        raw.columns = vec![
            (1, Column::new("tenant", "uuid", true)),
            (1, Column::new("at", "date", true)),
        ];
        let s = assemble(raw);
        assert_eq!(s.tables.len(), 1);
        let t = &s.tables[&QualifiedName::new("app", "events")];
        assert_eq!(t.kind, TableKind::Partitioned);
        assert_eq!(
            t.partitions,
            vec![
                QualifiedName::new("app", "events_2024"),
                QualifiedName::new("app", "events_2025_q1"),
                QualifiedName::new("other", "events_2025"),
            ]
        );
        assert!(t.multi_level_partition);
        assert_eq!(t.row_estimate, 15);
        assert_eq!(t.columns.len(), 2);
        assert!(distinct(&t.partitions));
    }

    #[test]
    fn row_estimates() {
        assert_eq!(row_estimate(TableKind::Ordinary, -1.0, &[]), -1);
        assert_eq!(row_estimate(TableKind::Ordinary, 0.0, &[]), 0);
        assert_eq!(row_estimate(TableKind::Ordinary, 41.6, &[]), 42);
        assert_eq!(row_estimate(TableKind::Partitioned, -1.0, &[]), -1);
        assert_eq!(
            row_estimate(TableKind::Partitioned, -1.0, &[-1.0, -1.0]),
            -1
        );
        assert_eq!(row_estimate(TableKind::Partitioned, 7.0, &[-1.0]), 7);
        assert_eq!(
            row_estimate(TableKind::Partitioned, -1.0, &[3.0, -1.0, 4.0]),
            7
        );
    }

    #[test]
    fn citus_kinds_follow_citus() {
        assert_eq!(citus_kind('h', 's', 3), CitusKind::Distributed);
        assert_eq!(citus_kind('n', 't', 1), CitusKind::Reference);
        assert_eq!(citus_kind('n', 's', 0), CitusKind::CitusLocal);
        assert_eq!(citus_kind('n', 's', 7), CitusKind::Distributed);
    }

    #[test]
    fn everything_is_attached_and_sorted() {
        let mut raw = Raw::default();
        let mut child = rel(2, "app", "child", 'r', None);
        child.inherits = vec![QualifiedName::new("app", "parent")];
        let mut parent = rel(1, "app", "parent", 'r', None);
        parent.has_inheritors = true;
        raw.relations = vec![
            child,
            parent,
            rel(10, "app", "v_b", 'v', None),
            rel(11, "app", "v_a", 'm', None),
        ];
        let key = |name: &str| Key {
            name: name.into(),
            kind: KeyKind::Unique,
            columns: vec![Some("id".into())],
            predicate: None,
            definition: String::new(),
        };
        raw.keys = vec![(1, key("z_key")), (1, key("a_key")), (77, key("lost"))];
        raw.triggers = vec![
            (
                1,
                Trigger {
                    name: "t2".into(),
                    definition: String::new(),
                },
            ),
            (
                1,
                Trigger {
                    name: "t1".into(),
                    definition: String::new(),
                },
            ),
        ];
        raw.view_deps = vec![
            (10, Some(QualifiedName::new("app", "parent"))),
            (10, Some(QualifiedName::new("app", "child"))),
            (10, Some(QualifiedName::new("app", "child"))),
            (11, None),
        ];
        let s = assemble(raw);
        let parent = &s.tables[&QualifiedName::new("app", "parent")];
        assert!(parent.has_inheritors);
        let names: Vec<&str> = parent.keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["a_key", "z_key"]);
        let names: Vec<&str> = parent.triggers.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["t1", "t2"]);
        let child = &s.tables[&QualifiedName::new("app", "child")];
        assert_eq!(child.inherits, vec![QualifiedName::new("app", "parent")]);
        assert_eq!(s.views.len(), 2);
        assert_eq!(s.views[0].name.name, "v_a");
        assert!(s.views[0].materialized);
        assert!(s.views[0].depends_on.is_empty());
        assert_eq!(
            s.views[1].depends_on,
            vec![
                QualifiedName::new("app", "child"),
                QualifiedName::new("app", "parent")
            ]
        );
    }
}
