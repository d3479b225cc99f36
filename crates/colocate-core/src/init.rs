//! `colocate init`: a first `colocate.toml`, commented, from what the project and (when given)
//! the database show: the migration directories, the root table and the tenant columns. Pure:
//! the caller finds the directories and introspects the schema.

use std::collections::BTreeMap;

use crate::schema::{QualifiedName, Schema};

/// Column names that commonly mark a tenant's rows, in the order a tie is broken.
pub const TENANT_COLUMN_NAMES: &[&str] = &[
    "tenant",
    "tenant_id",
    "tenantId",
    "team_id",
    "teamId",
    "account_id",
    "accountId",
    "organization_id",
    "organizationId",
    "org_id",
    "orgId",
    "workspace_id",
    "workspaceId",
];

/// What the schema suggests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// The root: the table most foreign keys on a tenant column point at.
    pub root: Option<QualifiedName>,
    /// Tenant columns found, the most common first, each with how many tables have it.
    pub columns: Vec<(String, usize)>,
    /// How many tables the schema has.
    pub tables: usize,
}

/// Look for tenant columns and the root in `schema`.
pub fn detect(schema: &Schema) -> Detected {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for t in schema.tables.values() {
        for c in &t.columns {
            if let Some(name) = TENANT_COLUMN_NAMES.iter().find(|n| **n == c.name) {
                *counts.entry(name).or_default() += 1;
            }
        }
    }
    let rank = |name: &str| TENANT_COLUMN_NAMES.iter().position(|n| *n == name);
    let mut columns: Vec<(String, usize)> = counts
        .into_iter()
        .map(|(n, c)| (n.to_string(), c))
        .collect();
    columns.sort_by(|a, b| b.1.cmp(&a.1).then(rank(&a.0).cmp(&rank(&b.0))));
    // The root: most referenced through a key whose columns hold a tenant column.
    let mut referenced: BTreeMap<&QualifiedName, usize> = BTreeMap::new();
    for t in schema.tables.values() {
        for fk in &t.foreign_keys {
            let tenant_key = fk
                .columns
                .iter()
                .any(|c| columns.iter().any(|(n, _)| n == c));
            if tenant_key && fk.ref_table != t.name {
                *referenced.entry(&fk.ref_table).or_default() += 1;
            }
        }
    }
    let root = referenced
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .map(|(q, _)| q.clone());
    Detected {
        root,
        columns,
        tables: schema.tables.len(),
    }
}

/// A TOML basic string holding `s` exactly.
fn literal(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The text of a commented `colocate.toml`: `dirs` (relative to the file, in the order the
/// chain merges them), and what `detected` found in the database (`None`: no database given).
pub fn render(dirs: &[String], detected: Option<&Detected>) -> String {
    let mut out = String::from(
        "# colocate.toml, written by `colocate init`: check each setting, then run `colocate plan`.\n\
         # Reference: docs/cli.md, section \"Configuration\". Paths are relative to this file.\n\n",
    );
    out.push_str("# The migration directories, merged into one chain by version (timestamp).\n");
    if dirs.is_empty() {
        out.push_str(
            "# None was found (a directory of YYYYMMDDHHMMSS_name.sql files): list yours here.\n\
             migration_dirs = []\n",
        );
    } else {
        let list: Vec<String> = dirs.iter().map(|d| literal(d)).collect();
        out.push_str(&format!("migration_dirs = [{}]\n", list.join(", ")));
    }
    out.push_str(
        "\n# Where colocate records applied migrations (table or schema.table).\n\
         # history_table = \"colocate_migrations\"\n\n[distribution]\n",
    );
    match detected {
        None => out.push_str(
            "# No database was given (pass --database-url or set DATABASE_URL to detect these):\n\
             # the defaults are shown.\n\
             # The root table every tenant table is colocated with.\n\
             root = \"tenants\"\n\
             # Columns that mark a tenant table, in priority order: a table is distributed by the\n\
             # first of them it has.\n\
             columns = [\"tenant\", \"tenant_id\"]\n",
        ),
        Some(d) => {
            out.push_str(&format!(
                "# Detected in the database ({} tables).\n",
                d.tables
            ));
            match &d.root {
                Some(r) => {
                    let name = if r.schema == "public" {
                        r.name.clone()
                    } else {
                        r.to_string()
                    };
                    out.push_str(&format!(
                        "# The root: the table most foreign keys on a tenant column point at.\nroot = {}\n",
                        literal(&name)
                    ));
                }
                None => out.push_str(
                    "# No table is referenced through a tenant column: name your root table.\n\
                     root = \"tenants\"\n",
                ),
            }
            if d.columns.is_empty() {
                out.push_str(
                    "# No common tenant column was found: list the column that marks a tenant's rows.\n\
                     columns = [\"tenant\", \"tenant_id\"]\n",
                );
            } else {
                let found: Vec<String> = d
                    .columns
                    .iter()
                    .map(|(c, n)| format!("{c} in {n} table{}", if *n == 1 { "" } else { "s" }))
                    .collect();
                let list: Vec<String> = d.columns.iter().map(|(c, _)| literal(c)).collect();
                out.push_str(&format!(
                    "# Tenant columns found ({}), the most common first: a table is distributed by the\n\
                     # first of them it has.\ncolumns = [{}]\n",
                    found.join(", "),
                    list.join(", ")
                ));
            }
        }
    }
    out.push_str(
        "\n# Decisions, each with its reason (shown in plan, generated files and JSON):\n\
         # reference = [{ table = \"countries\", reason = \"lookup table joined with tenant tables\" }]\n\
         # local = [{ table = \"api_tokens\", reason = \"looked up by a bare token, no tenant in hand\" }]\n\
         # shard_count = 32\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testutil::*;

    #[test]
    fn the_root_is_the_table_tenant_keys_point_at_and_columns_rank_by_use() {
        let s = schema(vec![
            tbl("teams").col("id", "uuid").pk(&["id"]),
            tbl("docs")
                .col("teamId", "uuid")
                .fk("docs_team", &["teamId"], "teams", &["id"]),
            tbl("users")
                .col("teamId", "uuid")
                .fk("users_team", &["teamId"], "teams", &["id"]),
            tbl("audit").col("tenant_id", "uuid"),
            tbl("countries").col("code", "text").pk(&["code"]),
        ]);
        let d = detect(&s);
        assert_eq!(d.root, Some(q("teams")));
        assert_eq!(
            d.columns,
            [("teamId".to_string(), 2), ("tenant_id".to_string(), 1)]
        );
        let text = render(&["db/migrations".into()], Some(&d));
        assert!(text.contains("root = \"teams\"\n"), "{text}");
        assert!(
            text.contains("columns = [\"teamId\", \"tenant_id\"]\n"),
            "{text}"
        );
        let parsed: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(parsed["migration_dirs"][0].as_str(), Some("db/migrations"));
    }

    #[test]
    fn names_with_quotes_and_newlines_stay_inside_their_strings() {
        let text = render(&["we\"ird\ndir".into()], None);
        let parsed: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(parsed["migration_dirs"][0].as_str(), Some("we\"ird\ndir"));
        assert_eq!(parsed["distribution"]["root"].as_str(), Some("tenants"));
    }
}
