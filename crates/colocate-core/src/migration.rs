//! Migration files: `YYYYMMDDHHMMSS_name.sql` with dbmate-style sections, and declarative
//! Citus steps `YYYYMMDDHHMMSS_name.toml` (see [`crate::declarative`]).
//!
//! SPEC:
//! - `MigrationId`: the 14-digit timestamp prefix, validated as a real UTC date-time
//!   (month 1-12, day valid for the month incl. leap years, hour < 24, minute < 60, second < 60).
//!   Ordered, `Display` prints the 14 digits, `FromStr` parses exactly 14 digits.
//! - File names: `<14 digits>_<name>.sql`, name non-empty of `[A-Za-z0-9_-]`. Anything else in a
//!   migration directory is an error naming the file (dotfiles and sub-directories are ignored).
//!   `<14 digits>_<name>.toml` is a declarative step: exactly one of `[citus]`, `[reference]`,
//!   `[distribute]`; an unknown key, a second section or an empty table list is an error naming
//!   the file (and the line, where there is one).
//! - Body: `-- migrate:up` then SQL, optionally `-- migrate:down` then SQL. Either marker may be
//!   followed by options: `transaction:false` (or `transaction:true`). An unknown option is an
//!   error naming file and line. Text before `-- migrate:up` that is not blank/comment is an error.
//!   Markers are matched on their own line, case-sensitive, leading whitespace allowed.
//!   Missing up marker, duplicate markers, down before up: errors naming the file.
//!   An up section without any statement (only blanks/comments) is an error (`EmptyUp`).
//!   A down marker with no statements means "no down part" (`down: None`).
//!   Both sections are run through `split_statements` at parse time so an unterminated dollar
//!   quote, string or block comment is reported at load time with the file and the line.
//! - `Checksum`: SHA-256 of the file's bytes, hex `Display`, `from_hex`.
//! - `MigrationSet::load(dirs)`: reads every directory (missing dir → error naming it), merges by
//!   version; the same version twice (in one dir or across dirs) is an error naming both paths.
//!   Sorted by id.
//!
//! Markers follow dbmate (`--` then optional blanks then `migrate:up`), so files written for
//! dbmate load unchanged; a marker must be followed by a blank or the end of the line, so
//! `-- migrate:upgrade notes` stays a comment.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::declarative::DeclarativeStep;
use crate::split::{split_statements, SplitError, Statement};

// ---------------------------------------------------------------------------------------------
// MigrationId

/// A migration's version: its `YYYYMMDDHHMMSS` prefix, always a real UTC date-time.
///
/// Held as the 14-digit number, so numeric order is time order. The field is private so every
/// value has been validated; build one with [`MigrationId::parse`], [`MigrationId::from_u64`] or
/// [`MigrationId::from_unix_seconds`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MigrationId(u64);

/// Why a version is not a valid `YYYYMMDDHHMMSS` timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("'{0}' is not 14 digits (YYYYMMDDHHMMSS)")]
    NotFourteenDigits(String),
    #[error("month {0} is not 1-12")]
    Month(u32),
    #[error("day {day} does not exist in {year:04}-{month:02}")]
    Day { year: u32, month: u32, day: u32 },
    #[error("hour {0} is not 0-23")]
    Hour(u32),
    #[error("minute {0} is not 0-59")]
    Minute(u32),
    #[error("second {0} is not 0-59")]
    Second(u32),
}

const MAX_ID: u64 = 99_991_231_235_959;
/// 9999-12-31T23:59:59Z, the last second a 14-digit id can hold.
const MAX_UNIX_SECONDS: u64 = 253_402_300_799;

fn is_leap_year(year: u32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Year, month, day from days since 1970-01-01 (Howard Hinnant's `civil_from_days`, for
/// non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u32, u32) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

impl MigrationId {
    /// Parse exactly 14 ASCII digits that form a real date-time.
    pub fn parse(s: &str) -> Result<MigrationId, IdError> {
        if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdError::NotFourteenDigits(s.to_string()));
        }
        let n = s.bytes().fold(0u64, |n, b| n * 10 + u64::from(b - b'0'));
        MigrationId::from_u64(n)
    }

    /// The id whose 14 digits are `n` (zero-padded), if they form a real date-time.
    pub fn from_u64(n: u64) -> Result<MigrationId, IdError> {
        if n > MAX_ID {
            return Err(IdError::NotFourteenDigits(n.to_string()));
        }
        let part = |div: u64| ((n / div) % 100) as u32;
        MigrationId::from_parts(
            (n / 10_000_000_000) as u32,
            part(100_000_000),
            part(1_000_000),
            part(10_000),
            part(100),
            part(1),
        )
    }

    /// The id of a UTC date-time given by its fields.
    pub fn from_parts(
        year: u32,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
    ) -> Result<MigrationId, IdError> {
        if year > 9999 {
            return Err(IdError::NotFourteenDigits(year.to_string()));
        }
        if !(1..=12).contains(&month) {
            return Err(IdError::Month(month));
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(IdError::Day { year, month, day });
        }
        if hour > 23 {
            return Err(IdError::Hour(hour));
        }
        if minute > 59 {
            return Err(IdError::Minute(minute));
        }
        if second > 59 {
            return Err(IdError::Second(second));
        }
        Ok(MigrationId(
            u64::from(year) * 10_000_000_000
                + u64::from(month) * 100_000_000
                + u64::from(day) * 1_000_000
                + u64::from(hour) * 10_000
                + u64::from(minute) * 100
                + u64::from(second),
        ))
    }

    /// The id for a moment given as seconds since the Unix epoch, in UTC. Moments after
    /// 9999-12-31T23:59:59Z, which 14 digits cannot hold, give that last second.
    pub fn from_unix_seconds(secs: u64) -> MigrationId {
        let secs = secs.min(MAX_UNIX_SECONDS);
        let (year, month, day) = civil_from_days(secs / 86_400);
        let rem = secs % 86_400;
        MigrationId(
            year * 10_000_000_000
                + u64::from(month) * 100_000_000
                + u64::from(day) * 1_000_000
                + (rem / 3600) * 10_000
                + (rem % 3600 / 60) * 100
                + rem % 60,
        )
    }

    /// The 14 digits as a number, e.g. `20240101000000`.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// `(year, month, day, hour, minute, second)`.
    pub fn parts(self) -> (u32, u32, u32, u32, u32, u32) {
        let n = self.0;
        let part = |div: u64| ((n / div) % 100) as u32;
        (
            (n / 10_000_000_000) as u32,
            part(100_000_000),
            part(1_000_000),
            part(10_000),
            part(100),
            part(1),
        )
    }

    /// The following second, or `None` after 9999-12-31 23:59:59.
    pub fn checked_next_second(self) -> Option<MigrationId> {
        let (mut year, mut month, mut day, mut hour, mut minute, mut second) = self.parts();
        second += 1;
        if second == 60 {
            second = 0;
            minute += 1;
        }
        if minute == 60 {
            minute = 0;
            hour += 1;
        }
        if hour == 24 {
            hour = 0;
            day += 1;
        }
        if day > days_in_month(year, month) {
            day = 1;
            month += 1;
        }
        if month == 13 {
            month = 1;
            year += 1;
        }
        MigrationId::from_parts(year, month, day, hour, minute, second).ok()
    }

    /// The following second (for `new` when the current second is taken). Saturates at
    /// 9999-12-31 23:59:59; use [`MigrationId::checked_next_second`] to tell.
    pub fn next_second(self) -> MigrationId {
        self.checked_next_second().unwrap_or(self)
    }
}

impl fmt::Display for MigrationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:014}", self.0)
    }
}

impl fmt::Debug for MigrationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MigrationId({self})")
    }
}

impl FromStr for MigrationId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<MigrationId, IdError> {
        MigrationId::parse(s)
    }
}

impl Serialize for MigrationId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MigrationId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<MigrationId, D::Error> {
        let s = String::deserialize(deserializer)?;
        MigrationId::parse(&s).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------------
// Checksum

/// SHA-256 of a migration file's bytes, as recorded in the history table.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Checksum(pub [u8; 32]);

impl Checksum {
    pub fn of(bytes: &[u8]) -> Checksum {
        Checksum(Sha256::digest(bytes).into())
    }

    /// Parse 64 hex digits (either case).
    pub fn from_hex(s: &str) -> Option<Checksum> {
        fn nibble(c: u8) -> Option<u8> {
            match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                b'A'..=b'F' => Some(c - b'A' + 10),
                _ => None,
            }
        }
        let s = s.as_bytes();
        if s.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
            *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
        }
        Some(Checksum(out))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 64];
        for (i, b) in self.0.iter().enumerate() {
            buf[2 * i] = HEX[usize::from(b >> 4)];
            buf[2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
        // Only ASCII hex digits were written.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({self})")
    }
}

impl Serialize for Checksum {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Checksum {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Checksum, D::Error> {
        let s = String::deserialize(deserializer)?;
        Checksum::from_hex(&s)
            .ok_or_else(|| serde::de::Error::custom("expected 64 hex digits (sha-256)"))
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Why a migration file or directory cannot be loaded. Every variant names the file or
/// directory; messages are one line.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("migration directory {} does not exist", .path.display())]
    DirNotFound { path: PathBuf },
    #[error("migration directory {} is not a directory", .path.display())]
    NotADirectory { path: PathBuf },
    #[error("{}: cannot read: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: invalid migration file name: {reason}", .path.display())]
    InvalidFileName { path: PathBuf, reason: String },
    /// A `.toml` declarative step file that does not declare exactly one valid step.
    #[error(
        "{}{}: {message}",
        .path.display(),
        .line.map(|l| format!(":{l}")).unwrap_or_default()
    )]
    Declarative {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    #[error("{}: not valid utf-8 (first bad byte at offset {offset})", .path.display())]
    NotUtf8 { path: PathBuf, offset: usize },
    #[error("{}: no -- migrate:up marker", .path.display())]
    MissingUp { path: PathBuf },
    #[error(
        "{}:{line}: second -- migrate:{marker} marker (the first is on line {first_line})",
        .path.display()
    )]
    DuplicateMarker {
        path: PathBuf,
        line: usize,
        marker: &'static str,
        first_line: usize,
    },
    #[error("{}:{line}: -- migrate:down comes before -- migrate:up", .path.display())]
    DownBeforeUp { path: PathBuf, line: usize },
    #[error("{}:{line}: sql before -- migrate:up", .path.display())]
    SqlBeforeUp { path: PathBuf, line: usize },
    #[error(
        "{}:{line}: unknown option '{option}' after -- migrate:{marker} (expected transaction:false or transaction:true)",
        .path.display()
    )]
    UnknownOption {
        path: PathBuf,
        line: usize,
        marker: &'static str,
        option: String,
    },
    #[error("{}: the up section has no statements", .path.display())]
    EmptyUp { path: PathBuf },
    /// An unterminated quote or comment. `error` carries the same line (counted in the file),
    /// and is not a `#[source]` because the message already says everything it would.
    #[error("{}:{line}: {}", .path.display(), .error.what())]
    Split {
        path: PathBuf,
        line: usize,
        error: SplitError,
    },
    #[error(
        "version {version} appears twice: {} and {}",
        .first.display(),
        .second.display()
    )]
    DuplicateVersion {
        version: MigrationId,
        first: PathBuf,
        second: PathBuf,
    },
}

impl MigrationError {
    /// A short suggestion for the CLI's `hint:` line, where one helps.
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self {
            MigrationError::DirNotFound { .. } | MigrationError::NotADirectory { .. } => {
                "create it, or fix migration_dirs in colocate.toml (or --dir)"
            }
            MigrationError::InvalidFileName { .. } => {
                "rename it to YYYYMMDDHHMMSS_name.sql, or move it out of the migration directory"
            }
            MigrationError::Declarative { .. } => {
                "a step file holds exactly one of [citus] extension = true, [reference] tables = [...], or [distribute] column, colocate_with, tables (see docs/cli.md)"
            }
            MigrationError::NotUtf8 { .. } => "save the file as UTF-8",
            MigrationError::MissingUp { .. } => {
                "start the file with a line `-- migrate:up`, optionally followed later by `-- migrate:down`"
            }
            MigrationError::DuplicateMarker { .. } => {
                "a file has at most one -- migrate:up and one -- migrate:down section"
            }
            MigrationError::DownBeforeUp { .. } => "put the -- migrate:up section first",
            MigrationError::SqlBeforeUp { .. } => {
                "move it below the -- migrate:up line, or comment it out"
            }
            MigrationError::UnknownOption { .. } => {
                "write `-- migrate:up transaction:false` to run that part outside a transaction"
            }
            MigrationError::EmptyUp { .. } => "add the SQL to run below -- migrate:up",
            MigrationError::Split { .. } => "close the quote or comment that starts on that line",
            MigrationError::DuplicateVersion { .. } => {
                "rename one of them to a later, unused timestamp"
            }
            MigrationError::Io { .. } => return None,
        })
    }

    /// The file or directory the error is about (the second file for duplicate versions).
    pub fn path(&self) -> &Path {
        match self {
            MigrationError::DirNotFound { path }
            | MigrationError::NotADirectory { path }
            | MigrationError::Io { path, .. }
            | MigrationError::InvalidFileName { path, .. }
            | MigrationError::Declarative { path, .. }
            | MigrationError::NotUtf8 { path, .. }
            | MigrationError::MissingUp { path }
            | MigrationError::DuplicateMarker { path, .. }
            | MigrationError::DownBeforeUp { path, .. }
            | MigrationError::SqlBeforeUp { path, .. }
            | MigrationError::UnknownOption { path, .. }
            | MigrationError::EmptyUp { path }
            | MigrationError::Split { path, .. } => path,
            MigrationError::DuplicateVersion { second, .. } => second,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// File names

const NAME_FORMAT: &str = "expected YYYYMMDDHHMMSS_name.sql";

/// Split `YYYYMMDDHHMMSS_name.sql` (or a declarative step's `YYYYMMDDHHMMSS_name.toml`) into its
/// version and name, or say why it is not one.
pub fn parse_file_name(file_name: &str) -> Result<(MigrationId, String), String> {
    let Some(stem) = file_name
        .strip_suffix(".sql")
        .or_else(|| file_name.strip_suffix(".toml"))
    else {
        return Err(format!(
            "{NAME_FORMAT} (or .toml for a declarative step), but it ends in neither"
        ));
    };
    let Some((version, name)) = stem.split_once('_') else {
        return Err(format!(
            "{NAME_FORMAT}, but there is no '_' after the version"
        ));
    };
    let id = MigrationId::parse(version).map_err(|e| e.to_string())?;
    if name.is_empty() {
        return Err("the name after the version is empty".to_string());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "the name '{name}' contains {bad:?}; use only letters, digits, '_' and '-'"
        ));
    }
    Ok((id, name.to_string()))
}

// ---------------------------------------------------------------------------------------------
// Migration

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
    Ok(Section {
        sql: sql.to_string(),
        transaction: marker.transaction,
        first_line,
        statements: split(path, sql, first_line)?,
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

// ---------------------------------------------------------------------------------------------
// MigrationSet

/// Every migration of the configured directories, merged and sorted by version. Versions are
/// unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationSet {
    migrations: Vec<Migration>,
}

impl MigrationSet {
    /// Read every directory, in order. Entries are read sorted by name so the first error found
    /// is the same on every machine. Dotfiles and sub-directories are skipped; every other entry
    /// must be a migration file.
    pub fn load(dirs: &[PathBuf]) -> Result<MigrationSet, MigrationError> {
        let mut migrations = Vec::new();
        for dir in dirs {
            load_dir(dir, &mut migrations)?;
        }
        MigrationSet::from_migrations(migrations)
    }

    /// Sort by version and reject duplicates. Of two migrations with one version, the one given
    /// first is named first.
    pub fn from_migrations(mut migrations: Vec<Migration>) -> Result<MigrationSet, MigrationError> {
        // Stable, so equal versions keep the order they came in.
        migrations.sort_by_key(|m| m.id);
        if let Some(pair) = migrations.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(MigrationError::DuplicateVersion {
                version: pair[0].id,
                first: pair[0].path.clone(),
                second: pair[1].path.clone(),
            });
        }
        Ok(MigrationSet { migrations })
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Migration> {
        self.migrations.iter()
    }

    pub fn as_slice(&self) -> &[Migration] {
        &self.migrations
    }

    pub fn len(&self) -> usize {
        self.migrations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.migrations.is_empty()
    }

    pub fn get(&self, id: MigrationId) -> Option<&Migration> {
        self.migrations
            .binary_search_by_key(&id, |m| m.id)
            .ok()
            .map(|i| &self.migrations[i])
    }

    /// The newest migration.
    pub fn last(&self) -> Option<&Migration> {
        self.migrations.last()
    }
}

impl<'a> IntoIterator for &'a MigrationSet {
    type Item = &'a Migration;
    type IntoIter = std::slice::Iter<'a, Migration>;

    fn into_iter(self) -> Self::IntoIter {
        self.migrations.iter()
    }
}

fn load_dir(dir: &Path, out: &mut Vec<Migration>) -> Result<(), MigrationError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MigrationError::Io { path, source }
    };
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(MigrationError::NotADirectory {
                path: dir.to_path_buf(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(MigrationError::DirNotFound {
                path: dir.to_path_buf(),
            })
        }
        Err(e) => return Err(io(dir)(e)),
    }
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        // The directory entry knows its type without a stat; only links need following.
        let kind = entry.file_type().map_err(io(&entry.path()))?;
        entries.push((entry.file_name(), kind.is_dir(), kind.is_symlink()));
    }
    entries.sort();
    for (file_name, is_dir, is_link) in entries {
        if file_name.as_encoded_bytes().starts_with(b".") || is_dir {
            continue;
        }
        let path = dir.join(&file_name);
        // Follows symlinks: a link to a directory is skipped like the directory.
        if is_link && std::fs::metadata(&path).map_err(io(&path))?.is_dir() {
            continue;
        }
        // Check the name before reading, so a stray large file is not read for nothing.
        if let Err(reason) = parse_file_name(&file_name.to_string_lossy()) {
            return Err(MigrationError::InvalidFileName { path, reason });
        }
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        out.push(Migration::parse(dir, &path, &bytes)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> MigrationId {
        MigrationId::parse(s).unwrap()
    }

    fn id_err(s: &str) -> String {
        MigrationId::parse(s).unwrap_err().to_string()
    }

    // --- MigrationId ---------------------------------------------------------------------

    #[test]
    fn valid_ids() {
        for s in [
            "20240101000000",
            "20240229235959",
            "20000229120000",
            "19700101000000",
            "99991231235959",
            "00010101000000",
        ] {
            assert_eq!(id(s).to_string(), s);
        }
    }

    #[test]
    fn ids_must_be_fourteen_digits() {
        for s in [
            "",
            "2024010100000",
            "202401010000000",
            "2024-01-01T000",
            "2024010100000a",
            " 20240101000000",
            "+2024010100000",
            "２０２４０１０１０００００",
        ] {
            assert_eq!(
                id_err(s),
                format!("'{s}' is not 14 digits (YYYYMMDDHHMMSS)"),
                "{s:?}"
            );
        }
    }

    #[test]
    fn invalid_date_times() {
        assert_eq!(id_err("20241301000000"), "month 13 is not 1-12");
        assert_eq!(id_err("20240001000000"), "month 0 is not 1-12");
        assert_eq!(id_err("20230431000000"), "day 31 does not exist in 2023-04");
        assert_eq!(id_err("20240100000000"), "day 0 does not exist in 2024-01");
        assert_eq!(id_err("20230229000000"), "day 29 does not exist in 2023-02");
        assert_eq!(id_err("19000229000000"), "day 29 does not exist in 1900-02");
        assert_eq!(id_err("20240230000000"), "day 30 does not exist in 2024-02");
        assert_eq!(id_err("20240101240000"), "hour 24 is not 0-23");
        assert_eq!(id_err("20240101006000"), "minute 60 is not 0-59");
        assert_eq!(id_err("20240101000060"), "second 60 is not 0-59");
    }

    #[test]
    fn leap_years() {
        assert!(MigrationId::parse("20240229000000").is_ok());
        assert!(MigrationId::parse("20000229000000").is_ok());
        assert!(MigrationId::parse("20230229000000").is_err());
        assert!(MigrationId::parse("21000229000000").is_err());
    }

    #[test]
    fn from_str_display_and_order() {
        let a: MigrationId = "20240101000000".parse().unwrap();
        let b: MigrationId = "20240101000001".parse().unwrap();
        let c: MigrationId = "20231231235959".parse().unwrap();
        assert!(c < a && a < b);
        assert_eq!(a.as_u64(), 20_240_101_000_000);
        assert_eq!(format!("{a:?}"), "MigrationId(20240101000000)");
        assert_eq!(a.parts(), (2024, 1, 1, 0, 0, 0));
        assert!("2024".parse::<MigrationId>().is_err());
    }

    #[test]
    fn from_u64_pads_and_validates() {
        assert_eq!(
            MigrationId::from_u64(10_101_000_000).unwrap().to_string(),
            "00010101000000"
        );
        assert_eq!(
            MigrationId::from_u64(20_241_301_000_000).unwrap_err(),
            IdError::Month(13)
        );
        assert!(MigrationId::from_u64(100_000_000_000_000).is_err());
        assert!(MigrationId::from_u64(0).is_err());
    }

    #[test]
    fn serde_uses_the_fourteen_digit_string() {
        let v = id("00010101000000");
        assert_eq!(serde_json::to_string(&v).unwrap(), r#""00010101000000""#);
        assert_eq!(
            serde_json::from_str::<MigrationId>(r#""00010101000000""#).unwrap(),
            v
        );
        let err = serde_json::from_str::<MigrationId>(r#""20241301000000""#).unwrap_err();
        assert!(err.to_string().contains("month 13 is not 1-12"), "{err}");
        assert!(serde_json::from_str::<MigrationId>("20240101000000").is_err());
    }

    #[test]
    fn checksum_serde_uses_hex() {
        let c = Checksum::of(b"abc");
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, format!("\"{c}\""));
        assert_eq!(serde_json::from_str::<Checksum>(&json).unwrap(), c);
        assert!(serde_json::from_str::<Checksum>(r#""abc""#).is_err());
    }

    #[test]
    fn from_unix_seconds_known_values() {
        assert_eq!(
            MigrationId::from_unix_seconds(0).to_string(),
            "19700101000000"
        );
        assert_eq!(
            MigrationId::from_unix_seconds(1_700_000_000).to_string(),
            "20231114221320"
        );
        assert_eq!(
            MigrationId::from_unix_seconds(951_782_400).to_string(),
            "20000229000000"
        );
        assert_eq!(
            MigrationId::from_unix_seconds(1_709_251_199).to_string(),
            "20240229235959"
        );
        assert_eq!(
            MigrationId::from_unix_seconds(1_709_251_200).to_string(),
            "20240301000000"
        );
        assert_eq!(
            MigrationId::from_unix_seconds(4_102_444_800).to_string(),
            "21000101000000"
        );
        assert_eq!(
            MigrationId::from_unix_seconds(MAX_UNIX_SECONDS).to_string(),
            "99991231235959"
        );
        assert_eq!(
            MigrationId::from_unix_seconds(u64::MAX).to_string(),
            "99991231235959"
        );
    }

    /// Every day from 1970 to 2100: from_unix_seconds agrees with counting days by hand.
    #[test]
    fn from_unix_seconds_matches_day_by_day_count() {
        let mut expected = id("19700101000000");
        for day in 0..(131 * 366) {
            let got = MigrationId::from_unix_seconds(day * 86_400 + 86_399);
            let (y, m, d, ..) = expected.parts();
            assert_eq!(got, MigrationId::from_parts(y, m, d, 23, 59, 59).unwrap());
            // Step a whole day with next_second to also exercise its day roll-over.
            expected = MigrationId::from_parts(y, m, d, 23, 59, 59)
                .unwrap()
                .next_second();
            assert!(MigrationId::parse(&expected.to_string()).is_ok());
        }
    }

    #[test]
    fn next_second_rolls_over() {
        let cases = [
            ("20240101000000", "20240101000001"),
            ("20240101000059", "20240101000100"),
            ("20240101005959", "20240101010000"),
            ("20240101235959", "20240102000000"),
            ("20240131235959", "20240201000000"),
            ("20240228235959", "20240229000000"),
            ("20240229235959", "20240301000000"),
            ("20230228235959", "20230301000000"),
            ("21000228235959", "21000301000000"),
            ("20240430235959", "20240501000000"),
            ("20231231235959", "20240101000000"),
        ];
        for (from, to) in cases {
            assert_eq!(id(from).next_second().to_string(), to, "{from}");
        }
        let last = id("99991231235959");
        assert_eq!(last.checked_next_second(), None);
        assert_eq!(last.next_second(), last);
    }

    // --- Checksum ------------------------------------------------------------------------

    #[test]
    fn checksum_hex_round_trip() {
        let c = Checksum::of(b"abc");
        let hex = c.to_string();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Checksum::from_hex(&hex), Some(c));
        assert_eq!(Checksum::from_hex(&hex.to_uppercase()), Some(c));
        assert_eq!(
            Checksum::of(b"").to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(format!("{c:?}"), format!("Checksum({hex})"));
    }

    #[test]
    fn checksum_from_bad_hex() {
        assert_eq!(Checksum::from_hex(""), None);
        assert_eq!(Checksum::from_hex(&"a".repeat(63)), None);
        assert_eq!(Checksum::from_hex(&"a".repeat(65)), None);
        assert_eq!(Checksum::from_hex(&"g".repeat(64)), None);
        assert_eq!(Checksum::from_hex(&format!("{}é", "a".repeat(62))), None);
    }

    // --- File names ----------------------------------------------------------------------

    #[test]
    fn valid_file_names() {
        assert_eq!(
            parse_file_name("20240101000000_create_users.sql").unwrap(),
            (id("20240101000000"), "create_users".to_string())
        );
        assert_eq!(
            parse_file_name("20240101000000_Add-Index_2.sql").unwrap().1,
            "Add-Index_2"
        );
        // The name may itself contain underscores; the version ends at the first one.
        assert_eq!(parse_file_name("20240101000000__x.sql").unwrap().1, "_x");
    }

    #[test]
    fn invalid_file_names() {
        let reason = |s: &str| parse_file_name(s).unwrap_err();
        assert_eq!(
            reason("README.md"),
            "expected YYYYMMDDHHMMSS_name.sql (or .toml for a declarative step), but it ends in neither"
        );
        assert_eq!(
            reason("20240101000000_x.SQL"),
            "expected YYYYMMDDHHMMSS_name.sql (or .toml for a declarative step), but it ends in neither"
        );
        assert_eq!(
            reason("20240101000000.sql"),
            "expected YYYYMMDDHHMMSS_name.sql, but there is no '_' after the version"
        );
        assert_eq!(reason("20241301000000_x.sql"), "month 13 is not 1-12");
        assert_eq!(
            reason("2024_01_01_x.sql"),
            "'2024' is not 14 digits (YYYYMMDDHHMMSS)"
        );
        assert_eq!(
            reason("20240101000000_.sql"),
            "the name after the version is empty"
        );
        assert_eq!(
            reason("20240101000000_add users.sql"),
            "the name 'add users' contains ' '; use only letters, digits, '_' and '-'"
        );
        assert_eq!(
            reason("20240101000000_x.sql.bak"),
            "expected YYYYMMDDHHMMSS_name.sql (or .toml for a declarative step), but it ends in neither"
        );
        assert_eq!(
            parse_file_name("20240101000000_distribute_users.toml").unwrap(),
            (id("20240101000000"), "distribute_users".to_string())
        );
    }

    // --- Parsing a file ------------------------------------------------------------------

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
        assert_eq!(err.hint(), Some("save the file as UTF-8"));
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
            err.hint(),
            Some("rename it to YYYYMMDDHHMMSS_name.sql, or move it out of the migration directory")
        );
    }

    // --- Sets ----------------------------------------------------------------------------

    fn migration(dir: &str, file: &str) -> Migration {
        let dir = Path::new(dir);
        Migration::parse(dir, &dir.join(file), b"-- migrate:up\nselect 1;").unwrap()
    }

    #[test]
    fn from_migrations_sorts_and_gets() {
        let set = MigrationSet::from_migrations(vec![
            migration("b", "20240103000000_c.sql"),
            migration("a", "20240101000000_a.sql"),
            migration("b", "20240102000000_b.sql"),
        ])
        .unwrap();
        let names: Vec<&str> = set.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(set.len(), 3);
        assert!(!set.is_empty());
        assert_eq!(set.get(id("20240102000000")).unwrap().name, "b");
        assert!(set.get(id("20240104000000")).is_none());
        assert_eq!(set.last().unwrap().name, "c");
        assert_eq!((&set).into_iter().count(), 3);
        assert!(MigrationSet::from_migrations(vec![]).unwrap().is_empty());
    }

    #[test]
    fn from_migrations_rejects_duplicates_naming_both() {
        let err = MigrationSet::from_migrations(vec![
            migration("base", "20240101000000_a.sql"),
            migration("ee", "20240101000000_b.sql"),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "version 20240101000000 appears twice: base/20240101000000_a.sql and ee/20240101000000_b.sql"
        );
    }

    mod load {
        use super::*;
        use std::fs;

        const UP: &str = "-- migrate:up\nselect 1;\n";

        fn write(dir: &Path, name: &str, body: &str) {
            fs::write(dir.join(name), body).unwrap();
        }

        fn load(dirs: &[&Path]) -> Result<MigrationSet, MigrationError> {
            MigrationSet::load(&dirs.iter().map(|d| d.to_path_buf()).collect::<Vec<_>>())
        }

        #[test]
        fn merges_directories_by_version() {
            let base = tempfile::tempdir().unwrap();
            let ee = tempfile::tempdir().unwrap();
            write(base.path(), "20240101000000_tenants.sql", UP);
            write(base.path(), "20240103000000_users.sql", UP);
            write(ee.path(), "20240102000000_licenses.sql", UP);
            let set = load(&[base.path(), ee.path()]).unwrap();
            let got: Vec<(String, &Path)> = set
                .iter()
                .map(|m| (m.file_name(), m.dir.as_path()))
                .collect();
            assert_eq!(
                got,
                [
                    ("20240101000000_tenants.sql".to_string(), base.path()),
                    ("20240102000000_licenses.sql".to_string(), ee.path()),
                    ("20240103000000_users.sql".to_string(), base.path()),
                ]
            );
            assert_eq!(
                set.get(id("20240102000000")).unwrap().path,
                ee.path().join("20240102000000_licenses.sql")
            );
        }

        #[test]
        fn empty_directory_gives_an_empty_set() {
            let d = tempfile::tempdir().unwrap();
            assert!(load(&[d.path()]).unwrap().is_empty());
            assert!(MigrationSet::load(&[]).unwrap().is_empty());
        }

        #[test]
        fn duplicate_across_directories_names_both_paths() {
            let base = tempfile::tempdir().unwrap();
            let ee = tempfile::tempdir().unwrap();
            write(base.path(), "20240101000000_a.sql", UP);
            write(ee.path(), "20240101000000_b.sql", UP);
            let err = load(&[base.path(), ee.path()]).unwrap_err();
            let a = base.path().join("20240101000000_a.sql");
            let b = ee.path().join("20240101000000_b.sql");
            assert_eq!(
                err.to_string(),
                format!(
                    "version 20240101000000 appears twice: {} and {}",
                    a.display(),
                    b.display()
                )
            );
            // The order follows the directories given.
            let err = load(&[ee.path(), base.path()]).unwrap_err();
            assert!(matches!(
                err,
                MigrationError::DuplicateVersion { first, second, .. } if first == b && second == a
            ));
        }

        #[test]
        fn duplicate_within_one_directory() {
            let d = tempfile::tempdir().unwrap();
            write(d.path(), "20240101000000_b.sql", UP);
            write(d.path(), "20240101000000_a.sql", UP);
            match load(&[d.path()]).unwrap_err() {
                MigrationError::DuplicateVersion {
                    version,
                    first,
                    second,
                } => {
                    assert_eq!(version, id("20240101000000"));
                    assert_eq!(first, d.path().join("20240101000000_a.sql"));
                    assert_eq!(second, d.path().join("20240101000000_b.sql"));
                }
                other => panic!("{other:?}"),
            }
        }

        #[test]
        fn dotfiles_and_subdirectories_are_ignored() {
            let d = tempfile::tempdir().unwrap();
            write(d.path(), "20240101000000_a.sql", UP);
            write(d.path(), ".gitkeep", "");
            write(d.path(), ".20240101000000_a.sql.swp", "junk");
            fs::create_dir(d.path().join("archive")).unwrap();
            write(&d.path().join("archive"), "not a migration.txt", "");
            fs::create_dir(d.path().join("20240102000000_dir.sql")).unwrap();
            let set = load(&[d.path()]).unwrap();
            assert_eq!(set.len(), 1);
        }

        #[test]
        fn bad_file_names_are_errors() {
            let d = tempfile::tempdir().unwrap();
            write(d.path(), "20240101000000_a.sql", UP);
            write(d.path(), "20241301000000_b.sql", UP);
            let err = load(&[d.path()]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "{}: invalid migration file name: month 13 is not 1-12",
                    d.path().join("20241301000000_b.sql").display()
                )
            );
            assert_eq!(
                err.hint(),
                Some(
                    "rename it to YYYYMMDDHHMMSS_name.sql, or move it out of the migration directory"
                )
            );
            assert_eq!(err.path(), d.path().join("20241301000000_b.sql"));
        }

        #[test]
        fn the_first_bad_file_by_name_is_reported() {
            let d = tempfile::tempdir().unwrap();
            write(d.path(), "README.md", "");
            write(d.path(), "NOTES.txt", "");
            write(d.path(), "zz.sql", "");
            for _ in 0..3 {
                let err = load(&[d.path()]).unwrap_err();
                assert_eq!(err.path(), d.path().join("NOTES.txt"));
            }
        }

        #[test]
        fn toml_step_files_load_beside_sql_migrations() {
            let d = tempfile::tempdir().unwrap();
            write(d.path(), "20240101000000_tenants.sql", UP);
            let body = "[distribute]\ncolumn = \"tenant\"\ntables = [\"tenants\"]\n";
            write(d.path(), "20240102000000_distribute_tenants.toml", body);
            let set = load(&[d.path()]).unwrap();
            assert_eq!(set.len(), 2);
            let m = set.get(id("20240102000000")).unwrap();
            assert_eq!(m.file_name(), "20240102000000_distribute_tenants.toml");
            assert_eq!(m.name, "distribute_tenants");
            assert_eq!(m.checksum, Checksum::of(body.as_bytes()));
            assert!(matches!(m.step, Some(DeclarativeStep::Distribute { .. })));
            assert!(!m.up.transaction && m.up.statements.is_empty());
            assert_eq!(
                m.up.sql,
                "-- declarative step: distribute public.tenants by tenant as the root of a new colocation group\n"
            );
            // The down part is automatic.
            assert!(m.down.is_some());
            assert!(set.get(id("20240101000000")).unwrap().step.is_none());
        }

        #[test]
        fn bad_toml_step_files_name_the_file_and_line() {
            let d = tempfile::tempdir().unwrap();
            write(
                d.path(),
                "20240101000000_distribute.toml",
                "[citus]\nextension = true\nx = 1\n",
            );
            let err = load(&[d.path()]).unwrap_err();
            assert!(matches!(err, MigrationError::Declarative { .. }));
            let path = d.path().join("20240101000000_distribute.toml");
            assert_eq!(
                err.to_string(),
                format!(
                    "{}:3: unknown field `x`, expected `extension`",
                    path.display()
                )
            );
            assert_eq!(err.path(), path);
            assert!(err.hint().is_some());
            write(
                d.path(),
                "20240101000000_distribute.toml",
                "[reference]\ntables = []\n",
            );
            assert_eq!(
                load(&[d.path()]).unwrap_err().to_string(),
                format!("{}: [reference] tables is empty", path.display())
            );
            write(
                d.path(),
                "20240101000000_distribute.toml",
                "[citus]\nextension = true\n[reference]\ntables = [\"a\"]\n",
            );
            assert_eq!(
                load(&[d.path()]).unwrap_err().to_string(),
                format!(
                    "{}: declares [citus] and [reference]: one step per file",
                    path.display()
                )
            );
        }

        #[test]
        fn missing_directory() {
            let d = tempfile::tempdir().unwrap();
            let missing = d.path().join("nope");
            let err = load(&[d.path(), &missing]).unwrap_err();
            assert!(matches!(err, MigrationError::DirNotFound { .. }));
            assert_eq!(
                err.to_string(),
                format!("migration directory {} does not exist", missing.display())
            );
            assert!(err.hint().is_some());
        }

        #[test]
        fn a_file_given_as_directory() {
            let d = tempfile::tempdir().unwrap();
            write(d.path(), "20240101000000_a.sql", UP);
            let file = d.path().join("20240101000000_a.sql");
            let err = load(&[&file]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("migration directory {} is not a directory", file.display())
            );
        }

        #[test]
        fn content_errors_name_the_file_and_line() {
            let d = tempfile::tempdir().unwrap();
            write(
                d.path(),
                "20240101000000_f.sql",
                "-- migrate:up\ncreate function f() returns int as $body$\nselect 1;\n",
            );
            let err = load(&[d.path()]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "{}:2: unterminated dollar quote $body$",
                    d.path().join("20240101000000_f.sql").display()
                )
            );
        }

        #[cfg(unix)]
        #[test]
        fn unreadable_file_keeps_the_io_error() {
            use std::error::Error as _;
            let d = tempfile::tempdir().unwrap();
            // A dangling symlink: listed in the directory, but cannot be read.
            std::os::unix::fs::symlink(
                d.path().join("gone"),
                d.path().join("20240101000000_a.sql"),
            )
            .unwrap();
            let err = load(&[d.path()]).unwrap_err();
            assert!(matches!(err, MigrationError::Io { .. }));
            assert!(err.to_string().starts_with(&format!(
                "{}: cannot read: ",
                d.path().join("20240101000000_a.sql").display()
            )));
            assert!(err.source().is_some());
            assert_eq!(err.hint(), None);
        }
    }
}
