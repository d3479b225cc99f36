//! One migration file parsed: its up and down sections of SQL, or the declarative step of a
//! `.toml` file.
//!
//! SPEC:
//! - Body: `-- migrate:up` then SQL, optionally `-- migrate:down` then SQL. Either marker may be
//!   followed by options: `transaction:false` (or `transaction:true`). An unknown option is an
//!   error naming file and line. Text before `-- migrate:up` that is not blank/comment is an error.
//!   Markers are matched on their own line, case-sensitive, leading whitespace allowed.
//!   Missing up marker, duplicate markers, down before up: errors naming the file.
//!   An up section without any statement (only blanks/comments) is an error (`EmptyUp`).
//!   A down marker with no statements means "no down part" (`down: None`).
//!   Both sections are run through `split_statements` at parse time so an unterminated dollar
//!   quote, string or block comment is reported at load time with the file and the line.
//! - `<14 digits>_<name>.toml` is a declarative step: exactly one of `[citus]`, `[reference]`,
//!   `[distribute]`; an unknown key, a second section or an empty table list is an error naming
//!   the file (and the line, where there is one).
//!
//! Markers follow dbmate (`--` then optional blanks then `migrate:up`), so files written for
//! dbmate load unchanged; a marker must be followed by a blank or the end of the line, so
//! `-- migrate:upgrade notes` stays a comment.

use std::path::{Path, PathBuf};

use super::{parse_file_name, Checksum, MigrationError, MigrationId};
use crate::declarative::DeclarativeStep;
use crate::split::{split_statements, Statement};

/// One part of a migration file: the SQL after a marker, up to the next marker or the end.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Section {
    /// The text as in the file, from the line after the marker.
    pub sql: String,
    /// Whether the part runs in a transaction (`transaction:false` turns it off).
    pub transaction: bool,
    /// 1-based line in the file where `sql` starts (the line after the marker).
    pub first_line: usize,
    /// `sql` split into statements; `line` counts in the file, `offset` in `sql`.
    pub statements: Vec<Statement>,
}

/// A parsed migration file: SQL sections, or a declarative step.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Migration {
    pub id: MigrationId,
    /// The part of the file name after `YYYYMMDDHHMMSS_`, without `.sql`.
    pub name: String,
    pub path: PathBuf,
    /// The migration directory the file was found in.
    pub dir: PathBuf,
    /// That directory as history records and `status` shows it: relative to the configuration
    /// file's directory (or the working directory, for `--dir`), so every machine that runs the
    /// chain records the same value. [`Migration::parse`] sets the path as given.
    pub source: String,
    pub checksum: Checksum,
    /// For a declarative step: a one-line SQL comment saying what it does, with no statements
    /// and `transaction: false` (the runner runs the step, not this text).
    pub up: Section,
    /// `None` when the file has no down marker or nothing below it. Always `Some` for a
    /// declarative step, whose down part is automatic.
    pub down: Option<Section>,
    /// The step of a `.toml` file; `None` for SQL migrations.
    pub step: Option<DeclarativeStep>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MarkerKind {
    Up,
    Down,
}

impl MarkerKind {
    fn label(self) -> &'static str {
        match self {
            MarkerKind::Up => "up",
            MarkerKind::Down => "down",
        }
    }
}

struct Marker {
    kind: MarkerKind,
    /// 1-based line of the marker.
    line: usize,
    /// Byte offset where the marker line starts.
    start: usize,
    /// Byte offset just past the marker line's newline.
    end: usize,
    transaction: bool,
}

/// If `line` (without its newline) is a marker: its kind and the text after it.
fn marker(line: &str) -> Option<(MarkerKind, &str)> {
    let rest = line.trim_start().strip_prefix("--")?.trim_start();
    let rest = rest.strip_prefix("migrate:")?;
    let (kind, rest) = if let Some(r) = rest.strip_prefix("up") {
        (MarkerKind::Up, r)
    } else {
        (MarkerKind::Down, rest.strip_prefix("down")?)
    };
    (rest.is_empty() || rest.starts_with(char::is_whitespace)).then_some((kind, rest))
}

impl Migration {
    /// Parse a migration file. `dir` is the migration directory, `path` the file inside it
    /// (named `YYYYMMDDHHMMSS_name.sql`), `bytes` its content.
    pub fn parse(dir: &Path, path: &Path, bytes: &[u8]) -> Result<Migration, MigrationError> {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let (id, name) =
            parse_file_name(&file_name).map_err(|reason| MigrationError::InvalidFileName {
                path: path.to_path_buf(),
                reason,
            })?;
        let text = std::str::from_utf8(bytes).map_err(|e| MigrationError::NotUtf8 {
            path: path.to_path_buf(),
            offset: e.valid_up_to(),
        })?;
        // Editors on Windows start UTF-8 files with a byte-order mark; the server never sees it
        // (the checksum still covers the file's bytes as written).
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if file_name.ends_with(".toml") {
            let step = DeclarativeStep::parse(text).map_err(|e| MigrationError::Declarative {
                path: path.to_path_buf(),
                line: e.line,
                message: e.message,
            })?;
            let described = |what: String| Section {
                sql: format!(
                    "{}\n",
                    crate::sqltext::comment(&format!("declarative step: {what}"))
                ),
                transaction: false,
                first_line: 1,
                statements: Vec::new(),
            };
            return Ok(Migration {
                id,
                name,
                path: path.to_path_buf(),
                dir: dir.to_path_buf(),
                source: dir.display().to_string(),
                checksum: Checksum::of(bytes),
                up: described(step.describe_up()),
                down: Some(described(step.describe_down())),
                step: Some(step),
            });
        }

        let (up, down) = find_markers(path, text)?;
        let preamble = &text[..up.start];
        if let Some(first) = split(path, preamble, 1)?.first() {
            return Err(MigrationError::SqlBeforeUp {
                path: path.to_path_buf(),
                line: first.line,
            });
        }
        let up_end = down.as_ref().map_or(text.len(), |d| d.start);
        let up = section(path, text, &up, up_end)?;
        if up.statements.is_empty() {
            return Err(MigrationError::EmptyUp {
                path: path.to_path_buf(),
            });
        }
        let down = match down {
            Some(d) => {
                Some(section(path, text, &d, text.len())?).filter(|s| !s.statements.is_empty())
            }
            None => None,
        };
        Ok(Migration {
            id,
            name,
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
            source: dir.display().to_string(),
            checksum: Checksum::of(bytes),
            up,
            down,
            step: None,
        })
    }

    /// `YYYYMMDDHHMMSS_name.sql`, or `.toml` for a declarative step.
    pub fn file_name(&self) -> String {
        let ext = if self.step.is_some() { "toml" } else { "sql" };
        format!("{}_{}.{ext}", self.id, self.name)
    }
}

/// Find the up marker and the optional down marker, checking their order and options.
fn find_markers(path: &Path, text: &str) -> Result<(Marker, Option<Marker>), MigrationError> {
    let mut up: Option<Marker> = None;
    let mut down: Option<Marker> = None;
    let mut start = 0;
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let line_no = index + 1;
        let end = start + raw.len();
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some((kind, options)) = marker(line) {
            let slot = match kind {
                MarkerKind::Up => &mut up,
                MarkerKind::Down => &mut down,
            };
            if let Some(first) = slot {
                return Err(MigrationError::DuplicateMarker {
                    path: path.to_path_buf(),
                    line: line_no,
                    marker: kind.label(),
                    first_line: first.line,
                });
            }
            let mut transaction = true;
            for option in options.split_whitespace() {
                transaction = match option {
                    "transaction:true" => true,
                    "transaction:false" => false,
                    other => {
                        return Err(MigrationError::UnknownOption {
                            path: path.to_path_buf(),
                            line: line_no,
                            marker: kind.label(),
                            option: other.to_string(),
                        })
                    }
                };
            }
            *slot = Some(Marker {
                kind,
                line: line_no,
                start,
                end,
                transaction,
            });
            if kind == MarkerKind::Down && up.is_none() {
                return Err(MigrationError::DownBeforeUp {
                    path: path.to_path_buf(),
                    line: line_no,
                });
            }
        }
        start = end;
    }
    match up {
        Some(up) => Ok((up, down)),
        None => Err(MigrationError::MissingUp {
            path: path.to_path_buf(),
        }),
    }
}

fn section(
    path: &Path,
    text: &str,
    marker: &Marker,
    end: usize,
) -> Result<Section, MigrationError> {
    let sql = &text[marker.end..end];
    let first_line = marker.line + 1;
    let statements = split(path, sql, first_line)?;
    if marker.transaction {
        if let Some((s, statement)) = statements
            .iter()
            .find_map(|s| transaction_control(&s.sql).map(|t| (s, t)))
        {
            return Err(MigrationError::TransactionControl {
                path: path.to_path_buf(),
                line: s.line,
                marker: marker.kind.label(),
                statement,
            });
        }
    }
    Ok(Section {
        sql: sql.to_string(),
        transaction: marker.transaction,
        first_line,
        statements,
    })
}

/// The statement's opening words when it begins, ends or prepares a transaction (`BEGIN`,
/// `START TRANSACTION`, `COMMIT`, `END`, `ROLLBACK`, `ABORT`, `PREPARE TRANSACTION`, and the
/// `… PREPARED` forms). Savepoints (`SAVEPOINT`, `RELEASE`, `ROLLBACK TO`) stay inside the
/// transaction and are allowed; a `DO` block or function body is one statement that starts
/// with another word.
fn transaction_control(sql: &str) -> Option<String> {
    let mut words = sql
        .split(|c: char| !c.is_ascii_alphabetic() && c != '_')
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_uppercase);
    let first = words.next()?;
    let second = words.next();
    let hit = match first.as_str() {
        "BEGIN" | "COMMIT" | "END" | "ABORT" => true,
        "ROLLBACK" => second.as_deref() != Some("TO"),
        "START" | "PREPARE" => second.as_deref() == Some("TRANSACTION"),
        _ => false,
    };
    hit.then(|| match (first.as_str(), second.as_deref()) {
        ("START" | "PREPARE", _) | ("COMMIT" | "ROLLBACK", Some("PREPARED")) => {
            format!("{first} {}", second.unwrap_or_default())
        }
        _ => first,
    })
}

/// Split text that starts on line `first_line` of the file, with statement lines and errors
/// counted in the file.
fn split(path: &Path, sql: &str, first_line: usize) -> Result<Vec<Statement>, MigrationError> {
    let shift = first_line - 1;
    match split_statements(sql) {
        Ok(mut statements) => {
            for s in &mut statements {
                s.line += shift;
            }
            Ok(statements)
        }
        Err(e) => {
            let error = e.shifted(shift);
            Err(MigrationError::Split {
                path: path.to_path_buf(),
                line: error.line(),
                error,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> MigrationId {
        MigrationId::parse(s).unwrap()
    }

    const FILE: &str = "20240101000000_create_users.sql";

    fn parse(text: &str) -> Result<Migration, MigrationError> {
        Migration::parse(Path::new("m"), &Path::new("m").join(FILE), text.as_bytes())
    }

    fn parse_err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn up_and_down() {
        let text = "-- migrate:up\ncreate table users (id int);\ncreate index on users (id);\n\n\
                    -- migrate:down\ndrop table users;\n";
        let m = parse(text).unwrap();
        assert_eq!(m.id, id("20240101000000"));
        assert_eq!(m.name, "create_users");
        assert_eq!(m.file_name(), FILE);
        assert_eq!(m.path, Path::new("m").join(FILE));
        assert_eq!(m.dir, Path::new("m"));
        assert_eq!(m.checksum, Checksum::of(text.as_bytes()));
        assert!(m.up.transaction);
        assert_eq!(m.up.first_line, 2);
        assert_eq!(
            m.up.sql,
            "create table users (id int);\ncreate index on users (id);\n\n"
        );
        let up: Vec<(&str, usize)> =
            m.up.statements
                .iter()
                .map(|s| (s.sql.as_str(), s.line))
                .collect();
        assert_eq!(
            up,
            [
                ("create table users (id int)", 2),
                ("create index on users (id)", 3)
            ]
        );
        // Offsets are relative to the section's sql.
        for s in &m.up.statements {
            assert!(m.up.sql[s.offset..].starts_with(&s.sql));
        }
        let down = m.down.unwrap();
        assert!(down.transaction);
        assert_eq!(down.first_line, 6);
        assert_eq!(down.sql, "drop table users;\n");
        assert_eq!(down.statements.len(), 1);
        assert_eq!(down.statements[0].line, 6);
        assert_eq!(down.statements[0].offset, 0);
    }

    #[test]
    fn transaction_options() {
        let m = parse(
            "-- migrate:up transaction:false\ncreate index concurrently i on t (a);\n\
             -- migrate:down   transaction:true\ndrop index concurrently i;\n",
        )
        .unwrap();
        assert!(!m.up.transaction);
        assert!(m.down.unwrap().transaction);
        let m = parse("-- migrate:up\nselect 1;\n-- migrate:down transaction:false\nselect 2;")
            .unwrap();
        assert!(m.up.transaction);
        assert!(!m.down.unwrap().transaction);
    }

    #[test]
    fn unknown_option() {
        assert_eq!(
            parse_err("\n-- migrate:up transaction:maybe\nselect 1;"),
            "m/20240101000000_create_users.sql:2: unknown option 'transaction:maybe' after -- migrate:up (expected transaction:false or transaction:true)"
        );
        assert_eq!(
            parse_err("-- migrate:up\nselect 1;\n-- migrate:down nontransactional\nselect 2;"),
            "m/20240101000000_create_users.sql:3: unknown option 'nontransactional' after -- migrate:down (expected transaction:false or transaction:true)"
        );
    }

    #[test]
    fn markers_allow_leading_blanks_and_dbmate_spacing() {
        let m = parse("  -- migrate:up\nselect 1;\n\t--migrate:down\nselect 2;\n").unwrap();
        assert_eq!(m.up.statements.len(), 1);
        assert_eq!(m.down.unwrap().statements[0].sql, "select 2");
    }

    #[test]
    fn marker_look_alikes_are_comments() {
        // Case-sensitive, and the marker word must end there.
        let m = parse(
            "-- migrate:up\nselect 1;\n-- MIGRATE:DOWN\n-- migrate:downgrade notes\nselect 2;\n",
        )
        .unwrap();
        assert_eq!(m.up.statements.len(), 2);
        assert!(m.down.is_none());
        assert_eq!(
            parse_err("-- migrate:upgrade\nselect 1;"),
            "m/20240101000000_create_users.sql: no -- migrate:up marker"
        );
        // A marker with text before it on the line is not a marker.
        assert_eq!(
            parse_err("select 1; -- migrate:up\nselect 2;"),
            "m/20240101000000_create_users.sql: no -- migrate:up marker"
        );
    }

    #[test]
    fn crlf_line_endings() {
        let text =
            "-- migrate:up transaction:false\r\ncreate table t (id int);\r\n\r\nselect 1;\r\n\
                    -- migrate:down\r\ndrop table t;\r\n";
        let m = parse(text).unwrap();
        assert!(!m.up.transaction);
        assert_eq!(m.up.first_line, 2);
        let up: Vec<(&str, usize)> =
            m.up.statements
                .iter()
                .map(|s| (s.sql.as_str(), s.line))
                .collect();
        assert_eq!(up, [("create table t (id int)", 2), ("select 1", 4)]);
        let down = m.down.unwrap();
        assert_eq!(down.first_line, 6);
        assert_eq!(down.statements[0].sql, "drop table t");
        assert_eq!(down.statements[0].line, 6);
    }

    #[test]
    fn missing_down_and_empty_down() {
        assert!(parse("-- migrate:up\nselect 1;\n").unwrap().down.is_none());
        assert!(parse("-- migrate:up\nselect 1;\n-- migrate:down\n")
            .unwrap()
            .down
            .is_none());
        assert!(parse(
            "-- migrate:up\nselect 1;\n-- migrate:down\n\n-- nothing to undo\n/* really */\n"
        )
        .unwrap()
        .down
        .is_none());
        // No newline after the marker at the end of the file.
        assert!(parse("-- migrate:up\nselect 1;\n-- migrate:down")
            .unwrap()
            .down
            .is_none());
    }

    #[test]
    fn empty_up() {
        let msg = "m/20240101000000_create_users.sql: the up section has no statements";
        assert_eq!(parse_err("-- migrate:up\n"), msg);
        assert_eq!(parse_err("-- migrate:up"), msg);
        assert_eq!(parse_err("-- migrate:up\n-- todo\n;\n"), msg);
        assert_eq!(
            parse_err("-- migrate:up\n\n-- migrate:down\ndrop table t;"),
            msg
        );
    }

    #[test]
    fn comments_and_blanks_before_up_are_fine() {
        let m = parse("-- created by hand\n\n/* multi\nline */\n-- migrate:up\nselect 1;").unwrap();
        assert_eq!(m.up.first_line, 6);
        assert_eq!(m.up.statements[0].line, 6);
    }

    #[test]
    fn sql_before_up() {
        let err =
            parse("-- header\n\ncreate table t (id int);\n-- migrate:up\nselect 1;").unwrap_err();
        assert_eq!(
            err.to_string(),
            "m/20240101000000_create_users.sql:3: sql before -- migrate:up"
        );
        assert!(err.hint().is_some());
    }

    #[test]
    fn missing_up() {
        let err = parse("create table t (id int);\n").unwrap_err();
        assert!(matches!(err, MigrationError::MissingUp { .. }));
        assert_eq!(
            err.to_string(),
            "m/20240101000000_create_users.sql: no -- migrate:up marker"
        );
        assert_eq!(
            parse_err(""),
            "m/20240101000000_create_users.sql: no -- migrate:up marker"
        );
    }

    #[test]
    fn duplicate_markers_and_down_before_up() {
        assert_eq!(
            parse_err("-- migrate:up\nselect 1;\n-- migrate:up\nselect 2;"),
            "m/20240101000000_create_users.sql:3: second -- migrate:up marker (the first is on line 1)"
        );
        assert_eq!(
            parse_err("-- migrate:up\nselect 1;\n-- migrate:down\nselect 2;\n-- migrate:down\n"),
            "m/20240101000000_create_users.sql:5: second -- migrate:down marker (the first is on line 3)"
        );
        assert_eq!(
            parse_err("\n-- migrate:down\nselect 2;\n-- migrate:up\nselect 1;"),
            "m/20240101000000_create_users.sql:2: -- migrate:down comes before -- migrate:up"
        );
    }

    #[test]
    fn unterminated_tokens_name_the_file_line() {
        let err = parse(
            "-- migrate:up\nselect 1;\n\ncreate function f() returns int as $body$\nselect 1;\n\
             -- migrate:down\ndrop function f;",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "m/20240101000000_create_users.sql:4: unterminated dollar quote $body$"
        );
        match &err {
            MigrationError::Split { line, error, .. } => {
                assert_eq!(*line, 4);
                assert_eq!(error.line(), 4);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_err("-- migrate:up\nselect 1;\n-- migrate:down\n\nselect 'x;\n"),
            "m/20240101000000_create_users.sql:5: unterminated string literal"
        );
        assert_eq!(
            parse_err("-- migrate:up\nselect \"x;\n"),
            "m/20240101000000_create_users.sql:2: unterminated quoted identifier"
        );
        // A block comment opened before the up marker.
        assert_eq!(
            parse_err("\n/* header\n-- migrate:up\nselect 1;"),
            "m/20240101000000_create_users.sql:2: unterminated block comment"
        );
    }

    #[test]
    fn statement_lines_count_in_the_file() {
        let text = "-- a comment\n-- migrate:up\n\ncreate function f() returns int language plpgsql as $$\n\
                    begin\n  return 1;\nend;\n$$;\n\nselect f();\n";
        let m = parse(text).unwrap();
        let lines: Vec<usize> = m.up.statements.iter().map(|s| s.line).collect();
        assert_eq!(lines, [4, 10]);
        assert_eq!(m.up.first_line, 3);
    }

    #[test]
    fn non_utf8_is_an_error() {
        let err = Migration::parse(
            Path::new("m"),
            &Path::new("m").join(FILE),
            b"-- migrate:up\nselect '\xff';",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "m/20240101000000_create_users.sql: not valid utf-8 (first bad byte at offset 22)"
        );
        assert_eq!(err.hint().as_deref(), Some("save the file as UTF-8"));
    }

    #[test]
    fn bad_file_name_in_parse() {
        let err = Migration::parse(
            Path::new("m"),
            Path::new("m/20241301000000_x.sql"),
            b"-- migrate:up\nselect 1;",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "m/20241301000000_x.sql: invalid migration file name: month 13 is not 1-12"
        );
        assert_eq!(
            err.hint().as_deref(),
            Some("rename it to YYYYMMDDHHMMSS_name.sql, or move it out of the migration directory")
        );
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_sql() {
        let text = "\u{feff}-- migrate:up\nselect 1;\n-- migrate:down\nselect 2;\n";
        let m = parse(text).unwrap();
        assert_eq!(m.up.statements[0].sql, "select 1");
        assert_eq!(m.checksum, Checksum::of(text.as_bytes()));
    }

    #[test]
    fn transaction_control_in_a_transactional_section_is_refused() {
        for (sql, words) in [
            ("commit", "COMMIT"),
            ("ROLLBACK", "ROLLBACK"),
            ("rollback and chain", "ROLLBACK"),
            ("begin", "BEGIN"),
            ("Begin Transaction Isolation Level Serializable", "BEGIN"),
            ("start transaction", "START TRANSACTION"),
            ("end", "END"),
            ("abort", "ABORT"),
            ("commit/* done */", "COMMIT"),
            ("prepare transaction 'x'", "PREPARE TRANSACTION"),
            ("commit prepared 'x'", "COMMIT PREPARED"),
        ] {
            let text = format!(
                "-- migrate:up\ncreate table a (id int);\n{sql};\ncreate table b (id int);\n"
            );
            assert_eq!(
                parse_err(&text),
                format!("m/{FILE}:3: {words} in a transactional -- migrate:up section would end the transaction colocate runs it in"),
                "{sql}"
            );
        }
        let down = "-- migrate:up\nselect 1;\n-- migrate:down\nselect 2;\n\ncommit;\n";
        assert!(parse_err(down).ends_with(":6: COMMIT in a transactional -- migrate:down section would end the transaction colocate runs it in"));
    }

    #[test]
    fn savepoints_bodies_and_non_transactional_sections_may_hold_them() {
        for sql in [
            "savepoint s; insert into t values (1); rollback to savepoint s; release s;",
            "rollback to s;",
            "do $$ begin perform 1; commit; end $$;",
            "create procedure p() language plpgsql as $$ begin commit; end $$;",
            "create function f() returns int begin atomic select 1; end;",
            "select 'commit';",
            "prepare q as select 1;",
            "start_x();",
        ] {
            let text = format!("-- migrate:up\n{sql}\n");
            assert!(parse(&text).is_ok(), "{sql}: {}", parse_err(&text));
        }
        let m = parse("-- migrate:up transaction:false\nbegin;\ncreate table t ();\ncommit;\n")
            .unwrap();
        assert_eq!(m.up.statements.len(), 3);
    }
}
