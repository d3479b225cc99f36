//! Which role every table gets: the root (as configured, or found by its bare name in another
//! schema), distributed by its candidate column, reference when a Citus table reaches it, or
//! local; configuration overrides win.

use std::collections::BTreeMap;

use super::change::Decided;
use super::fixes::display_col;
use super::{Code, Finding, Role, Severity};
use crate::distribution::{Decision, DistributionConfig, ForcedRole};
use crate::schema::{CitusKind, QualifiedName, Schema, Table};

/// The role, distribution column and reason of every table.
pub(super) struct Classification {
    pub(super) root: Option<QualifiedName>,
    /// Every table of the schema has one.
    pub(super) roles: BTreeMap<QualifiedName, Role>,
    /// The distribution column of each distributed table (the root included).
    pub(super) columns: BTreeMap<QualifiedName, String>,
    pub(super) reasons: BTreeMap<QualifiedName, String>,
    /// The tenant column of every table that has one, whatever its role (a table forced to
    /// be a reference or local table may have one).
    pub(super) tenant_columns: BTreeMap<QualifiedName, String>,
}

impl Classification {
    pub(super) fn role(&self, q: &QualifiedName) -> Option<Role> {
        self.roles.get(q).copied()
    }

    pub(super) fn column(&self, q: &QualifiedName) -> Option<&str> {
        self.columns.get(q).map(String::as_str)
    }
}

/// Classify every table of `schema`; configuration mistakes and a missing root go to
/// `findings`.
pub(super) fn classify(
    schema: &Schema,
    config: &DistributionConfig,
    decided: &Decided,
    findings: &mut Vec<Finding>,
) -> Classification {
    let mut c = Classifier {
        schema,
        config,
        decided,
        root_key_names: Default::default(),
        decisions: config.decisions(),
        out: Classification {
            root: None,
            roles: BTreeMap::new(),
            columns: BTreeMap::new(),
            reasons: BTreeMap::new(),
            tenant_columns: BTreeMap::new(),
        },
        findings,
    };
    c.resolve_root();
    c.find_root_key_names();
    c.check_config();
    c.classify();
    c.out
}

struct Classifier<'a> {
    schema: &'a Schema,
    config: &'a DistributionConfig,
    /// Roles decided in `distribution.decisions` (kept local, made a reference table).
    decided: &'a Decided,
    /// The column names tables reference a root without a candidate column by.
    root_key_names: std::collections::BTreeSet<String>,
    decisions: BTreeMap<QualifiedName, Decision>,
    out: Classification,
    findings: &'a mut Vec<Finding>,
}

impl Classifier<'_> {
    /// The root as configured; a bare name not in `public` is looked up in every schema.
    fn resolve_root(&mut self) {
        let wanted = self.config.root_name();
        if self.schema.tables.contains_key(&wanted) {
            self.out.root = Some(wanted);
            return;
        }
        if !self.config.root.contains('.') {
            let matches: Vec<&QualifiedName> = self
                .schema
                .tables
                .keys()
                .filter(|q| q.name == wanted.name)
                .collect();
            if let [only] = matches.as_slice() {
                self.out.root = Some((*only).clone());
                return;
            }
        }
        self.findings.push(Finding::blocker(Code::RootMissing, &wanted, format!(
                "root table {wanted} (distribution.root) does not exist; no tenant table can be colocated"
            )));
    }

    fn check_config(&mut self) {
        for (q, d) in &self.decisions {
            if self.schema.tables.contains_key(q) {
                continue;
            }
            self.findings.push(Finding::new(
                Code::ConfigUnknownTable,
                Severity::Warning,
                q,
                format!(
                    "{} names {q}, which does not exist (a typo, or a dropped table?)",
                    d.source
                ),
                None,
                true,
            ));
        }
    }

    /// The distribution column a table would use: the configured one, else the first candidate,
    /// else (see [`Classifier::by_root_key`]) the root's own key or a table's key to it.
    fn candidate(&self, t: &Table) -> Option<String> {
        if let Some(c) = self.decisions.get(&t.name).and_then(|d| d.column.clone()) {
            return Some(c);
        }
        if let Some(c) = self.decided.columns.get(&t.name) {
            return Some(c.clone());
        }
        self.config
            .columns
            .iter()
            .find(|c| t.column(c).is_some())
            .cloned()
            .or_else(|| self.by_root_key(t).map(|(c, _)| c))
    }

    /// When the root has none of the candidate columns but a one-column primary key (a
    /// `teams(id)` root whose tenant tables carry `"teamId" REFERENCES teams(id)`): the root is
    /// distributed by that key, and a table with none of the candidates by its one-column
    /// foreign key to it. Returns the column and why, to say so.
    fn by_root_key(&self, t: &Table) -> Option<(String, String)> {
        let root = self.out.root.as_ref()?;
        let root_table = self.schema.table(root)?;
        if self
            .config
            .columns
            .iter()
            .any(|c| root_table.column(c).is_some())
            || self.decisions.get(root).is_some_and(|d| d.column.is_some())
        {
            return None;
        }
        let [Some(key)] = root_table.primary_key()?.columns.as_slice() else {
            return None;
        };
        if &t.name == root {
            return Some((
                key.clone(),
                format!(
                    "none of the candidate columns ({}): distributed by its primary key {}",
                    self.config.columns.join(", "),
                    display_col(key)
                ),
            ));
        }
        let mut to_root = t.foreign_keys.iter().filter(|fk| {
            &fk.ref_table == root && fk.columns.len() == 1 && fk.ref_columns == [key.clone()]
        });
        let Some(fk) = to_root.next() else {
            // No key to the root, but a column of the name (and type) other tables reference
            // it by: a "teamId" a fix added and filled from the parent row, or one the
            // application never declared a key for.
            let key_type = root_table.column(key).map(|c| c.type_name.as_str());
            let mut named = t.columns.iter().filter(|c| {
                self.root_key_names.contains(&c.name) && Some(c.type_name.as_str()) == key_type
            });
            let c = named.next()?;
            if named.next().is_some() {
                return None;
            }
            return Some((
                c.name.clone(),
                format!(
                    "has column {}, by which other tables reference the root",
                    display_col(&c.name)
                ),
            ));
        };
        if to_root.next().is_some() {
            // Two keys to the root: which one names the tenant is a decision.
            return None;
        }
        Some((
            fk.columns[0].clone(),
            format!(
                "references the root's key by {} ({})",
                display_col(&fk.columns[0]),
                fk.name
            ),
        ))
    }

    /// The names of the columns tables reference the root's one-column primary key by, when
    /// the root has none of the candidate columns (see [`Classifier::by_root_key`]): once per
    /// classification, so that looking a table up stays linear.
    fn find_root_key_names(&mut self) {
        let Some(root) = self.out.root.as_ref() else {
            return;
        };
        let Some(root_table) = self.schema.table(root) else {
            return;
        };
        if self
            .config
            .columns
            .iter()
            .any(|c| root_table.column(c).is_some())
        {
            return;
        }
        let Some([Some(key)]) = root_table.primary_key().map(|k| k.columns.as_slice()) else {
            return;
        };
        for t in self.schema.tables.values() {
            for fk in &t.foreign_keys {
                if &fk.ref_table == root && fk.columns.len() == 1 && fk.ref_columns == [key.clone()]
                {
                    self.root_key_names.insert(fk.columns[0].clone());
                }
            }
        }
    }

    fn classify(&mut self) {
        let schema = self.schema;
        let mut bad_columns = Vec::new();
        for t in schema.tables.values() {
            let decision = self.decisions.get(&t.name).cloned();
            let because = |d: &Decision| match &d.reason {
                Some(r) => format!("{} ({r})", d.source),
                None => d.source.clone(),
            };
            let column = self.candidate(t);
            if let Some(c) = &column {
                if t.column(c).is_none() {
                    bad_columns.push((t.name.clone(), c.clone()));
                } else {
                    self.out.tenant_columns.insert(t.name.clone(), c.clone());
                }
            }
            let (role, reason) = if Some(&t.name) == self.out.root.as_ref() {
                let mut why = "the root table: every tenant table is colocated with it".to_string();
                if let Some((_, how)) = self.by_root_key(t).filter(|_| decision.is_none()) {
                    why = format!("{why}; {how}");
                }
                (Role::Root, why)
            } else {
                match decision.as_ref().and_then(|d| d.role.map(|r| (r, d))) {
                    Some((ForcedRole::Reference, d)) => {
                        (Role::Reference, format!("forced by {}", because(d)))
                    }
                    Some((ForcedRole::Local, d)) => {
                        (Role::Local, format!("forced by {}", because(d)))
                    }
                    Some((ForcedRole::Distributed, d)) => {
                        (Role::Distributed, format!("forced by {}", because(d)))
                    }
                    None if self.decided.roles.contains_key(&t.name) => {
                        let (role, why) = &self.decided.roles[&t.name];
                        (*role, why.clone())
                    }
                    None => match &column {
                        Some(c) => (
                            Role::Distributed,
                            match self.by_root_key(t) {
                                Some((_, how))
                                    if t.column(c).is_some()
                                        && !self.config.columns.contains(c) =>
                                {
                                    how
                                }
                                _ => format!("has tenant column {}", display_col(c)),
                            },
                        ),
                        None => {
                            continue;
                        }
                    },
                }
            };
            if role.is_distributed() {
                if let Some(c) = column {
                    self.out.columns.insert(t.name.clone(), c);
                }
            }
            self.out.roles.insert(t.name.clone(), role);
            self.out.reasons.insert(t.name.clone(), reason);
        }
        for (table, column) in bad_columns {
            self.findings.push(Finding::blocker(
                Code::ConfigUnknownColumn,
                &table,
                format!(
                    "{table} has no column {} to distribute by (set in distribution.tables)",
                    display_col(&column)
                ),
            ));
        }
        self.reference_what_citus_tables_reach();
        self.reference_catalogs_joined_without_keys();
        self.reference_what_citus_tables_reach();
        // A root without a tenant column cannot anchor anything.
        if let Some(root) = self.out.root.clone() {
            if !self.out.columns.contains_key(&root) {
                let cols = self.config.columns.join(", ");
                self.findings.push(Finding::blocker(
                    Code::RootWithoutColumn,
                    &root,
                    format!("root table {root} has none of the candidate columns ({cols})"),
                ));
            }
        }
        self.the_rest_reference_or_local();
    }

    /// Tenant-less tables referenced by Citus tables become reference tables, transitively.
    fn reference_what_citus_tables_reach(&mut self) {
        let schema = self.schema;
        let mut work: Vec<QualifiedName> = self
            .out
            .roles
            .iter()
            .filter(|(_, r)| r.is_citus())
            .map(|(q, _)| q.clone())
            .collect();
        while let Some(q) = work.pop() {
            let Some(t) = schema.table(&q) else { continue };
            for fk in &t.foreign_keys {
                if self.out.roles.contains_key(&fk.ref_table)
                    || !schema.tables.contains_key(&fk.ref_table)
                {
                    continue;
                }
                self.out.roles.insert(fk.ref_table.clone(), Role::Reference);
                self.out.reasons.insert(
                    fk.ref_table.clone(),
                    format!("no tenant column; referenced by {q} ({})", fk.name),
                );
                work.push(fk.ref_table.clone());
            }
        }
    }

    /// Catalogs no foreign key points at, made reference tables from other evidence the database
    /// holds, each with its reason: a view that joins the catalog with a distributed table
    /// (queries join them on every node), or a distributed table's column that matches the
    /// catalog's one-column primary key by name (`country_code` for `countries (code)`,
    /// `currency_id` for `currencies (id)`) and type. Only a catalog with no foreign key of its
    /// own (a reference table may only reference reference tables) and no tenant column.
    fn reference_catalogs_joined_without_keys(&mut self) {
        let schema = self.schema;
        let roles = &self.out.roles;
        let distributed = |q: &QualifiedName| roles.get(q).is_some_and(|r| r.is_distributed());
        // Each column of a distributed table, by name and type, once: the first table that has
        // it (in name order). Linear in columns, so the lookups below are too.
        let mut columns: std::collections::HashMap<(&str, &str), &QualifiedName> =
            std::collections::HashMap::new();
        for t in schema.tables.values().filter(|t| distributed(&t.name)) {
            for c in &t.columns {
                columns
                    .entry((c.name.as_str(), c.type_name.as_str()))
                    .or_insert(&t.name);
            }
        }
        let mut found: Vec<(QualifiedName, String)> = Vec::new();
        for t in schema.tables.values() {
            if roles.contains_key(&t.name)
                || !t.foreign_keys.is_empty()
                || self.out.tenant_columns.contains_key(&t.name)
            {
                continue;
            }
            let by_view = schema.views.iter().find_map(|v| {
                if !v.depends_on.contains(&t.name) {
                    return None;
                }
                let other = v.depends_on.iter().find(|d| distributed(d))?;
                Some(format!(
                    "no tenant column and no key points at it, but view {} joins it with {other}",
                    v.name
                ))
            });
            let by_column = || {
                let [Some(key)] = t.primary_key()?.columns.as_slice() else {
                    return None;
                };
                let key_type = t.column(key)?.type_name.as_str();
                catalog_column_names(&t.name.name, key)
                    .iter()
                    .find_map(|name| {
                        let other = columns.get(&(name.as_str(), key_type))?;
                        Some(format!(
                            "no tenant column and no key points at it, but {other}.{} matches its key {} by name and type",
                            display_col(name),
                            display_col(key)
                        ))
                    })
            };
            if let Some(why) = by_view.or_else(by_column) {
                found.push((t.name.clone(), why));
            }
        }
        for (q, why) in found {
            self.out.roles.insert(q.clone(), Role::Reference);
            self.out.reasons.insert(q, why);
        }
    }

    /// Tables nothing placed yet: reference if Citus already has them so, else local.
    fn the_rest_reference_or_local(&mut self) {
        for t in self.schema.tables.values() {
            let live_reference = t
                .citus
                .as_ref()
                .is_some_and(|c| c.kind == CitusKind::Reference);
            if !self.out.roles.contains_key(&t.name) && live_reference {
                // A team's earlier decision, e.g. a lookup table joined without a foreign key.
                self.out.roles.insert(t.name.clone(), Role::Reference);
                self.out.reasons.insert(
                    t.name.clone(),
                    "no tenant column; already a reference table in Citus".into(),
                );
            }
            if !self.out.roles.contains_key(&t.name) {
                self.out.roles.insert(t.name.clone(), Role::Local);
                self.out.reasons.insert(
                    t.name.clone(),
                    "no tenant column and no Citus table references it".into(),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;

    #[test]
    fn roles_root_distributed_reference_local() {
        let s = schema(vec![
            tenants(),
            child("tickets").col("status_id", "int").fk(
                "tickets_status_fkey",
                &["status_id"],
                "statuses",
                &["status_id"],
            ),
            tbl("statuses")
                .col("status_id", "int")
                .col("country", "text")
                .pk(&["status_id"])
                .fk(
                    "statuses_country_fkey",
                    &["country"],
                    "countries",
                    &["code"],
                ),
            tbl("countries").col("code", "text").pk(&["code"]),
            tbl("feature_flags").col("name", "text").pk(&["name"]),
            tbl("email_messages")
                .col("tenant_id", "uuid")
                .col("id", "bigint")
                .pk(&["tenant_id", "id"]),
        ]);
        let p = run(&s);
        assert_eq!(role_of(&p, "tenants"), (Role::Root, false));
        assert_eq!(role_of(&p, "tickets"), (Role::Distributed, false));
        assert_eq!(role_of(&p, "statuses"), (Role::Reference, false));
        assert_eq!(
            role_of(&p, "countries"),
            (Role::Reference, false),
            "referenced through another tenant-less table"
        );
        assert_eq!(role_of(&p, "feature_flags"), (Role::Local, false));
        let email = p.table(&q("email_messages")).unwrap();
        assert_eq!(email.column.as_deref(), Some("tenant_id"));
        assert_eq!(email.colocate_with, Some(q("tenants")));
        assert!(!p.has_problems(), "{:#?}", p.findings);
        // Order: extension, setting, reference tables (countries before statuses), root, children.
        let kinds: Vec<StepKind> = p.steps.iter().map(|s| s.kind()).collect();
        assert_eq!(kinds[0], StepKind::CreateExtension);
        assert_eq!(kinds[1], StepKind::SessionSetting);
        assert_eq!(
            step_tables(&p, StepKind::CreateReferenceTable),
            ["countries", "statuses"]
        );
        assert_eq!(
            step_tables(&p, StepKind::CreateDistributedTable),
            ["tenants", "email_messages", "tickets"]
        );
        let root_step = p
            .steps
            .iter()
            .find(|s| s.table() == Some(&q("tenants")))
            .unwrap();
        assert_eq!(
            root_step.sql(),
            "SELECT create_distributed_table('\"public\".\"tenants\"', 'tenant', colocate_with => 'none');"
        );
        let tickets = p
            .steps
            .iter()
            .find(|s| s.table() == Some(&q("tickets")))
            .unwrap();
        assert!(tickets
            .sql()
            .contains("colocate_with => '\"public\".\"tenants\"'"));
        assert!(
            !tickets.transaction(),
            "Citus functions run outside transactions"
        );
        assert!(tickets.layer > root_step.layer);
    }

    #[test]
    fn first_candidate_column_wins_and_overrides_apply() {
        let s = schema(vec![
            tenants(),
            tbl("both")
                .col("tenant", "uuid")
                .col("tenant_id", "uuid")
                .pk(&["tenant", "tenant_id"]),
            tbl("email")
                .col("tenant", "uuid")
                .col("tenant_id", "uuid")
                .pk(&["tenant_id"]),
            tbl("tokens")
                .col("tenant", "uuid")
                .col("token", "text")
                .pk(&["token"]),
            tbl("currencies").col("code", "text").pk(&["code"]),
            tbl("schema_migrations")
                .col("version", "text")
                .pk(&["version"]),
        ]);
        let config = DistributionConfig {
            tables: [(
                "email".to_string(),
                TableOverride {
                    column: Some("tenant_id".into()),
                    ..Default::default()
                },
            )]
            .into(),
            local: vec![Forced::WithReason {
                table: "tokens".into(),
                reason: Some("looked up by bare token".into()),
            }],
            reference: vec![Forced::Name("currencies".into())],
            ..Default::default()
        };
        let p = plan(&s, &config);
        assert_eq!(
            p.table(&q("both")).unwrap().column.as_deref(),
            Some("tenant")
        );
        assert_eq!(
            p.table(&q("email")).unwrap().column.as_deref(),
            Some("tenant_id")
        );
        let tokens = p.table(&q("tokens")).unwrap();
        assert_eq!((tokens.role, tokens.blocked), (Role::Local, false));
        assert!(
            tokens.reason.contains("looked up by bare token"),
            "{}",
            tokens.reason
        );
        assert_eq!(role_of(&p, "currencies"), (Role::Reference, false));
        assert_eq!(role_of(&p, "schema_migrations"), (Role::Local, false));
        assert!(codes(&p, "tokens").is_empty());
    }

    #[test]
    fn unknown_config_names_are_warned_about() {
        let s = schema(vec![tenants()]);
        let config = DistributionConfig {
            local: vec![Forced::Name("no_such".into())],
            tables: [(
                "tenants".to_string(),
                TableOverride {
                    column: Some("tenant_uuid".into()),
                    ..Default::default()
                },
            )]
            .into(),
            ..Default::default()
        };
        let p = plan(&s, &config);
        assert_eq!(codes(&p, "no_such"), [Code::ConfigUnknownTable]);
        assert!(codes(&p, "tenants").contains(&Code::ConfigUnknownColumn));
    }

    #[test]
    fn missing_root_is_a_blocker() {
        let s = schema(vec![child("tickets")]);
        let p = run(&s);
        assert_eq!(codes(&p, "tenants"), [Code::RootMissing]);
        assert!(p.has_problems());
        // No candidate column and no one-column primary key to go by instead.
        let s = schema(vec![
            tbl("tenants")
                .col("region", "text")
                .col("id", "uuid")
                .pk(&["region", "id"]),
            tbl("x").col("tenant", "uuid").pk(&["tenant"]),
        ]);
        let p = run(&s);
        assert_eq!(codes(&p, "tenants"), [Code::RootWithoutColumn]);
    }

    #[test]
    fn root_found_in_another_schema_by_bare_name() {
        let s = schema(vec![tbl("app.tenants")
            .col("tenant", "uuid")
            .pk(&["tenant"])]);
        let p = run(&s);
        assert_eq!(p.root, Some(q("app.tenants")));
    }

    /// A `teams(id)` root with camelCase `"teamId"` children and none of the candidate columns:
    /// the root goes by its primary key, each child by its key to it, and the plan says so. A
    /// table with two keys to the root is left for a decision.
    #[test]
    fn a_root_without_candidates_goes_by_its_primary_key() {
        let s = schema(vec![
            tbl("tenants")
                .col("id", "bigint")
                .col("name", "text")
                .pk(&["id"]),
            tbl("documents")
                .col("id", "bigint")
                .col("teamId", "bigint")
                .pk(&["teamId", "id"])
                .fk("documents_team", &["teamId"], "tenants", &["id"]),
            tbl("transfers")
                .col("id", "bigint")
                .col("fromTeam", "bigint")
                .col("toTeam", "bigint")
                .pk(&["id"])
                .fk("transfers_from", &["fromTeam"], "tenants", &["id"])
                .fk("transfers_to", &["toTeam"], "tenants", &["id"]),
        ]);
        let p = run(&s);
        assert!(
            p.findings.iter().all(|f| f.code != Code::RootWithoutColumn),
            "{:#?}",
            p.findings
        );
        let root = p.table(&q("tenants")).unwrap();
        assert_eq!(
            (root.role, root.column.as_deref()),
            (Role::Root, Some("id"))
        );
        assert!(
            root.reason.contains("distributed by its primary key id"),
            "{}",
            root.reason
        );
        let docs = p.table(&q("documents")).unwrap();
        assert_eq!(
            (docs.role, docs.column.as_deref()),
            (Role::Distributed, Some("teamId"))
        );
        assert!(
            docs.reason
                .contains("references the root's key by \"teamId\""),
            "{}",
            docs.reason
        );
        let transfers = p.table(&q("transfers")).unwrap();
        assert_ne!(
            transfers.role,
            Role::Distributed,
            "two keys to the root: a decision"
        );
    }

    /// With a candidate column on the root, nothing is inferred from keys.
    #[test]
    fn a_root_with_a_candidate_column_infers_nothing_from_keys() {
        let s = schema(vec![
            tenants(),
            tbl("notes")
                .col("id", "bigint")
                .col("owner", "uuid")
                .pk(&["id"])
                .fk("notes_owner", &["owner"], "tenants", &["tenant"]),
        ]);
        let p = run(&s);
        assert_ne!(p.table(&q("notes")).unwrap().role, Role::Distributed);
    }
}

/// The column names a table refers to catalog `table (key)` by: `<singular>_<key>` and
/// `<table>_<key>` (`countries (code)`: `country_code`, `countries_code`).
fn catalog_column_names(table: &str, key: &str) -> Vec<String> {
    let singular = if let Some(stem) = table.strip_suffix("ies") {
        format!("{stem}y")
    } else if let Some(stem) = table
        .strip_suffix("ses")
        .or_else(|| table.strip_suffix("xes"))
        .or_else(|| table.strip_suffix("ches"))
        .or_else(|| table.strip_suffix("shes"))
    {
        format!("{stem}{}", &table[stem.len()..table.len() - 2])
    } else if let Some(stem) = table.strip_suffix('s') {
        stem.to_string()
    } else {
        table.to_string()
    };
    vec![format!("{singular}_{key}"), format!("{table}_{key}")]
}

#[cfg(test)]
mod inference_tests {
    use super::catalog_column_names;
    use crate::plan::testutil::*;

    #[test]
    fn a_column_named_as_other_tables_reference_a_root_by_its_key_is_the_tenant_column() {
        let s = schema(vec![
            tbl("teams").col("id", "uuid").pk(&["id"]),
            tbl("users")
                .col("id", "uuid")
                .col("teamId", "uuid")
                .pk(&["id"])
                .fk("users_team_fkey", &["teamId"], "teams", &["id"]),
            // A "teamId" a fix added (or the application never declared a key for).
            tbl("notes")
                .col("id", "uuid")
                .col("teamId", "uuid")
                .pk(&["id"]),
            // Another type: not the tenant.
            tbl("legacy")
                .col("id", "uuid")
                .col("teamId", "text")
                .pk(&["id"]),
        ]);
        let config = DistributionConfig {
            root: "teams".into(),
            ..Default::default()
        };
        let p = plan(&s, &config);
        let notes = p.table(&q("notes")).unwrap();
        assert_eq!(notes.role, Role::Distributed);
        assert_eq!(notes.column.as_deref(), Some("teamId"));
        assert!(
            notes
                .reason
                .contains("by which other tables reference the root"),
            "{}",
            notes.reason
        );
        assert_eq!(p.table(&q("legacy")).unwrap().role, Role::Local);
    }

    #[test]
    fn catalog_names_singular() {
        assert_eq!(catalog_column_names("countries", "code")[0], "country_code");
        assert_eq!(
            catalog_column_names("job_statuses", "code")[0],
            "job_status_code"
        );
        assert_eq!(catalog_column_names("currencies", "id")[0], "currency_id");
        assert_eq!(catalog_column_names("boxes", "id")[0], "box_id");
        assert_eq!(
            catalog_column_names("priorities", "code")[0],
            "priority_code"
        );
        assert_eq!(catalog_column_names("units", "code")[0], "unit_code");
    }

    #[test]
    fn catalogs_without_keys_pointing_at_them_are_reference_from_views_and_matching_columns() {
        let mut s = schema(vec![
            tenants(),
            child("customers").col("country_code", "character(2)"),
            child("jobs").col("status", "text"),
            tbl("countries").col("code", "character(2)").pk(&["code"]),
            tbl("job_statuses").col("code", "text").pk(&["code"]),
            // The type differs: no match.
            tbl("regions").col("code", "integer").pk(&["code"]),
            // A catalog with a key of its own is left alone.
            tbl("units")
                .col("code", "text")
                .pk(&["code"])
                .col("kind", "text")
                .fk("units_kind_fkey", &["kind"], "unit_kinds", &["kind"]),
            tbl("unit_kinds").col("kind", "text").pk(&["kind"]),
        ]);
        s.tables
            .get_mut(&q("customers"))
            .unwrap()
            .columns
            .push(Column::new("region_code", "text", false));
        s.views.push(crate::schema::View {
            name: q("job_board"),
            materialized: false,
            depends_on: vec![q("jobs"), q("job_statuses")],
        });
        let p = run(&s);
        let role = |n: &str| p.table(&q(n)).unwrap().role;
        assert_eq!(role("countries"), Role::Reference);
        assert!(p
            .table(&q("countries"))
            .unwrap()
            .reason
            .contains("public.customers.country_code matches its key code by name and type"));
        assert_eq!(role("job_statuses"), Role::Reference);
        assert!(p
            .table(&q("job_statuses"))
            .unwrap()
            .reason
            .contains("view public.job_board joins it with public.jobs"));
        assert_eq!(role("regions"), Role::Local);
        assert_eq!(role("units"), Role::Local);
        // Configuration wins.
        let config = DistributionConfig {
            local: vec![Forced::Name("countries".into())],
            ..Default::default()
        };
        assert_eq!(
            plan(&s, &config).table(&q("countries")).unwrap().role,
            Role::Local
        );
    }
}
