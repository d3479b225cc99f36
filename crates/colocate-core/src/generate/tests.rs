//! `generate` on small hand-built schemas: file names and versions, order, cycle grouping,
//! chunking, what is left out, the fixes, escaping, and snapshots of the three formats.

use postgres_protocol::escape::escape_identifier;

use super::*;
use crate::declarative::DeclarativeStep;
use crate::distribution::DistributionConfig;
use crate::migration::Migration;
use crate::plan::plan;
use crate::schema::{Column, FkAction, ForeignKey, Key, KeyKind, Table, Trigger};

fn q(name: &str) -> QualifiedName {
    QualifiedName::parse(name, "public")
}

struct T(Table);

fn tbl(name: &str) -> T {
    let n = q(name);
    T(Table::new(&n.schema, &n.name))
}

impl T {
    fn col(mut self, name: &str, ty: &str) -> T {
        self.0.columns.push(Column::new(name, ty, true));
        self
    }
    fn key(mut self, kind: KeyKind, name: &str, cols: &[&str]) -> T {
        let idents: Vec<String> = cols.iter().map(|c| escape_identifier(c)).collect();
        let definition = match kind {
            KeyKind::PrimaryKey => format!("PRIMARY KEY ({})", idents.join(", ")),
            _ => format!("UNIQUE ({})", idents.join(", ")),
        };
        self.0.keys.push(Key {
            name: name.into(),
            kind,
            columns: cols.iter().map(|c| Some(c.to_string())).collect(),
            predicate: None,
            definition,
        });
        self
    }
    fn pk(self, cols: &[&str]) -> T {
        let name = format!("{}_pkey", self.0.name.name);
        self.key(KeyKind::PrimaryKey, &name, cols)
    }
    fn fk(mut self, name: &str, cols: &[&str], target: &str, rcols: &[&str]) -> T {
        let ident = |cs: &[&str]| {
            cs.iter()
                .map(|c| escape_identifier(c))
                .collect::<Vec<_>>()
                .join(", ")
        };
        self.0.foreign_keys.push(ForeignKey {
            name: name.into(),
            columns: cols.iter().map(|c| c.to_string()).collect(),
            ref_table: q(target),
            ref_columns: rcols.iter().map(|c| c.to_string()).collect(),
            on_delete: FkAction::NoAction,
            on_update: FkAction::NoAction,
            on_delete_columns: Vec::new(),
            validated: true,
            definition: format!(
                "FOREIGN KEY ({}) REFERENCES {}({})",
                ident(cols),
                q(target).sql(),
                ident(rcols)
            ),
        });
        self
    }
    /// A default the database hands values out by (a surrogate key column).
    fn surrogate(mut self, name: &str) -> T {
        for c in &mut self.0.columns {
            if c.name == name {
                c.default = Some("gen_random_uuid()".into());
            }
        }
        self
    }
    fn trigger(mut self, name: &str) -> T {
        self.0.triggers.push(Trigger {
            name: name.into(),
            definition: format!("CREATE TRIGGER {name} ..."),
        });
        self
    }
}

/// Every case in a few tables: the root, a lookup table, a foreign-key cycle, a `tenant_id`
/// table, a second layer, a local table, a fixable blocker (a key without the tenant) with a
/// table referencing it, and a manual one (a trigger).
fn schema() -> Schema {
    let mut s = Schema::default();
    for t in [
        tbl("tenants").col("tenant", "uuid").pk(&["tenant"]),
        tbl("countries").col("code", "text").pk(&["code"]),
        tbl("users")
            .col("tenant", "uuid")
            .col("user_id", "bigint")
            .col("team_id", "bigint")
            .col("country", "text")
            .pk(&["tenant", "user_id"])
            .fk("users_tenant_fkey", &["tenant"], "tenants", &["tenant"])
            .fk(
                "users_team_fkey",
                &["tenant", "team_id"],
                "teams",
                &["tenant", "team_id"],
            )
            .fk("users_country_fkey", &["country"], "countries", &["code"]),
        tbl("teams")
            .col("tenant", "uuid")
            .col("team_id", "bigint")
            .col("lead_id", "bigint")
            .pk(&["tenant", "team_id"])
            .fk("teams_tenant_fkey", &["tenant"], "tenants", &["tenant"])
            .fk(
                "teams_lead_fkey",
                &["tenant", "lead_id"],
                "users",
                &["tenant", "user_id"],
            ),
        tbl("email_messages")
            .col("tenant_id", "uuid")
            .col("id", "bigint")
            .pk(&["tenant_id", "id"])
            .fk(
                "email_messages_tenant_fkey",
                &["tenant_id"],
                "tenants",
                &["tenant"],
            ),
        tbl("invoices")
            .col("tenant", "uuid")
            .col("id", "bigint")
            .col("user_id", "bigint")
            .pk(&["tenant", "id"])
            .fk(
                "invoices_user_fkey",
                &["tenant", "user_id"],
                "users",
                &["tenant", "user_id"],
            ),
        tbl("feature_flags").col("name", "text").pk(&["name"]),
        tbl("tokens")
            .col("tenant", "uuid")
            .col("token", "uuid")
            .surrogate("token")
            .pk(&["token"])
            .fk("tokens_tenant_fkey", &["tenant"], "tenants", &["tenant"]),
        tbl("token_uses")
            .col("tenant", "uuid")
            .col("id", "bigint")
            .col("token", "uuid")
            .pk(&["tenant", "id"])
            .fk("token_uses_token_fkey", &["token"], "tokens", &["token"]),
        tbl("audit_events")
            .col("tenant", "uuid")
            .col("id", "bigint")
            .pk(&["tenant", "id"])
            .trigger("audit_events_stamp"),
    ] {
        s.add(t.0);
    }
    s
}

/// [`schema`] without tokens' key to tenants: the blocked tables hold back only each other, and
/// the rest of the schema lays out into files (with that key, the integrity closure holds back
/// the whole foreign-key component of tokens, which is everything but the lookup).
fn layout() -> Schema {
    let mut s = schema();
    if let Some(t) = s.tables.get_mut(&q("tokens")) {
        t.foreign_keys.clear();
    }
    s
}

fn id(s: &str) -> MigrationId {
    s.parse().unwrap()
}

fn opts(format: SetFormat) -> GenerateOptions {
    GenerateOptions {
        format,
        tables_per_file: None,
        with_fixes: false,
        shard_count: None,
    }
}

fn run(s: &Schema, o: GenerateOptions) -> Vec<GeneratedFile> {
    let p = plan(s, &DistributionConfig::default());
    generate(s, &p, &o, Some(id("20240101000000")), id("20230101000000")).unwrap()
}

fn names(files: &[GeneratedFile]) -> Vec<&str> {
    files.iter().map(|f| f.name.as_str()).collect()
}

/// The tables each `.toml` file lists.
fn toml_tables(files: &[GeneratedFile]) -> Vec<Vec<String>> {
    files
        .iter()
        .filter(|f| f.name.ends_with(".toml"))
        .map(|f| {
            DeclarativeStep::parse(&f.contents)
                .unwrap()
                .tables()
                .iter()
                .map(|t| t.name.clone())
                .collect()
        })
        .collect()
}

#[test]
fn files_follow_the_newest_version_one_second_apart_in_order() {
    let files = run(&layout(), opts(SetFormat::Sql));
    assert_eq!(
        names(&files),
        [
            "20240101000001_citus_extension.sql",
            "20240101000002_citus_reference_tables.sql",
            "20240101000003_citus_distribute_root.sql",
            "20240101000004_citus_distribute_layer_1.sql",
            "20240101000005_citus_distribute_layer_2.sql",
        ]
    );
    assert!(files[3].contents.contains(
        "-- Tables, in conversion order: public.email_messages, public.teams, public.users\n"
    ));
    let knex = run(&layout(), opts(SetFormat::Knex));
    assert_eq!(
        names(&knex),
        names(&files)
            .iter()
            .map(|n| n.replace(".sql", ".cjs"))
            .collect::<Vec<_>>()
    );
}

#[test]
fn toml_splits_a_layer_by_column() {
    let s = layout();
    let p = plan(&s, &DistributionConfig::default());
    let files = generate(&s, &p, &opts(SetFormat::Toml), None, id("20250102030405")).unwrap();
    assert_eq!(
        toml_tables(&files),
        vec![
            vec![],
            vec!["countries".to_string()],
            vec!["tenants".into()],
            vec!["teams".into(), "users".into()],
            vec!["email_messages".into()],
            vec!["invoices".into()],
        ]
    );
    let layer1: Vec<&GeneratedFile> = files
        .iter()
        .filter(|f| f.name.contains("layer_1"))
        .collect();
    assert_eq!(
        names(&files)[3..5],
        [
            "20250102030408_citus_distribute_layer_1_1.toml",
            "20250102030409_citus_distribute_layer_1_2.toml"
        ]
    );
    assert_eq!(layer1.len(), 2);
    assert!(layer1[0].contents.contains("column = \"tenant\""));
    assert!(layer1[1].contents.contains("column = \"tenant_id\""));
    assert!(layer1[1].contents.contains("tables = [\"email_messages\"]"));
    // `now` wins when it is after the newest version.
    assert_eq!(names(&files)[0], "20250102030405_citus_extension.toml");
}

#[test]
fn a_cycle_stays_in_one_file_whatever_the_chunk_size() {
    let s = layout();
    let p = plan(&s, &DistributionConfig::default());
    let o = GenerateOptions {
        tables_per_file: Some(1),
        ..opts(SetFormat::Sql)
    };
    let files = generate(&s, &p, &o, None, id("20240101000000")).unwrap();
    let parts: Vec<&GeneratedFile> = files.iter().filter(|f| f.name.contains("part")).collect();
    assert_eq!(
        names(&files)[3..],
        [
            "20240101000003_citus_distribute_part_1.sql",
            "20240101000004_citus_distribute_part_2.sql",
            "20240101000005_citus_distribute_part_3.sql",
        ]
    );
    // The cycle users <-> teams is one file of two tables (its layer's tables sorted by column,
    // then name), and comes before the table that references it.
    assert!(parts[0]
        .contents
        .contains("Tables, in conversion order: public.teams, public.users\n"));
    assert!(parts[1]
        .contents
        .contains("Tables, in conversion order: public.email_messages\n"));
    assert!(parts[2]
        .contents
        .contains("Tables, in conversion order: public.invoices\n"));
}

#[test]
fn chunks_keep_the_dependency_order() {
    let s = layout();
    let p = plan(&s, &DistributionConfig::default());
    let o = GenerateOptions {
        tables_per_file: Some(3),
        ..opts(SetFormat::Toml)
    };
    let files = generate(&s, &p, &o, None, id("20240101000000")).unwrap();
    // Units in order: [email_messages] (tenant_id), [teams, users], [invoices]; chunks of at
    // most 3 tables: [email_messages, teams, users], [invoices]; toml then splits by column.
    assert_eq!(
        toml_tables(&files)[3..],
        [
            vec!["teams".to_string(), "users".into()],
            vec!["email_messages".into()],
            vec!["invoices".into()],
        ]
    );
    assert!(names(&files)[3].ends_with("_citus_distribute_part_1.toml"));
    assert!(names(&files)[5].ends_with("_citus_distribute_part_3.toml"));
    let o = GenerateOptions {
        tables_per_file: Some(0),
        ..o
    };
    assert_eq!(
        generate(&s, &p, &o, None, id("20240101000000")).unwrap_err(),
        GenerateError::ZeroTablesPerFile
    );
}

#[test]
fn blocked_tables_are_left_out_and_named_in_the_first_file() {
    let files = run(&layout(), opts(SetFormat::Toml));
    let first = &files[0].contents;
    assert!(
        first.contains(
            "# Left out, 3 blocked tables (`colocate plan` shows each blocker with its fix):\n\
             #   public.audit_events: has-triggers\n\
             #   public.token_uses: foreign-key-missing-distribution-column\n\
             #   public.tokens: key-missing-distribution-column\n"
        ),
        "{first}"
    );
    let all: String = files.iter().map(|f| f.contents.as_str()).collect();
    assert!(!all.contains("\"tokens\""), "{all}");
    assert!(!files[1].contents.contains("Left out"));
    // feature_flags is local: in no file.
    assert!(!all.contains("feature_flags"));

    // With tokens' key to tenants, tenants waits for tokens and every table referencing
    // tenants waits for it: only the lookup table is left to convert.
    let files = run(&schema(), opts(SetFormat::Toml));
    let first = &files[0].contents;
    assert!(
        first.contains(
            "# Left out, 8 blocked tables (`colocate plan` shows each blocker with its fix):\n\
             #   public.audit_events: has-triggers\n\
             #   public.email_messages: references-blocked-table\n\
             #   public.invoices: references-blocked-table\n\
             #   public.teams: references-blocked-table\n\
             #   public.tenants: referenced-by-blocked-table\n\
             #   public.token_uses: foreign-key-missing-distribution-column\n\
             #   public.tokens: key-missing-distribution-column\n\
             #   public.users: references-blocked-table\n"
        ),
        "{first}"
    );
    assert_eq!(toml_tables(&files), [vec![], vec!["countries".to_string()]]);
}

#[test]
fn with_fixes_the_fixable_tables_converge_and_the_manual_one_stays_out() {
    let s = schema();
    let p = plan(&s, &DistributionConfig::default());
    let o = GenerateOptions {
        with_fixes: true,
        ..opts(SetFormat::Toml)
    };
    let files = generate(&s, &p, &o, None, id("20240101000000")).unwrap();
    assert_eq!(names(&files)[0], "20240101000000_citus_fixes.sql");
    let fixes = &files[0].contents;
    assert!(
        fixes.contains("#") || fixes.starts_with("-- Generated"),
        "{fixes}"
    );
    assert!(
        fixes.contains("--   public.audit_events: has-triggers\n"),
        "{fixes}"
    );
    assert!(!fixes.contains("--   public.tokens"), "{fixes}");
    // Key rebuild before the foreign key that needs it; the manual fix commented out.
    let key = fixes
        .find("ADD CONSTRAINT \"tokens_pkey\" PRIMARY KEY (\"tenant\", \"token\");")
        .unwrap();
    let fk = fixes
        .find("ADD CONSTRAINT \"token_uses_token_fkey\" FOREIGN KEY (\"tenant\", \"token\")")
        .unwrap();
    assert!(key < fk);
    // The open decision is written with its choices, commented out.
    assert!(fixes.contains("-- public.audit_events [has-triggers]: "));
    assert!(fixes.contains("--   a decision (triggers): write it in colocate.toml"));
    assert!(fixes.contains("--   keep-unsafe: keep them"));
    assert!(!fixes.contains("DROP TRIGGER"), "{fixes}");
    // It loads as a transactional migration, and its down part puts the keys back.
    let m = Migration::parse(
        std::path::Path::new("m"),
        std::path::Path::new("m/20240101000000_citus_fixes.sql"),
        fixes.as_bytes(),
    )
    .unwrap();
    assert!(m.up.transaction);
    let down: Vec<&str> = m
        .down
        .as_ref()
        .unwrap()
        .statements
        .iter()
        .map(|s| s.sql.as_str())
        .collect();
    assert_eq!(
        down,
        [
            "ALTER TABLE \"public\".\"token_uses\" DROP CONSTRAINT IF EXISTS \"token_uses_token_fkey\"",
            "ALTER TABLE \"public\".\"tokens\" DROP CONSTRAINT IF EXISTS \"tokens_pkey\"",
            "ALTER TABLE \"public\".\"tokens\" ADD CONSTRAINT \"tokens_pkey\" PRIMARY KEY (\"token\")",
            "ALTER TABLE \"public\".\"token_uses\" ADD CONSTRAINT \"token_uses_token_fkey\" FOREIGN KEY (\"token\") REFERENCES \"public\".\"tokens\"(\"token\")",
        ]
    );
    // tokens joins layer 1, token_uses follows it in layer 2.
    let tables = toml_tables(&files);
    assert!(
        tables.contains(&vec!["tokens".to_string()])
            || tables.iter().any(|t| t.contains(&"tokens".to_string()))
    );
    let layer_of = |name: &str| {
        files
            .iter()
            .position(|f| {
                f.name.ends_with(".toml")
                    && DeclarativeStep::parse(&f.contents)
                        .unwrap()
                        .tables()
                        .iter()
                        .any(|t| t.name == name)
            })
            .unwrap()
    };
    assert!(layer_of("tokens") < layer_of("token_uses"));
    // tenants waited for tokens, and the rest for tenants: fixed, they all come along.
    assert!(layer_of("tenants") < layer_of("tokens"));
    for t in ["users", "teams", "email_messages", "invoices"] {
        layer_of(t);
    }
    let all: String = files.iter().map(|f| f.contents.as_str()).collect();
    assert!(!all.contains("tables = [\"audit_events\"]"));
}

/// A table that keeps a key to tenants and has a blocker no fix removes (a trigger): tenants
/// waits for it even with the fixes, and so does every table that references tenants.
#[test]
fn with_fixes_tables_held_back_by_a_manual_blocker_stay_out() {
    let mut s = schema();
    let audit = s.tables.get_mut(&q("audit_events")).unwrap();
    audit.foreign_keys = tbl("audit_events")
        .fk(
            "audit_events_tenant_fkey",
            &["tenant"],
            "tenants",
            &["tenant"],
        )
        .0
        .foreign_keys;
    let p = plan(&s, &DistributionConfig::default());
    let o = GenerateOptions {
        with_fixes: true,
        ..opts(SetFormat::Toml)
    };
    let files = generate(&s, &p, &o, None, id("20240101000000")).unwrap();
    let tables: Vec<String> = toml_tables(&files).into_iter().flatten().collect();
    assert_eq!(tables, ["countries"], "{tables:?}");
    // Nothing the fixes would unblock converts here, so there is no fixes file.
    assert!(
        files[0].name.ends_with("_citus_extension.toml"),
        "{}",
        files[0].name
    );
    assert!(
        files[0]
            .contents
            .contains("#   public.tenants: referenced-by-blocked-table\n"),
        "{}",
        files[0].contents
    );
}

#[test]
fn a_key_rebuild_that_would_drop_an_unrepaired_foreign_key_is_not_applied() {
    let mut s = schema();
    // A local table's key to tokens(token): rebuilding tokens' key would drop it for good.
    s.add(
        tbl("token_log")
            .col("token", "text")
            .fk("token_log_token_fkey", &["token"], "tokens", &["token"])
            .0,
    );
    let p = plan(&s, &DistributionConfig::default());
    let o = GenerateOptions {
        with_fixes: true,
        ..opts(SetFormat::Sql)
    };
    let files = generate(&s, &p, &o, None, id("20240101000000")).unwrap();
    // Nothing is fixable any more: no fixes file, and tokens is left out.
    assert_eq!(names(&files)[0], "20240101000000_citus_extension.sql");
    assert!(files[0]
        .contents
        .contains("--   public.tokens: key-missing-distribution-column"));
}

#[test]
fn every_file_loads_as_a_migration_and_the_sql_splits_into_its_statements() {
    for format in [SetFormat::Toml, SetFormat::Sql] {
        let o = GenerateOptions {
            with_fixes: true,
            ..opts(format)
        };
        let files = run(&schema(), o);
        let ms: Vec<Migration> = files
            .iter()
            .map(|f| {
                let path = std::path::Path::new("m").join(&f.name);
                Migration::parse(std::path::Path::new("m"), &path, f.contents.as_bytes())
                    .unwrap_or_else(|e| panic!("{e}\n{}", f.contents))
            })
            .collect();
        crate::MigrationSet::from_migrations(ms.clone()).unwrap();
        if format == SetFormat::Sql {
            let dist = ms
                .iter()
                .find(|m| m.name == "citus_distribute_layer_1")
                .unwrap();
            assert!(!dist.up.transaction);
            // drop cycle key, 4 tables (tokens, fixed, joins them), restore + validate, then
            // each of the 5 keys to earlier files' tables added back if missing and validated
            // (after a rollback of this file), cleanup.
            assert_eq!(dist.up.statements.len(), 8 + 2 * 5, "{}", dist.up.sql);
            assert!(dist
                .up
                .statements
                .iter()
                .all(|s| s.sql.starts_with("DO $colocate$") || s.sql.starts_with("ALTER TABLE")));
            let down = dist.down.as_ref().unwrap();
            let undistribute = down
                .statements
                .iter()
                .filter(|s| s.sql.contains("PERFORM undistribute_table("))
                .count();
            assert_eq!(undistribute, 4);
        }
    }
}

/// What a down part's statements do, one line each: `drop k`, `undistribute t`, `restore k`,
/// `validate k`.
fn trace(down: &str) -> Vec<String> {
    let between = |s: &str, from: &str, to: &str| -> String {
        let i = s
            .find(from)
            .map(|i| i + from.len())
            .unwrap_or_else(|| panic!("{from}: {s}"));
        s[i..][..s[i..].find(to).unwrap()].to_string()
    };
    crate::split_statements(down)
        .unwrap()
        .iter()
        .map(|st| {
            let s = &st.sql;
            if s.contains("INTO def FROM pg_constraint") {
                format!("drop {}", between(s, "AND conname = '", "'"))
            } else if s.contains("PERFORM undistribute_table(") {
                format!(
                    "undistribute {}",
                    between(s, "undistribute_table('\"public\".\"", "\"")
                )
            } else if s.contains("state = 'dropped'") {
                format!("restore {}", between(s, "constraint_name = '", "'"))
            } else if s.contains("state = 'restored'") {
                format!("validate {}", between(s, "constraint_name = '", "'"))
            } else {
                panic!("unexpected statement in a down part: {s}")
            }
        })
        .collect()
}

#[test]
fn down_parts_undistribute_each_table_alone_after_journaling_its_keys() {
    let o = GenerateOptions {
        with_fixes: true,
        ..opts(SetFormat::Sql)
    };
    let files = run(&schema(), o);
    for f in &files {
        assert!(
            !f.contents.contains("cascade_via_foreign_keys => true"),
            "{}",
            f.contents
        );
    }
    let down = |slug: &str| {
        let f = files.iter().find(|f| f.name.contains(slug)).unwrap();
        trace(&f.contents[f.contents.find("-- migrate:down").unwrap()..])
    };
    // Last converted first. Every key to or from a table is dropped before the table is
    // undistributed (one dropped with an earlier table already is a no-op then); a key comes
    // back once its other table is plain too: at once for a key to itself or to a table
    // already done, later for one to a table of this file still to come, and never here for a
    // key to a table of an earlier file (tenants, countries), which waits in the journal for
    // that file's down part or this file's up part.
    let layer_1 = down("citus_distribute_layer_1");
    assert_eq!(
        layer_1,
        [
            "drop invoices_user_fkey",
            "drop teams_lead_fkey",
            "drop users_tenant_fkey",
            "drop users_team_fkey",
            "drop users_country_fkey",
            "undistribute users",
            "restore invoices_user_fkey",
            "validate invoices_user_fkey",
            "drop token_uses_token_fkey",
            "drop tokens_tenant_fkey",
            "undistribute tokens",
            "restore token_uses_token_fkey",
            "validate token_uses_token_fkey",
            "drop teams_tenant_fkey",
            "drop teams_lead_fkey",
            "drop users_team_fkey",
            "undistribute teams",
            "restore teams_lead_fkey",
            "validate teams_lead_fkey",
            "restore users_team_fkey",
            "validate users_team_fkey",
            "drop email_messages_tenant_fkey",
            "undistribute email_messages",
        ],
        "{layer_1:#?}"
    );
    // The root's file gives back the keys into the root that the later file left waiting.
    let root = down("citus_distribute_root");
    assert_eq!(
        root,
        [
            "drop email_messages_tenant_fkey",
            "drop teams_tenant_fkey",
            "drop tokens_tenant_fkey",
            "drop users_tenant_fkey",
            "undistribute tenants",
            "restore email_messages_tenant_fkey",
            "validate email_messages_tenant_fkey",
            "restore teams_tenant_fkey",
            "validate teams_tenant_fkey",
            "restore tokens_tenant_fkey",
            "validate tokens_tenant_fkey",
            "restore users_tenant_fkey",
            "validate users_tenant_fkey",
        ],
        "{root:#?}"
    );
    let reference = down("citus_reference_tables");
    assert_eq!(
        reference,
        [
            "drop users_country_fkey",
            "undistribute countries",
            "restore users_country_fkey",
            "validate users_country_fkey",
        ]
    );
}

#[test]
fn names_are_quoted_by_the_driver_rules_everywhere() {
    let mut s = Schema::default();
    let weird = QualifiedName::new("Billing Ops", "we\"ird? $colocate$ 'x'");
    let mut t = Table::new(&weird.schema, &weird.name);
    t.columns.push(Column::new("Tenant Id", "uuid", true));
    s.add(tbl("tenants").col("Tenant Id", "uuid").pk(&["Tenant Id"]).0);
    s.add(t);
    let config = DistributionConfig {
        columns: vec!["Tenant Id".into()],
        ..DistributionConfig::default()
    };
    let p = plan(&s, &config);
    let gen = |format| generate(&s, &p, &opts(format), None, id("20240101000000")).unwrap();
    let sql = gen(SetFormat::Sql);
    let body = &sql[2].contents;
    assert!(
        body.contains(
            "PERFORM create_distributed_table('\"Billing Ops\".\"we\"\"ird? $colocate$ ''x''\"', 'Tenant Id', colocate_with => '\"public\".\"tenants\"');"
        ),
        "{body}"
    );
    // The body holds `$colocate$`, so the block takes another tag.
    assert!(body.contains("DO $colocate1$"), "{body}");
    let m = Migration::parse(
        std::path::Path::new("m"),
        &std::path::Path::new("m").join(&sql[2].name),
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(m.up.statements.len(), 2);
    // knex: a JSON string literal, with `?` kept from knex's placeholders.
    let knex = gen(SetFormat::Knex);
    let js = &knex[2].contents;
    assert!(
        js.contains(r#"PERFORM create_distributed_table('\"Billing Ops\".\"we\"\"ird\\? $colocate$ ''x''\"', 'Tenant Id'"#),
        "{js}"
    );
    // toml: the name as a table list entry reads back.
    let toml = gen(SetFormat::Toml);
    let step = DeclarativeStep::parse(&toml[2].contents).unwrap();
    assert_eq!(step.tables(), &[weird]);
}

#[test]
fn knex_refuses_a_backslash_before_a_question_mark() {
    let mut s = Schema::default();
    s.add(tbl("tenants").col("tenant", "uuid").pk(&["tenant"]).0);
    s.add(tbl("a\\?b").col("tenant", "uuid").0);
    let p = plan(&s, &DistributionConfig::default());
    let err = generate(&s, &p, &opts(SetFormat::Knex), None, id("20240101000000")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "20240101000002_citus_distribute_layer_1.cjs: a backslash right before '?' cannot be written for knex, which turns every '?' into a bind parameter"
    );
    assert!(generate(&s, &p, &opts(SetFormat::Sql), None, id("20240101000000")).is_ok());
}

#[test]
fn a_cycle_across_columns_cannot_be_one_toml_step() {
    let mut s = Schema::default();
    s.add(tbl("tenants").col("tenant", "uuid").pk(&["tenant"]).0);
    s.add(
        tbl("a")
            .col("tenant", "uuid")
            .col("id", "int")
            .pk(&["tenant", "id"])
            .fk("a_b", &["tenant", "id"], "b", &["tenant_id", "id"])
            .0,
    );
    s.add(
        tbl("b")
            .col("tenant_id", "uuid")
            .col("id", "int")
            .pk(&["tenant_id", "id"])
            .fk("b_a", &["tenant_id", "id"], "a", &["tenant", "id"])
            .0,
    );
    let p = plan(&s, &DistributionConfig::default());
    let err = generate(&s, &p, &opts(SetFormat::Toml), None, id("20240101000000")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the foreign-key cycle public.a, public.b mixes distribution columns (tenant, tenant_id), which one [distribute] step cannot say"
    );
    assert!(err.hint().is_some());
    let files = generate(&s, &p, &opts(SetFormat::Sql), None, id("20240101000000")).unwrap();
    assert!(
        files[2].contents.contains("DROP CONSTRAINT \"a_b\""),
        "{}",
        files[2].contents
    );
}

#[test]
fn the_last_version_cannot_be_passed() {
    let s = schema();
    let p = plan(&s, &DistributionConfig::default());
    let err = generate(
        &s,
        &p,
        &opts(SetFormat::Toml),
        Some(id("99991231235959")),
        id("20240101000000"),
    )
    .unwrap_err();
    assert!(matches!(err, GenerateError::OutOfVersions(_)));
}

/// A small plan: a root, a lookup table, a two-table cycle, a table the fixes unblock and one
/// they cannot.
fn small() -> Schema {
    let mut s = Schema::default();
    for t in [
        tbl("tenants").col("tenant", "uuid").pk(&["tenant"]),
        tbl("countries").col("code", "text").pk(&["code"]),
        tbl("users")
            .col("tenant", "uuid")
            .col("user_id", "bigint")
            .col("team_id", "bigint")
            .col("country", "text")
            .pk(&["tenant", "user_id"])
            .fk(
                "users_team_fkey",
                &["tenant", "team_id"],
                "teams",
                &["tenant", "team_id"],
            )
            .fk("users_country_fkey", &["country"], "countries", &["code"]),
        tbl("teams")
            .col("tenant", "uuid")
            .col("team_id", "bigint")
            .col("lead_id", "bigint")
            .pk(&["tenant", "team_id"])
            .fk("teams_tenant_fkey", &["tenant"], "tenants", &["tenant"])
            .fk(
                "teams_lead_fkey",
                &["tenant", "lead_id"],
                "users",
                &["tenant", "user_id"],
            ),
        tbl("tokens")
            .col("tenant", "uuid")
            .col("token", "uuid")
            .surrogate("token")
            .pk(&["token"]),
        tbl("audit")
            .col("tenant", "uuid")
            .col("at", "timestamptz")
            .trigger("audit_stamp"),
    ] {
        s.add(t.0);
    }
    s
}

fn snapshot(format: SetFormat) -> String {
    let s = small();
    let p = plan(&s, &DistributionConfig::default());
    let o = GenerateOptions {
        with_fixes: true,
        shard_count: Some(32),
        ..opts(format)
    };
    generate(&s, &p, &o, Some(id("20240101000000")), id("20230101000000"))
        .unwrap()
        .iter()
        .map(|f| format!("==> {} <==\n{}", f.name, f.contents))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn toml_snapshot() {
    insta::assert_snapshot!(snapshot(SetFormat::Toml));
}

#[test]
fn sql_snapshot() {
    insta::assert_snapshot!(snapshot(SetFormat::Sql));
}

#[test]
fn knex_snapshot() {
    insta::assert_snapshot!(snapshot(SetFormat::Knex));
}

/// Hostile names (newlines, `*/`, `--`, quotes, backslashes, `$$`, control characters) in
/// every format, fixes included: each SQL part splits, the way the server reads it, into
/// statements none of which is the payload; each knex line is a comment, a `knex.raw` call or
/// the file's own frame; each TOML file parses to the tables it names.
#[test]
fn hostile_names_never_leave_their_comment_in_any_format() {
    for (i, evil) in crate::sqltext::tests::HOSTILE.iter().enumerate() {
        let mut s = Schema::default();
        let (child, orphan, lookup) = (
            format!("{evil} child{i}"),
            format!("{evil} orphan{i}"),
            format!("{evil} lookup{i}"),
        );
        for t in [
            tbl("tenants").col("tenant", "uuid").pk(&["tenant"]),
            tbl(&lookup).col("code", "text").pk(&["code"]),
            tbl(&child)
                .col("tenant", "uuid")
                .col("id", "bigint")
                .col("code", "text")
                .pk(&["id"])
                .fk(&format!("{evil} fk"), &["tenant"], "tenants", &["tenant"])
                .fk(&format!("{evil} fk2"), &["code"], &lookup, &["code"]),
            tbl(&orphan)
                .col("id", "bigint")
                .col("child_id", "bigint")
                .fk(&format!("{evil} fk3"), &["child_id"], &child, &["id"]),
            tbl(&format!("{evil} trig{i}"))
                .col("tenant", "uuid")
                .pk(&["tenant"])
                .trigger(&escape_identifier(evil)),
        ] {
            s.add(t.0);
        }
        let p = plan(&s, &DistributionConfig::default());
        for format in [SetFormat::Sql, SetFormat::Knex, SetFormat::Toml] {
            let o = GenerateOptions {
                with_fixes: true,
                ..opts(format)
            };
            let files = generate(&s, &p, &o, None, id("20240101000000")).unwrap();
            let all: String = files.iter().map(|f| f.contents.as_str()).collect();
            assert!(all.contains("child"), "no name reached the files: {all}");
            for f in &files {
                let body = &f.contents;
                if f.name.ends_with(".sql") {
                    let m = Migration::parse(
                        std::path::Path::new("m"),
                        &std::path::Path::new("m").join(&f.name),
                        body.as_bytes(),
                    )
                    .unwrap_or_else(|e| panic!("{e}\n{body}"));
                    let parts = [Some(&m.up), m.down.as_ref()];
                    for st in parts.into_iter().flatten().flat_map(|p| &p.statements) {
                        let sql = st.sql.trim_start().to_ascii_uppercase();
                        assert!(
                            !sql.starts_with("DROP TABLE VICTIM") && !sql.starts_with("$$"),
                            "a name escaped its comment in {}:\n{body}",
                            f.name
                        );
                    }
                } else if f.name.ends_with(".cjs") {
                    for line in body.lines() {
                        let l = line.trim_start();
                        assert!(
                            line.is_empty()
                                || l.starts_with("//")
                                || l.starts_with("await knex.raw(\"")
                                || l.starts_with("exports.")
                                || l == "};",
                            "a name escaped its comment in {}: {line:?}\n{body}",
                            f.name
                        );
                    }
                } else {
                    let step = DeclarativeStep::parse(body)
                        .unwrap_or_else(|e| panic!("{}: {e:?}\n{body}", f.name));
                    for t in step.tables() {
                        assert!(s.tables.contains_key(t), "{t} is not a table of the schema");
                    }
                }
            }
        }
    }
}

/// A primary key rebuilt with a nullable tenant column makes that column NOT NULL: the fixes'
/// down part makes it nullable again once the old key is back; a column NOT NULL before stays.
#[test]
fn the_fixes_down_part_removes_the_not_null_its_key_rebuild_added() {
    let down = |s: &Schema| -> Vec<String> {
        let p = plan(s, &DistributionConfig::default());
        let o = GenerateOptions {
            with_fixes: true,
            ..opts(SetFormat::Sql)
        };
        let files = generate(s, &p, &o, None, id("20240101000000")).unwrap();
        let m = Migration::parse(
            std::path::Path::new("m"),
            std::path::Path::new("m/20240101000000_citus_fixes.sql"),
            files[0].contents.as_bytes(),
        )
        .unwrap();
        m.down
            .unwrap()
            .statements
            .iter()
            .map(|s| s.sql.clone())
            .collect()
    };
    let drop_not_null = "ALTER TABLE \"public\".\"tokens\" ALTER COLUMN \"tenant\" DROP NOT NULL";
    let mut s = schema();
    let tokens = s
        .tables
        .values_mut()
        .find(|t| t.name.name == "tokens")
        .unwrap();
    let tenant = tokens
        .columns
        .iter_mut()
        .find(|c| c.name == "tenant")
        .unwrap();
    tenant.not_null = true;
    assert!(!down(&s).iter().any(|l| l == drop_not_null));
    let tokens = s
        .tables
        .values_mut()
        .find(|t| t.name.name == "tokens")
        .unwrap();
    tokens
        .columns
        .iter_mut()
        .find(|c| c.name == "tenant")
        .unwrap()
        .not_null = false;
    let d = down(&s);
    let nullable = d.iter().position(|l| l == drop_not_null);
    let old_key = d
        .iter()
        .position(|l| l.ends_with("ADD CONSTRAINT \"tokens_pkey\" PRIMARY KEY (\"token\")"))
        .unwrap();
    assert!(
        nullable.is_some_and(|n| n > old_key),
        "after the old key is back: {d:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Generating into a chain: what it covers is not written again

/// The chain as `generate` reads it back from `files` written into `db/`.
fn chain_of<'f>(files: impl IntoIterator<Item = &'f GeneratedFile>) -> Chain {
    let files = files
        .into_iter()
        .filter_map(|f| {
            ChainFile::read(&std::path::Path::new("db").join(&f.name), &f.contents).unwrap()
        })
        .collect();
    Chain {
        files,
        ..Chain::default()
    }
}

fn over(s: &Schema, o: &GenerateOptions, chain: &Chain, newest: &str) -> Generated {
    let p = plan(s, &DistributionConfig::default());
    generate_over(s, &p, o, chain, Some(id(newest)), id("20230101000000")).unwrap()
}

fn newest(files: &[GeneratedFile]) -> &str {
    &files.last().unwrap().name[..14]
}

#[test]
fn a_second_run_over_the_first_set_writes_nothing_in_every_format() {
    for format in [SetFormat::Toml, SetFormat::Sql, SetFormat::Knex] {
        for with_fixes in [false, true] {
            for s in [layout(), small()] {
                let o = GenerateOptions {
                    with_fixes,
                    tables_per_file: Some(2),
                    ..opts(format)
                };
                let first = run(&s, o);
                let chain = chain_of(&first);
                // Every file says what it does, the fixes file included.
                assert_eq!(chain.files.len(), first.len(), "{format:?} {with_fixes}");
                let again = over(&s, &o, &chain, newest(&first));
                assert_eq!(again.files, [], "{format:?} {with_fixes}");
                assert_eq!(again.covering_files, first.len());
                let tables = first
                    .iter()
                    .flat_map(|f| ChainFile::read(std::path::Path::new(&f.name), &f.contents))
                    .flatten()
                    .flat_map(|f| f.covers)
                    .filter(|c| matches!(c, Covered::Table { .. }))
                    .count();
                assert_eq!(again.covered_tables, tables);
                // Without the fixes asked for, the chain made with them covers more than the
                // plan asks: still nothing to write.
                let o = GenerateOptions {
                    with_fixes: false,
                    ..o
                };
                assert_eq!(over(&s, &o, &chain, newest(&first)).files, []);
            }
        }
    }
}

/// [`layout`] with a table added since the first run: a lookup table and a tenant table that
/// references it and users.
fn grown() -> Schema {
    let mut s = layout();
    s.add(tbl("labels").col("code", "text").pk(&["code"]).0);
    s.add(
        tbl("notes")
            .col("tenant", "uuid")
            .col("id", "bigint")
            .col("user_id", "bigint")
            .col("label", "text")
            .pk(&["tenant", "id"])
            .fk(
                "notes_user_fkey",
                &["tenant", "user_id"],
                "users",
                &["tenant", "user_id"],
            )
            .fk("notes_label_fkey", &["label"], "labels", &["code"])
            .0,
    );
    s
}

#[test]
fn a_table_added_since_gets_only_its_own_files_after_the_chain() {
    for format in [SetFormat::Toml, SetFormat::Sql, SetFormat::Knex] {
        let first = run(&layout(), opts(format));
        let chain = chain_of(&first);
        let g = over(&grown(), &opts(format), &chain, newest(&first));
        let ext = match format {
            SetFormat::Toml => "toml",
            SetFormat::Sql => "sql",
            SetFormat::Knex => "cjs",
        };
        // The new lookup table, then the new tenant table in the layer it has in the whole
        // plan (users' is 1): one second after the chain's newest file.
        let after = id(newest(&first)).next_second();
        assert_eq!(
            names(&g.files),
            [
                format!("{after}_citus_reference_tables.{ext}"),
                format!("{}_citus_distribute_layer_2.{ext}", after.next_second()),
            ],
            "{format:?}"
        );
        assert_eq!(g.covering_files, first.len());
        assert_eq!(g.covered_tables, 6);
        let read: Vec<Vec<Covered>> = chain_of(&g.files)
            .files
            .into_iter()
            .map(|f| f.covers)
            .collect();
        assert_eq!(
            read,
            [
                vec![Covered::Table {
                    table: q("labels"),
                    conversion: Conversion::Reference
                }],
                vec![Covered::Table {
                    table: q("notes"),
                    conversion: Conversion::Distributed {
                        column: "tenant".into(),
                        with: q("tenants")
                    }
                }],
            ],
            "{format:?}"
        );
        let all: String = g.files.iter().map(|f| f.contents.as_str()).collect();
        assert!(!all.contains("create_distributed_table('\"public\".\"users\"'"));
        if format == SetFormat::Sql {
            // Distributed colocated with the root, which the chain converts.
            assert!(
                all.contains("colocate_with => '\"public\".\"tenants\"'"),
                "{all}"
            );
        }
        // And over both runs' files, nothing more.
        let both = chain_of(first.iter().chain(&g.files));
        assert_eq!(
            over(&grown(), &opts(format), &both, newest(&g.files)).files,
            []
        );
    }
}

#[test]
fn the_chain_s_tables_count_as_earlier_files_in_what_a_new_file_writes() {
    let first = run(&layout(), opts(SetFormat::Sql));
    let g = over(
        &grown(),
        &opts(SetFormat::Sql),
        &chain_of(&first),
        newest(&first),
    );
    let notes = &g.files[1].contents;
    // Its key to users (converted by the chain) comes back from the journal in the up part if
    // an earlier rollback of this file journaled it, and waits there in the down part.
    let m = Migration::parse(
        std::path::Path::new("m"),
        &std::path::Path::new("m").join(&g.files[1].name),
        notes.as_bytes(),
    )
    .unwrap();
    let up: Vec<&str> = m.up.statements.iter().map(|s| s.sql.as_str()).collect();
    assert!(
        up.iter()
            .any(|s| s.contains("notes_user_fkey") && s.contains("ADD CONSTRAINT")),
        "{notes}"
    );
    // The cleanup names the chain's tables too.
    assert!(
        up.last().unwrap().contains("'\"public\".\"users\"'"),
        "{notes}"
    );
}

#[test]
fn a_table_the_chain_converts_differently_is_refused_naming_the_file() {
    let s = layout();
    let p = plan(&s, &DistributionConfig::default());
    let step = |name: &str, text: &str| {
        ChainFile::read(std::path::Path::new(name), text)
            .unwrap()
            .unwrap()
    };
    let chain = Chain {
        unmarked: Vec::new(),
        files: vec![
            step("db/20240101000000_ext.toml", "[citus]\nextension = true\n"),
            step(
                "db/20240101000001_users.toml",
                "[distribute]\ncolumn = \"user_id\"\ncolocate_with = \"tenants\"\ntables = [\"users\"]\n",
            ),
            step(
                "db/20240101000002_ref.toml",
                "[reference]\ntables = [\"teams\", \"feature_flags\", \"gone\"]\n",
            ),
            step(
                "db/20240101000003_mail.toml",
                "[distribute]\ncolumn = \"tenant_id\"\ncolocate_with = \"users\"\ntables = [\"email_messages\"]\n",
            ),
        ],
    };
    let err = generate_over(
        &s,
        &p,
        &opts(SetFormat::Sql),
        &chain,
        None,
        id("20240101000000"),
    )
    .unwrap_err();
    let GenerateError::Conflicts(conflicts) = &err else {
        panic!("{err:?}");
    };
    let tables: Vec<&str> = conflicts.iter().map(|c| c.table.name.as_str()).collect();
    // A table the plan does not know (`gone`) is not compared.
    assert_eq!(
        tables,
        ["users", "teams", "feature_flags", "email_messages"]
    );
    assert_eq!(
        conflicts[0].to_string(),
        "db/20240101000001_users.toml distributes it by user_id, colocated with public.tenants, where the plan distributes it by tenant, colocated with public.tenants"
    );
    assert_eq!(
        conflicts[2].to_string(),
        "db/20240101000002_ref.toml makes it a reference table, where the plan keeps it local"
    );
    assert_eq!(
        conflicts[3].to_string(),
        "db/20240101000003_mail.toml distributes it by tenant_id, colocated with public.users, where the plan distributes it by tenant_id, colocated with public.tenants"
    );
    assert!(
        err.to_string()
            .starts_with("the chain converts 4 tables differently from the plan: public.users: db/20240101000001_users.toml distributes it by user_id"),
        "{err}"
    );
    assert!(err.hint().is_some());
    let one = Chain {
        unmarked: Vec::new(),
        files: chain.files[1..2].to_vec(),
    };
    let err = generate_over(
        &s,
        &p,
        &opts(SetFormat::Toml),
        &one,
        None,
        id("20240101000000"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the chain converts public.users differently from the plan: db/20240101000001_users.toml distributes it by user_id, colocated with public.tenants, where the plan distributes it by tenant, colocated with public.tenants"
    );
    // A root distributed in a group of its own in the chain, colocated in the plan.
    let root = Chain {
        unmarked: Vec::new(),
        files: vec![step(
            "db/20240101000000_r.toml",
            "[distribute]\ncolumn = \"tenant\"\ntables = [\"users\"]\n",
        )],
    };
    let err = generate_over(
        &s,
        &p,
        &opts(SetFormat::Toml),
        &root,
        None,
        id("20240101000000"),
    )
    .unwrap_err();
    assert!(
        err.to_string().ends_with("db/20240101000000_r.toml distributes it by tenant as the root of its colocation group, where the plan distributes it by tenant, colocated with public.tenants"),
        "{err}"
    );
}

#[test]
fn a_chain_of_steps_written_by_hand_covers_what_it_says() {
    // Declarative steps as a person would write them: the root and two tables in one file, no
    // extension step (the chain converts tables, so the extension comes from elsewhere).
    let s = layout();
    let chain = Chain {
        unmarked: Vec::new(),
        files: vec![ChainFile::read(
            std::path::Path::new("db/20240101000000_citus.toml"),
            "[distribute]\ncolumn = \"tenant\"\ncolocate_with = \"tenants\"\ntables = [\"tenants\", \"users\", \"teams\"]\n",
        )
        .unwrap()
        .unwrap()],
    };
    let g = over(&s, &opts(SetFormat::Toml), &chain, "20240101000000");
    assert_eq!(g.covered_tables, 3);
    let tables = toml_tables(&g.files);
    assert_eq!(
        tables,
        [
            vec!["countries".to_string()],
            vec!["email_messages".into()],
            vec!["invoices".into()],
        ]
    );
    assert!(!names(&g.files).iter().any(|n| n.contains("extension")));
    assert!(!names(&g.files).iter().any(|n| n.contains("root")));
}

#[test]
fn fixes_are_written_once() {
    let s = schema();
    let fixes = GenerateOptions {
        with_fixes: true,
        ..opts(SetFormat::Sql)
    };
    // A first run without the fixes converts the lookup table only; with them, a second run
    // writes the fixes and the tables they unblock.
    let first = run(&s, opts(SetFormat::Sql));
    let second = over(&s, &fixes, &chain_of(&first), newest(&first));
    assert!(second.files[0].name.ends_with("_citus_fixes.sql"));
    assert!(!names(&second.files).iter().any(|n| n.contains("extension")));
    let chain = chain_of(first.iter().chain(&second.files));
    assert_eq!(over(&s, &fixes, &chain, newest(&second.files)).files, []);

    // The fixes file alone in the chain (the rest removed, say): the rest is written, the
    // fixes are not.
    let whole = run(&s, fixes);
    let only_fixes = chain_of(&whole[..1]);
    let g = over(&s, &fixes, &only_fixes, newest(&whole));
    assert!(
        !names(&g.files).iter().any(|n| n.contains("fixes")),
        "{:?}",
        names(&g.files)
    );
    assert!(names(&g.files)[0].ends_with("_citus_extension.sql"));

    // A new fix since (tokens' key widened, and token_uses' key now needs it too): only the new
    // fix is written, and its down part puts back only what it changed.
    let mut grown = s.clone();
    grown.add(
        tbl("token_notes")
            .col("tenant", "uuid")
            .col("id", "uuid")
            .surrogate("id")
            .pk(&["id"])
            .fk(
                "token_notes_tenant_fkey",
                &["tenant"],
                "tenants",
                &["tenant"],
            )
            .0,
    );
    let g = over(&grown, &fixes, &chain_of(&whole), newest(&whole));
    let file = &g.files[0];
    assert!(
        file.name.ends_with("_citus_fixes.sql"),
        "{:?}",
        names(&g.files)
    );
    assert!(
        file.contents.contains("token_notes_pkey"),
        "{}",
        file.contents
    );
    assert!(
        !file.contents.contains("\"tokens_pkey\""),
        "{}",
        file.contents
    );
    let read = chain_of([file]);
    assert_eq!(read.files[0].covers.len(), 1, "{}", file.contents);
}
