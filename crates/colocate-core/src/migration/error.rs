//! Why a migration file or directory cannot be loaded, in one enum so the CLI reports every
//! cause the same way: the file (and line) first, then a hint.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::MigrationId;
use crate::split::SplitError;

/// Why a migration file or directory cannot be loaded. Every variant names the file or
/// directory; messages are one line.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("migration directory {} does not exist", .path.display())]
    DirNotFound { path: PathBuf },
    #[error("migration directory {} is not a directory", .path.display())]
    NotADirectory { path: PathBuf },
    /// The OS error is the source, printed once by whoever walks the chain.
    #[error("{}: cannot read", .path.display())]
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
    /// `BEGIN`, `COMMIT`, `ROLLBACK`… in a section colocate runs in its own transaction: it would
    /// end that transaction, so the history row and the rest of the section would no longer
    /// commit or roll back together.
    #[error(
        "{}:{line}: {statement} in a transactional -- migrate:{marker} section would end the transaction colocate runs it in",
        .path.display()
    )]
    TransactionControl {
        path: PathBuf,
        line: usize,
        marker: &'static str,
        statement: String,
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
    pub fn hint(&self) -> Option<Cow<'static, str>> {
        Some(Cow::Borrowed(match self {
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
            MigrationError::TransactionControl { .. } => {
                "remove it (colocate commits the section with its history row), or mark the section `transaction:false` to manage transactions yourself"
            }
            MigrationError::Split { .. } => "close the quote or comment that starts on that line",
            MigrationError::DuplicateVersion { .. } => {
                "rename one of them to a later, unused timestamp"
            }
            MigrationError::Io { .. } => return None,
        }))
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
            | MigrationError::TransactionControl { path, .. }
            | MigrationError::Split { path, .. } => path,
            MigrationError::DuplicateVersion { second, .. } => second,
        }
    }
}
