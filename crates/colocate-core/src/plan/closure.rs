//! The integrity closure: which tables wait for which, so that no plan leaves a foreign key
//! from a table that stays plain into a distributed one. Citus keeps such a key on the
//! coordinator's shell of the distributed table, whose rows went to the shards: deletes there
//! pass it by, and rows created afterwards cannot be referenced.
//!
//! Runs after every rule, on their blockers, and blocks two kinds of tables more:
//! - `references-blocked-table`: a Citus table (reference or distributed) whose foreign-key
//!   target is blocked: Citus refuses a key from a Citus table to a plain one.
//! - `referenced-by-blocked-table`: a table the plan distributes (the root included) that a
//!   blocked table references: converting it would leave that key unenforced. A table already
//!   distributed is not held back (its unenforced keys are what `check` reports).
//!
//! Both feed each other (a held-back table's Citus referrers wait too, and a table that waits
//! stays plain, so the tables it references are held back): one breadth-first walk over the
//! foreign keys in both directions reaches the fixed point, each table entered once and each
//! key looked at from its two ends, so it is linear in tables plus keys.

use std::collections::{BTreeMap, VecDeque};

use super::fixes::display_col;
use super::rules::Context;
use super::{Code, Finding, Severity};
use crate::schema::{CitusKind, ForeignKey, QualifiedName, Table};
use crate::sqltext::comment;

/// Block every table that waits for a blocked one (see the module documentation). Each finding
/// names the key it waits through and, as its fix, the table whose own blockers are the cause.
pub(super) fn close(ctx: &Context, findings: &mut Vec<Finding>) {
    let schema = ctx.schema;
    // The blockers of each table as the rules found them.
    let mut own: BTreeMap<&QualifiedName, Vec<Code>> = BTreeMap::new();
    for f in findings.iter().filter(|f| f.severity == Severity::Blocker) {
        if let Some((q, _)) = schema.tables.get_key_value(&f.table) {
            own.entry(q).or_default().push(f.code);
        }
    }
    for codes in own.values_mut() {
        codes.sort();
        codes.dedup();
    }
    // Every blocked table, with the table whose own blockers it waits for (itself for those).
    let mut origin: BTreeMap<&QualifiedName, &QualifiedName> =
        own.keys().map(|q| (*q, *q)).collect();
    let mut queue: VecDeque<&QualifiedName> = own.keys().copied().collect();
    let mut found = Vec::new();
    let distributed_now = |q: &QualifiedName| {
        schema
            .table(q)
            .and_then(|t| t.citus.as_ref())
            .is_some_and(|c| c.kind == CitusKind::Distributed)
    };
    while let Some(b) = queue.pop_front() {
        let from = origin[b];
        let Some(role) = ctx.role(b) else {
            continue;
        };
        // Citus tables referencing it wait for it.
        if role.is_citus() {
            for (src, fk) in ctx.graph.referencing(b) {
                let s = &src.name;
                if s == b
                    || origin.contains_key(s)
                    || !ctx.role(s).is_some_and(|r| r.is_citus())
                {
                    continue;
                }
                origin.insert(s, from);
                found.push(references_blocked(src, fk, from));
                queue.push_back(s);
            }
        }
        // It stays plain: the tables it references wait for it, unless already distributed.
        if distributed_now(b) {
            continue;
        }
        let table = &schema.tables[b];
        for fk in &table.foreign_keys {
            let Some((target, _)) = schema.tables.get_key_value(&fk.ref_table) else {
                continue;
            };
            if target == b
                || origin.contains_key(target)
                || !ctx.role(target).is_some_and(|r| r.is_distributed())
                || distributed_now(target)
            {
                continue;
            }
            let why = match own.get(b) {
                Some(codes) => {
                    let codes: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
                    format!("it is blocked ({})", codes.join(", "))
                }
                None => format!("it waits for {from}"),
            };
            origin.insert(target, from);
            found.push(referenced_by_blocked(target, table, fk, &why, from));
            queue.push_back(target);
        }
    }
    findings.extend(found);
}

/// `src` references a blocked table through `fk`.
fn references_blocked(src: &Table, fk: &ForeignKey, origin: &QualifiedName) -> Finding {
    Finding::new(
        Code::ReferencesBlockedTable,
        Severity::Blocker,
        &src.name,
        format!(
            "{} references {} ({}), which is blocked: it converts once {} does",
            src.name,
            fk.ref_table,
            display_col(&fk.name),
            fk.ref_table
        ),
        Some(comment(&format!("fix the blockers of {origin} first"))),
        true,
    )
}

/// `target` is referenced by `src`, which stays plain (`why`), through `fk`.
fn referenced_by_blocked(
    target: &QualifiedName,
    src: &Table,
    fk: &ForeignKey,
    why: &str,
    origin: &QualifiedName,
) -> Finding {
    Finding::new(
        Code::ReferencedByBlockedTable,
        Severity::Blocker,
        target,
        format!(
            "{target} is referenced by {} ({}), which stays plain because {why}: converting {target} would leave that key checking only the coordinator's shell; it converts together with {}",
            src.name,
            display_col(&fk.name),
            src.name
        ),
        Some(comment(&format!("fix the blockers of {origin} first"))),
        true,
    )
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;

    #[test]
    fn citus_tables_cannot_reference_forced_local_tables_and_blocks_propagate() {
        let s = schema(vec![
            tenants(),
            child("tickets").col("region", "text").fk(
                "tickets_region_fkey",
                &["region"],
                "regions",
                &["code"],
            ),
            tbl("regions").col("code", "text").pk(&["code"]),
            child("comments").col("ticket_id", "bigint").fk(
                "comments_ticket_fkey",
                &["tenant", "ticket_id"],
                "tickets",
                &["tenant", "id"],
            ),
            tbl("local_notes").col("code", "text").fk(
                "notes_region_fkey",
                &["code"],
                "regions2",
                &["code"],
            ),
            tbl("regions2").col("code", "text").pk(&["code"]),
        ]);
        let config = DistributionConfig {
            local: vec![Forced::Name("regions".into())],
            reference: vec![Forced::Name("regions2".into())],
            ..Default::default()
        };
        let p = plan(&s, &config);
        assert_eq!(codes(&p, "tickets"), [Code::ReferencesLocalTable]);
        assert_eq!(codes(&p, "comments"), [Code::ReferencesBlockedTable]);
        assert_eq!(role_of(&p, "comments"), (Role::Distributed, true));
        assert_eq!(codes(&p, "local_notes"), [Code::LocalReferencesReference]);
        // tickets stays plain with its key to tenants: tenants waits for it.
        assert_eq!(codes(&p, "tenants"), [Code::ReferencedByBlockedTable]);
    }
}
