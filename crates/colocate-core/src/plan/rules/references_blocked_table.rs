//! `references-blocked-table`: a table whose foreign-key target cannot be converted cannot be
//! converted either. Runs after every other rule, on their blockers.

use std::collections::BTreeSet;

use super::Context;
use crate::plan::fixes::display_col;
use crate::plan::{Code, Finding, Severity};
use crate::schema::QualifiedName;
use crate::sqltext::comment;

/// Walk foreign keys backwards from every blocked Citus table: each Citus table reached is
/// blocked too. Linear in tables plus keys.
pub(super) fn propagate(ctx: &Context, findings: &mut Vec<Finding>) {
    let blocked: BTreeSet<&QualifiedName> = findings
        .iter()
        .filter(|f| f.severity == Severity::Blocker)
        .map(|f| &f.table)
        .collect();
    let is_citus = |q: &QualifiedName| ctx.role(q).is_some_and(|r| r.is_citus());
    let citus_blocked: BTreeSet<&QualifiedName> =
        blocked.iter().copied().filter(|q| is_citus(q)).collect();
    let from: Vec<&QualifiedName> = citus_blocked.iter().copied().collect();
    let newly = ctx
        .graph
        .referrers_of(&from, |q| is_citus(q) && !blocked.contains(q));
    // A newly blocked table may be named as the blocked target of another.
    let all_blocked: BTreeSet<&QualifiedName> = citus_blocked.union(&newly).copied().collect();
    let mut found = Vec::new();
    for name in newly.iter().copied() {
        let t = &ctx.schema.tables[name];
        let Some(fk) = t
            .foreign_keys
            .iter()
            .find(|fk| fk.ref_table != t.name && all_blocked.contains(&fk.ref_table))
        else {
            continue;
        };
        found.push(Finding::new(
            Code::ReferencesBlockedTable,
            Severity::Blocker,
            name,
            format!(
                "{} references {} ({}), which is blocked: it converts once {} does",
                t.name,
                fk.ref_table,
                display_col(&fk.name),
                fk.ref_table
            ),
            Some(comment(&format!(
                "fix the blockers of {} first",
                fk.ref_table
            ))),
            true,
        ));
    }
    findings.extend(found);
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
    }
}
