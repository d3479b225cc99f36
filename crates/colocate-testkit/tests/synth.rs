//! The generated 500-table schema loads into a real PostgreSQL, chunk by chunk, one transaction
//! each, and the server's catalogs hold exactly what the generator says it wrote.

use std::collections::BTreeSet;

use colocate_testkit::synth;
use colocate_testkit::TestDb;

fn count(c: &mut postgres::Client, sql: &str) -> usize {
    let n: i64 = c.query_one(sql, &[]).expect(sql).get(0);
    usize::try_from(n).expect("a count")
}

/// Tables of `public` that have a tenant column.
const HAS_TENANT: &str = "EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = {rel} \
     AND a.attname IN ('tenant', 'tenant_id') AND NOT a.attisdropped)";

fn has_tenant(rel: &str) -> String {
    HAS_TENANT.replace("{rel}", rel)
}

#[test]
fn synth_500_loads_and_matches_its_facts() {
    let s = synth::schema(500, 1);
    let f = &s.facts;
    let db = TestDb::new();
    let mut c = db.connect();
    for (i, chunk) in s.sql.iter().enumerate() {
        let mut tx = c.transaction().expect("begin");
        tx.batch_execute(chunk)
            .unwrap_or_else(|e| panic!("chunk {i} of synth::schema(500, 1): {e}"));
        tx.commit().expect("commit");
    }

    let names: BTreeSet<String> = c
        .query(
            "SELECT relname::text FROM pg_class \
             WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'",
            &[],
        )
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut listed: BTreeSet<String> = BTreeSet::from([f.root.clone()]);
    for list in [
        &f.tenant_tables,
        &f.lookup_tables,
        &f.catalog_tables,
        &f.local_tables,
        &f.control_plane_tables,
    ] {
        listed.extend(list.iter().cloned());
    }
    listed.extend(f.tenantless_children.iter().map(|ch| ch.table.clone()));
    assert_eq!(names.len(), f.tables);
    assert_eq!(names, listed, "the tables are the ones the facts list");

    let in_public = "connamespace = 'public'::regnamespace";
    let checks: Vec<(&str, String, usize)> = vec![
        (
            "primary keys",
            format!("SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND {in_public}"),
            f.primary_keys,
        ),
        (
            "foreign keys",
            format!("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND {in_public}"),
            f.foreign_keys,
        ),
        (
            "unique constraints",
            format!("SELECT count(*) FROM pg_constraint WHERE contype = 'u' AND {in_public}"),
            f.unique_constraints,
        ),
        (
            "unique indexes backing no constraint",
            "SELECT count(*) FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid \
             WHERE x.relnamespace = 'public'::regnamespace AND i.indisunique \
             AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
                .to_string(),
            f.unique_indexes,
        ),
        (
            "ON DELETE SET NULL keys",
            format!(
                "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND confdeltype = 'n' \
                 AND {in_public}"
            ),
            f.refused_key_action.len(),
        ),
        (
            "SET NULL with a column list",
            format!(
                "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND confdeltype = 'n' \
                 AND confdelsetcols IS NOT NULL AND {in_public}"
            ),
            f.refused_key_action_column_list,
        ),
        (
            "triggers",
            "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal".to_string(),
            f.triggers.len(),
        ),
        (
            "views",
            "SELECT count(*) FROM pg_class \
             WHERE relnamespace = 'public'::regnamespace AND relkind = 'v'"
                .to_string(),
            f.views,
        ),
        (
            "varchar tenant columns",
            "SELECT count(*) FROM pg_attribute a JOIN pg_class x ON x.oid = a.attrelid \
             WHERE x.relnamespace = 'public'::regnamespace AND x.relkind = 'r' \
             AND a.attname IN ('tenant', 'tenant_id') AND a.atttypid = 'varchar'::regtype"
                .to_string(),
            f.varchar_tenant.len(),
        ),
        (
            "tables keyed by tenant_id",
            "SELECT count(*) FROM pg_attribute a JOIN pg_class x ON x.oid = a.attrelid \
             WHERE x.relnamespace = 'public'::regnamespace AND x.relkind = 'r' \
             AND a.attname = 'tenant_id'"
                .to_string(),
            f.tenant_id_tables.len(),
        ),
        (
            "primary keys lacking the tenant on tenant tables",
            format!(
                "SELECT count(*) FROM pg_constraint k WHERE contype = 'p' AND {in_public} \
                 AND {} AND NOT EXISTS (SELECT 1 FROM pg_attribute a \
                 WHERE a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey) \
                 AND a.attname IN ('tenant', 'tenant_id'))",
                has_tenant("k.conrelid")
            ),
            f.key_lacking_tenant_surrogate.len(),
        ),
        (
            "one-column keys between tenant tables (into a surrogate key)",
            format!(
                "SELECT count(*) FROM pg_constraint k WHERE contype = 'f' AND {in_public} \
                 AND cardinality(k.conkey) = 1 AND k.confrelid <> 'tenants'::regclass \
                 AND {} AND {}",
                has_tenant("k.conrelid"),
                has_tenant("k.confrelid")
            ),
            f.fk_lacking_tenant.len(),
        ),
        (
            "tenant-less tables with a key into a tenant table",
            format!(
                "SELECT count(DISTINCT k.conrelid) FROM pg_constraint k \
                 WHERE contype = 'f' AND {in_public} AND NOT {} AND {}",
                has_tenant("k.conrelid"),
                has_tenant("k.confrelid")
            ),
            f.tenantless_children
                .iter()
                .filter(|ch| ch.depth == 1)
                .count(),
        ),
    ];
    let mut wrong = Vec::new();
    for (what, sql, want) in checks {
        let got = count(&mut c, &sql);
        if got != want {
            wrong.push(format!(
                "{what}: the database has {got}, the facts say {want}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
