//! What a run must leave true about foreign keys, judged on the plan of the database as the run
//! left it: no key from a table that stays plain into a table the run distributed (the
//! integrity closure, checked on the database rather than trusted), and every other key that
//! does not hold said out loud rather than passed over.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{Plan, Severity, State, Unenforced, UnenforcedKey};
use crate::schema::{QualifiedName, Schema};

/// A foreign key a run left unenforced: from a table that stays plain into a table the run
/// distributed. It checks only the coordinator's shell of its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenKey {
    pub table: QualifiedName,
    pub key: String,
    pub target: QualifiedName,
    /// Why `table` stays plain, as the plan says it (`it is blocked (has-triggers)`).
    pub why: String,
}

impl BrokenKey {
    pub fn describe(&self) -> String {
        format!(
            "foreign key {} on {} references {}, which this run distributed, while {} stays plain because {}: the key checks only the coordinator's shell of {}, so deleting a row there passes it by",
            crate::schema::display_ident(&self.key),
            self.table,
            self.target,
            self.table,
            self.why,
            self.target
        )
    }
}

/// The foreign keys that do not hold after a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AfterRun {
    /// Keys the run broke (see [`BrokenKey`]): an error.
    pub broken: Vec<BrokenKey>,
    /// Keys that did not hold before the run either (or not because of it): warnings, which
    /// `check` fails on. Journaled keys are left to the journal's own report.
    pub unenforced: Vec<UnenforcedKey>,
}

impl Plan {
    /// Judge the keys that do not hold in `schema`, this plan's schema, after a run that
    /// converted `converted`, was restricted to `only` (a declarative step) or not, and found
    /// `before` not holding when it started. A key from a table outside `only` that the plan
    /// still converts is no error: a later step converts that table.
    pub fn after_run(
        &self,
        schema: &Schema,
        converted: &[QualifiedName],
        only: Option<&BTreeSet<QualifiedName>>,
        before: &[UnenforcedKey],
    ) -> AfterRun {
        let before: BTreeSet<(&QualifiedName, &str)> =
            before.iter().map(|u| (&u.table, u.key.as_str())).collect();
        let converted: BTreeSet<&QualifiedName> = converted.iter().collect();
        let mut out = AfterRun::default();
        for u in &self.unenforced {
            match u.state {
                Unenforced::Journaled(_) => continue,
                Unenforced::NotValid => {}
                Unenforced::IntoDistributed => {
                    let target = schema
                        .table(&u.table)
                        .and_then(|t| t.foreign_keys.iter().find(|fk| fk.name == u.key))
                        .map(|fk| &fk.ref_table);
                    let here = self.table(&u.table);
                    let later = only.is_some_and(|o| !o.contains(&u.table))
                        && here
                            .is_some_and(|t| t.state == State::Pending && t.role.is_distributed());
                    match target {
                        Some(target)
                            if converted.contains(target)
                                && !before.contains(&(&u.table, u.key.as_str())) =>
                        {
                            if !later {
                                out.broken.push(BrokenKey {
                                    table: u.table.clone(),
                                    key: u.key.clone(),
                                    target: target.clone(),
                                    why: self.stays_plain(&u.table),
                                });
                            }
                            continue;
                        }
                        _ => {}
                    }
                }
            }
            out.unenforced.push(u.clone());
        }
        out
    }

    /// Why a table is not converted, in words.
    fn stays_plain(&self, q: &QualifiedName) -> String {
        let Some(t) = self.table(q) else {
            return "it is not in the plan".into();
        };
        let mut codes: Vec<&str> = self
            .findings
            .iter()
            .filter(|f| &f.table == q && f.severity == Severity::Blocker)
            .map(|f| f.code.as_str())
            .collect();
        codes.dedup();
        match t.state {
            State::Blocked => format!("it is blocked ({})", codes.join(", ")),
            State::Conflict => "it conflicts with the plan".into(),
            _ if !t.role.is_citus() => format!("it is a local table ({})", t.reason),
            _ => "it was not converted".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;
    use crate::plan::Unenforced;

    /// tenants was distributed while tokens (blocked) kept its key to it, as a run without the
    /// closure would leave it; users waits for a later step.
    fn after() -> (Schema, Plan) {
        let mut s = schema(vec![
            tenants().live(CitusKind::Distributed, Some("tenant"), 1),
            tbl("tokens").tenant().pk(&["id"]).fk(
                "tokens_tenant_fkey",
                &["tenant"],
                "tenants",
                &["tenant"],
            ),
            child("users"),
            tbl("notes").col("tenant", "uuid").fk(
                "notes_tenant_fkey",
                &["tenant"],
                "tenants",
                &["tenant"],
            ),
        ]);
        s.citus.installed = Some("13.2-1".into());
        s.tables.get_mut(&q("notes")).unwrap().foreign_keys[0].validated = false;
        let p = run(&s);
        (s, p)
    }

    #[test]
    fn a_key_from_a_plain_table_into_a_table_the_run_distributed_is_broken() {
        let (s, p) = after();
        let r = p.after_run(&s, &[q("tenants")], None, &[]);
        let broken: Vec<&str> = r.broken.iter().map(|b| b.key.as_str()).collect();
        assert_eq!(broken, ["tokens_tenant_fkey", "users_tenant_fkey"]);
        assert_eq!(
            r.broken[0].describe(),
            "foreign key tokens_tenant_fkey on public.tokens references public.tenants, which this run distributed, while public.tokens stays plain because it is blocked (key-missing-distribution-column): the key checks only the coordinator's shell of public.tenants, so deleting a row there passes it by"
        );
        assert_eq!(r.broken[1].why, "it was not converted");
        // notes' key is NOT VALID: not the run's doing, a warning.
        assert_eq!(r.unenforced.len(), 1);
        assert_eq!(r.unenforced[0].state, Unenforced::NotValid);
    }

    #[test]
    fn keys_unenforced_before_the_run_and_keys_a_later_step_fixes_are_no_errors() {
        let (s, p) = after();
        let before: Vec<UnenforcedKey> = p
            .unenforced
            .iter()
            .filter(|u| u.table == q("tokens"))
            .cloned()
            .collect();
        // A step that listed tenants only: users is converted by a later step.
        let only = [q("tenants")].into();
        let r = p.after_run(&s, &[q("tenants")], Some(&only), &before);
        assert!(r.broken.is_empty(), "{:?}", r.broken);
        let warned: Vec<&str> = r.unenforced.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(warned, ["notes_tenant_fkey", "tokens_tenant_fkey"]);
        // A run that converted nothing: every such key is a warning.
        let r = p.after_run(&s, &[], None, &[]);
        assert!(r.broken.is_empty());
        assert_eq!(r.unenforced.len(), 3);
    }
}
