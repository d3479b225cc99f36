//! The SQL of the set: guarded, idempotent statements (each checks first and does nothing where
//! Citus is not installed), the journal's PL/pgSQL ([`crate::journal::plpgsql`]) for keys
//! dropped and restored across files and for what `undistribute_table` loses in the down
//! parts, the fixes file, and their rendering as a dbmate migration. The knex format raises
//! this same SQL.

use std::collections::{BTreeMap, BTreeSet};

use postgres_protocol::escape::{escape_identifier, escape_literal};

use super::chain::FixId;
use super::layout::{dependents, order, wrap, File};
use super::writer::{Around, Item, SqlFile, Writer};
use crate::journal::plpgsql as journal;
use crate::plan::{Code, Role};
use crate::plpgsql::{do_block, in_citus, regclass, CITUS_INSTALLED};
use crate::schema::{ForeignKey, Key, KeyKind, QualifiedName, Table};
use crate::split::split_statements;
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
        let call = format!("{}{call}", conversion_settings("    "));
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

    /// The fixes file: key rebuilds, then foreign keys re-created with the tenant column, then
    /// the other automatic fixes; fixes that need a decision as comments. Its down part puts
    /// every key and foreign key it touched back as it was.
    fn fixes_file(&self, mut header: Vec<String>) -> SqlFile {
        header.push(
            "Fixes that need a human decision are written below as comments and never applied."
                .into(),
        );
        let sel = self.sel;
        let mut keys = Vec::new();
        let mut fks = Vec::new();
        let mut other = Vec::new();
        let mut manual: Vec<Item> = Vec::new();
        for (t, fs) in &sel.problems {
            let fixable = sel.fixable.contains(*t);
            for f in fs {
                if let (true, false, Some(fix)) =
                    (fixable, f.code.waits_for_another_table(), &f.fix)
                {
                    if self
                        .chain_fixes
                        .contains(&FixId::new(&f.table, f.code.as_str(), fix))
                    {
                        // The chain applies it already (a file written before, not yet run).
                        continue;
                    }
                }
                match (fixable, f.code, &f.fix) {
                    (true, c, _) if c.waits_for_another_table() => {}
                    (true, Code::KeyMissingDistributionColumn, Some(fix)) => keys.push((f, fix)),
                    (true, Code::ForeignKeyMissingDistributionColumn, Some(fix)) => {
                        fks.push((f, fix))
                    }
                    (true, _, Some(fix)) => other.push((f, fix)),
                    (_, c, _) if c.waits_for_another_table() => manual.push(Item::Comment(vec![
                        format!("{} [{}]: {}", f.table, f.code, f.message),
                        String::new(),
                    ])),
                    (_, _, None) => manual.push(Item::Comment(vec![
                        format!("{} [{}]: {}", f.table, f.code, f.message),
                        String::new(),
                    ])),
                    (false, _, Some(fix)) => {
                        let why = if f.manual {
                            "needs a decision"
                        } else {
                            "not applied: the table has blockers that need a decision"
                        };
                        let mut lines =
                            vec![format!("{} [{}] ({why}): {}", f.table, f.code, f.message)];
                        lines.extend(fix.lines().map(|l| format!("  {l}")));
                        lines.push(String::new());
                        manual.push(Item::Comment(lines));
                    }
                }
            }
        }
        let mut file = SqlFile {
            header,
            transaction: true,
            up: Vec::new(),
            down: Vec::new(),
        };
        for (f, fix) in keys.iter().chain(&fks).chain(&other) {
            file.up.push(Item::Comment(vec![format!(
                "{} [{}]: {}",
                f.table, f.code, f.message
            )]));
            file.up.extend(fix_items(fix));
        }
        if !manual.is_empty() {
            file.up.push(Item::Comment(vec![
                "Not applied (fix these by hand, then generate again):".into(),
                String::new(),
            ]));
            file.up.extend(manual);
        }
        file.down = self.restore_fixed();
        file
    }

    /// Down part of the fixes: drop the foreign keys the fixes re-created, put the rebuilt keys
    /// back, then re-add the foreign keys as they were.
    fn restore_fixed(&self) -> Vec<Item> {
        let sel = self.sel;
        let mut touched_fks: BTreeMap<(QualifiedName, String), &ForeignKey> = BTreeMap::new();
        let mut keys: Vec<(&Table, &Key)> = Vec::new();
        // Only what this file's fixes change: a fix the chain applies already is undone there.
        for t in &sel.fixable {
            let Some(table) = self.schema.table(t) else {
                continue;
            };
            if !self.chain_fixed(t, Code::KeyMissingDistributionColumn) {
                for k in sel.rebuilt_keys(table) {
                    keys.push((table, k));
                    for (src, fk) in dependents(self.schema, table, k) {
                        touched_fks.insert((src.name.clone(), fk.name.clone()), fk);
                    }
                }
            }
            if !self.chain_fixed(t, Code::ForeignKeyMissingDistributionColumn) {
                for fk in &table.foreign_keys {
                    if sel.unaligned(table, fk).is_some() {
                        touched_fks.insert((t.clone(), fk.name.clone()), fk);
                    }
                }
            }
        }
        let mut out = vec![Item::Comment(vec![
            "Puts back every key and foreign key the fixes changed, as they were.".into(),
            String::new(),
        ])];
        for (t, name) in touched_fks.keys() {
            out.push(Item::Statement(format!(
                "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
                t.sql(),
                escape_identifier(name)
            )));
        }
        for (t, k) in &keys {
            match k.kind {
                KeyKind::UniqueIndex => {
                    out.push(Item::Statement(format!(
                        "DROP INDEX IF EXISTS {}",
                        QualifiedName::new(t.name.schema.clone(), k.name.clone()).sql()
                    )));
                    out.push(Item::Statement(k.definition.clone()));
                }
                _ => {
                    out.push(Item::Statement(format!(
                        "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
                        t.name.sql(),
                        escape_identifier(&k.name)
                    )));
                    out.push(Item::Statement(format!(
                        "ALTER TABLE {} ADD CONSTRAINT {} {}",
                        t.name.sql(),
                        escape_identifier(&k.name),
                        k.definition
                    )));
                }
            }
        }
        for ((t, name), fk) in &touched_fks {
            out.push(Item::Statement(format!(
                "ALTER TABLE {} ADD CONSTRAINT {} {}",
                t.sql(),
                escape_identifier(name),
                fk.definition
            )));
        }
        out.extend(self.nullable_again(&keys));
        out
    }

    /// A primary key rebuilt with a nullable distribution column made that column `NOT NULL`
    /// (PostgreSQL does so for every primary key column, and keeps it when the key goes): the
    /// down part, having put the old key back, makes it nullable again. A column that was
    /// `NOT NULL` before stays so.
    fn nullable_again(&self, keys: &[(&Table, &Key)]) -> Vec<Item> {
        let mut done: BTreeSet<&QualifiedName> = BTreeSet::new();
        let mut out = Vec::new();
        for (t, k) in keys {
            if k.kind != KeyKind::PrimaryKey || !done.insert(&t.name) {
                continue;
            }
            let Some(col) = self.sel.column(&t.name) else {
                continue;
            };
            if t.columns.iter().any(|c| c.name == col && !c.not_null) {
                out.push(Item::Statement(format!(
                    "ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL",
                    t.name.sql(),
                    escape_identifier(col)
                )));
            }
        }
        out
    }
}

/// A fix's SQL as statements, its comment lines kept as comments.
fn fix_items(fix: &str) -> Vec<Item> {
    let mut out = Vec::new();
    let comments: Vec<String> = fix
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--"))
        .map(|c| c.trim().to_string())
        .collect();
    if !comments.is_empty() {
        out.push(Item::Comment(comments));
    }
    match split_statements(fix) {
        Ok(stmts) => out.extend(stmts.into_iter().map(|s| Item::Statement(s.sql))),
        // The planner writes complete statements; should one not split, keep it whole.
        Err(_) => out.push(Item::Statement(
            fix.trim().trim_end_matches(';').to_string(),
        )),
    }
    out
}
