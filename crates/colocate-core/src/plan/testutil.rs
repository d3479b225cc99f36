//! Small hand-built schemas for the planner's tests: `tbl("tickets").tenant().pk(&["tenant",
//! "id"])`, the `tenants` root and its children, and lookups into the plan.

pub(crate) use super::*;
pub(crate) use crate::decision::{Choice, DecisionKind};
pub(crate) use crate::distribution::{DistributionConfig, Forced, TableOverride};
pub(crate) use crate::schema::{
    CitusKind, CitusState, CitusTable, Column, FkAction, ForeignKey, Key, KeyKind, Policy,
    QualifiedName, Schema, Table, TableKind, Trigger,
};

pub(crate) fn q(name: &str) -> QualifiedName {
    QualifiedName::parse(name, "public")
}

/// A small table builder: `tbl("tickets").tenant().pk(&["tenant", "id"])`.
pub(crate) struct T(pub(crate) Table);

pub(crate) fn tbl(name: &str) -> T {
    let n = q(name);
    T(Table::new(&n.schema, &n.name))
}

impl T {
    pub(crate) fn col(mut self, name: &str, ty: &str) -> T {
        self.0.columns.push(Column::new(name, ty, true));
        self
    }
    /// The tenant column and a surrogate `id` (a sequence hands it out).
    pub(crate) fn tenant(self) -> T {
        let seq = format!("nextval('{}_id_seq'::regclass)", self.0.name.name);
        self.col("tenant", "uuid")
            .col("id", "bigint")
            .default("id", &seq)
    }
    /// A column's default expression.
    pub(crate) fn default(mut self, name: &str, expr: &str) -> T {
        for c in &mut self.0.columns {
            if c.name == name {
                c.default = Some(expr.into());
            }
        }
        self
    }
    pub(crate) fn nullable(mut self, name: &str) -> T {
        for c in &mut self.0.columns {
            if c.name == name {
                c.not_null = false;
            }
        }
        self
    }
    pub(crate) fn key(mut self, kind: KeyKind, name: &str, cols: &[&str]) -> T {
        self.0.keys.push(Key {
            name: name.into(),
            kind,
            columns: cols.iter().map(|c| Some(c.to_string())).collect(),
            predicate: None,
            definition: format!("KEY ({})", cols.join(", ")),
        });
        self
    }
    pub(crate) fn pk(self, cols: &[&str]) -> T {
        let name = format!("{}_pkey", self.0.name.name);
        self.key(KeyKind::PrimaryKey, &name, cols)
    }
    pub(crate) fn fk(self, name: &str, cols: &[&str], target: &str, rcols: &[&str]) -> T {
        self.fk_actions(
            name,
            cols,
            target,
            rcols,
            FkAction::NoAction,
            FkAction::NoAction,
        )
    }
    pub(crate) fn fk_actions(
        mut self,
        name: &str,
        cols: &[&str],
        target: &str,
        rcols: &[&str],
        on_delete: FkAction,
        on_update: FkAction,
    ) -> T {
        self.0.foreign_keys.push(ForeignKey {
            name: name.into(),
            columns: cols.iter().map(|c| c.to_string()).collect(),
            ref_table: q(target),
            ref_columns: rcols.iter().map(|c| c.to_string()).collect(),
            on_delete,
            on_update,
            on_delete_columns: Vec::new(),
            validated: true,
            definition: format!(
                "FOREIGN KEY ({}) REFERENCES {}({})",
                cols.join(", "),
                target,
                rcols.join(", ")
            ),
        });
        self
    }
    pub(crate) fn rows(mut self, n: i64) -> T {
        self.0.row_estimate = n;
        self
    }
    pub(crate) fn live(mut self, kind: CitusKind, column: Option<&str>, group: i32) -> T {
        self.0.citus = Some(CitusTable {
            kind,
            column: column.map(str::to_string),
            colocation_id: group,
            shard_count: Some(32),
        });
        self
    }
}

pub(crate) fn schema(tables: Vec<T>) -> Schema {
    let mut s = Schema {
        citus: CitusState {
            available: true,
            not_preloaded: false,
            installed: None,
            workers: 0,
        },
        ..Default::default()
    };
    for t in tables {
        s.add(t.0);
    }
    s
}

pub(crate) fn tenants() -> T {
    tbl("tenants").col("tenant", "uuid").pk(&["tenant"])
}

pub(crate) fn child(name: &str) -> T {
    tbl(name).tenant().pk(&["tenant", "id"]).fk(
        &format!("{name}_tenant_fkey"),
        &["tenant"],
        "tenants",
        &["tenant"],
    )
}

pub(crate) fn run(s: &Schema) -> Plan {
    plan(s, &DistributionConfig::default())
}

pub(crate) fn role_of(p: &Plan, name: &str) -> (Role, bool) {
    let t = p
        .table(&q(name))
        .unwrap_or_else(|| panic!("{name} not in plan"));
    (t.role, t.blocked)
}

pub(crate) fn codes(p: &Plan, name: &str) -> Vec<Code> {
    p.findings
        .iter()
        .filter(|f| f.table == q(name))
        .map(|f| f.code)
        .collect()
}

/// The codes of a table's own findings: without those that only say it waits for another
/// table (a rule's test looks at its rule, not at the closure over foreign keys).
pub(crate) fn own_codes(p: &Plan, name: &str) -> Vec<Code> {
    codes(p, name)
        .into_iter()
        .filter(|c| !c.waits_for_another_table())
        .collect()
}

/// The integrity closure on a plan: once its steps ran, no table that stays plain keeps a
/// foreign key into a table they distributed.
pub(crate) fn assert_closed(s: &Schema, p: &Plan) {
    let converted: std::collections::BTreeSet<&QualifiedName> = p
        .steps
        .iter()
        .filter(|st| st.kind() == StepKind::CreateDistributedTable)
        .filter_map(|st| st.table())
        .collect();
    for t in s.tables.values() {
        if converted.contains(&t.name) || t.citus.is_some() {
            continue;
        }
        for fk in &t.foreign_keys {
            assert!(
                !converted.contains(&fk.ref_table),
                "{} stays plain with {} into {}, which the plan distributes",
                t.name,
                fk.name,
                fk.ref_table
            );
        }
    }
}

pub(crate) fn step_tables(p: &Plan, kind: StepKind) -> Vec<String> {
    p.steps
        .iter()
        .filter(|s| s.kind() == kind)
        .filter_map(|s| s.table().map(|t| t.name.clone()))
        .collect()
}
