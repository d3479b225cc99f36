//! The journal table in which colocate records what it dropped on purpose (foreign keys around
//! conversions, identity columns around `undistribute`) until it is restored. `apply`,
//! `undistribute` and the migration sets `generate` writes share it, so a key one of them
//! dropped is restored by whichever finds both its tables ready.

/// The journal's default name (unqualified: the search path decides its schema).
pub const DEFAULT_TABLE: &str = "colocate_journal";

/// The journal table's comment.
pub const COMMENT: &str =
    "foreign keys colocate dropped to convert tables to Citus, until restored";

/// `CREATE TABLE IF NOT EXISTS` for the journal and the columns later versions added, as
/// several statements; `table` is the quoted name, `comment` a quoted literal.
pub fn ddl(table: &str, comment: &str) -> String {
    include_str!("sql/create_journal.sql")
        .replace("{table}", table)
        .replace("{comment}", comment)
}
