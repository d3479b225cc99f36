//! The knex format: the SQL file written as a `.cjs` migration that raises each statement, for
//! projects whose migrations run through knex.

use super::writer::{Item, SqlFile};
use crate::sqltext::inert;

impl SqlFile {
    /// Whether a statement has a backslash right before a `?`, which knex's placeholder
    /// rewriting would swallow.
    pub(super) fn backslash_question_mark(&self) -> bool {
        self.up
            .iter()
            .chain(&self.down)
            .any(|i| matches!(i, Item::Statement(sql) if sql.contains("\\?")))
    }

    pub(super) fn render_knex(&self) -> String {
        let mut out = String::new();
        for h in &self.header {
            out.push_str(&format!("// {}\n", inert(h)));
        }
        if self.transaction {
            out.push_str("// One transaction: every fix, or none.\nexports.config = { transaction: true };\n");
        } else {
            out.push_str("// Citus functions run outside a transaction, one statement at a time.\nexports.config = { transaction: false };\n");
        }
        for (name, items) in [("up", &self.up), ("down", &self.down)] {
            out.push_str(&format!("\nexports.{name} = async function (knex) {{\n"));
            for item in items {
                match item {
                    Item::Statement(sql) => {
                        // knex's PostgreSQL client turns every `?` into `$n`, and `\?` into `?`.
                        let raw = sql.replace('?', "\\?");
                        let lit = serde_json::to_string(&raw).unwrap_or_default();
                        out.push_str(&format!("  await knex.raw({lit});\n"));
                    }
                    Item::Comment(lines) => {
                        for l in lines.iter().filter(|l| !l.is_empty()) {
                            out.push_str(&format!("  // {}\n", inert(l)));
                        }
                    }
                }
            }
            out.push_str("};\n");
        }
        out
    }
}
