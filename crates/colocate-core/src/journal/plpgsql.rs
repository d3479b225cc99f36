//! The journal protocol as the PL/pgSQL blocks generated migration files carry: a down part
//! that turns one of a key's tables plain drops the key into the journal ([`drop_key`]), and
//! the up part (or another file's down part) restores ([`restore_key`]) and validates
//! ([`validate_key`]) it once Citus accepts it between its tables. Each block is idempotent and
//! does nothing where its step is done already.
//!
//! What `undistribute_table` loses or refuses goes through the journal too, as in
//! colocate-pg's `undistribute`: [`record_lost`] journals it (with the queries of
//! [`crate::undistribute`]) before the table is undistributed, [`restore_lost`] puts it back
//! once the table is local.

use postgres_protocol::escape::{escape_identifier, escape_literal};

use super::{
    constraint_comment, ddl, drop_key_sql, extension_created, extension_undone, has_open,
    insert_extension, insert_identity, insert_key, insert_property, lock_key_tables_sql, mark_row,
    open_rows, KeyLock, Kind, State, COMMENT, DEFAULT_TABLE, NOT_VALID,
};
use crate::plpgsql::{do_block, dollar_quoted, in_citus, regclass, CITUS_INSTALLED};
use crate::schema::{ForeignKey, QualifiedName};
use crate::undistribute::{IDENTITY_OPTIONS_SQL, LOST_SQL, NOT_VALID_CHECKS_SQL};

/// The journal's name in the generated SQL.
fn journal() -> String {
    escape_identifier(DEFAULT_TABLE)
}

/// The journal's DDL as PL/pgSQL lines (indented, comments left out).
fn journal_ddl(indent: &str) -> String {
    ddl(&journal(), &escape_literal(COMMENT))
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .map(|l| format!("{indent}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// PL/pgSQL lines (indented by `indent`) that record that the migration created extension
/// `name`, creating the journal first if needed: its down part drops it, and only then.
pub fn record_extension(name: &str, indent: &str) -> String {
    format!(
        "{indent}PERFORM set_config('client_min_messages', 'warning', true);\n{}\n{indent}{};",
        journal_ddl(indent),
        insert_extension(&journal(), &escape_literal(name))
    )
}

/// PL/pgSQL lines (indented by `indent`) that set the boolean `var` to whether a migration not
/// yet undone created extension `name` (false without a journal: the query is only planned
/// where the journal exists).
pub fn extension_created_into(name: &str, var: &str, indent: &str) -> String {
    format!(
        "{indent}IF to_regclass({}) IS NOT NULL THEN\n{indent}  SELECT {} INTO {var};\n{indent}END IF;",
        escape_literal(&journal()),
        extension_created(&journal(), &escape_literal(name))
    )
}

/// The statement that closes the journal's record of extension `name` once dropped again.
pub fn extension_dropped(name: &str) -> String {
    extension_undone(&journal(), &escape_literal(name))
}

/// Step 1, in the down part that undistributes `undistributed` (one of the key's tables), while
/// it is still in Citus (`undistribute_table` without its cascade refuses a table with any
/// foreign key to or from it): record the key's current definition in the journal and drop
/// it, creating the journal first if needed.
pub fn drop_key(t: &QualifiedName, fk: &ForeignKey, undistributed: &QualifiedName) -> String {
    let j = journal();
    let ddl = journal_ddl("  ");
    let (tl, nl) = (escape_literal(&t.sql()), escape_literal(&fk.name));
    let insert = insert_key(
        &j,
        [
            &tl,
            &nl,
            "def",
            &escape_literal(&fk.ref_table.sql()),
            &constraint_comment(&tl, &nl),
        ],
        "\n    ",
    );
    do_block(&format!(
        "DECLARE\n  def text;\nBEGIN\n  IF NOT {CITUS_INSTALLED} THEN\n    RETURN;\n  END IF;\n  IF NOT {} THEN\n    RETURN;\n  END IF;\n  SELECT pg_get_constraintdef(oid) INTO def FROM pg_constraint WHERE conrelid = {} AND conname = {};\n  IF def IS NULL THEN\n    RETURN;\n  END IF;\n  PERFORM set_config('client_min_messages', 'warning', true);\n{ddl}\n  {insert};\n  {}\n  {}\nEND",
        in_citus(undistributed),
        regclass(t),
        escape_literal(&fk.name),
        indented(&lock_key_tables_sql(&t.sql(), &fk.ref_table.sql(), KeyLock::Drop), "  "),
        drop_key_sql(t, &fk.name),
    ))
}

/// Step 2: add back (`NOT VALID`) a key the journal holds as dropped, with the definition
/// recorded there, when it is missing and Citus accepts it between its tables as they are now
/// (both plain or both in Citus); otherwise it waits in the journal.
pub fn restore_key(t: &QualifiedName, fk: &ForeignKey) -> String {
    let Literals { tl, nl, il } = Literals::of(t, fk);
    let action = format!(
        "    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = {} AND conname = {nl}) THEN\n      IF {CITUS_INSTALLED} THEN\n        IF {} <> {} THEN\n          RETURN;\n        END IF;\n      END IF;\n      {}\n      -- (PostgreSQL 15 adds no NOT VALID key to a partitioned table: that one is checked at once)\n      EXECUTE 'ALTER TABLE ' || {tl} || ' ADD CONSTRAINT ' || {il} || ' '\n        || regexp_replace(r.definition, '{NOT_VALID}$', '')\n        || CASE WHEN (SELECT relkind FROM pg_class WHERE oid = {}) = 'p' THEN '' ELSE '{NOT_VALID}' END;\n      IF r.comment IS NOT NULL THEN\n        EXECUTE 'COMMENT ON CONSTRAINT ' || {il} || ' ON ' || {tl} || ' IS ' || quote_literal(r.comment);\n      END IF;\n    END IF;",
        regclass(t),
        in_citus(t),
        in_citus(&fk.ref_table),
        indented(
            &lock_key_tables_sql(&t.sql(), &fk.ref_table.sql(), KeyLock::Add),
            "      "
        ),
        regclass(t),
    );
    each_row(t, fk, State::Restored, &action)
}

/// Step 3: validate a key [`restore_key`] added back, in its own statement (the check does not
/// hold the lock the `ADD` took), unless it was `NOT VALID` when it was dropped.
pub fn validate_key(t: &QualifiedName, fk: &ForeignKey) -> String {
    let Literals { tl, nl, il } = Literals::of(t, fk);
    let action = format!(
        "    IF r.definition NOT LIKE '%{NOT_VALID}'\n       AND EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = {} AND conname = {nl} AND NOT convalidated) THEN\n      EXECUTE 'ALTER TABLE ' || {tl} || ' VALIDATE CONSTRAINT ' || {il};\n    END IF;",
        regclass(t),
    );
    each_row(t, fk, State::Validated, &action)
}

/// `sql`'s lines after the first indented by `indent` (the first goes where the caller put it).
fn indented(sql: &str, indent: &str) -> String {
    sql.lines().collect::<Vec<_>>().join(&format!("\n{indent}"))
}

/// The variables [`record_lost`] and [`restore_lost`] use, as the lines of a `DECLARE` section.
pub const LOST_VARIABLES: &str =
    "  r record;\n  lost_clause text;\n  lost_next bigint;\n  lost_ddl text;";

/// `query` (one of [`crate::undistribute`]'s) as a dollar-quoted string for `EXECUTE`, its
/// comment lines left out and its lines indented by `indent`.
fn query_text(query: &str, indent: &str) -> String {
    let lines: Vec<String> = query
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .map(|l| format!("{indent}{l}"))
        .collect();
    let close = indent.get(2..).unwrap_or_default();
    dollar_quoted("query", &format!("\n{}\n{close}", lines.join("\n")))
}

/// PL/pgSQL lines (indented by `indent`, using [`LOST_VARIABLES`]) that journal what
/// `undistribute_table` would lose on the Citus table `t`, creating the journal first if needed,
/// as colocate-pg's `undistribute` does, in the same transaction: the statements that put back
/// what it does not carry over ([`LOST_SQL`]; not again if an interrupted run left them there),
/// then the `NOT VALID` checks it would bring back valid dropped ([`NOT_VALID_CHECKS_SQL`]),
/// then each identity column, which it refuses, recorded with its options and next value
/// ([`IDENTITY_OPTIONS_SQL`]) and dropped on the coordinator's table alone (Citus refuses
/// `DROP IDENTITY` on its tables; their shards have no identity of their own).
pub fn record_lost(t: &QualifiedName, indent: &str) -> String {
    let j = journal();
    let tl = escape_literal(&t.sql());
    let i = indent;
    format!(
        "{i}-- what undistribute_table does not carry over, journaled as the statements that put it back\n\
         {i}PERFORM set_config('client_min_messages', 'warning', true);\n\
         {ddl}\n\
         {i}IF NOT {open} THEN\n\
         {i}  FOR r IN EXECUTE {lost} USING {tl} LOOP\n\
         {i}    {insert_property};\n\
         {i}  END LOOP;\n\
         {i}END IF;\n\
         {i}-- the NOT VALID checks it would bring back valid (journaled above, they come back NOT VALID)\n\
         {i}FOR r IN EXECUTE {checks} USING {tl} LOOP\n\
         {i}  EXECUTE r.stmt;\n\
         {i}END LOOP;\n\
         {i}-- identity columns, which it refuses: journaled, and taken off the coordinator's table alone\n\
         {i}FOR r IN SELECT attname::text AS col FROM pg_attribute\n\
         {i}         WHERE attrelid = {rc} AND attnum > 0 AND NOT attisdropped AND attidentity <> ''\n\
         {i}         ORDER BY attnum LOOP\n\
         {i}  EXECUTE {identity} INTO lost_clause, lost_next USING {tl}, r.col;\n\
         {i}  {insert_identity};\n\
         {i}  lost_ddl := current_setting('citus.enable_ddl_propagation');\n\
         {i}  PERFORM set_config('citus.enable_ddl_propagation', 'off', true);\n\
         {i}  EXECUTE 'ALTER TABLE ' || {tl} || ' ALTER COLUMN ' || quote_ident(r.col) || ' DROP IDENTITY';\n\
         {i}  PERFORM set_config('citus.enable_ddl_propagation', lost_ddl, true);\n\
         {i}END LOOP;",
        ddl = journal_ddl(i),
        open = has_open(&j, Kind::Property, &tl),
        lost = query_text(LOST_SQL, &format!("{i}    ")),
        insert_property = insert_property(&j, [&tl, "r.what", "r.stmt"]),
        checks = query_text(NOT_VALID_CHECKS_SQL, &format!("{i}  ")),
        rc = regclass(t),
        identity = query_text(IDENTITY_OPTIONS_SQL, &format!("{i}    ")),
        insert_identity = insert_identity(&j, [&tl, "r.col", "lost_clause", "lost_next"]),
    )
}

/// PL/pgSQL lines (indented by `indent`, using [`LOST_VARIABLES`]) that give the local table `t`
/// back what [`record_lost`] (or an interrupted `colocate undistribute`) journaled, as
/// colocate-pg's `undistribute` does: each identity column re-added with its options and
/// restarted past both its recorded next value and the rows, then the journaled statements in
/// the order recorded (a `NOT VALID` check before its comment); each row marked done.
pub fn restore_lost(t: &QualifiedName, indent: &str) -> String {
    let j = journal();
    let tl = escape_literal(&t.sql());
    let i = indent;
    let column = "quote_ident(r.constraint_name)";
    format!(
        "{i}-- what undistribute_table lost, back from the journal\n\
         {i}IF to_regclass({jl}) IS NOT NULL THEN\n\
         {i}  FOR r IN {identities} LOOP\n\
         {i}    EXECUTE 'SELECT greatest($1::bigint, coalesce(max(' || {column} || ')::bigint + 1, 1)) FROM ' || {tl}\n\
         {i}      INTO lost_next USING r.restart;\n\
         {i}    EXECUTE 'ALTER TABLE ' || {tl} || ' ALTER COLUMN ' || {column} || ' ADD ' || r.definition;\n\
         {i}    EXECUTE 'ALTER TABLE ' || {tl} || ' ALTER COLUMN ' || {column} || ' RESTART WITH ' || lost_next;\n\
         {i}    {done};\n\
         {i}  END LOOP;\n\
         {i}  FOR r IN {properties} LOOP\n\
         {i}    EXECUTE r.definition;\n\
         {i}    {done};\n\
         {i}  END LOOP;\n\
         {i}END IF;",
        jl = escape_literal(&j),
        identities = open_rows(
            &j,
            Kind::Identity,
            "id, constraint_name, definition, restart",
            Some(&tl)
        ),
        properties = open_rows(&j, Kind::Property, "id, definition", Some(&tl)),
        done = mark_row(&j, State::Validated, "r.id"),
    )
}

/// For each journal row of the key `fk` on `t` in the state before `to`, oldest first: run
/// `action` (PL/pgSQL lines, with the row as `r`), then move the row to `to`.
fn each_row(t: &QualifiedName, fk: &ForeignKey, to: State, action: &str) -> String {
    let j = journal();
    let before = to.before().map(State::literal).unwrap_or_default();
    let Literals { tl, nl, .. } = Literals::of(t, fk);
    do_block(&format!(
        "DECLARE\n  r record;\nBEGIN\n  IF to_regclass({}) IS NULL THEN\n    RETURN;\n  END IF;\n  -- (the comment read through to_jsonb: a journal older than its column has none)\n  FOR r IN SELECT id, definition, to_jsonb(jr) ->> 'comment' AS comment FROM {j} AS jr\n           WHERE kind = {} AND table_sql = {tl} AND constraint_name = {nl} AND state = {before}\n           ORDER BY id LOOP\n{action}\n    {};\n  END LOOP;\nEND",
        escape_literal(&j),
        Kind::ForeignKey.literal(),
        mark_row(&j, to, "r.id"),
    ))
}

/// A key's names as the journal's rows and dynamic SQL hold them: the quoted table as a
/// literal (`tl`), the key's name as a literal (`nl`), and its quoted name as a literal (`il`).
struct Literals {
    tl: String,
    nl: String,
    il: String,
}

impl Literals {
    fn of(t: &QualifiedName, fk: &ForeignKey) -> Literals {
        Literals {
            tl: escape_literal(&t.sql()),
            nl: escape_literal(&fk.name),
            il: escape_literal(&escape_identifier(&fk.name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fk() -> (QualifiedName, ForeignKey) {
        (
            QualifiedName::parse("a", "public"),
            crate::step::tests::fk("a b"),
        )
    }

    #[test]
    fn the_blocks_mention_every_state_through_the_enum() {
        let (t, k) = fk();
        let all = [
            drop_key(&t, &k, &t),
            restore_key(&t, &k),
            validate_key(&t, &k),
            record_lost(&t, "  "),
            restore_lost(&t, "  "),
        ]
        .join("\n")
        .replace(&escape_literal(COMMENT), "");
        for s in State::ALL {
            assert!(all.contains(&s.literal()), "{s} missing from\n{all}");
        }
        // No state is written any other way: every quoted state word is one of the literals.
        for word in ["dropped", "restored", "validated"] {
            let quoted = all.matches(&format!("'{word}'")).count();
            // The word alone (`convalidated` is a catalog column, not a state).
            let any = all
                .match_indices(word)
                .filter(|(i, _)| !all[..*i].ends_with(|c: char| c.is_alphanumeric()))
                .count();
            assert_eq!(quoted, any, "{word} appears unquoted in\n{all}");
        }
    }

    #[test]
    fn each_block_moves_rows_one_state_forward() {
        let (t, k) = fk();
        let drop = drop_key(&t, &k, &k.ref_table);
        // Only while the table being undistributed is in Citus: a table already plain is done.
        assert!(
            drop.contains(
                "IF NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = '\"public\".\"b\"'::regclass) THEN\n    RETURN;"
            ),
            "{drop}"
        );
        assert!(
            drop.contains(
                "VALUES ('\"public\".\"a\"', 'a b', def, 'dropped', '\"public\".\"b\"', (SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint WHERE conrelid = to_regclass('\"public\".\"a\"'::text) AND conname::text = 'a b'));"
            ),
            "{drop}"
        );
        assert!(
            drop.contains("ALTER TABLE \"public\".\"a\" DROP CONSTRAINT \"a b\";\nEND"),
            "{drop}"
        );
        let restore = restore_key(&t, &k);
        assert!(restore.contains("AND state = 'dropped'\n"), "{restore}");
        // The key's comment comes back with it, and a partitioned table's key is added checked.
        assert!(
            restore.contains("EXECUTE 'COMMENT ON CONSTRAINT ' || '\"a b\"' || ' ON ' || '\"public\".\"a\"' || ' IS ' || quote_literal(r.comment);"),
            "{restore}"
        );
        assert!(
            restore.contains("= 'p' THEN '' ELSE ' NOT VALID' END;"),
            "{restore}"
        );
        assert!(
            restore.contains("SET state = 'restored', updated_at = now() WHERE id = r.id;"),
            "{restore}"
        );
        let validate = validate_key(&t, &k);
        assert!(validate.contains("AND state = 'restored'\n"), "{validate}");
        assert!(
            validate.contains("SET state = 'validated', updated_at = now() WHERE id = r.id;"),
            "{validate}"
        );
    }

    #[test]
    fn what_undistribute_table_loses_is_journaled_with_the_shared_queries() {
        let t = QualifiedName::new("Sales Ops", "it's \"x\" $query$");
        let tl = escape_literal(&t.sql());
        let record = record_lost(&t, "    ");
        // The very queries colocate-pg runs, their parameters bound (the table a literal).
        for q in [LOST_SQL, NOT_VALID_CHECKS_SQL, IDENTITY_OPTIONS_SQL] {
            for line in q.lines().filter(|l| !l.trim_start().starts_with("--")) {
                assert!(record.contains(line), "{line}\nmissing from\n{record}");
            }
        }
        assert!(
            record.contains(&format!("$query$ USING {tl} LOOP")),
            "{record}"
        );
        assert!(
            record.contains(&format!(
                "$query$ INTO lost_clause, lost_next USING {tl}, r.col;"
            )),
            "{record}"
        );
        assert!(
            record.contains(&format!(
                "VALUES ('property', {tl}, r.what, r.stmt, 'dropped');"
            )),
            "{record}"
        );
        assert!(
            record.contains(&format!(
                "VALUES ('identity', {tl}, r.col, lost_clause, lost_next, 'dropped');"
            )),
            "{record}"
        );
        // Not journaled twice: an interrupted run's rows are kept.
        assert!(
            record.contains(&format!(
                "IF NOT EXISTS (SELECT 1 FROM \"colocate_journal\" WHERE kind = 'property' AND table_sql = {tl} AND state = 'dropped') THEN"
            )),
            "{record}"
        );
        // Identity dropped on the coordinator's table alone, propagation put back as it was.
        let off = record
            .find("PERFORM set_config('citus.enable_ddl_propagation', 'off', true);")
            .unwrap();
        let drop = record.find("' DROP IDENTITY';").unwrap();
        let back = record
            .find("PERFORM set_config('citus.enable_ddl_propagation', lost_ddl, true);")
            .unwrap();
        assert!(off < drop && drop < back, "{record}");
        let restore = restore_lost(&t, "  ");
        // Identities first, then the statements in the order recorded; each row marked done.
        let identities = restore.find("kind = 'identity'").unwrap();
        let properties = restore.find("kind = 'property'").unwrap();
        assert!(identities < properties, "{restore}");
        assert!(restore.contains(&format!(
            "table_sql = {tl} AND state = 'dropped' ORDER BY id"
        )));
        assert_eq!(
            restore
                .matches("SET state = 'validated', updated_at = now() WHERE id = r.id;")
                .count(),
            2,
            "{restore}"
        );
        // The name reaches the text only as that literal (or its regclass): a `$query$` in it
        // neither closes the query's quote nor opens another.
        for text in [&record, &restore] {
            let rest = text.replace(&tl, "");
            assert!(!rest.contains("it''s"), "{rest}");
        }
        assert_eq!(
            record.replace(&tl, "").matches("$query$").count(),
            2 * 3,
            "{record}"
        );
    }
}
