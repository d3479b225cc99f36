//! The foreign-key graph of a schema: which tables reference which, the order in which a set
//! of tables can be converted (foreign-key targets first, cycles broken by leaving out some of
//! their keys), the cycles themselves, and what a table reaches through its keys.
//!
//! The planner orders its steps with it and `generate` lays its files out with it, so the two
//! cannot disagree on what runs first or which keys a cycle drops.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::schema::{ForeignKey, Key, QualifiedName, Schema, Table};

/// Foreign keys by the table they reference.
type Referencing<'s> = BTreeMap<&'s QualifiedName, Vec<(&'s Table, &'s ForeignKey)>>;

/// The foreign keys of one schema, as a graph of tables.
pub struct FkGraph<'s> {
    schema: &'s Schema,
    /// Built on first use: ordering alone does not need it.
    referencing: OnceCell<Referencing<'s>>,
}

/// A conversion order (see [`FkGraph::order`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Every table of the set, each after the tables it references.
    pub tables: Vec<QualifiedName>,
    /// The keys left out to break cycles (dropped before, restored after), by table and name.
    pub dropped: Vec<(QualifiedName, ForeignKey)>,
    /// Tables that reference no other table of the set once the dropped keys are left out.
    independent: BTreeSet<QualifiedName>,
}

impl Order {
    /// Put `q` first when nothing in the set must be converted before it.
    pub fn lead_with(&mut self, q: &QualifiedName) {
        if !self.independent.contains(q) {
            return;
        }
        if let Some(pos) = self.tables.iter().position(|t| t == q) {
            let t = self.tables.remove(pos);
            self.tables.insert(0, t);
        }
    }
}

/// A strongly connected group of tables: a foreign-key cycle, or one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// In name order.
    pub tables: Vec<QualifiedName>,
    /// Positions (in the list [`FkGraph::components`] returns) of the other groups it
    /// references: always earlier ones.
    pub references: BTreeSet<usize>,
}

impl<'s> FkGraph<'s> {
    pub fn new(schema: &'s Schema) -> FkGraph<'s> {
        FkGraph {
            schema,
            referencing: OnceCell::new(),
        }
    }

    fn referencing_index(&self) -> &Referencing<'s> {
        self.referencing.get_or_init(|| {
            let mut by_target: Referencing<'s> = BTreeMap::new();
            for t in self.schema.tables.values() {
                for fk in &t.foreign_keys {
                    by_target.entry(&fk.ref_table).or_default().push((t, fk));
                }
            }
            by_target
        })
    }

    /// The foreign keys that reference `target` (its self-references included), in table
    /// order.
    pub fn referencing(&self, target: &QualifiedName) -> &[(&'s Table, &'s ForeignKey)] {
        self.referencing_index()
            .get(target)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The foreign keys that use exactly the columns of `k` of table `t`: rebuilding the key
    /// means dropping them first.
    pub fn key_dependents(&self, t: &QualifiedName, k: &Key) -> Vec<(&'s Table, &'s ForeignKey)> {
        let mut key_cols = k.column_names();
        key_cols.sort();
        self.referencing(t)
            .iter()
            .filter(|(_, fk)| {
                let mut cols: Vec<&str> = fk.ref_columns.iter().map(String::as_str).collect();
                cols.sort();
                cols == key_cols
            })
            .copied()
            .collect()
    }

    /// Every foreign key whose target is in the schema: (from, to, name), in table order.
    pub fn edges(&self) -> Vec<(QualifiedName, QualifiedName, String)> {
        let mut out = Vec::new();
        for t in self.schema.tables.values() {
            for fk in &t.foreign_keys {
                if self.schema.tables.contains_key(&fk.ref_table) {
                    out.push((t.name.clone(), fk.ref_table.clone(), fk.name.clone()));
                }
            }
        }
        out
    }

    /// Order `tables` so that foreign-key targets come first, looking only at keys between
    /// them (self-references ignored). Cycles are broken by leaving out, in each strongly
    /// connected group taken in name order (`lead` first when it is in the group), every key
    /// that points forward. Tables go layer by layer, each layer in name order: a table comes
    /// in the layer after the last of its targets.
    pub fn order<'q>(
        &self,
        tables: impl IntoIterator<Item = &'q QualifiedName>,
        lead: Option<&QualifiedName>,
    ) -> Order {
        let set: BTreeSet<&QualifiedName> = tables.into_iter().collect();
        let mut g: DiGraph<&QualifiedName, ()> = DiGraph::new();
        let idx: BTreeMap<&QualifiedName, NodeIndex> =
            set.iter().map(|q| (*q, g.add_node(*q))).collect();
        let mut fks: Vec<(&QualifiedName, &ForeignKey)> = Vec::new();
        for q in &set {
            let Some(t) = self.schema.table(q) else {
                continue;
            };
            for fk in &t.foreign_keys {
                if fk.ref_table != **q && set.contains(&fk.ref_table) {
                    g.add_edge(idx[q], idx[&fk.ref_table], ());
                    fks.push((*q, fk));
                }
            }
        }
        let mut dropped: Vec<(QualifiedName, ForeignKey)> = Vec::new();
        for scc in tarjan_scc(&g).into_iter().filter(|s| s.len() > 1) {
            let mut names: Vec<&QualifiedName> = scc.iter().map(|n| g[*n]).collect();
            names.sort_by_key(|n| (Some(*n) != lead, *n));
            let rank: BTreeMap<&QualifiedName, usize> =
                names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
            for (src, fk) in &fks {
                if let (Some(a), Some(b)) = (rank.get(src), rank.get(&fk.ref_table)) {
                    if b > a {
                        dropped.push(((*src).clone(), (*fk).clone()));
                    }
                }
            }
        }
        dropped.sort_by(|a, b| (&a.0, &a.1.name).cmp(&(&b.0, &b.1.name)));
        let skip: BTreeSet<(&QualifiedName, &str)> = dropped
            .iter()
            .map(|(t, fk)| (t, fk.name.as_str()))
            .collect();
        let mut deps: BTreeMap<&QualifiedName, BTreeSet<&QualifiedName>> =
            set.iter().map(|q| (*q, BTreeSet::new())).collect();
        for (src, fk) in &fks {
            if !skip.contains(&(*src, fk.name.as_str())) {
                if let Some(d) = deps.get_mut(src) {
                    d.insert(&fk.ref_table);
                }
            }
        }
        let independent: BTreeSet<QualifiedName> = deps
            .iter()
            .filter(|(_, d)| d.is_empty())
            .map(|(q, _)| (*q).clone())
            .collect();
        Order {
            tables: layered(&deps),
            dropped,
            independent,
        }
    }

    /// The strongly connected groups of `tables` (keys between them only), each listed after
    /// every group it references.
    pub fn components(&self, tables: &[QualifiedName]) -> Vec<Component> {
        let mut g: DiGraph<&QualifiedName, ()> = DiGraph::new();
        let idx: BTreeMap<&QualifiedName, NodeIndex> =
            tables.iter().map(|q| (q, g.add_node(q))).collect();
        for q in tables {
            let Some(t) = self.schema.table(q) else {
                continue;
            };
            for fk in &t.foreign_keys {
                if fk.ref_table == *q {
                    continue;
                }
                if let Some(&to) = idx.get(&fk.ref_table) {
                    g.update_edge(idx[q], to, ());
                }
            }
        }
        // Tarjan lists a group after every group it references.
        let sccs = tarjan_scc(&g);
        let mut group_of: BTreeMap<NodeIndex, usize> = BTreeMap::new();
        for (i, scc) in sccs.iter().enumerate() {
            for n in scc {
                group_of.insert(*n, i);
            }
        }
        sccs.iter()
            .enumerate()
            .map(|(i, scc)| {
                let mut names: Vec<QualifiedName> = scc.iter().map(|n| g[*n].clone()).collect();
                names.sort();
                let references = scc
                    .iter()
                    .flat_map(|n| g.neighbors(*n))
                    .map(|m| group_of[&m])
                    .filter(|&j| j != i)
                    .collect();
                Component {
                    tables: names,
                    references,
                }
            })
            .collect()
    }

    /// Every table the `from` tables reach by following foreign keys, directly or through
    /// other tables (targets missing from the schema included).
    pub fn reached_from(&self, from: &BTreeSet<&QualifiedName>) -> BTreeSet<&'s QualifiedName> {
        let mut out: BTreeSet<&QualifiedName> = BTreeSet::new();
        let mut work: Vec<&QualifiedName> = self
            .schema
            .tables
            .values()
            .filter(|t| from.contains(&t.name))
            .flat_map(|t| t.foreign_keys.iter().map(|fk| &fk.ref_table))
            .collect();
        while let Some(q) = work.pop() {
            if !out.insert(q) {
                continue;
            }
            if let Some(t) = self.schema.table(q) {
                work.extend(t.foreign_keys.iter().map(|fk| &fk.ref_table));
            }
        }
        out
    }

    /// Whether `q` reaches a table `wanted` accepts through another table (at least two
    /// foreign keys away), self-references ignored.
    pub fn reaches_indirectly(
        &self,
        q: &QualifiedName,
        wanted: impl Fn(&QualifiedName) -> bool,
    ) -> bool {
        let mut seen: BTreeSet<&QualifiedName> = BTreeSet::new();
        let mut work: Vec<(&QualifiedName, usize)> = vec![(q, 0)];
        while let Some((t, depth)) = work.pop() {
            if depth >= 2 && wanted(t) {
                return true;
            }
            if !seen.insert(t) {
                continue;
            }
            if let Some(table) = self.schema.table(t) {
                work.extend(
                    table
                        .foreign_keys
                        .iter()
                        .filter(|fk| fk.ref_table != *t)
                        .map(|fk| (&fk.ref_table, depth + 1)),
                );
            }
        }
        false
    }
}

/// Kahn's algorithm, layer by layer: every table whose targets are all placed, in name order.
/// Linear in tables plus keys (each key is counted down once).
fn layered(deps: &BTreeMap<&QualifiedName, BTreeSet<&QualifiedName>>) -> Vec<QualifiedName> {
    let mut indegree: BTreeMap<&QualifiedName, usize> =
        deps.iter().map(|(q, d)| (*q, d.len())).collect();
    let mut dependents: BTreeMap<&QualifiedName, Vec<&QualifiedName>> = BTreeMap::new();
    for (src, targets) in deps {
        for t in targets {
            dependents.entry(*t).or_default().push(*src);
        }
    }
    let mut order = Vec::with_capacity(deps.len());
    let mut layer: Vec<&QualifiedName> = indegree
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(q, _)| *q)
        .collect();
    while !layer.is_empty() {
        let mut next = Vec::new();
        for q in &layer {
            order.push((*q).clone());
            for src in dependents.get(q).into_iter().flatten() {
                if let Some(n) = indegree.get_mut(src) {
                    *n -= 1;
                    if *n == 0 {
                        next.push(*src);
                    }
                }
            }
        }
        next.sort();
        layer = next;
    }
    if order.len() < deps.len() {
        // Unreachable once cycles are broken; never loop forever, never lose a table.
        let placed: BTreeSet<QualifiedName> = order.iter().cloned().collect();
        order.extend(
            deps.keys()
                .filter(|q| !placed.contains(*q))
                .map(|q| (*q).clone()),
        );
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{FkAction, KeyKind};

    fn q(name: &str) -> QualifiedName {
        QualifiedName::parse(name, "public")
    }

    fn fk(name: &str, target: &str) -> ForeignKey {
        ForeignKey {
            name: name.into(),
            columns: vec!["id".into()],
            ref_table: q(target),
            ref_columns: vec!["id".into()],
            on_delete: FkAction::NoAction,
            on_update: FkAction::NoAction,
            on_delete_columns: Vec::new(),
            validated: true,
            definition: String::new(),
        }
    }

    /// A schema from `(table, [(key, target)])`.
    fn schema(tables: &[(&str, &[(&str, &str)])]) -> Schema {
        let mut s = Schema::default();
        for (name, keys) in tables {
            let mut t = Table::new("public", name);
            t.foreign_keys = keys.iter().map(|(k, target)| fk(k, target)).collect();
            s.add(t);
        }
        s
    }

    fn names(qs: &[QualifiedName]) -> Vec<&str> {
        qs.iter().map(|q| q.name.as_str()).collect()
    }

    #[test]
    fn targets_come_first_layer_by_layer_in_name_order() {
        let s = schema(&[
            ("a", &[("a_c", "c")]),
            ("b", &[]),
            ("c", &[("c_b", "b"), ("c_self", "c")]),
            ("d", &[("d_x", "outside")]),
        ]);
        let all: Vec<QualifiedName> = s.tables.keys().cloned().collect();
        let o = FkGraph::new(&s).order(&all, None);
        assert_eq!(names(&o.tables), ["b", "d", "c", "a"]);
        assert!(o.dropped.is_empty(), "a self-reference is no cycle");
    }

    #[test]
    fn a_cycle_drops_its_forward_keys_and_the_lead_ranks_first() {
        let s = schema(&[
            ("a", &[("a_b", "b")]),
            ("b", &[("b_c", "c")]),
            ("c", &[("c_a", "a")]),
        ]);
        let all: Vec<QualifiedName> = s.tables.keys().cloned().collect();
        let g = FkGraph::new(&s);
        // Name order a, b, c: a -> b and b -> c point forward.
        let o = g.order(&all, None);
        let dropped: Vec<&str> = o.dropped.iter().map(|(_, k)| k.name.as_str()).collect();
        assert_eq!(dropped, ["a_b", "b_c"]);
        assert_eq!(names(&o.tables), ["a", "b", "c"]);
        // With c leading: c, a, b; c -> a points forward, as does a -> b.
        let o = g.order(&all, Some(&q("c")));
        let dropped: Vec<&str> = o.dropped.iter().map(|(_, k)| k.name.as_str()).collect();
        assert_eq!(dropped, ["a_b", "c_a"]);
        assert_eq!(names(&o.tables), ["a", "c", "b"]);
    }

    #[test]
    fn lead_with_moves_only_a_table_that_waits_for_nothing() {
        let s = schema(&[("a", &[]), ("b", &[("b_a", "a")]), ("root", &[])]);
        let all: Vec<QualifiedName> = s.tables.keys().cloned().collect();
        let g = FkGraph::new(&s);
        let mut o = g.order(&all, None);
        assert_eq!(names(&o.tables), ["a", "root", "b"]);
        o.lead_with(&q("root"));
        assert_eq!(names(&o.tables), ["root", "a", "b"]);
        o.lead_with(&q("b"));
        assert_eq!(names(&o.tables), ["root", "a", "b"], "b waits for a");
    }

    #[test]
    fn only_keys_within_the_set_count() {
        let s = schema(&[("a", &[("a_b", "b")]), ("b", &[("b_a", "a")]), ("c", &[])]);
        let o = FkGraph::new(&s).order([&q("a"), &q("c")], None);
        assert_eq!(names(&o.tables), ["a", "c"]);
        assert!(o.dropped.is_empty());
    }

    #[test]
    fn components_list_cycles_after_what_they_reference() {
        let s = schema(&[
            ("a", &[("a_b", "b")]),
            ("b", &[("b_a", "a"), ("b_c", "c")]),
            ("c", &[]),
            ("d", &[("d_a", "a"), ("d_self", "d")]),
        ]);
        let all: Vec<QualifiedName> = s.tables.keys().cloned().collect();
        let cs = FkGraph::new(&s).components(&all);
        let pos = |n: &str| cs.iter().position(|c| c.tables.contains(&q(n))).unwrap();
        assert_eq!(cs.len(), 3);
        assert_eq!(names(&cs[pos("a")].tables), ["a", "b"]);
        assert_eq!(cs[pos("a")].references, [pos("c")].into());
        assert_eq!(cs[pos("d")].references, [pos("a")].into());
        assert!(pos("c") < pos("a") && pos("a") < pos("d"));
    }

    #[test]
    fn reachability_forwards_indirect_and_the_keys_into_a_table() {
        let s = schema(&[
            ("a", &[("a_b", "b")]),
            ("b", &[("b_c", "c"), ("b_self", "b")]),
            ("c", &[("c_gone", "gone")]),
            ("d", &[("d_c", "c")]),
        ]);
        let g = FkGraph::new(&s);
        let from: BTreeSet<&QualifiedName> = [&s.tables[&q("a")].name].into();
        let reached: Vec<&str> = g
            .reached_from(&from)
            .iter()
            .map(|q| q.name.as_str())
            .collect();
        assert_eq!(reached, ["b", "c", "gone"]);
        assert!(g.reaches_indirectly(&q("a"), |t| t.name == "c"));
        assert!(
            !g.reaches_indirectly(&q("b"), |t| t.name == "c"),
            "c is direct"
        );
        assert!(!g.reaches_indirectly(&q("d"), |t| t.name == "c"));
        let referencing: Vec<&str> = g
            .referencing(&q("c"))
            .iter()
            .map(|(t, _)| t.name.name.as_str())
            .collect();
        assert_eq!(referencing, ["b", "d"]);
    }

    #[test]
    fn key_dependents_use_exactly_the_key_columns() {
        let mut s = schema(&[("a", &[]), ("b", &[("b_a", "a")]), ("c", &[("c_a", "a")])]);
        s.tables.get_mut(&q("c")).unwrap().foreign_keys[0].ref_columns =
            vec!["id".into(), "x".into()];
        let key = Key {
            name: "a_pkey".into(),
            kind: KeyKind::PrimaryKey,
            columns: vec![Some("id".into())],
            predicate: None,
            definition: String::new(),
        };
        let g = FkGraph::new(&s);
        let deps: Vec<&str> = g
            .key_dependents(&q("a"), &key)
            .iter()
            .map(|(_, fk)| fk.name.as_str())
            .collect();
        assert_eq!(deps, ["b_a"]);
        assert_eq!(g.referencing(&q("a")).len(), 2);
        assert_eq!(g.edges().len(), 2);
    }
}
