//! Migration files: `YYYYMMDDHHMMSS_name.sql` with dbmate-style sections, and declarative
//! Citus steps `YYYYMMDDHHMMSS_name.toml` (see [`crate::declarative`]).
//!
//! One module per concept: the version and file name ([`MigrationId`]), the [`Checksum`], the
//! load errors ([`MigrationError`]), one parsed file ([`Migration`]) and the merged set
//! ([`MigrationSet`]). Everything is re-exported here, so callers keep saying
//! `crate::migration::…` whichever module a type lives in.

mod checksum;
mod error;
mod file;
mod id;
mod set;

pub use checksum::Checksum;
pub use error::MigrationError;
pub use file::{Migration, Section};
pub use id::{parse_file_name, IdError, MigrationId};
pub use set::{EmptyFile, MigrationSet};
