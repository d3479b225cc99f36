//! The journal table in which colocate records what it dropped on purpose (foreign keys around
//! conversions, identity columns around `undistribute`) until it is restored. `apply`,
//! `undistribute` and the migration sets `generate` writes share it, so a key one of them
//! dropped is restored by whichever finds both its tables ready.
//!
//! # The protocol, for a foreign key
//! 1. **drop**: record the key (its table, name, exact definition and the table it references)
//!    as [`State::Dropped`], and drop it, in one transaction: a crash leaves either both or
//!    neither.
//! 2. **restore**: once Citus accepts the key between its two tables as they are, add it back
//!    `NOT VALID` (no long lock) unless it is there already, and move its row to
//!    [`State::Restored`], in one transaction.
//! 3. **validate**: check its rows with `VALIDATE CONSTRAINT` (in a statement of its own, which
//!    does not hold the `ADD`'s lock), unless it was `NOT VALID` when it was dropped, and move
//!    the row to [`State::Validated`]: done.
//!
//! Whoever finds a row short of [`State::Validated`] finishes it from where it is. An identity
//! column ([`Kind::Identity`]) goes from dropped straight to validated when it is re-added.
//!
//! The protocol is rendered twice from here: as the statements `colocate-pg` executes
//! ([`Statements`], with bound parameters) and as the PL/pgSQL blocks of generated migration
//! files ([`plpgsql`]). The key's own statements ([`drop_key_sql`], [`restore_key_sql`],
//! [`validate_key_sql`]) are also what a plan's steps show.

pub mod plpgsql;

use std::fmt;
use std::str::FromStr;

use postgres_protocol::escape::{escape_identifier, escape_literal};

use crate::schema::{ForeignKey, QualifiedName};

/// The journal's default name (unqualified: the search path decides its schema).
pub const DEFAULT_TABLE: &str = "colocate_journal";

/// The journal table's comment.
pub const COMMENT: &str =
    "foreign keys colocate dropped to convert tables to Citus, until restored";

/// Where a journal row is in the protocol. The string form ([`State::as_str`]) is what the
/// `state` column holds: stable, shared by every version of colocate and every generated file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// Recorded and dropped; not yet back.
    Dropped,
    /// Added back `NOT VALID`; its rows not yet checked.
    Restored,
    /// Back and checked: the row is finished.
    Validated,
}

impl State {
    /// Every state, in protocol order.
    pub const ALL: [State; 3] = [State::Dropped, State::Restored, State::Validated];

    pub const fn as_str(self) -> &'static str {
        match self {
            State::Dropped => "dropped",
            State::Restored => "restored",
            State::Validated => "validated",
        }
    }

    /// The state as a SQL string literal (`'dropped'`).
    pub fn literal(self) -> String {
        format!("'{}'", self.as_str())
    }

    /// The state a row must be in to move to this one (`None`: a new row).
    pub const fn before(self) -> Option<State> {
        match self {
            State::Dropped => None,
            State::Restored => Some(State::Dropped),
            State::Validated => Some(State::Restored),
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `state` the journal does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown journal state '{0}'")]
pub struct UnknownState(pub String);

impl FromStr for State {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<State, UnknownState> {
        State::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_string()))
    }
}

/// What a journal row records (its `kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A foreign key: `constraint_name`, `definition`, `ref_table_sql`.
    ForeignKey,
    /// An identity column: `constraint_name` is the column, `definition` the `ADD GENERATED`
    /// clause, `restart` the next value.
    Identity,
    /// Something `undistribute_table` does not carry over to the table it builds (a comment, a
    /// `NOT VALID` check, column options, a rule, a view's grants): `constraint_name` says
    /// what, `definition` is the statement that puts it back once the table is local.
    Property,
    /// An extension a migration's up part created (`constraint_name` is its name; the
    /// `table_sql` is empty): its down part drops it, and only then. One that existed before
    /// has no row, and stays.
    Extension,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::ForeignKey,
        Kind::Identity,
        Kind::Property,
        Kind::Extension,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::ForeignKey => "foreign_key",
            Kind::Identity => "identity",
            Kind::Property => "property",
            Kind::Extension => "extension",
        }
    }

    /// The kind as a SQL string literal (`'foreign_key'`).
    pub fn literal(self) -> String {
        format!("'{}'", self.as_str())
    }
}

/// `CREATE TABLE IF NOT EXISTS` for the journal and the columns later versions added, as
/// several statements; `table` is the quoted name, `comment` a quoted literal.
pub fn ddl(table: &str, comment: &str) -> String {
    let states: Vec<String> = State::ALL.iter().map(|s| s.literal()).collect();
    include_str!("sql/create_journal.sql")
        .replace("{states}", &states.join(", "))
        .replace("{foreign_key}", &Kind::ForeignKey.literal())
        .replace("{table}", table)
        .replace("{comment}", comment)
}

/// What a definition ends with when the key was `NOT VALID` (then it is not validated when it
/// comes back).
const NOT_VALID: &str = " NOT VALID";

/// Whether a key recorded with `definition` was valid when it was dropped, so is validated
/// when restored.
pub fn was_valid(definition: &str) -> bool {
    !definition.ends_with(NOT_VALID)
}

/// The lock a key statement takes on both of its tables: dropping a key takes `ACCESS
/// EXCLUSIVE` on both, adding one `SHARE ROW EXCLUSIVE` (validating one conflicts with no write,
/// so needs none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLock {
    Drop,
    Add,
}

impl KeyLock {
    const fn mode(self) -> &'static str {
        match self {
            KeyLock::Drop => "ACCESS EXCLUSIVE",
            KeyLock::Add => "SHARE ROW EXCLUSIVE",
        }
    }
}

/// Before a key statement, in its transaction: lock the referenced table, then the referencing
/// one. An application writes a parent row before its child rows, so it holds the referenced
/// table first; `ALTER TABLE child ...` alone would lock the child first and the parent second,
/// and deadlock with it. Taken in the application's order, the statement only waits.
pub fn lock_key_tables_sql(table_sql: &str, ref_table_sql: &str, lock: KeyLock) -> String {
    let mode = lock.mode();
    if table_sql == ref_table_sql {
        return format!("LOCK TABLE {table_sql} IN {mode} MODE;");
    }
    format!("LOCK TABLE {ref_table_sql} IN {mode} MODE;\nLOCK TABLE {table_sql} IN {mode} MODE;")
}

/// Step 1, the key: `ALTER TABLE t DROP CONSTRAINT k;`
pub fn drop_key_sql(table: &QualifiedName, key: &str) -> String {
    format!(
        "ALTER TABLE {} DROP CONSTRAINT {};",
        table.sql(),
        escape_identifier(key)
    )
}

/// Step 2, the key: `ALTER TABLE t ADD CONSTRAINT k <definition> NOT VALID;`, added back
/// without the long lock of checking its rows.
pub fn restore_key_sql(table_sql: &str, key: &str, definition: &str) -> String {
    format!(
        "ALTER TABLE {table_sql} ADD CONSTRAINT {} {}{NOT_VALID};",
        escape_identifier(key),
        definition.trim_end_matches(NOT_VALID)
    )
}

/// Step 2 for a key of a partitioned table, which PostgreSQL 15 cannot add `NOT VALID`
/// (`ALTER TABLE t ADD CONSTRAINT k <definition>;`, checked as it is added).
pub fn restore_partitioned_key_sql(table_sql: &str, key: &str, definition: &str) -> String {
    format!(
        "ALTER TABLE {table_sql} ADD CONSTRAINT {} {};",
        escape_identifier(key),
        definition.trim_end_matches(NOT_VALID)
    )
}

/// Step 2, the key's comment (dropping a key drops its comment): `COMMENT ON CONSTRAINT k ON t
/// IS '...';`
pub fn comment_key_sql(table_sql: &str, key: &str, comment: &str) -> String {
    format!(
        "COMMENT ON CONSTRAINT {} ON {table_sql} IS {};",
        escape_identifier(key),
        escape_literal(comment)
    )
}

/// Step 3, the key: `ALTER TABLE t VALIDATE CONSTRAINT k;`
pub fn validate_key_sql(table_sql: &str, key: &str) -> String {
    format!(
        "ALTER TABLE {table_sql} VALIDATE CONSTRAINT {};",
        escape_identifier(key)
    )
}

/// How `--dry-run` shows a key dropped into the journal (the statement, marked).
pub fn journaled_drop_line(t: &QualifiedName, fk: &ForeignKey) -> String {
    format!("{}  -- journaled\n", drop_key_sql(t, &fk.name))
}

/// The columns a foreign key's row is recorded with, in the order of [`insert_key`]'s values.
const KEY_COLUMNS: &str = "table_sql, constraint_name, definition, state, ref_table_sql, comment";

/// Step 1, the row: `INSERT` of a dropped key; `values` are SQL expressions for its table,
/// name, definition, referenced table and comment; `sep` goes before `VALUES`.
fn insert_key(
    journal: &str,
    [table, name, definition, ref_table, comment]: [&str; 5],
    sep: &str,
) -> String {
    format!(
        "INSERT INTO {journal} ({KEY_COLUMNS}){sep}VALUES ({table}, {name}, {definition}, {}, {ref_table}, {comment})",
        State::Dropped.literal()
    )
}

/// The comment of constraint `name` on table `table_sql` (SQL expressions), as an expression.
fn constraint_comment(table_sql: &str, name: &str) -> String {
    format!(
        "(SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint WHERE conrelid = to_regclass({table_sql}::text) AND conname::text = {name})"
    )
}

/// Steps 2 and 3, the row: move the row whose id is the SQL expression `id` to `to`.
fn mark_row(journal: &str, to: State, id: &str) -> String {
    format!(
        "UPDATE {journal} SET state = {}, updated_at = now() WHERE id = {id}",
        to.literal()
    )
}

/// Record that extension `name` (an SQL expression) was created by a migration, open until its
/// down part drops it.
fn insert_extension(journal: &str, name: &str) -> String {
    format!(
        "INSERT INTO {journal} (kind, table_sql, constraint_name, definition, state) VALUES ({}, '', {name}, 'CREATE EXTENSION ' || quote_ident({name}), {})",
        Kind::Extension.literal(),
        State::Dropped.literal()
    )
}

/// Whether extension `name` (an SQL expression) was created by a migration not yet undone.
fn extension_created(journal: &str, name: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM {journal} WHERE kind = {} AND constraint_name = {name} AND state = {})",
        Kind::Extension.literal(),
        State::Dropped.literal()
    )
}

/// Close the rows of extension `name` (an SQL expression): dropped again by a down part.
fn extension_undone(journal: &str, name: &str) -> String {
    format!(
        "UPDATE {journal} SET state = {}, updated_at = now() WHERE kind = {} AND constraint_name = {name} AND state = {}",
        State::Validated.literal(),
        Kind::Extension.literal(),
        State::Dropped.literal()
    )
}

/// Record what `undistribute_table` would lose (kind property); the values are SQL expressions
/// for its table, what it is, and the statement that puts it back.
fn insert_property(journal: &str, [table, what, statement]: [&str; 3]) -> String {
    format!(
        "INSERT INTO {journal} (kind, table_sql, constraint_name, definition, state) VALUES ({}, {table}, {what}, {statement}, {})",
        Kind::Property.literal(),
        State::Dropped.literal()
    )
}

/// Record an identity column as dropped; the values are SQL expressions for its table, the
/// column, its `ADD GENERATED` clause and its next value.
fn insert_identity(journal: &str, [table, column, clause, restart]: [&str; 4]) -> String {
    format!(
        "INSERT INTO {journal} (kind, table_sql, constraint_name, definition, restart, state) VALUES ({}, {table}, {column}, {clause}, {restart}, {})",
        Kind::Identity.literal(),
        State::Dropped.literal()
    )
}

/// Whether the table `table` (an SQL expression) has rows of `kind` not yet put back, as an
/// expression.
fn has_open(journal: &str, kind: Kind, table: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM {journal} WHERE kind = {} AND table_sql = {table} AND state = {})",
        kind.literal(),
        State::Dropped.literal()
    )
}

/// The `columns` of the rows of `kind` not yet put back (of the table `table`, an SQL
/// expression, if given), in the order recorded.
fn open_rows(journal: &str, kind: Kind, columns: &str, table: Option<&str>) -> String {
    let of_table = table
        .map(|t| format!(" AND table_sql = {t}"))
        .unwrap_or_default();
    format!(
        "SELECT {columns} FROM {journal} WHERE kind = {}{of_table} AND state = {} ORDER BY id",
        kind.literal(),
        State::Dropped.literal()
    )
}

/// The statements `colocate-pg` runs on a journal table, values as bound parameters (`$n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statements {
    /// The journal's quoted name.
    table: String,
}

impl Statements {
    /// For the journal `table_sql` (quoted, possibly qualified).
    pub fn new(table_sql: impl Into<String>) -> Statements {
        Statements {
            table: table_sql.into(),
        }
    }

    /// Create the journal, or give an older one its newer columns.
    pub fn create(&self) -> String {
        ddl(&self.table, &escape_literal(COMMENT))
    }

    /// Step 1: record a key (`$1` table, `$2` name, `$3` definition, `$4` referenced table)
    /// with its comment, returning the row's id; [`drop_key_sql`] follows in the same
    /// transaction.
    pub fn record_key(&self) -> String {
        format!(
            "{} RETURNING id",
            insert_key(
                &self.table,
                ["$1", "$2", "$3", "$4", &constraint_comment("$1", "$2")],
                " "
            )
        )
    }

    /// The comment recorded with the key `$2` of table `$1` while it is dropped (none: no row).
    pub fn key_comment(&self) -> String {
        format!(
            "SELECT comment FROM {} WHERE kind = {} AND table_sql = $1 AND constraint_name = $2 AND state = {} ORDER BY id DESC LIMIT 1",
            self.table,
            Kind::ForeignKey.literal(),
            State::Dropped.literal()
        )
    }

    /// The foreign keys not yet validated, oldest first: id, table_sql, constraint_name,
    /// definition, state, ref_table_sql, comment.
    pub fn open_keys(&self) -> String {
        format!(
            "SELECT id, table_sql, constraint_name, definition, state, ref_table_sql, comment FROM {} \
             WHERE state <> {} AND kind = {} ORDER BY id",
            self.table,
            State::Validated.literal(),
            Kind::ForeignKey.literal()
        )
    }

    /// Steps 2 and 3 by name: move the key `$2` of table `$1` to `to` from the state before.
    pub fn mark_key(&self, to: State) -> String {
        let before = to.before().map(State::literal).unwrap_or_default();
        format!(
            "UPDATE {} SET state = {}, updated_at = now() WHERE table_sql = $1 AND constraint_name = $2 AND state = {before}",
            self.table,
            to.literal()
        )
    }

    /// Steps 2 and 3 by row: move row `$1` to `to`.
    pub fn mark_row(&self, to: State) -> String {
        mark_row(&self.table, to, "$1")
    }

    /// Remove row `$1` (its table is gone, and the key with it).
    pub fn forget_row(&self) -> String {
        format!("DELETE FROM {} WHERE id = $1", self.table)
    }

    /// Record an identity column as dropped: `$1` table, `$2` column, `$3` clause, `$4` next value.
    pub fn record_identity(&self) -> String {
        insert_identity(&self.table, ["$1", "$2", "$3", "$4"])
    }

    /// Record that a migration created extension `$1`.
    pub fn record_extension(&self) -> String {
        insert_extension(&self.table, "$1::text")
    }

    /// Whether a migration not yet undone created extension `$1`.
    pub fn extension_created(&self) -> String {
        format!("SELECT {}", extension_created(&self.table, "$1::text"))
    }

    /// Extension `$1` was dropped again by the down part of the migration that created it.
    pub fn extension_undone(&self) -> String {
        extension_undone(&self.table, "$1::text")
    }

    /// Record what `undistribute_table` would lose: `$1` table, `$2` what, `$3` the statement
    /// that puts it back.
    pub fn record_property(&self) -> String {
        insert_property(&self.table, ["$1", "$2", "$3"])
    }

    /// Whether table `$1` has properties recorded and not yet put back.
    pub fn has_open_properties(&self) -> String {
        format!("SELECT {}", has_open(&self.table, Kind::Property, "$1"))
    }

    /// The properties not yet put back, in the order recorded: id, table_sql, constraint_name,
    /// definition.
    pub fn open_properties(&self) -> String {
        open_rows(
            &self.table,
            Kind::Property,
            "id, table_sql, constraint_name, definition",
            None,
        )
    }

    /// The identity columns still dropped, oldest first: id, table_sql, constraint_name,
    /// definition, restart.
    pub fn open_identities(&self) -> String {
        open_rows(
            &self.table,
            Kind::Identity,
            "id, table_sql, constraint_name, definition, restart",
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_strings_are_unique_stable_and_round_trip() {
        let strings: Vec<&str> = State::ALL.iter().map(|s| s.as_str()).collect();
        // The journal's `state` column holds these: changing one strands rows of older runs.
        assert_eq!(strings, ["dropped", "restored", "validated"]);
        for s in State::ALL {
            assert_eq!(s.as_str().parse::<State>(), Ok(s));
            assert_eq!(s.literal(), format!("'{s}'"));
        }
        assert!("Dropped".parse::<State>().is_err());
        let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(kinds, ["foreign_key", "identity", "property", "extension"]);
    }

    #[test]
    fn states_follow_the_protocol_order() {
        assert_eq!(State::Dropped.before(), None);
        for w in State::ALL.windows(2) {
            assert_eq!(w[1].before(), Some(w[0]));
            assert!(w[0] < w[1]);
        }
    }

    #[test]
    fn the_table_accepts_exactly_the_states() {
        let ddl = Statements::new("\"j\"").create();
        assert!(
            ddl.contains("CHECK (state IN ('dropped', 'restored', 'validated'))"),
            "{ddl}"
        );
        assert!(ddl.contains("DEFAULT 'foreign_key';"), "{ddl}");
        assert!(!ddl.contains('{'), "{ddl}");
    }

    #[test]
    fn statements_move_rows_between_neighbouring_states() {
        let s = Statements::new("\"j\"");
        assert_eq!(
            s.record_key(),
            "INSERT INTO \"j\" (table_sql, constraint_name, definition, state, ref_table_sql, comment) VALUES ($1, $2, $3, 'dropped', $4, \
             (SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint WHERE conrelid = to_regclass($1::text) AND conname::text = $2)) RETURNING id"
        );
        assert_eq!(
            s.mark_key(State::Restored),
            "UPDATE \"j\" SET state = 'restored', updated_at = now() WHERE table_sql = $1 AND constraint_name = $2 AND state = 'dropped'"
        );
        assert!(s
            .mark_key(State::Validated)
            .ends_with("SET state = 'validated', updated_at = now() WHERE table_sql = $1 AND constraint_name = $2 AND state = 'restored'"));
        assert_eq!(
            s.mark_row(State::Validated),
            "UPDATE \"j\" SET state = 'validated', updated_at = now() WHERE id = $1"
        );
        assert!(s
            .open_keys()
            .contains("state <> 'validated' AND kind = 'foreign_key'"));
        assert!(s
            .open_identities()
            .contains("kind = 'identity' AND state = 'dropped'"));
    }

    #[test]
    fn properties_and_extensions_are_rows_of_their_own_kind() {
        let s = Statements::new("\"j\"");
        assert_eq!(
            s.record_property(),
            "INSERT INTO \"j\" (kind, table_sql, constraint_name, definition, state) VALUES ('property', $1, $2, $3, 'dropped')"
        );
        // Put back in the order recorded (a NOT VALID check before its comment).
        assert!(s
            .open_properties()
            .ends_with("WHERE kind = 'property' AND state = 'dropped' ORDER BY id"));
        assert!(s
            .has_open_properties()
            .contains("kind = 'property' AND table_sql = $1 AND state = 'dropped'"));
        // An extension is recorded by the up part that created it and closed by its down part;
        // only an open row lets a down part drop it.
        assert!(s
            .record_extension()
            .contains("VALUES ('extension', '', $1::text, 'CREATE EXTENSION ' || quote_ident($1::text), 'dropped')"));
        assert!(s
            .extension_created()
            .contains("kind = 'extension' AND constraint_name = $1::text AND state = 'dropped'"));
        assert!(s.extension_undone().starts_with(
            "UPDATE \"j\" SET state = 'validated', updated_at = now() WHERE kind = 'extension'"
        ));
        // The key's comment is read when it is recorded, and only while the key is dropped.
        assert!(s.key_comment().contains("kind = 'foreign_key'"));
        assert!(s.key_comment().contains("state = 'dropped'"));
    }

    #[test]
    fn key_statements_lock_the_referenced_table_first_as_applications_do() {
        assert_eq!(
            lock_key_tables_sql("child", "parent", KeyLock::Add),
            "LOCK TABLE parent IN SHARE ROW EXCLUSIVE MODE;\nLOCK TABLE child IN SHARE ROW EXCLUSIVE MODE;"
        );
        assert_eq!(
            lock_key_tables_sql("t", "t", KeyLock::Drop),
            "LOCK TABLE t IN ACCESS EXCLUSIVE MODE;"
        );
    }

    #[test]
    fn a_key_comes_back_not_valid_and_is_validated_only_if_it_was_valid() {
        assert_eq!(
            restore_key_sql("t", "k", "FOREIGN KEY (a) REFERENCES b(a) NOT VALID"),
            "ALTER TABLE t ADD CONSTRAINT \"k\" FOREIGN KEY (a) REFERENCES b(a) NOT VALID;"
        );
        // PostgreSQL 15 has no NOT VALID key on a partitioned table: added checked.
        assert_eq!(
            restore_partitioned_key_sql("t", "k", "FOREIGN KEY (a) REFERENCES b(a)"),
            "ALTER TABLE t ADD CONSTRAINT \"k\" FOREIGN KEY (a) REFERENCES b(a);"
        );
        // Dropping a key drops its comment: it comes back with the key, quoted.
        assert_eq!(
            comment_key_sql("t", "k", "it's"),
            "COMMENT ON CONSTRAINT \"k\" ON t IS 'it''s';"
        );
        assert!(was_valid("FOREIGN KEY (a) REFERENCES b(a)"));
        assert!(!was_valid("FOREIGN KEY (a) REFERENCES b(a) NOT VALID"));
    }
}
