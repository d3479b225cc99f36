//! The chain `generate` writes into, read back: what the migrations already in the output
//! directory and the other migration directories convert, applied or pending, so that a second
//! run writes only what they do not cover yet (and nothing when they cover it all).
//!
//! Two kinds of files say what they do. Declarative steps (`.toml`) are parsed as `migrate`
//! parses them. The `.sql` and `.cjs` files generate itself writes carry, in their header
//! comment, one `colocate:covers` line per thing they do: a JSON value written so that it is
//! inert in every comment syntax ([`crate::sqltext::inert`] leaves it as it is), read back here
//! without parsing any SQL or JavaScript. Every other file (the application's own migrations) is
//! not read: what it does is not known, so it covers nothing.
//!
//! The comparison itself ([`Coverage`]) lives with the selection in `mod.rs`; this module only
//! turns files into [`Covered`] items and back.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::declarative::DeclarativeStep;
use crate::migration::MigrationId;
use crate::schema::QualifiedName;

/// What starts a marker line in a generated file's header comment.
pub const MARKER: &str = "colocate:covers ";

/// The header line before the markers, saying what they are for.
pub(super) const MARKER_INTRO: &str =
    "What this file converts, read back by the next `colocate generate` (keep these lines):";

/// One thing a file of the chain does that a plan may ask for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Covered {
    /// Creates the citus extension.
    Extension,
    /// Converts `table` as `conversion` says.
    Table {
        table: QualifiedName,
        conversion: Conversion,
    },
    /// Applies one of the planner's automatic fixes.
    Fix(FixId),
}

/// What a table becomes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Conversion {
    Reference,
    /// Distributed by `column` in the colocation group of `with`: the root, which names itself.
    Distributed {
        column: String,
        with: QualifiedName,
    },
}

impl Conversion {
    /// What a file or the plan does with `table`, as a verb phrase (`distributes it by tenant,
    /// colocated with public.tenants`).
    pub fn describe(&self, table: &QualifiedName) -> String {
        match self {
            Conversion::Reference => "makes it a reference table".into(),
            Conversion::Distributed { column, with } if with == table => format!(
                "distributes it by {} as the root of its colocation group",
                crate::schema::display_ident(column)
            ),
            Conversion::Distributed { column, with } => format!(
                "distributes it by {}, colocated with {with}",
                crate::schema::display_ident(column)
            ),
        }
    }
}

/// One automatic fix, by the table it is for, its finding's code and its SQL (a fix whose SQL
/// changed since, because the schema did, is another fix).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FixId {
    pub table: QualifiedName,
    pub code: String,
    /// The first 16 hex digits of the SHA-256 of the fix's SQL.
    pub sha256: String,
}

impl FixId {
    pub fn new(table: &QualifiedName, code: &str, sql: &str) -> FixId {
        let digest = Sha256::digest(sql.as_bytes());
        let sha256: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        FixId {
            table: table.clone(),
            code: code.to_string(),
            sha256,
        }
    }
}

/// A file of the chain that says what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainFile {
    pub path: PathBuf,
    pub covers: Vec<Covered>,
}

/// The files of the chain that say what they do, in the order read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chain {
    pub files: Vec<ChainFile>,
    /// `.sql`/`.cjs` files an earlier version of generate wrote, before it marked what each
    /// does: they cover nothing, and the caller says so.
    pub unmarked: Vec<PathBuf>,
}

/// A file of the chain that cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ChainError {
    pub path: PathBuf,
    pub message: String,
}

/// A marker as its JSON holds it. Tables are `[schema, name]`, exactly.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Marker {
    Extension,
    Reference {
        table: (String, String),
    },
    Distribute {
        table: (String, String),
        column: String,
        /// The root of the colocation group; omitted for the root itself.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        colocate_with: Option<(String, String)>,
    },
    Fix {
        table: (String, String),
        code: String,
        sha256: String,
    },
}

fn pair(q: &QualifiedName) -> (String, String) {
    (q.schema.clone(), q.name.clone())
}

fn name((schema, name): (String, String)) -> QualifiedName {
    QualifiedName::new(schema, name)
}

impl Covered {
    /// The marker line (without the comment syntax) that says this in a generated file.
    pub fn marker(&self) -> String {
        let m = match self {
            Covered::Extension => Marker::Extension,
            Covered::Table {
                table,
                conversion: Conversion::Reference,
            } => Marker::Reference { table: pair(table) },
            Covered::Table {
                table,
                conversion: Conversion::Distributed { column, with },
            } => Marker::Distribute {
                table: pair(table),
                column: column.clone(),
                colocate_with: (with != table).then(|| pair(with)),
            },
            Covered::Fix(f) => Marker::Fix {
                table: pair(&f.table),
                code: f.code.clone(),
                sha256: f.sha256.clone(),
            },
        };
        // Serializing plain strings and tuples cannot fail.
        let json = serde_json::to_string(&m).unwrap_or_default();
        format!("{MARKER}{}", inert_json(&json))
    }

    /// Read a marker back: the text after [`MARKER`].
    fn parse_marker(json: &str) -> Result<Covered, String> {
        let m: Marker = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Ok(match m {
            Marker::Extension => Covered::Extension,
            Marker::Reference { table } => Covered::Table {
                table: name(table),
                conversion: Conversion::Reference,
            },
            Marker::Distribute {
                table,
                column,
                colocate_with,
            } => {
                let table = name(table);
                let with = colocate_with.map(name).unwrap_or_else(|| table.clone());
                Covered::Table {
                    table,
                    conversion: Conversion::Distributed { column, with },
                }
            }
            Marker::Fix {
                table,
                code,
                sha256,
            } => Covered::Fix(FixId {
                table: name(table),
                code,
                sha256,
            }),
        })
    }
}

/// JSON text with every character that could end or open a comment, or that a comment would
/// show escaped, written as a `\u` escape instead: control and non-ASCII characters, `/` and
/// `*`. Outside strings JSON text has none of them, and inside a string the escape means the
/// same character, so the value is unchanged and [`crate::sqltext::inert`] leaves the text as
/// it is: a marker reads back exactly, whatever the names in it.
fn inert_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if (' '..='~').contains(&c) && c != '/' && c != '*' {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// The steps of a declarative file, as covered items.
fn step_covers(step: &DeclarativeStep) -> Vec<Covered> {
    match step {
        DeclarativeStep::Extension => vec![Covered::Extension],
        DeclarativeStep::Reference { tables } => tables
            .iter()
            .map(|t| Covered::Table {
                table: t.clone(),
                conversion: Conversion::Reference,
            })
            .collect(),
        DeclarativeStep::Distribute { column, tables, .. } => {
            let with = step.root().cloned();
            tables
                .iter()
                .map(|t| Covered::Table {
                    table: t.clone(),
                    conversion: Conversion::Distributed {
                        column: column.clone(),
                        with: with.clone().unwrap_or_else(|| t.clone()),
                    },
                })
                .collect()
        }
    }
}

impl ChainFile {
    /// What the file at `path` (its text `text`) does, if it says: a declarative step, or a
    /// `.sql`/`.cjs`/`.js` file with markers. `None` for any other file. A step that does not
    /// parse, or a marker that does not read back, is an error naming the file.
    pub fn read(path: &Path, text: &str) -> Result<Option<ChainFile>, ChainError> {
        let err = |message: String| ChainError {
            path: path.to_path_buf(),
            message,
        };
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let covers = match ext {
            "toml" => {
                let step = DeclarativeStep::parse(text).map_err(|e| {
                    err(match e.line {
                        Some(l) => format!("line {l}: {}", e.message),
                        None => e.message,
                    })
                })?;
                step_covers(&step)
            }
            "sql" | "cjs" | "js" => {
                let mut covers = Vec::new();
                for (i, line) in header(text) {
                    if let Some(json) = line.strip_prefix(MARKER) {
                        let c = Covered::parse_marker(json).map_err(|e| {
                            err(format!(
                                "line {}: cannot read the `{}` line back ({e})",
                                i + 1,
                                MARKER.trim_end()
                            ))
                        })?;
                        covers.push(c);
                    }
                }
                covers
            }
            _ => return Ok(None),
        };
        if covers.is_empty() {
            return Ok(None);
        }
        Ok(Some(ChainFile {
            path: path.to_path_buf(),
            covers,
        }))
    }
}

/// Whether `text` is a `.sql`/`.cjs` file generate wrote without markers (before it marked
/// what its files do): its header starts as every generated file's does.
fn unmarked_generated(text: &str) -> bool {
    header(text)
        .next()
        .is_some_and(|(_, l)| l.starts_with("Generated by `colocate generate`"))
        && !header(text).any(|(_, l)| l.starts_with(MARKER))
}

/// The lines of a file's leading comment, each without its comment syntax (`--` or `//` and one
/// space), with their index: up to the first line that is neither a comment nor blank, or the
/// dbmate `-- migrate:` line.
fn header(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .take_while(|(_, l)| {
            let l = l.trim_end();
            l.is_empty()
                || (l.starts_with("--") && !l.starts_with("-- migrate:"))
                || l.starts_with("//")
        })
        .filter_map(|(i, l)| {
            let l = l.trim_end();
            l.strip_prefix("-- ")
                .or_else(|| l.strip_prefix("// "))
                .map(|rest| (i, rest))
        })
}

impl Chain {
    /// Read every directory that exists (each once), its migration files (a version, `_`, a
    /// name) sorted by name. Files of any runner are looked at; only those that say what they
    /// do are kept.
    pub fn load(dirs: &[PathBuf]) -> Result<Chain, ChainError> {
        let mut seen: Vec<PathBuf> = Vec::new();
        let mut chain = Chain::default();
        for d in dirs {
            let Ok(entries) = std::fs::read_dir(d) else {
                continue;
            };
            let canonical = d.canonicalize().unwrap_or_else(|_| d.clone());
            if seen.contains(&canonical) {
                continue;
            }
            seen.push(canonical);
            let mut paths: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file() && is_versioned(p))
                .collect();
            paths.sort();
            for p in paths {
                let bytes = std::fs::read(&p).map_err(|e| ChainError {
                    path: p.clone(),
                    message: format!("cannot read it: {e}"),
                })?;
                // A file that is not UTF-8 is no file generate wrote, nor a step.
                let Ok(text) = String::from_utf8(bytes) else {
                    continue;
                };
                match ChainFile::read(&p, &text)? {
                    Some(f) => chain.files.push(f),
                    None if p.extension().is_some_and(|e| e != "toml")
                        && unmarked_generated(&text) =>
                    {
                        chain.unmarked.push(p)
                    }
                    None => {}
                }
            }
        }
        Ok(chain)
    }
}

fn is_versioned(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split_once('_'))
        .is_some_and(|(v, _)| MigrationId::parse(v).is_ok())
}

impl fmt::Display for Covered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Covered::Extension => f.write_str("the citus extension"),
            Covered::Table { table, conversion } => {
                write!(f, "{table}: {}", conversion.describe(table))
            }
            Covered::Fix(x) => write!(f, "{} [{}] fix {}", x.table, x.code, x.sha256),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqltext::{inert, tests::HOSTILE};

    fn q(s: &str) -> QualifiedName {
        QualifiedName::parse(s, "public")
    }

    fn all_kinds(t: QualifiedName) -> Vec<Covered> {
        vec![
            Covered::Extension,
            Covered::Table {
                table: t.clone(),
                conversion: Conversion::Reference,
            },
            Covered::Table {
                table: t.clone(),
                conversion: Conversion::Distributed {
                    column: "tenant".into(),
                    with: t.clone(),
                },
            },
            Covered::Table {
                table: q("users"),
                conversion: Conversion::Distributed {
                    column: t.name.clone(),
                    with: t.clone(),
                },
            },
            Covered::Fix(FixId::new(
                &t,
                "key-missing-distribution-column",
                "ALTER ...",
            )),
        ]
    }

    #[test]
    fn markers_read_back_exactly_and_stay_inert_whatever_the_names() {
        let mut names: Vec<QualifiedName> =
            HOSTILE.iter().map(|h| QualifiedName::new(*h, *h)).collect();
        names.push(QualifiedName::new(
            "Billing Ops",
            "Invoice \"Lines\".v2 ✓ 🚀",
        ));
        names.push(q("users"));
        for n in names {
            for c in all_kinds(n.clone()) {
                let line = c.marker();
                assert_eq!(inert(&line), line, "{line}");
                assert!(!line.contains("/*") && !line.contains("*/"), "{line}");
                assert!(line.is_ascii(), "{line}");
                for comment in ["-- ", "// "] {
                    let text = format!("{comment}{line}\n\n-- migrate:up\nSELECT 1;\n");
                    let f = ChainFile::read(Path::new("x/20240101000000_a.sql"), &text)
                        .unwrap()
                        .unwrap();
                    assert_eq!(f.covers, std::slice::from_ref(&c), "{line}");
                }
            }
        }
    }

    #[test]
    fn ordinary_markers_read_as_json() {
        let users = Covered::Table {
            table: q("users"),
            conversion: Conversion::Distributed {
                column: "tenant".into(),
                with: q("tenants"),
            },
        };
        assert_eq!(
            users.marker(),
            r#"colocate:covers {"distribute":{"table":["public","users"],"column":"tenant","colocate_with":["public","tenants"]}}"#
        );
        assert_eq!(
            Covered::Extension.marker(),
            r#"colocate:covers "extension""#
        );
        let root = Covered::Table {
            table: q("tenants"),
            conversion: Conversion::Distributed {
                column: "tenant".into(),
                with: q("tenants"),
            },
        };
        assert_eq!(
            root.marker(),
            r#"colocate:covers {"distribute":{"table":["public","tenants"],"column":"tenant"}}"#
        );
    }

    #[test]
    fn only_the_header_is_read_and_other_files_cover_nothing() {
        let marker = Covered::Extension.marker();
        // After the header (in a statement's comment, or the up part), a marker is not one.
        let late = format!("-- a migration\n\n-- migrate:up\n-- {marker}\nSELECT 1;\n");
        let p = Path::new("d/20240101000000_a.sql");
        assert_eq!(ChainFile::read(p, &late).unwrap(), None);
        let knex = format!("// {marker}\nexports.up = async function (knex) {{}};\n// {marker}\n");
        let f = ChainFile::read(Path::new("d/20240101000000_a.cjs"), &knex)
            .unwrap()
            .unwrap();
        assert_eq!(f.covers.len(), 1);
        // The application's migrations, and files of no known kind.
        let plain = "-- migrate:up\nCREATE EXTENSION citus;\n";
        assert_eq!(ChainFile::read(p, plain).unwrap(), None);
        let md = format!("-- {marker}\n");
        assert_eq!(
            ChainFile::read(Path::new("d/20240101000000_a.md"), &md).unwrap(),
            None
        );
    }

    #[test]
    fn a_bad_marker_or_step_is_an_error_naming_the_file_and_line() {
        let p = Path::new("d/20240101000000_a.sql");
        let text = "-- Generated\n-- colocate:covers {\"distribute\":{\"table\":[\"public\"]}}\n";
        let e = ChainFile::read(p, text).unwrap_err();
        assert_eq!(e.path, p);
        assert!(
            e.to_string().starts_with(
                "d/20240101000000_a.sql: line 2: cannot read the `colocate:covers` line back ("
            ),
            "{e}"
        );
        let e =
            ChainFile::read(Path::new("d/20240101000000_b.toml"), "[distribute]\n").unwrap_err();
        assert!(
            e.to_string().starts_with("d/20240101000000_b.toml: "),
            "{e}"
        );
    }

    #[test]
    fn declarative_steps_cover_their_tables_with_their_root() {
        let step = "[distribute]\ncolumn = \"tenant\"\ncolocate_with = \"tenants\"\ntables = [\"tenants\", \"users\"]\n";
        let f = ChainFile::read(Path::new("d/20240101000000_a.toml"), step)
            .unwrap()
            .unwrap();
        let with = |t: &str| Covered::Table {
            table: q(t),
            conversion: Conversion::Distributed {
                column: "tenant".into(),
                with: q("tenants"),
            },
        };
        assert_eq!(f.covers, [with("tenants"), with("users")]);
        let root = "[distribute]\ncolumn = \"tenant\"\ntables = [\"tenants\"]\n";
        let f = ChainFile::read(Path::new("d/20240101000000_a.toml"), root)
            .unwrap()
            .unwrap();
        assert_eq!(f.covers, [with("tenants")]);
        let ext = ChainFile::read(Path::new("d/1_x.toml"), "[citus]\nextension = true\n")
            .unwrap()
            .unwrap();
        assert_eq!(ext.covers, [Covered::Extension]);
    }

    #[test]
    fn load_reads_each_directory_once_and_skips_what_is_not_a_migration() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        std::fs::create_dir(&a).unwrap();
        std::fs::write(
            a.join("20240101000000_ext.toml"),
            "[citus]\nextension = true\n",
        )
        .unwrap();
        std::fs::write(
            a.join("20240101000001_r.sql"),
            format!("-- {}\n", Covered::Extension.marker()),
        )
        .unwrap();
        std::fs::write(a.join("README.toml"), "not toml at all [").unwrap();
        std::fs::write(
            a.join("20240101000002_app.sql"),
            "-- migrate:up\nSELECT 1;\n",
        )
        .unwrap();
        std::fs::write(
            a.join("20240101000003_old.sql"),
            "-- Generated by `colocate generate`: enable the citus extension.\n\n-- migrate:up\nSELECT 1;\n",
        )
        .unwrap();
        let chain = Chain::load(&[a.clone(), a.join("."), d.path().join("missing")]).unwrap();
        let names: Vec<String> = chain
            .files
            .iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["20240101000000_ext.toml", "20240101000001_r.sql"]);
        // A file an earlier generate wrote without markers is named apart.
        assert_eq!(chain.unmarked, [a.join("20240101000003_old.sql")]);
    }
}
