//! The SQL of the set: guarded, idempotent statements (each checks first and does nothing where
//! Citus is not installed), the journal's PL/pgSQL ([`crate::journal::plpgsql`]) for keys
//! dropped and restored across files and for what `undistribute_table` loses in the down
//! parts, the fixes file, and their rendering as a dbmate migration. The knex format raises
//! this same SQL.

use postgres_protocol::escape::{escape_identifier, escape_literal};

use super::layout::{order, wrap, File};
use super::writer::{Around, Item, SqlFile, Writer};
use crate::journal::plpgsql as journal;
use crate::plan::Role;
use crate::plpgsql::{do_block, in_citus, regclass, CITUS_INSTALLED};
use crate::schema::{ForeignKey, QualifiedName};
use crate::sqltext::inert;
use crate::step::CONVERSION_SETTINGS;

impl SqlFile {
    pub(super) fn render_sql(&self) -> String {
        let mut out = String::new();
        for h in &self.header {
            out.push_str(&format!("-- {}\n", inert(h)));
        }
        let opt = if self.transaction {
            ""
        } else {
            " transaction:false"
        };
        for (marker, items) in [("up", &self.up), ("down", &self.down)] {
            while out.ends_with("\n\n") {
                out.pop();
            }
            out.push_str(&format!("\n-- migrate:{marker}{opt}\n"));
            for item in items {
                match item {
                    Item::Statement(sql) => out.push_str(&format!("{sql};\n\n")),
                    Item::Comment(lines) => {
                        for l in lines {
                            if l.is_empty() {
                                out.push('\n');
                            } else {
                                out.push_str(&format!("-- {}\n", inert(l)));
                            }
                        }
                    }
                }
            }
        }
        while out.ends_with("\n\n") {
            out.pop();
        }
        out
    }
}

/// The settings `apply` converts with ([`CONVERSION_SETTINGS`]), for the statement's own
/// transaction: one `SET LOCAL` a line, each followed by a line break and `indent`, ready to
/// precede the next line of a block.
fn conversion_settings(indent: &str) -> String {
    CONVERSION_SETTINGS
        .iter()
        .map(|s| format!("{}\n{indent}", s.local_sql()))
        .collect()
}

fn notice(msg: &str) -> String {
    format!(
        "RAISE NOTICE '%', {};",
        escape_literal(&format!("colocate: {msg}"))
    )
}

/// The condition that `t` already has the role the set gives it (only planned where Citus is
/// installed: it reads `pg_dist_partition`).
fn converted(t: &QualifiedName, role: Role) -> String {
    let which = match role {
        Role::Reference => "repmodel = 't'",
        _ => "partmethod = 'h'",
    };
    format!(
        "EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = {} AND {which})",
        regclass(t)
    )
}

impl Writer<'_> {
    pub(super) fn sql_file(
        &self,
        f: &File,
        header: &[String],
        converted_so_far: &[QualifiedName],
        around: &Around<'_>,
    ) -> SqlFile {
        let mut header = header.to_vec();
        match f {
            File::Fixes => return self.fixes_file(header),
            File::Extension => {}
            _ => {
                header.extend(wrap("Tables, in conversion order: ", f.tables()));
                header.push(
                    "Idempotent: every statement checks first, and does nothing where citus is not installed."
                        .into(),
                );
            }
        }
        let mut file = SqlFile {
            header,
            transaction: false,
            up: Vec::new(),
            down: Vec::new(),
        };
        if let File::Extension = f {
            file.up.push(Item::Statement(self.extension_up()));
            file.down.push(Item::Statement(self.extension_down()));
            return file;
        }
        let tables = f.tables();
        let (_, dropped) = order(self.schema, tables, self.sel.root.as_ref());
        for (t, fk) in &dropped {
            file.up.push(Item::Statement(self.drop_cycle_key(t, fk)));
        }
        for t in tables {
            file.up.push(Item::Statement(self.convert(t)));
        }
        for (t, fk) in &dropped {
            file.up.push(Item::Statement(self.restore_key(t, fk)));
            if fk.validated {
                file.up.push(Item::Statement(format!(
                    "ALTER TABLE {} VALIDATE CONSTRAINT {}",
                    t.sql(),
                    escape_identifier(&fk.name)
                )));
            }
        }
        // Keys to the tables of earlier files that an earlier rollback of this file dropped.
        let to_earlier = self
            .schema
            .keys_between(|q| tables.contains(q), |q| around.earlier.contains(q));
        for (t, fk) in &to_earlier {
            file.up.push(Item::Statement(journal::restore_key(t, fk)));
            file.up.push(Item::Statement(journal::validate_key(t, fk)));
        }
        file.up
            .push(Item::Statement(self.cleanup(converted_so_far)));
        // Down: this file's tables only, last converted first, each alone (never Citus's
        // cascade, which locks a whole foreign-key group in one transaction). The keys to and
        // from a table go into the journal first; each comes back once both its tables are
        // plain: at once, or, for a key to a table of an earlier file (still in Citus), when
        // that file's down part runs, or this file's up part again.
        file.down.push(Item::Comment(vec![format!(
            "Each table alone, never with Citus's cascade: its foreign keys are recorded in {} and dropped, and so is what undistribute_table loses (comments, NOT VALID checks, identity columns, ...), given back once the table is local. A key comes back once both its tables are plain; one to a table of an earlier file waits in the journal for that file's down part (or this file's up part).",
            crate::journal::DEFAULT_TABLE
        )]));
        let mut pending: Vec<&QualifiedName> = tables.iter().collect();
        while let Some(t) = pending.pop() {
            let keys = self.schema.keys_between(|q| q == t, |_| true);
            for (src, fk) in &keys {
                file.down
                    .push(Item::Statement(journal::drop_key(src, fk, t)));
            }
            file.down.push(Item::Statement(self.undistribute(t)));
            // Keys whose other table is plain by now: not a table of an earlier file, nor one
            // of this file's still to come (those restore it when their turn comes).
            for (src, fk) in &keys {
                let other = if src == t { &fk.ref_table } else { src };
                if around.earlier.contains(other) || pending.contains(&other) {
                    continue;
                }
                file.down
                    .push(Item::Statement(journal::restore_key(src, fk)));
                file.down
                    .push(Item::Statement(journal::validate_key(src, fk)));
            }
        }
        file
    }

    /// Create citus where the server offers it, recording in the journal that this migration
    /// did (its down part drops only what its up part created).
    fn extension_up(&self) -> String {
        do_block(&format!(
            "BEGIN\n  IF {CITUS_INSTALLED} THEN\n    {}\n  ELSIF {} THEN\n    CREATE EXTENSION citus;\n{}\n  ELSIF {} THEN\n    {}\n  ELSE\n    {}\n  END IF;\nEND",
            notice("extension citus already exists: the down part keeps it"),
            crate::schema::CITUS_LOADABLE_SQL,
            journal::record_extension("citus", "    "),
            crate::schema::CITUS_NOT_PRELOADED_SQL,
            notice(&format!("skipped: {}", crate::schema::CITUS_NOT_PRELOADED)),
            notice("citus is not available on this server (plain PostgreSQL): skipped"),
        ))
    }

    /// Drop citus only if the up part created it (the journal says so), and no Citus table
    /// remains; an extension that existed before stays.
    fn extension_down(&self) -> String {
        do_block(&format!(
            "DECLARE\n  created boolean := false;\nBEGIN\n  IF NOT {CITUS_INSTALLED} THEN\n    {}\n    RETURN;\n  END IF;\n{}\n  IF NOT created THEN\n    {}\n  ELSIF EXISTS (SELECT 1 FROM pg_dist_partition) THEN\n    RAISE EXCEPTION '%', {};\n  ELSE\n    DROP EXTENSION citus;\n    {};\n  END IF;\nEND",
            notice("extension citus is not installed: nothing to undo"),
            journal::extension_created_into("citus", "created", "  "),
            notice("extension citus existed before this migration: kept"),
            escape_literal(
                "colocate: cannot drop extension citus while Citus tables remain: undo the distribution steps first"
            ),
            journal::extension_dropped("citus"),
        ))
    }

    fn convert(&self, t: &QualifiedName) -> String {
        let role = self.role(t);
        let call = match role {
            Role::Reference => format!("PERFORM create_reference_table({});", t.regclass_literal()),
            Role::Root => format!(
                "PERFORM create_distributed_table({}, {}, colocate_with => 'none'{});",
                t.regclass_literal(),
                escape_literal(self.sel.column(t).unwrap_or_default()),
                self.shard_count
                    .map(|n| format!(", shard_count => {n}"))
                    .unwrap_or_default()
            ),
            _ => format!(
                "PERFORM create_distributed_table({}, {}, colocate_with => {});",
                t.regclass_literal(),
                escape_literal(self.sel.column(t).unwrap_or_default()),
                self.sel
                    .root
                    .as_ref()
                    .map(|r| r.regclass_literal())
                    .unwrap_or_else(|| "'default'".into())
            ),
        };
        let unsafe_triggers = if self.sel.unsafe_triggers(t) {
            "PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);\n    "
        } else {
            ""
        };
        let call = format!("{}{unsafe_triggers}{call}", conversion_settings("    "));
        let already = match role {
            Role::Reference => format!("{t} is already a reference table"),
            _ => format!("{t} is already distributed"),
        };
        do_block(&format!(
            "BEGIN\n  IF NOT {CITUS_INSTALLED} THEN\n    {}\n  ELSIF {} THEN\n    {}\n  ELSE\n    {call}\n  END IF;\nEND",
            notice(&format!("citus is not installed: {t} stays a local table")),
            converted(t, role),
            notice(&already),
        ))
    }

    /// Turn `t` plain, alone, giving back what `undistribute_table` loses: journaled before
    /// and put back after in the same transaction, as colocate-pg's `undistribute` does
    /// ([`journal::record_lost`], [`journal::restore_lost`]). A table already local only gets
    /// back what an interrupted run left in the journal.
    fn undistribute(&self, t: &QualifiedName) -> String {
        do_block(&format!(
            "DECLARE\n{}\nBEGIN\n  IF NOT {CITUS_INSTALLED} THEN\n    {}\n    RETURN;\n  END IF;\n  IF NOT {} THEN\n    {}\n  ELSE\n    {}{}\n    PERFORM {};\n  END IF;\n{}\nEND",
            journal::LOST_VARIABLES,
            notice(&format!("citus is not installed: {t} is a local table")),
            in_citus(t),
            notice(&format!("{t} is already a local table")),
            conversion_settings("    "),
            journal::record_lost(t, "    ").trim_start(),
            crate::undistribute::call(t),
            journal::restore_lost(t, "  "),
        ))
    }

    /// Drop a key of a foreign-key cycle while either of its tables is not yet converted (its
    /// source cannot be converted while it references a plain table).
    fn drop_cycle_key(&self, t: &QualifiedName, fk: &ForeignKey) -> String {
        let pending: Vec<String> = [t, &fk.ref_table]
            .iter()
            .map(|x| format!("NOT {}", converted(x, self.role(x))))
            .collect();
        do_block(&format!(
            "BEGIN\n  -- the cycle's tables can only be converted with this key out of the way; it is restored below\n  IF {CITUS_INSTALLED} THEN\n    IF EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = {} AND conname = {})\n       AND ({}) THEN\n      ALTER TABLE {} DROP CONSTRAINT {};\n    END IF;\n  END IF;\nEND",
            regclass(t),
            escape_literal(&fk.name),
            pending.join("\n            OR "),
            t.sql(),
            escape_identifier(&fk.name),
        ))
    }

    fn restore_key(&self, t: &QualifiedName, fk: &ForeignKey) -> String {
        let def = fk.definition.trim_end_matches(" NOT VALID");
        do_block(&format!(
            "BEGIN\n  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = {} AND conname = {}) THEN\n    ALTER TABLE {} ADD CONSTRAINT {} {def} NOT VALID;\n  END IF;\nEND",
            regclass(t),
            escape_literal(&fk.name),
            t.sql(),
            escape_identifier(&fk.name),
        ))
    }

    /// Remove the rows the coordinator keeps after copying them into shards, for every table
    /// converted so far that no plain table reaches through foreign keys any more: the
    /// truncation cascades through every referencing table, Citus tables included, and would
    /// empty a plain one. A later file of the set removes those that wait.
    fn cleanup(&self, tables: &[QualifiedName]) -> String {
        let list: Vec<String> = tables.iter().map(|t| t.regclass_literal()).collect();
        do_block(&format!(
            "DECLARE
  t regclass;
BEGIN
  IF NOT {CITUS_INSTALLED} THEN
    RETURN;
  END IF;
  {}FOREACH t IN ARRAY ARRAY[{}]::regclass[] LOOP
    IF EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = t AND (p.partmethod = 'h' OR p.repmodel = 't'))
       AND pg_relation_size(t) + (SELECT coalesce(sum(pg_relation_size(r.relid)), 0)
                                  FROM pg_partition_tree(t) r WHERE r.relid <> t) > 0
       AND NOT EXISTS (
         WITH RECURSIVE referrers(rel) AS (
           SELECT c.conrelid FROM pg_constraint c WHERE c.contype = 'f' AND c.confrelid = t
           UNION
           SELECT c.conrelid FROM pg_constraint c JOIN referrers r ON c.confrelid = r.rel
           WHERE c.contype = 'f'
         )
         SELECT 1 FROM referrers r
         WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition q WHERE q.logicalrelid = r.rel)) THEN
      PERFORM truncate_local_data_after_distributing_table(t);
    END IF;
  END LOOP;
END",
            conversion_settings("  "),
            list.join(", ")
        ))
    }

    /// The fixes file: the planner's fixes that the chain does not apply yet, as one script in
    /// phases (see [`crate::plan::fixsql`]), each fix under the blocker it fixes and who
    /// decided it; then the blockers left, as comments, with the choices of each decision still
    /// open. Its down part puts back what the fixes changed. A script that fills added columns
    /// commits batch by batch, so the file runs outside a transaction (every statement can run
    /// again, and the runner resumes at the one that failed).
    fn fixes_file(&self, mut header: Vec<String>) -> SqlFile {
        header.push(
            "Fixes that need a decision are written below as comments and never applied: take them in colocate.toml ([distribution.decisions]), then generate again."
                .into(),
        );
        let fixes: Vec<crate::plan::Fix> = self
            .sel
            .applied_fixes()
            .into_iter()
            .filter(|(id, _)| !self.chain_fixes.contains(id))
            .map(|(_, f)| f.clone())
            .collect();
        let script = crate::plan::fixsql::script(self.before, self.schema, &fixes);
        let to_items = |lines: &[(Vec<String>, String)]| {
            let mut out = Vec::new();
            for (comment, sql) in lines {
                if !comment.is_empty() {
                    out.push(Item::Comment(comment.clone()));
                }
                if !sql.is_empty() {
                    out.push(Item::Statement(sql.clone()));
                }
            }
            out
        };
        // A script that commits the fill batch by batch runs outside a transaction: what must
        // hold together (keys off, rebuilt, back) is then one block, so a failure there (a row
        // whose key breaks) leaves every key as it was, and so is the undo.
        let together = |lines: &[(Vec<String>, String)]| {
            let mut comments = Vec::new();
            let mut body = Vec::new();
            for (comment, sql) in lines {
                comments.extend(comment.iter().cloned());
                if !sql.is_empty() {
                    body.push(format!("  {sql};"));
                }
            }
            let mut out = Vec::new();
            if !comments.is_empty() {
                out.push(Item::Comment(comments));
            }
            if !body.is_empty() {
                out.push(Item::Statement(crate::plpgsql::do_block(&format!(
                    "BEGIN\n{}\nEND",
                    body.join("\n")
                ))));
            }
            out
        };
        let (up, down) = if script.batched {
            let (free, keyed) = script.up.split_at(script.atomic_from.min(script.up.len()));
            let mut up = to_items(free);
            up.extend(together(keyed));
            (up, together(&script.down))
        } else {
            (to_items(&script.up), to_items(&script.down))
        };
        let mut file = SqlFile {
            header,
            transaction: !script.batched,
            up,
            down,
        };
        let mut manual: Vec<Item> = Vec::new();
        for fs in self.sel.problems.values() {
            for f in fs {
                if f.code.waits_for_another_table() {
                    continue;
                }
                let mut lines = vec![format!("{} [{}]: {}", f.table, f.code, f.message)];
                if let Some(fix) = &f.fix {
                    lines.extend(
                        fix.lines().map(|l| {
                            format!("  {}", l.trim_start().trim_start_matches("--").trim())
                        }),
                    );
                }
                lines.push(String::new());
                manual.push(Item::Comment(lines));
            }
        }
        if !manual.is_empty() {
            file.up.push(Item::Comment(vec![
                "Not applied (decide or fix these, then generate again):".into(),
                String::new(),
            ]));
            file.up.extend(manual);
        }
        file
    }
}
