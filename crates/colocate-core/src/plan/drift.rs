//! What `check` fails on: the plan's remaining work, conflicts and blockers, each with a stable
//! code and, where there is one, the SQL that fixes it.

use std::cmp::Ordering;
use std::fmt;

use serde::{Serialize, Serializer};

use super::fixes::display_col;
use super::{Code, Plan, Role, Severity, State, Step, StepKind, Unenforced};
use crate::schema::QualifiedName;

/// One way the live database differs from the plan, as `check` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub code: DriftCode,
    pub table: QualifiedName,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Stable drift codes: the work `check` finds left, or a finding's own code. Never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DriftCode {
    RootNotDistributed,
    NotDistributed,
    NotReference,
    CoordinatorLeftover,
    /// A foreign key declared `NOT VALID`: rows it never checked may break it.
    ForeignKeyNotValid,
    /// A foreign key colocate dropped (or restored `NOT VALID`) and has not brought back valid.
    ForeignKeyDropped,
    /// A foreign key from a table that is not distributed into a distributed one.
    ForeignKeyIntoDistributed,
    /// A blocker or conflict of the plan.
    Finding(Code),
}

impl DriftCode {
    /// The stable name (kebab-case), as JSON and human output write it.
    pub const fn as_str(self) -> &'static str {
        match self {
            DriftCode::RootNotDistributed => "root-not-distributed",
            DriftCode::NotDistributed => "not-distributed",
            DriftCode::NotReference => "not-reference",
            DriftCode::ForeignKeyNotValid => "foreign-key-not-valid",
            DriftCode::ForeignKeyDropped => "foreign-key-dropped",
            DriftCode::ForeignKeyIntoDistributed => "foreign-key-into-distributed",
            DriftCode::CoordinatorLeftover => "coordinator-leftover",
            DriftCode::Finding(code) => code.as_str(),
        }
    }
}

impl fmt::Display for DriftCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for DriftCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Drift is listed by its name, as when the code was a string.
impl Ord for DriftCode {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for DriftCode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Plan {
    /// Everything `check` fails on: tables not yet converted, conflicts and blockers. Warnings
    /// do not count.
    pub fn drift(&self) -> Vec<Drift> {
        let mut out = Vec::new();
        for t in &self.tables {
            if t.state != State::Pending {
                continue;
            }
            let (code, what) = match t.role {
                Role::Root => (
                    DriftCode::RootNotDistributed,
                    "the root table is not distributed".to_string(),
                ),
                Role::Distributed => (
                    DriftCode::NotDistributed,
                    format!(
                        "tenant table is not distributed (plan: by {}, colocated with {})",
                        display_col(t.column.as_deref().unwrap_or_default()),
                        t.colocate_with
                            .as_ref()
                            .map(|r| r.to_string())
                            .unwrap_or_default()
                    ),
                ),
                Role::Reference => (
                    DriftCode::NotReference,
                    "lookup table is not a reference table".to_string(),
                ),
                Role::Local => continue,
            };
            let fix = self
                .steps
                .iter()
                .find(|s| s.table() == Some(&t.name) && s.kind() != StepKind::TruncateLocalData)
                .map(Step::sql);
            out.push(Drift {
                code,
                table: t.name.clone(),
                message: format!("{}: {what}", t.name),
                fix,
            });
        }
        // Rows an earlier conversion copied into shards and left in the coordinator's heap:
        // invisible to queries, but core DDL that scans the heap trips over them later.
        for s in &self.steps {
            let Some(name) = s.table() else { continue };
            if s.kind() != StepKind::TruncateLocalData
                || self.table(name).is_none_or(|t| t.state != State::Done)
            {
                continue;
            }
            out.push(Drift {
                code: DriftCode::CoordinatorLeftover,
                table: name.clone(),
                message: format!(
                    "{name}: the coordinator still holds rows already copied into its shards"
                ),
                fix: Some(s.sql()),
            });
        }
        for u in &self.unenforced {
            let (code, message, fix) = match u.state {
                Unenforced::IntoDistributed => (
                    DriftCode::ForeignKeyIntoDistributed,
                    format!(
                        "{}: foreign key {} points into a distributed table from a table that is not: it checks the coordinator's empty shell, so deletes pass it by and new rows cannot be referenced",
                        u.table,
                        display_col(&u.key)
                    ),
                    crate::sqltext::comment(
                        "distribute this table with the one it references, or drop the key (a decision)",
                    ),
                ),
                Unenforced::NotValid => (
                    DriftCode::ForeignKeyNotValid,
                    format!(
                        "{}: foreign key {} is NOT VALID: existing rows were never checked against it",
                        u.table,
                        display_col(&u.key)
                    ),
                    crate::journal::validate_key_sql(&u.table.sql(), &u.key),
                ),
                Unenforced::Journaled(state) => (
                    DriftCode::ForeignKeyDropped,
                    format!(
                        "{}: foreign key {} was taken down by colocate and is not back valid (journal: {})",
                        u.table,
                        display_col(&u.key),
                        state.as_str()
                    ),
                    crate::sqltext::comment(
                        "run colocate apply: it restores and validates the keys in its journal",
                    ),
                ),
            };
            out.push(Drift {
                code,
                table: u.table.clone(),
                message,
                fix: Some(fix),
            });
        }
        for f in &self.findings {
            if f.severity == Severity::Warning {
                continue;
            }
            out.push(Drift {
                code: DriftCode::Finding(f.code),
                table: f.table.clone(),
                message: f.message.clone(),
                fix: f.fix.clone(),
            });
        }
        out.sort_by(|a, b| (&a.table, &a.code).cmp(&(&b.table, &b.code)));
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;

    #[test]
    fn drift_lists_pending_conflicts_and_blockers_but_not_warnings() {
        let mut s = schema(vec![
            tenants().live(CitusKind::Distributed, Some("tenant"), 1),
            child("todo"),
            child("loose")
                .nullable("tenant")
                .live(CitusKind::Distributed, Some("tenant"), 1),
            tbl("countries").col("code", "text").pk(&["code"]),
            child("uses_country")
                .col("c", "text")
                .fk("uc", &["c"], "countries", &["code"])
                .live(CitusKind::Distributed, Some("tenant"), 1),
            child("wrong").live(CitusKind::Distributed, Some("id"), 1),
            tbl("bad").tenant().pk(&["id"]),
        ]);
        s.citus.installed = Some("13.2-1".into());
        let p = run(&s);
        let got: Vec<(String, String)> = p
            .drift()
            .into_iter()
            .map(|d| (d.table.name, d.code.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                ("bad".into(), "key-missing-distribution-column".into()),
                ("countries".into(), "not-reference".into()),
                // Still plain, its key to the distributed root checks only the shell.
                ("todo".into(), "foreign-key-into-distributed".into()),
                ("todo".into(), "not-distributed".into()),
                ("wrong".into(), "distributed-by-wrong-column".into()),
            ]
        );
    }

    #[test]
    fn leftover_coordinator_rows_of_converted_tables_are_cleaned_up() {
        let mut s = schema(vec![
            tenants().live(CitusKind::Distributed, Some("tenant"), 1),
            child("clean").live(CitusKind::Distributed, Some("tenant"), 1),
            child("leftover").live(CitusKind::Distributed, Some("tenant"), 1),
        ]);
        s.citus.installed = Some("13.2-1".into());
        s.tables.get_mut(&q("leftover")).unwrap().local_bytes = 8192;
        let p = run(&s);
        assert_eq!(step_tables(&p, StepKind::TruncateLocalData), ["leftover"]);
        assert_eq!(p.table(&q("leftover")).unwrap().state, State::Done);
        // check fails on them: rows left in the coordinator are one of the ways a move goes wrong.
        let drift = p.drift();
        assert_eq!(drift.len(), 1, "{drift:?}");
        assert_eq!(drift[0].code.as_str(), "coordinator-leftover");
        assert_eq!(drift[0].table, q("leftover"));
        assert_eq!(
            drift[0].fix.as_deref(),
            Some("SELECT truncate_local_data_after_distributing_table('\"public\".\"leftover\"');")
        );
    }

    /// A key that does not hold for every row fails `check`, whether the user declared it
    /// `NOT VALID` or colocate took it down and has not brought it back valid; a journaled key
    /// restored `NOT VALID` is reported once, by its journal row.
    #[test]
    fn unenforced_keys_are_drift() {
        let mut s = schema(vec![
            tenants().live(CitusKind::Distributed, Some("tenant"), 1),
            child("a")
                .col("b_id", "bigint")
                .fk("a_b", &["tenant", "b_id"], "b", &["tenant", "id"])
                .live(CitusKind::Distributed, Some("tenant"), 1),
            child("b")
                .col("a_id", "bigint")
                .fk("b_a", &["tenant", "a_id"], "a", &["tenant", "id"])
                .live(CitusKind::Distributed, Some("tenant"), 1),
        ]);
        s.citus.installed = Some("13.2-1".into());
        for (t, k) in [("a", "a_b"), ("b", "b_a")] {
            let table = s.tables.get_mut(&q(t)).unwrap();
            table
                .foreign_keys
                .iter_mut()
                .find(|f| f.name == k)
                .unwrap()
                .validated = false;
        }
        s.journal.push(crate::schema::JournaledKey {
            table: "\"public\".\"b\"".into(),
            key: "b_a".into(),
            state: "restored".into(),
        });
        let p = run(&s);
        let got: Vec<(String, String, Option<String>)> = p
            .drift()
            .into_iter()
            .map(|d| (d.table.name, d.code.to_string(), d.fix))
            .collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0, "a");
        assert_eq!(got[0].1, "foreign-key-not-valid");
        assert_eq!(
            got[0].2.as_deref(),
            Some("ALTER TABLE \"public\".\"a\" VALIDATE CONSTRAINT \"a_b\";")
        );
        assert_eq!(
            (got[1].0.as_str(), got[1].1.as_str()),
            ("b", "foreign-key-dropped")
        );
        assert_eq!(p.unenforced[1].state.as_str(), "restored");
    }

    /// A key from a plain (or Citus local) table into a distributed one fails `check`.
    #[test]
    fn a_key_from_a_plain_table_into_a_distributed_one_is_drift() {
        let mut s = schema(vec![
            tenants().live(CitusKind::Distributed, Some("tenant"), 1),
            tbl("jobs")
                .col("tenant", "uuid")
                .col("id", "bigint")
                .pk(&["id"])
                .fk("jobs_tenant", &["tenant"], "tenants", &["tenant"]),
            tbl("audit")
                .col("tenant", "uuid")
                .col("id", "bigint")
                .pk(&["id"])
                .fk("audit_tenant", &["tenant"], "tenants", &["tenant"])
                .live(CitusKind::CitusLocal, None, 0),
        ]);
        s.citus.installed = Some("13.2-1".into());
        let p = run(&s);
        let keys: Vec<(String, String)> = p
            .drift()
            .into_iter()
            .filter(|d| d.code.as_str() == "foreign-key-into-distributed")
            .map(|d| (d.table.name, d.message))
            .collect();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert_eq!(keys[0].0, "audit");
        assert!(keys[1].1.contains("jobs_tenant"), "{}", keys[1].1);
    }
}
