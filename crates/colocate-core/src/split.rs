//! Split SQL text into statements the way the server would see them.
//!
//! This is a lexer, not a parser: it knows just enough of PostgreSQL's lexical rules (strings,
//! quoted identifiers, dollar quotes, comments, parentheses and SQL-standard `BEGIN ATOMIC`
//! bodies) to find the semicolons that end statements. It follows psql, which splits the same way
//! before sending, so a file that works in psql splits the same here. Anything it cannot close
//! (an unterminated quote or comment) is an error with the line it started on, because the
//! server would otherwise report it against the wrong statement or not at all.

/// One statement of a SQL text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Statement {
    /// The statement, from its first significant character, without the trailing `;` and
    /// without trailing whitespace.
    pub sql: String,
    /// 1-based line of the statement's first character that is neither blank nor comment.
    pub line: usize,
    /// Byte offset of that character in the text that was split.
    pub offset: usize,
}

/// A quote or comment that is never closed. `line` is 1-based, where it opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("unterminated dollar quote ${tag}$ starting at line {line}")]
    UnterminatedDollarQuote { tag: String, line: usize },
    #[error("unterminated string literal starting at line {line}")]
    UnterminatedString { line: usize },
    #[error("unterminated quoted identifier starting at line {line}")]
    UnterminatedIdentifier { line: usize },
    #[error("unterminated block comment starting at line {line}")]
    UnterminatedComment { line: usize },
}

impl SplitError {
    /// The line where the unterminated quote or comment opened.
    pub fn line(&self) -> usize {
        match self {
            SplitError::UnterminatedDollarQuote { line, .. }
            | SplitError::UnterminatedString { line }
            | SplitError::UnterminatedIdentifier { line }
            | SplitError::UnterminatedComment { line } => *line,
        }
    }

    /// What is unterminated, without the line: for messages that print the line themselves
    /// (`file.sql:12: unterminated dollar quote $body$`).
    pub fn what(&self) -> String {
        match self {
            SplitError::UnterminatedDollarQuote { tag, .. } => {
                format!("unterminated dollar quote ${tag}$")
            }
            SplitError::UnterminatedString { .. } => "unterminated string literal".to_string(),
            SplitError::UnterminatedIdentifier { .. } => {
                "unterminated quoted identifier".to_string()
            }
            SplitError::UnterminatedComment { .. } => "unterminated block comment".to_string(),
        }
    }

    /// The same error with its line moved down by `lines`, for text that starts part way into a
    /// file.
    pub fn shifted(self, lines: usize) -> SplitError {
        match self {
            SplitError::UnterminatedDollarQuote { tag, line } => {
                SplitError::UnterminatedDollarQuote {
                    tag,
                    line: line + lines,
                }
            }
            SplitError::UnterminatedString { line } => {
                SplitError::UnterminatedString { line: line + lines }
            }
            SplitError::UnterminatedIdentifier { line } => {
                SplitError::UnterminatedIdentifier { line: line + lines }
            }
            SplitError::UnterminatedComment { line } => {
                SplitError::UnterminatedComment { line: line + lines }
            }
        }
    }
}

/// The 1-based line of byte `offset` in `text`. Offsets past the end count as the last line.
///
/// Note that the server reports error positions in characters, not bytes, counted from 1.
pub fn line_of_offset(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    1 + count_newlines(&text.as_bytes()[..end])
}

fn count_newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// Split `sql` into statements at the semicolons the server would treat as separators.
///
/// Semicolons do not separate inside quotes, comments, parentheses (rule actions) or
/// `BEGIN ATOMIC ... END` function bodies. Pieces holding only blanks and comments are dropped.
pub fn split_statements(sql: &str) -> Result<Vec<Statement>, SplitError> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut lines = LineCounter::default();
    // First significant byte of the statement being read.
    let mut start: Option<usize> = None;
    let mut paren_depth = 0usize;
    // Open BEGIN ATOMIC / CASE blocks that an END will close.
    let mut atomic_depth = 0usize;
    // The previous token was the word BEGIN (comments and blanks in between are fine).
    let mut after_begin = false;
    let mut i = 0;

    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'-' && next == Some(b'-') {
            i = b[i..]
                .iter()
                .position(|&x| x == b'\n')
                .map_or(b.len(), |p| i + p + 1);
            continue;
        }
        if c == b'/' && next == Some(b'*') {
            i = skip_block_comment(b, i).ok_or_else(|| SplitError::UnterminatedComment {
                line: line_of_offset(sql, i),
            })?;
            continue;
        }

        if c == b';' && paren_depth == 0 && atomic_depth == 0 {
            if let Some(s) = start.take() {
                out.push(statement(sql, s, i, &mut lines));
            }
            after_begin = false;
            i += 1;
            continue;
        }
        if start.is_none() {
            start = Some(i);
        }
        let was_begin = std::mem::take(&mut after_begin);
        match c {
            b'(' => {
                paren_depth += 1;
                i += 1;
            }
            b')' => {
                paren_depth = paren_depth.saturating_sub(1);
                i += 1;
            }
            b'\'' => {
                i = skip_quoted(b, i, b'\'', false).ok_or_else(|| {
                    SplitError::UnterminatedString {
                        line: line_of_offset(sql, i),
                    }
                })?;
            }
            b'"' => {
                i = skip_quoted(b, i, b'"', false).ok_or_else(|| {
                    SplitError::UnterminatedIdentifier {
                        line: line_of_offset(sql, i),
                    }
                })?;
            }
            b'$' => match dollar_tag_end(b, i) {
                Some(tag_end) => {
                    let delimiter = &sql[i..tag_end];
                    match sql[tag_end..].find(delimiter) {
                        Some(p) => i = tag_end + p + delimiter.len(),
                        None => {
                            return Err(SplitError::UnterminatedDollarQuote {
                                tag: delimiter[1..delimiter.len() - 1].to_string(),
                                line: line_of_offset(sql, i),
                            })
                        }
                    }
                }
                None => {
                    // `$1` (a parameter) or a stray `$`.
                    i += 1;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            },
            c if c.is_ascii_digit() => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.')
                {
                    i += 1;
                }
            }
            c if is_ident_start(c) => {
                let word_start = i;
                while i < b.len() && is_ident_cont(b[i]) {
                    i += 1;
                }
                let word = &sql[word_start..i];
                if word.eq_ignore_ascii_case("e") && b.get(i) == Some(&b'\'') {
                    let quote = i;
                    i = skip_quoted(b, quote, b'\'', true).ok_or_else(|| {
                        SplitError::UnterminatedString {
                            line: line_of_offset(sql, quote),
                        }
                    })?;
                } else if atomic_depth > 0 {
                    // Inside a SQL-standard body only CASE expressions also end with END.
                    if word.eq_ignore_ascii_case("case") {
                        atomic_depth += 1;
                    } else if word.eq_ignore_ascii_case("end") {
                        atomic_depth -= 1;
                    }
                } else if was_begin && word.eq_ignore_ascii_case("atomic") {
                    atomic_depth = 1;
                } else {
                    after_begin = word.eq_ignore_ascii_case("begin");
                }
            }
            _ => i += 1,
        }
    }
    if let Some(s) = start {
        out.push(statement(sql, s, b.len(), &mut lines));
    }
    Ok(out)
}

fn statement(sql: &str, start: usize, end: usize, lines: &mut LineCounter) -> Statement {
    Statement {
        sql: sql[start..end].trim_end().to_string(),
        line: lines.line_at(sql.as_bytes(), start),
        offset: start,
    }
}

/// Line numbers for increasing offsets without rescanning from the start each time.
#[derive(Default)]
struct LineCounter {
    pos: usize,
    newlines: usize,
}

impl LineCounter {
    fn line_at(&mut self, bytes: &[u8], pos: usize) -> usize {
        debug_assert!(pos >= self.pos, "offsets must increase");
        self.newlines += count_newlines(&bytes[self.pos..pos]);
        self.pos = pos;
        self.newlines + 1
    }
}

/// PostgreSQL treats every byte with the high bit set as a letter, so multi-byte UTF-8 characters
/// stay whole inside identifiers.
fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident_cont(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == b'$'
}

/// `b[start]` is the opening quote; returns the index after the closing one. A doubled quote is
/// an escaped quote; with `backslash` (E'' strings) a backslash escapes the next byte.
fn skip_quoted(b: &[u8], start: usize, quote: u8, backslash: bool) -> Option<usize> {
    let mut j = start + 1;
    while j < b.len() {
        match b[j] {
            b'\\' if backslash => j += 2,
            c if c == quote => {
                if b.get(j + 1) == Some(&quote) {
                    j += 2;
                } else {
                    return Some(j + 1);
                }
            }
            _ => j += 1,
        }
    }
    None
}

/// `b[start..]` begins with `/*`; returns the index after the matching `*/`. Block comments nest.
fn skip_block_comment(b: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut j = start;
    while j + 1 < b.len() {
        match (b[j], b[j + 1]) {
            (b'/', b'*') => {
                depth += 1;
                j += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                j += 2;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => j += 1,
        }
    }
    None
}

/// If a dollar-quote delimiter (`$$` or `$tag$`) starts at `b[start]`, the index after it.
/// A tag is an identifier without `$` that does not start with a digit, so `$1` is not one.
fn dollar_tag_end(b: &[u8], start: usize) -> Option<usize> {
    let mut j = start + 1;
    if b.get(j).is_some_and(|&c| is_ident_start(c)) {
        j += 1;
        while b
            .get(j)
            .is_some_and(|&c| is_ident_start(c) || c.is_ascii_digit())
        {
            j += 1;
        }
    }
    (b.get(j) == Some(&b'$')).then_some(j + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqls(text: &str) -> Vec<String> {
        split_statements(text)
            .unwrap()
            .into_iter()
            .map(|s| s.sql)
            .collect()
    }

    fn lines(text: &str) -> Vec<usize> {
        split_statements(text)
            .unwrap()
            .into_iter()
            .map(|s| s.line)
            .collect()
    }

    #[test]
    fn simple_statements() {
        assert_eq!(
            sqls("create table a (id int);\ncreate table b (id int);\n"),
            ["create table a (id int)", "create table b (id int)"]
        );
    }

    #[test]
    fn last_statement_without_semicolon() {
        assert_eq!(sqls("select 1; select 2"), ["select 1", "select 2"]);
    }

    #[test]
    fn empty_and_comment_only_pieces_are_dropped() {
        assert!(sqls("").is_empty());
        assert!(sqls("  \n\t\n").is_empty());
        assert!(sqls(";;\n;").is_empty());
        assert!(sqls("-- just a comment\n/* and another */\n").is_empty());
        assert_eq!(
            sqls("select 1;\n-- trailing comment\n;\n/* x */ ;"),
            ["select 1"]
        );
    }

    #[test]
    fn statement_starts_after_leading_comments() {
        let stmts =
            split_statements("-- header\n\n/* block\n comment */\n  select 1;\nselect 2;").unwrap();
        assert_eq!(
            stmts[0],
            Statement {
                sql: "select 1".into(),
                line: 5,
                offset: 34,
            }
        );
        assert_eq!(stmts[1].line, 6);
        assert_eq!(stmts[1].offset, 44);
    }

    #[test]
    fn comments_inside_a_statement_are_kept() {
        assert_eq!(
            sqls("select 1 -- one\n + 2 /* two */;"),
            ["select 1 -- one\n + 2 /* two */"]
        );
        // A trailing comment before the semicolon stays, trimmed of the blank after it.
        assert_eq!(sqls("select 1 -- c\n;"), ["select 1 -- c"]);
    }

    #[test]
    fn semicolons_in_line_comments_do_not_split() {
        assert_eq!(
            sqls("select 1 -- a; b\n;select 2"),
            ["select 1 -- a; b", "select 2"]
        );
    }

    #[test]
    fn nested_block_comments() {
        assert_eq!(
            sqls("/* outer /* inner; */ still; comment */ select 1; select 2"),
            ["select 1", "select 2"]
        );
        assert_eq!(
            sqls("select /* a /* b */ ; */ 1;"),
            ["select /* a /* b */ ; */ 1"]
        );
    }

    #[test]
    fn strings_with_semicolons_and_doubled_quotes() {
        assert_eq!(
            sqls("insert into t values ('a;b', 'it''s; fine'); select ';'"),
            ["insert into t values ('a;b', 'it''s; fine')", "select ';'"]
        );
        assert_eq!(sqls("select '';select ''''"), ["select ''", "select ''''"]);
    }

    #[test]
    fn backslash_is_literal_in_standard_strings() {
        // standard_conforming_strings: 'a\' is a complete string.
        assert_eq!(sqls(r"select 'a\'; select 2"), [r"select 'a\'", "select 2"]);
    }

    #[test]
    fn escape_strings() {
        assert_eq!(
            sqls(r"select E'\'; still'; select e'a\\'; select 3"),
            [r"select E'\'; still'", r"select e'a\\'", "select 3"]
        );
        assert_eq!(sqls(r"select E'it''s;\n'; x"), [r"select E'it''s;\n'", "x"]);
    }

    #[test]
    fn e_only_prefixes_a_string_when_it_is_a_whole_word() {
        // `somee'...'` is an identifier followed by a standard string: the backslash is literal.
        assert_eq!(
            sqls(r"select somee'\'; select 2"),
            [r"select somee'\'", "select 2"]
        );
        // Other prefixes are standard strings too.
        assert_eq!(
            sqls(r"select B'101', X'1f', N'a\'; select U&'d\0061t'"),
            [r"select B'101', X'1f', N'a\'", r"select U&'d\0061t'"]
        );
    }

    #[test]
    fn quoted_identifiers() {
        assert_eq!(
            sqls(r#"create table "id;x" ("a""b;" int); select 1"#),
            [r#"create table "id;x" ("a""b;" int)"#, "select 1"]
        );
        // Quoted keywords do not open BEGIN ATOMIC bodies.
        assert_eq!(sqls(r#"select "begin" "atomic"; select 2"#).len(), 2);
    }

    #[test]
    fn plpgsql_function_with_dollar_body() {
        let sql = "create function f() returns trigger language plpgsql as $$\n\
                   begin\n  new.updated_at := now();\n  return new;\nend;\n$$;\n\
                   create trigger t before update on x for each row execute function f();";
        let stmts = split_statements(sql).unwrap();
        assert_eq!(stmts.len(), 2);
        assert!(stmts[0].sql.ends_with("end;\n$$"));
        assert_eq!(stmts[1].line, 7);
    }

    #[test]
    fn tagged_dollar_quotes() {
        let sql = "create function f() returns text as $fn$ select $$;$$; $other$ $fn$ language sql;\nselect 2;";
        assert_eq!(
            sqls(sql),
            [
                "create function f() returns text as $fn$ select $$;$$; $other$ $fn$ language sql",
                "select 2"
            ]
        );
        assert_eq!(
            sqls("select $a_1$x;$a_1$;select 2"),
            ["select $a_1$x;$a_1$", "select 2"]
        );
        // Non-ASCII tags.
        assert_eq!(
            sqls("select $é$;$é$; select 2"),
            ["select $é$;$é$", "select 2"]
        );
    }

    #[test]
    fn dollar_quote_tags_must_match_exactly() {
        assert_eq!(
            sqls("select $a$ $b$; $A$; $a$; select 2"),
            ["select $a$ $b$; $A$; $a$", "select 2"]
        );
    }

    #[test]
    fn positional_parameters_are_not_dollar_quotes() {
        assert_eq!(
            sqls("prepare p as select $1, $2 from t where a = $10; select 2"),
            [
                "prepare p as select $1, $2 from t where a = $10",
                "select 2"
            ]
        );
        assert_eq!(sqls("select $1$2; select 2"), ["select $1$2", "select 2"]);
    }

    #[test]
    fn dollars_inside_identifiers_are_not_dollar_quotes() {
        assert_eq!(
            sqls("select a$b$ from t; select 2"),
            ["select a$b$ from t", "select 2"]
        );
        assert_eq!(sqls("select x$$ ; select 2"), ["select x$$", "select 2"]);
    }

    #[test]
    fn begin_atomic_body() {
        let sql = "create function add(a int, b int) returns int language sql\n\
                   begin atomic\n  select a + b;\n  select case when a > 0 then 1 else 2 end;\nend;\n\
                   select 2;";
        let stmts = split_statements(sql).unwrap();
        assert_eq!(stmts.len(), 2, "{stmts:#?}");
        assert!(stmts[0].sql.ends_with("end;\nend"));
        assert_eq!(stmts[1].sql, "select 2");
        assert_eq!(stmts[1].line, 6);
    }

    #[test]
    fn begin_atomic_with_nested_case_and_comments() {
        let sql = "CREATE PROCEDURE p() BEGIN /* c */ -- c\n ATOMIC\n\
                   INSERT INTO t VALUES (CASE WHEN true THEN CASE 1 WHEN 1 THEN 'a;' END END);\n\
                   UPDATE t SET x = CASE WHEN x THEN 1 END;\n\
                   END; SELECT 1";
        assert_eq!(sqls(sql).len(), 2);
        assert_eq!(sqls(sql)[1], "SELECT 1");
    }

    #[test]
    fn begin_alone_is_a_transaction_statement() {
        assert_eq!(
            sqls("begin; select 1; commit;"),
            ["begin", "select 1", "commit"]
        );
        assert_eq!(
            sqls("begin;atomic;select 1"),
            ["begin", "atomic", "select 1"]
        );
        assert_eq!(
            sqls("begin isolation level serializable; end; select 1"),
            ["begin isolation level serializable", "end", "select 1"]
        );
    }

    #[test]
    fn semicolons_inside_parentheses_do_not_split() {
        // Rules may hold several actions in parentheses; psql sends them as one statement.
        assert_eq!(
            sqls("create rule r as on insert to t do also (insert into a values (1); insert into b values (2)); select 1"),
            [
                "create rule r as on insert to t do also (insert into a values (1); insert into b values (2))",
                "select 1"
            ]
        );
        // A stray closing parenthesis does not swallow the rest.
        assert_eq!(sqls("select 1); select 2"), ["select 1)", "select 2"]);
    }

    #[test]
    fn crlf_line_endings() {
        let stmts = split_statements("select 1;\r\n\r\nselect 2;\r\n").unwrap();
        assert_eq!(stmts.len(), 2);
        assert_eq!(stmts[0].sql, "select 1");
        assert_eq!(stmts[1].sql, "select 2");
        assert_eq!(stmts[1].line, 3);
    }

    #[test]
    fn non_ascii_text() {
        assert_eq!(
            sqls("select 'ünïcødé;'; select résumé from café; select 3 -- ✓\n"),
            [
                "select 'ünïcødé;'",
                "select résumé from café",
                "select 3 -- ✓"
            ]
        );
    }

    #[test]
    fn statement_lines_and_offsets() {
        let text = "\n\nselect 1;\n  select\n2;\n\n-- c\nselect 3";
        let stmts = split_statements(text).unwrap();
        assert_eq!(lines(text), [3, 4, 8]);
        for s in &stmts {
            assert!(text[s.offset..].starts_with(&s.sql));
            assert_eq!(line_of_offset(text, s.offset), s.line);
        }
    }

    #[test]
    fn numbers_and_operators() {
        assert_eq!(
            sqls("select 1.5e3, 2::int, 3 / 4, 5 - 6; select 2"),
            ["select 1.5e3, 2::int, 3 / 4, 5 - 6", "select 2"]
        );
    }

    #[test]
    fn unterminated_dollar_quote() {
        let err = split_statements("select 1;\n\ncreate function f() as $body$\nbegin; end;\n")
            .unwrap_err();
        assert_eq!(
            err,
            SplitError::UnterminatedDollarQuote {
                tag: "body".into(),
                line: 3
            }
        );
        assert_eq!(
            err.to_string(),
            "unterminated dollar quote $body$ starting at line 3"
        );
        assert_eq!(err.what(), "unterminated dollar quote $body$");
        let err = split_statements("select $$ ;").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unterminated dollar quote $$ starting at line 1"
        );
    }

    #[test]
    fn unterminated_string() {
        let err = split_statements("select 1;\nselect 'abc;\n").unwrap_err();
        assert_eq!(err, SplitError::UnterminatedString { line: 2 });
        assert_eq!(
            err.to_string(),
            "unterminated string literal starting at line 2"
        );
        // An escaped quote does not close an E'' string.
        let err = split_statements("\n\nselect E'abc\\';").unwrap_err();
        assert_eq!(err, SplitError::UnterminatedString { line: 3 });
        // A trailing backslash in an E'' string at the end of input.
        let err = split_statements("select E'\\").unwrap_err();
        assert_eq!(err, SplitError::UnterminatedString { line: 1 });
        let err = split_statements("select 'it''").unwrap_err();
        assert_eq!(err, SplitError::UnterminatedString { line: 1 });
    }

    #[test]
    fn unterminated_identifier() {
        let err = split_statements("select 1;\n\n\nselect \"id;x").unwrap_err();
        assert_eq!(err, SplitError::UnterminatedIdentifier { line: 4 });
        assert_eq!(
            err.to_string(),
            "unterminated quoted identifier starting at line 4"
        );
    }

    #[test]
    fn unterminated_comment() {
        let err = split_statements("select 1;\n/* outer /* inner */\nselect 2;").unwrap_err();
        assert_eq!(err, SplitError::UnterminatedComment { line: 2 });
        assert_eq!(
            err.to_string(),
            "unterminated block comment starting at line 2"
        );
        assert_eq!(sqls("select 4 / 2"), ["select 4 / 2"]);
        let err = split_statements("/*").unwrap_err();
        assert_eq!(err, SplitError::UnterminatedComment { line: 1 });
    }

    #[test]
    fn shifted_errors_keep_their_kind() {
        let err = SplitError::UnterminatedDollarQuote {
            tag: "x".into(),
            line: 2,
        }
        .shifted(10);
        assert_eq!(err.line(), 12);
        assert_eq!(err.what(), "unterminated dollar quote $x$");
        assert_eq!(
            SplitError::UnterminatedString { line: 1 }.shifted(1).line(),
            2
        );
        assert_eq!(
            SplitError::UnterminatedIdentifier { line: 1 }
                .shifted(2)
                .line(),
            3
        );
        assert_eq!(
            SplitError::UnterminatedComment { line: 1 }
                .shifted(3)
                .line(),
            4
        );
    }

    #[test]
    fn line_of_offset_counts_from_one() {
        let text = "a\nbc\n\nd";
        assert_eq!(line_of_offset(text, 0), 1);
        assert_eq!(line_of_offset(text, 1), 1);
        assert_eq!(line_of_offset(text, 2), 2);
        assert_eq!(line_of_offset(text, 5), 3);
        assert_eq!(line_of_offset(text, 6), 4);
        assert_eq!(line_of_offset(text, 1000), 4);
        assert_eq!(line_of_offset("", 0), 1);
    }

    /// Cutting a valid script anywhere never panics: it splits or reports an unterminated token.
    #[test]
    fn every_prefix_splits_or_errors_without_panicking() {
        let text = "-- c\ncreate function f() returns int as $f$ select 1; $f$ language sql;\n\
                    select E'\\'é', \"q\"\"x\", $1, /* a /* b */ */ 'x''y';\n\
                    create function g() returns int language sql begin atomic select case when true then 1 end; end;";
        for end in 0..=text.len() {
            if text.is_char_boundary(end) {
                let _ = split_statements(&text[..end]);
            }
        }
        assert_eq!(split_statements(text).unwrap().len(), 3);
    }
}
