//! Which of a plan's steps one run executes: all of them (`apply`), a declarative step's
//! tables only, or the rest around blocked tables (`--skip-blocked`); and which conversions go
//! online (`--online`). Decided here, on the plan and the schema it was made from, so the
//! executor runs exactly the list it is given and `--dry-run` shows that same list.

use std::collections::BTreeSet;

use crate::plan::{reached_from_plain, Finding, Plan, Severity, State};
use crate::schema::{QualifiedName, Schema};
use crate::step::{Action, Concurrently, Distribute, Step, StepKind};

/// What a run is asked to do.
#[derive(Debug, Clone, Default)]
pub struct Scope<'a> {
    /// Only these tables (a declarative step); `None`: the whole plan.
    pub only: Option<&'a BTreeSet<QualifiedName>>,
    /// Convert tables of at least this many estimated rows with
    /// `create_distributed_table_concurrently`; `None`: no online conversions.
    pub online_from_rows: Option<i64>,
}

/// The steps of one run, and the blockers and conflicts of the tables in scope (a run refuses
/// them, or skips their tables with `--skip-blocked`).
#[derive(Debug, Clone)]
pub struct Scoped {
    pub problems: Vec<Finding>,
    pub steps: Vec<Step>,
}

impl Scope<'_> {
    fn contains(&self, t: Option<&QualifiedName>) -> bool {
        match (self.only, t) {
            (Some(only), Some(t)) => only.contains(t),
            _ => true,
        }
    }
}

impl Plan {
    /// The steps a run in `scope` executes, in order.
    ///
    /// Tables left plain by the run (out of scope, skipped, or local) keep the coordinator rows
    /// of every table they reach through foreign keys for now: the truncation cascades through
    /// every referencing table into the plain one. Rows left by earlier runs go as soon as
    /// nothing plain reaches their table, whichever run that is. A run with nothing to convert
    /// neither creates the extension nor changes a setting.
    pub fn scoped(&self, schema: &Schema, scope: &Scope<'_>) -> Scoped {
        let problems: Vec<Finding> = self
            .findings
            .iter()
            .filter(|f| f.severity != Severity::Warning)
            .filter(|f| scope.only.is_none_or(|o| o.contains(&f.table)))
            .cloned()
            .collect();
        let converting_now: BTreeSet<&QualifiedName> = self
            .steps
            .iter()
            .filter(|s| s.kind().converts() && scope.contains(s.table()))
            .filter_map(Step::table)
            .filter(|t| !problems.iter().any(|f| &f.table == *t))
            .collect();
        let plain: BTreeSet<&QualifiedName> = schema
            .tables
            .values()
            .filter(|t| t.citus.is_none() && !converting_now.contains(&t.name))
            .map(|t| &t.name)
            .collect();
        let waits = reached_from_plain(schema, &plain);
        let steps: Vec<&Step> = self
            .steps
            .iter()
            .filter(|s| match (s.kind(), s.table()) {
                (StepKind::TruncateLocalData, Some(t)) => {
                    !waits.contains(t)
                        && (scope.contains(Some(t))
                            || self.table(t).is_some_and(|p| p.state == State::Done))
                }
                (_, t) => t.is_none() || scope.contains(t),
            })
            .collect();
        let converting = steps.iter().any(|s| s.table().is_some());
        // Keys out of the way already when a step runs: dropped to break a cycle, or detached
        // for an earlier online conversion (restored once Citus accepts them, not before).
        let mut detached: BTreeSet<(QualifiedName, String)> = BTreeSet::new();
        let steps = steps
            .into_iter()
            .filter(|s| converting || s.table().is_some())
            .map(|s| {
                let s = online(s, schema, scope.online_from_rows, &detached);
                match &s.action {
                    Action::DropForeignKey { table, key } => {
                        detached.insert((table.clone(), key.name.clone()));
                    }
                    Action::RestoreForeignKey { table, key } => {
                        detached.remove(&(table.clone(), key.name.clone()));
                    }
                    Action::CreateDistributedTable(Distribute {
                        concurrently: Some(c),
                        ..
                    }) => {
                        detached.extend(c.detach.iter().map(|(t, fk)| (t.clone(), fk.name.clone())))
                    }
                    _ => {}
                }
                s
            })
            .collect();
        Scoped { problems, steps }
    }
}

/// A server setting `create_distributed_table_concurrently` needs, found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineSetting {
    pub name: &'static str,
    /// What the server says (`replica`, `pgoutput, test_decoding`).
    pub value: String,
    /// What it needs, in words.
    pub needs: &'static str,
}

/// Whether a server with these settings can convert online: `wal_level` as `SHOW` gives it,
/// and `output_plugin_libraries` (`None` where the server has no such setting, as upstream
/// PostgreSQL 15; Debian's has it). Citus copies through logical replication with its own
/// output plugin, and refuses only after it has turned the table into a Citus local table
/// (`library "citus" may not be used as an output plugin`), so apply asks first.
pub fn online_refusal(wal_level: &str, output_plugins: Option<&str>) -> Option<OnlineSetting> {
    if wal_level.trim() != "logical" {
        return Some(OnlineSetting {
            name: "wal_level",
            value: wal_level.to_string(),
            needs: "logical",
        });
    }
    let plugins = output_plugins?;
    let listed = plugins
        .split(',')
        .map(|p| p.trim().trim_matches('"'))
        .any(|p| p == "citus");
    (!listed).then(|| OnlineSetting {
        name: "output_plugin_libraries",
        value: plugins.to_string(),
        needs: "a list that includes citus",
    })
}

/// `s` with `create_distributed_table_concurrently` where it is asked for and possible: a
/// table of at least `from_rows` estimated rows with a replica identity (a primary key). Citus
/// first turns the table into a Citus local table, which it refuses for a table with any
/// foreign key to or from another table (Citus 13.2: "relation ... is involved in a foreign
/// key relationship with another table"), so those keys are dropped into the journal for the
/// copy and restored (`NOT VALID`, then validated, which does not block writes) once Citus
/// accepts them. The concurrent form cannot run in the implicit transaction of a `SET LOCAL`
/// prefix, nor does it need the parallel mode: it copies through logical replication. Keys in
/// `detached` are out of the way already (an earlier step dropped them and has not restored
/// them): they are not dropped again.
fn online(
    s: &Step,
    schema: &Schema,
    from_rows: Option<i64>,
    detached: &BTreeSet<(QualifiedName, String)>,
) -> Step {
    let (Some(from_rows), Action::CreateDistributedTable(d)) = (from_rows, &s.action) else {
        return s.clone();
    };
    let Some(t) = schema.table(&d.table) else {
        return s.clone();
    };
    if t.row_estimate < from_rows || t.primary_key().is_none() {
        return s.clone();
    }
    let name = &d.table;
    let detach = schema
        .keys_between(|q| q == name, |q| q != name)
        .into_iter()
        .filter(|(t, fk)| !detached.contains(&(t.clone(), fk.name.clone())))
        .map(|(t, fk)| (t, fk.clone()))
        .collect();
    let mut d = d.clone();
    d.parallel = false;
    d.concurrently = Some(Concurrently { detach });
    Step {
        action: Action::CreateDistributedTable(d),
        reason: s.reason.clone(),
        layer: s.layer,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::plan::testutil::*;
    use crate::scope::Scope;

    /// Every key the online steps detach, as `table.key`, in step order.
    fn detached(s: &Schema, from_rows: i64) -> Vec<String> {
        let p = run(s);
        p.scoped(
            s,
            &Scope {
                only: None,
                online_from_rows: Some(from_rows),
            },
        )
        .steps
        .iter()
        .filter_map(|s| s.distribute()?.concurrently.as_ref())
        .flat_map(|c| {
            c.detach
                .iter()
                .map(|(t, fk)| format!("{}.{}", t.name, fk.name))
        })
        .collect()
    }

    /// tokens is blocked and keeps its key to tenants: a run skips (or refuses) tenants and the
    /// tables that reference it with tokens, whether it runs the whole plan or a step that
    /// lists only tenants.
    #[test]
    fn a_run_leaves_out_what_a_blocked_table_holds_back() {
        let s = schema(vec![
            tenants(),
            tbl("tokens").tenant().pk(&["id"]).fk(
                "tokens_tenant_fkey",
                &["tenant"],
                "tenants",
                &["tenant"],
            ),
            child("users"),
            tbl("countries").col("code", "text").pk(&["code"]),
            child("offices").col("country", "text").fk(
                "offices_country_fkey",
                &["country"],
                "countries",
                &["code"],
            ),
        ]);
        let p = run(&s);
        let problems = |only: Option<&BTreeSet<QualifiedName>>| {
            let scoped = p.scoped(
                &s,
                &Scope {
                    only,
                    online_from_rows: None,
                },
            );
            let problems: Vec<(String, Code)> = scoped
                .problems
                .iter()
                .map(|f| (f.table.name.clone(), f.code))
                .collect();
            let converted: Vec<String> = scoped
                .steps
                .iter()
                .filter(|s| s.kind().converts())
                .filter_map(|s| s.table().map(|t| t.name.clone()))
                .collect();
            (problems, converted)
        };
        let (all, converted) = problems(None);
        assert_eq!(
            all,
            [
                ("offices".to_string(), Code::ReferencesBlockedTable),
                ("tenants".to_string(), Code::ReferencedByBlockedTable),
                ("tokens".to_string(), Code::KeyMissingDistributionColumn),
                ("users".to_string(), Code::ReferencesBlockedTable),
            ]
        );
        // --skip-blocked converts only the lookup table.
        assert_eq!(converted, ["countries"]);
        let only: BTreeSet<QualifiedName> = [q("tenants")].into();
        let (step, converted) = problems(Some(&only));
        assert_eq!(
            step,
            [("tenants".to_string(), Code::ReferencedByBlockedTable)]
        );
        assert!(converted.is_empty(), "{converted:?}");
    }

    #[test]
    fn online_conversions_need_logical_wal_and_citus_as_an_output_plugin() {
        use crate::scope::online_refusal;
        assert_eq!(online_refusal("logical", None), None);
        assert_eq!(
            online_refusal("logical", Some("pgoutput, test_decoding, citus")),
            None
        );
        assert_eq!(online_refusal("logical", Some("citus")), None);
        let wal = online_refusal("replica", Some("pgoutput, citus")).unwrap();
        assert_eq!((wal.name, wal.value.as_str()), ("wal_level", "replica"));
        let plugins = online_refusal("logical", Some("pgoutput, test_decoding")).unwrap();
        assert_eq!(plugins.name, "output_plugin_libraries");
        assert_eq!(plugins.value, "pgoutput, test_decoding");
        assert!(online_refusal("logical", Some("")).is_some());
        assert!(online_refusal("logical", Some("citus_extra")).is_some());
    }

    #[test]
    fn a_key_between_two_online_tables_is_detached_once() {
        let s = schema(vec![
            tenants(),
            child("orders").rows(5000),
            child("lines")
                .col("order_id", "bigint")
                .fk(
                    "lines_order_fk",
                    &["tenant", "order_id"],
                    "orders",
                    &["tenant", "id"],
                )
                .rows(5000),
        ]);
        assert_eq!(
            detached(&s, 1000),
            [
                "lines.lines_order_fk",
                "orders.orders_tenant_fkey",
                "lines.lines_tenant_fkey"
            ]
        );
    }

    #[test]
    fn a_cycle_key_dropped_by_its_own_step_is_not_detached_again() {
        let s = schema(vec![
            tenants(),
            child("users")
                .col("team_id", "bigint")
                .fk(
                    "users_team_fk",
                    &["tenant", "team_id"],
                    "teams",
                    &["tenant", "id"],
                )
                .rows(5000),
            child("teams")
                .col("lead_id", "bigint")
                .fk(
                    "teams_lead_fk",
                    &["tenant", "lead_id"],
                    "users",
                    &["tenant", "id"],
                )
                .rows(5000),
        ]);
        let p = run(&s);
        let cycle: Vec<String> = p
            .steps
            .iter()
            .filter_map(|s| match &s.action {
                crate::step::Action::DropForeignKey { table, key } => {
                    Some(format!("{}.{}", table.name, key.name))
                }
                _ => None,
            })
            .collect();
        assert_eq!(cycle.len(), 1, "{cycle:?}");
        let online = detached(&s, 1000);
        assert!(!online.contains(&cycle[0]), "{online:?} repeats {cycle:?}");
        let mut unique = online.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), online.len(), "{online:?}");
    }
}
