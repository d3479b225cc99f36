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
//! - `colocated-with-blocked-root`: a distributed table that is colocated with the root while
//!   the root waits or is blocked (Citus refuses to colocate with a plain table), when nothing
//!   else holds it back.
//!
//! They feed each other (a held-back table's Citus referrers wait too, and a table that waits
//! stays plain, so the tables it references are held back): one breadth-first walk over the
//! foreign keys in both directions reaches the fixed point, each table entered once and each
//! key looked at from its two ends, so it is linear in tables plus keys.

use std::collections::{BTreeMap, VecDeque};

use super::fixes::display_col;
use super::rules::Context;
use super::{Code, Finding, Role, Severity};
use crate::schema::{CitusKind, ForeignKey, QualifiedName, Table};

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
    let mut root_done = false;
    loop {
        let Some(b) = queue.pop_front() else {
            // The root stays plain: the distributed tables nothing else holds back cannot be
            // colocated with it. Last, so that a table waiting through a key says so.
            let root = ctx.root().and_then(|r| Some((r, *origin.get(r)?)));
            let Some((root, from)) = root.filter(|_| !root_done) else {
                break;
            };
            root_done = true;
            if distributed_now(root) {
                continue;
            }
            for (q, t) in &schema.tables {
                if origin.contains_key(q)
                    || ctx.role(q) != Some(Role::Distributed)
                    || distributed_now(q)
                {
                    continue;
                }
                origin.insert(q, from);
                found.push(colocated_with_blocked_root(t, root, from));
                queue.push_back(q);
            }
            continue;
        };
        let from = origin[b];
        let Some(role) = ctx.role(b) else {
            continue;
        };
        // Citus tables referencing it wait for it.
        if role.is_citus() {
            for (src, fk) in ctx.graph.referencing(b) {
                let s = &src.name;
                if s == b || origin.contains_key(s) || !ctx.role(s).is_some_and(|r| r.is_citus()) {
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

/// `t` is colocated with `root`, which is blocked.
fn colocated_with_blocked_root(t: &Table, root: &QualifiedName, origin: &QualifiedName) -> Finding {
    Finding::waiting(
        Code::ColocatedWithBlockedRoot,
        &t.name,
        format!(
            "{} is colocated with the root {root}, which is blocked: Citus colocates only with a distributed table, so it converts once {root} does",
            t.name
        ),
        origin,
    )
}

/// `src` references a blocked table through `fk`.
fn references_blocked(src: &Table, fk: &ForeignKey, origin: &QualifiedName) -> Finding {
    Finding::waiting(
        Code::ReferencesBlockedTable,
        &src.name,
        format!(
            "{} references {} ({}), which is blocked: it converts once {} does",
            src.name,
            fk.ref_table,
            display_col(&fk.name),
            fk.ref_table
        ),
        origin,
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
    Finding::waiting(
        Code::ReferencedByBlockedTable,
        target,
        format!(
            "{target} is referenced by {} ({}), which stays plain because {why}: converting {target} would leave that key checking only the coordinator's shell; it converts together with {}",
            src.name,
            display_col(&fk.name),
            src.name
        ),
        origin,
    )
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;

    /// A tenant table keyed `(tenant, id)` with no key to tenants.
    fn free(name: &str) -> T {
        tbl(name).tenant().pk(&["tenant", "id"])
    }

    /// `t` references `target` with the tenant on both sides.
    fn refs(t: T, target: &str) -> T {
        let name = format!("{}_{target}_fkey", t.0.name.name);
        let col = format!("{target}_id");
        t.col(&col, "bigint")
            .fk(&name, &["tenant", &col], target, &["tenant", "id"])
    }

    fn finding<'p>(p: &'p Plan, name: &str, code: Code) -> &'p Finding {
        p.findings
            .iter()
            .find(|f| f.table == q(name) && f.code == code)
            .unwrap_or_else(|| panic!("no {code} on {name}: {:#?}", p.findings))
    }

    #[test]
    fn a_blocked_table_holds_back_what_it_references_and_its_referrers_wait() {
        let s = schema(vec![
            tenants(),
            // PRIMARY KEY (id): blocked, and it keeps its key to tenants.
            tbl("tokens").tenant().pk(&["id"]).fk(
                "tokens_tenant_fkey",
                &["tenant"],
                "tenants",
                &["tenant"],
            ),
            child("users"),
        ]);
        let p = run(&s);
        assert_eq!(codes(&p, "tokens"), [Code::KeyMissingDistributionColumn]);
        let held = finding(&p, "tenants", Code::ReferencedByBlockedTable);
        assert_eq!(
            held.message,
            "public.tenants is referenced by public.tokens (tokens_tenant_fkey), which stays plain because it is blocked (key-missing-distribution-column): converting public.tenants would leave that key checking only the coordinator's shell; it converts together with public.tokens"
        );
        assert_eq!(
            held.fix.as_deref(),
            Some("-- fix the blockers of public.tokens first")
        );
        assert!(held.manual);
        assert_eq!(held.waits_for, Some(q("tokens")));
        assert_eq!(role_of(&p, "tenants"), (Role::Root, true));
        assert_eq!(p.table(&q("tenants")).unwrap().state, State::Blocked);
        let waits = finding(&p, "users", Code::ReferencesBlockedTable);
        assert_eq!(
            waits.message,
            "public.users references public.tenants (users_tenant_fkey), which is blocked: it converts once public.tenants does"
        );
        assert_eq!(
            waits.fix.as_deref(),
            Some("-- fix the blockers of public.tokens first"),
            "the hint names the table whose own blockers are the cause"
        );
        assert_eq!(waits.waits_for, Some(q("tokens")));
        let own = finding(&p, "tokens", Code::KeyMissingDistributionColumn);
        assert_eq!(own.waits_for, None);
        assert!(step_tables(&p, StepKind::CreateDistributedTable).is_empty());
        assert_closed(&s, &p);
    }

    #[test]
    fn a_table_kept_local_by_configuration_holds_back_what_it_references() {
        let s = schema(vec![
            tenants().live(CitusKind::Distributed, Some("tenant"), 1),
            free("tickets"),
            refs(free("notes"), "tickets"),
            free("other"),
        ]);
        let config = DistributionConfig {
            local: vec![Forced::WithReason {
                table: "notes".into(),
                reason: Some("looked up without a tenant".into()),
            }],
            ..Default::default()
        };
        let p = plan(&s, &config);
        assert_eq!(role_of(&p, "notes"), (Role::Local, true));
        assert_eq!(codes(&p, "notes"), [Code::LocalReferencesDistributed]);
        let held = finding(&p, "tickets", Code::ReferencedByBlockedTable);
        assert!(
            held.message.starts_with("public.tickets is referenced by public.notes (notes_tickets_fkey), which stays plain because it is blocked (local-references-distributed)"),
            "{}",
            held.message
        );
        assert_eq!(step_tables(&p, StepKind::CreateDistributedTable), ["other"]);
        assert_closed(&s, &p);
    }

    /// x (blocked) -> c -> b -> a: c, b and a wait, each for x; d -> c and e -> d wait too.
    #[test]
    fn holding_back_goes_up_and_down_through_several_levels() {
        let s = schema(vec![
            tenants(),
            free("a"),
            refs(free("b"), "a"),
            refs(free("c"), "b"),
            refs(tbl("x").tenant().pk(&["id"]), "c"),
            refs(free("d"), "c"),
            refs(free("e"), "d"),
            free("f"),
        ]);
        let p = run(&s);
        assert_eq!(codes(&p, "x"), [Code::KeyMissingDistributionColumn]);
        for t in ["a", "b", "c"] {
            assert_eq!(codes(&p, t), [Code::ReferencedByBlockedTable], "{t}");
        }
        let b = finding(&p, "b", Code::ReferencedByBlockedTable);
        assert!(
            b.message.starts_with("public.b is referenced by public.c (c_b_fkey), which stays plain because it waits for public.x:"),
            "{}",
            b.message
        );
        assert_eq!(
            b.fix.as_deref(),
            Some("-- fix the blockers of public.x first")
        );
        for t in ["d", "e"] {
            assert_eq!(codes(&p, t), [Code::ReferencesBlockedTable], "{t}");
        }
        assert_eq!(
            step_tables(&p, StepKind::CreateDistributedTable),
            ["tenants", "f"]
        );
        assert_closed(&s, &p);
    }

    #[test]
    fn a_cycle_waits_as_a_whole_and_self_references_are_ignored() {
        let s = schema(vec![
            tenants(),
            refs(refs(refs(free("p"), "q"), "p"), "tenants_x"),
            refs(free("q"), "p"),
            free("tenants_x"),
            refs(tbl("x").tenant().pk(&["id"]), "p"),
            // A blocked table referencing only itself holds nothing back.
            refs(tbl("lonely").tenant().pk(&["id"]), "lonely"),
        ]);
        let p = run(&s);
        assert_eq!(codes(&p, "p"), [Code::ReferencedByBlockedTable]);
        assert_eq!(codes(&p, "q"), [Code::ReferencesBlockedTable]);
        assert_eq!(codes(&p, "tenants_x"), [Code::ReferencedByBlockedTable]);
        assert_eq!(codes(&p, "lonely"), [Code::KeyMissingDistributionColumn]);
        assert_eq!(
            step_tables(&p, StepKind::CreateDistributedTable),
            ["tenants"]
        );
        assert_closed(&s, &p);
    }

    #[test]
    fn a_table_referencing_only_reference_tables_holds_nothing_back() {
        let s = schema(vec![
            tenants(),
            tbl("countries").col("code", "text").pk(&["code"]),
            child("offices").col("country", "text").fk(
                "offices_country_fkey",
                &["country"],
                "countries",
                &["code"],
            ),
            // Blocked, and its only key is to a reference table.
            tbl("imports")
                .tenant()
                .col("country", "text")
                .pk(&["id"])
                .fk("imports_country_fkey", &["country"], "countries", &["code"]),
        ]);
        let p = run(&s);
        assert_eq!(codes(&p, "imports"), [Code::KeyMissingDistributionColumn]);
        assert_eq!(role_of(&p, "countries"), (Role::Reference, false));
        assert!(codes(&p, "countries").is_empty());
        assert!(codes(&p, "tenants").is_empty());
        assert_eq!(
            step_tables(&p, StepKind::CreateDistributedTable),
            ["tenants", "offices"]
        );
        assert_eq!(
            step_tables(&p, StepKind::CreateReferenceTable),
            ["countries"]
        );
        assert_closed(&s, &p);
    }

    #[test]
    fn tables_already_distributed_are_not_held_back() {
        let mut s = schema(vec![
            tenants().live(CitusKind::Distributed, Some("tenant"), 1),
            child("users").live(CitusKind::Distributed, Some("tenant"), 1),
            tbl("tokens")
                .tenant()
                .col("user_id", "bigint")
                .pk(&["id"])
                .fk("tokens_tenant_fkey", &["tenant"], "tenants", &["tenant"])
                .fk(
                    "tokens_user_fkey",
                    &["tenant", "user_id"],
                    "users",
                    &["tenant", "id"],
                ),
            child("tickets"),
        ]);
        s.citus.installed = Some("13.2-1".into());
        let p = run(&s);
        assert_eq!(codes(&p, "tokens"), [Code::KeyMissingDistributionColumn]);
        for t in ["tenants", "users"] {
            assert!(codes(&p, t).is_empty(), "{t}");
            assert_eq!(p.table(&q(t)).unwrap().state, State::Done);
        }
        assert_eq!(
            step_tables(&p, StepKind::CreateDistributedTable),
            ["tickets"]
        );
        // Their keys from tokens are what check reports.
        let unenforced: Vec<&str> = p
            .unenforced
            .iter()
            .filter(|u| u.table == q("tokens"))
            .map(|u| u.key.as_str())
            .collect();
        assert_eq!(unenforced, ["tokens_tenant_fkey", "tokens_user_fkey"]);
        assert_closed(&s, &p);
    }

    #[test]
    fn tables_colocated_with_a_blocked_root_wait_for_it() {
        let s = schema(vec![
            tenants(),
            tbl("tokens").tenant().pk(&["id"]).fk(
                "tokens_tenant_fkey",
                &["tenant"],
                "tenants",
                &["tenant"],
            ),
            // No key to anything: Citus would refuse to colocate it with a plain tenants.
            free("loose"),
            tbl("countries").col("code", "text").pk(&["code"]),
            free("offices").col("country", "text").fk(
                "offices_country_fkey",
                &["country"],
                "countries",
                &["code"],
            ),
        ]);
        let p = run(&s);
        let f = finding(&p, "loose", Code::ColocatedWithBlockedRoot);
        assert_eq!(
            f.message,
            "public.loose is colocated with the root public.tenants, which is blocked: Citus colocates only with a distributed table, so it converts once public.tenants does"
        );
        assert_eq!(
            f.fix.as_deref(),
            Some("-- fix the blockers of public.tokens first")
        );
        assert_eq!(codes(&p, "offices"), [Code::ColocatedWithBlockedRoot]);
        assert!(step_tables(&p, StepKind::CreateDistributedTable).is_empty());
        // The lookup still becomes a reference table.
        assert_eq!(
            step_tables(&p, StepKind::CreateReferenceTable),
            ["countries"]
        );
    }

    /// A chain of 20,000 tables blocked at its far end: every table waits, in one walk (a
    /// rescan per table would take minutes here).
    #[test]
    fn a_long_chain_waits_in_one_pass() {
        const N: usize = 20_000;
        let mut tables = vec![tenants()];
        for i in 0..N {
            let mut t = if i + 1 == N {
                tbl(&format!("c{i:05}")).tenant().pk(&["id"])
            } else {
                free(&format!("c{i:05}"))
            };
            if i > 0 {
                t = t.col("prev_id", "bigint").fk(
                    &format!("c{i:05}_prev"),
                    &["tenant", "prev_id"],
                    &format!("c{:05}", i - 1),
                    &["tenant", "id"],
                );
            }
            tables.push(t);
        }
        let s = schema(tables);
        let t0 = std::time::Instant::now();
        let p = run(&s);
        let took = t0.elapsed();
        assert_eq!(p.tables.iter().filter(|t| t.blocked).count(), N);
        let first = finding(&p, "c00000", Code::ReferencedByBlockedTable);
        assert_eq!(
            first.fix.as_deref(),
            Some(format!("-- fix the blockers of public.c{:05} first", N - 1).as_str())
        );
        assert_eq!(
            step_tables(&p, StepKind::CreateDistributedTable),
            ["tenants"]
        );
        assert!(took.as_secs() < 30, "planned {N} tables in {took:?}");
    }
}
