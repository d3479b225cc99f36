//! `colocate generate`: the plan written as a migration set that any environment can run.
//!
//! Files, one second apart after the newest existing migration: (with `--with-fixes`) the
//! blockers' fixes, the extension, the reference tables, the root, then the other distributed
//! tables by dependency layer (or chunked to at most N tables per file, in the same order). The
//! tables of one foreign-key cycle always share a file, because they can only be converted
//! together. Blocked tables are left out and named at the top of the first file.
//!
//! Three formats carry the same set: `toml` (declarative steps that `colocate migrate` runs
//! through the apply engine), `sql` (dbmate files of guarded, idempotent SQL for any runner) and
//! `knex` (`.cjs` files raising that same SQL). Pure: plan, schema and options in, file names
//! and contents out.
//!
//! Generation reads the chain it writes into ([`Chain`]: the declarative steps and the files
//! generate wrote, in the output directory and the other migration directories, applied or
//! pending) and writes only what the chain does not cover yet, after its newest migration:
//! nothing when it covers the whole plan, and an error when it converts a table of the plan
//! otherwise than the plan does (`coverage`). Each `.sql` and `.cjs` file says what it does in
//! `colocate:covers` lines of its header, so the next run reads it back without parsing SQL.
//!
//! `layout` decides which tables go in and how they are laid into files, the same for every
//! format; each format then has its own writer (`sql`, `knex`, `toml`) over the shared inputs
//! of `writer`, so a change to one format's text stays in one file. This module keeps what
//! callers see: the options, the errors and the entry point that numbers the files.

mod chain;
mod coverage;
mod knex;
mod layout;
mod sql;
mod toml;
mod writer;

use std::borrow::Cow;

use crate::migration::MigrationId;
use crate::plan::{Plan, Role};
use crate::schema::{QualifiedName, Schema};

pub use chain::{Chain, ChainError, ChainFile, Conversion, Covered, FixId, MARKER};
pub use coverage::Conflict;

use coverage::Coverage;
use layout::{layout, File, Selection};
use writer::{Around, Writer};

/// How the set is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetFormat {
    /// Declarative `.toml` steps (the fixes, if any, as a `.sql` migration).
    Toml,
    /// dbmate `.sql` files of guarded SQL.
    Sql,
    /// knex `.cjs` migrations raising the same SQL.
    Knex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerateOptions {
    pub format: SetFormat,
    /// At most this many tables per distribution file (a foreign-key cycle larger than that
    /// still gets one file); `None`: one file per dependency layer.
    pub tables_per_file: Option<usize>,
    /// Put the blockers' fixes first and include the tables they unblock.
    pub with_fixes: bool,
    /// Shards of the root's colocation group (`distribution.shard_count`).
    pub shard_count: Option<u32>,
}

/// One file of the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// `YYYYMMDDHHMMSS_name.ext`.
    pub name: String,
    pub contents: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    #[error("--tables-per-file must be at least 1")]
    ZeroTablesPerFile,
    #[error(
        "the foreign-key cycle {tables} mixes distribution columns ({columns}), which one [distribute] step cannot say"
    )]
    MixedColumnCycle { tables: String, columns: String },
    #[error("no migration version is left after {0}")]
    OutOfVersions(MigrationId),
    #[error(
        "{0}: a backslash right before '?' cannot be written for knex, which turns every '?' into a bind parameter"
    )]
    KnexQuestionMark(String),
    /// Files of the chain convert tables of the plan otherwise than the plan does.
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
}

fn conflicts_message(conflicts: &[Conflict]) -> String {
    match conflicts {
        [c] => format!(
            "the chain converts {} differently from the plan: {c}",
            c.table
        ),
        _ => format!(
            "the chain converts {} tables differently from the plan: {}",
            conflicts.len(),
            conflicts
                .iter()
                .map(|c| format!("{}: {c}", c.table))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

impl GenerateError {
    pub fn hint(&self) -> Option<Cow<'static, str>> {
        let hint = match self {
            GenerateError::MixedColumnCycle { .. } => {
                "use --format sql (or knex), where each table carries its own column"
            }
            GenerateError::KnexQuestionMark(_) => "use --format sql",
            GenerateError::Conflicts(_) => {
                "generate writes nothing while they disagree: change or remove the file (roll it back first if it ran), or set the table's role or column in colocate.toml to what the file does"
            }
            _ => return None,
        };
        Some(hint.into())
    }
}

/// What one run writes, and how much of the plan the chain covered already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub files: Vec<GeneratedFile>,
    /// Tables of the set that the chain converts already, as planned.
    pub covered_tables: usize,
    /// Files of the chain that cover part of the plan.
    pub covering_files: usize,
}

/// Write the plan as a whole migration set, as into a directory and a chain without any of it:
/// [`generate_over`] with an empty chain.
pub fn generate(
    schema: &Schema,
    plan: &Plan,
    opts: &GenerateOptions,
    newest: Option<MigrationId>,
    now: MigrationId,
) -> Result<Vec<GeneratedFile>, GenerateError> {
    generate_over(schema, plan, opts, &Chain::default(), newest, now).map(|g| g.files)
}

/// Write what of the plan `chain` does not cover yet as a migration set (no file when it covers
/// everything). `newest` is the newest version already in the migration directories (and the
/// output directory); the first file gets `now` or the second after `newest`, whichever is
/// later, and each next file the second after. A table the chain converts otherwise than the
/// plan is an error listing every such table with its file, and nothing is written.
pub fn generate_over(
    schema: &Schema,
    plan: &Plan,
    opts: &GenerateOptions,
    chain: &Chain,
    newest: Option<MigrationId>,
    now: MigrationId,
) -> Result<Generated, GenerateError> {
    if opts.tables_per_file == Some(0) {
        return Err(GenerateError::ZeroTablesPerFile);
    }
    let before = schema;
    // With fixes, the set converts the schema as it is once they ran.
    let (schema, plan, fixes) = match (opts.with_fixes, &plan.fixed, &plan.fixed_schema) {
        (true, Some(fixed), Some(model)) => (&**model, &**fixed, plan.fixes.as_slice()),
        _ => (schema, plan, &[][..]),
    };
    let fixable = if opts.with_fixes {
        before_fixable(plan, fixes)
    } else {
        Default::default()
    };
    let sel = Selection::new(plan, before, fixes, fixable);
    let cov = Coverage::new(plan, &sel, chain).map_err(GenerateError::Conflicts)?;
    let files = layout(schema, plan, &sel, &cov, opts)?;
    let mut out = Generated {
        files: Vec::with_capacity(files.len()),
        covered_tables: cov.tables.len(),
        covering_files: cov.files.len(),
    };
    if files.is_empty() {
        return Ok(out);
    }
    let mut id = match newest {
        Some(n) if n >= now => n
            .checked_next_second()
            .ok_or(GenerateError::OutOfVersions(n))?,
        _ => now,
    };
    let w = Writer {
        schema,
        before,
        sel: &sel,
        shard_count: opts.shard_count,
        chain_fixes: &cov.fixes,
    };
    // The chain's tables count as converted by earlier files: keys to them wait in the journal
    // as keys to an earlier file's tables do, and the cleanup covers them too.
    let mut converted: Vec<QualifiedName> = plan
        .tables
        .iter()
        .filter(|t| cov.tables.contains(&t.name))
        .map(|t| t.name.clone())
        .collect();
    for (i, f) in files.iter().enumerate() {
        if i > 0 {
            id = id
                .checked_next_second()
                .ok_or(GenerateError::OutOfVersions(id))?;
        }
        let mut header = vec![format!(
            "Generated by `colocate generate`: {}.",
            f.describe()
        )];
        if i == 0 {
            header.extend(sel.left_out_lines());
        }
        let earlier: Vec<QualifiedName> = converted.clone();
        converted.extend(f.tables().iter().cloned());
        let around = Around { earlier: &earlier };
        let sql_file = || {
            let mut file = w.sql_file(f, &header, &converted, &around);
            file.header.push(chain::MARKER_INTRO.into());
            file.header
                .extend(covers(&w, f).iter().map(Covered::marker));
            file
        };
        let (ext, contents) = match (opts.format, f) {
            (SetFormat::Toml, File::Fixes) | (SetFormat::Sql, _) => {
                ("sql", sql_file().render_sql())
            }
            (SetFormat::Toml, _) => ("toml", w.toml_file(f, &header)),
            (SetFormat::Knex, _) => {
                let file = sql_file();
                if file.backslash_question_mark() {
                    return Err(GenerateError::KnexQuestionMark(format!(
                        "{id}_{}.cjs",
                        f.slug()
                    )));
                }
                ("cjs", file.render_knex())
            }
        };
        out.files.push(GeneratedFile {
            name: format!("{id}_{}.{ext}", f.slug()),
            contents,
        });
    }
    Ok(out)
}

/// The tables the fixes let convert: those a fix changes that the plan after them converts.
fn before_fixable(
    fixed: &Plan,
    fixes: &[crate::plan::Fix],
) -> std::collections::BTreeSet<QualifiedName> {
    fixes
        .iter()
        .flat_map(|f| f.changes.iter().map(|c| c.table().clone()))
        .filter(|t| fixed.table(t).is_some_and(|p| !p.blocked))
        .collect()
}

/// What a file of the set does, as its markers say it.
fn covers(w: &Writer<'_>, f: &File) -> Vec<Covered> {
    match f {
        File::Fixes => w
            .sel
            .applied_fixes()
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| !w.chain_fixes.contains(id))
            .map(Covered::Fix)
            .collect(),
        File::Extension => vec![Covered::Extension],
        File::Reference(tables) => tables
            .iter()
            .map(|t| Covered::Table {
                table: t.clone(),
                conversion: Conversion::Reference,
            })
            .collect(),
        File::Distribute { tables, .. } => tables
            .iter()
            .map(|t| {
                let with = match (w.role(t), &w.sel.root) {
                    (Role::Distributed, Some(root)) => root.clone(),
                    _ => t.clone(),
                };
                Covered::Table {
                    table: t.clone(),
                    conversion: Conversion::Distributed {
                        column: w.sel.column(t).unwrap_or_default().to_string(),
                        with,
                    },
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests;
