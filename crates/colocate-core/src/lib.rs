//! The pure domain of colocate: migration identities, files (SQL and declarative Citus steps)
//! and sets, the schema model, the distribution planner, and the migration sets `generate`
//! writes. Nothing here talks to a database; the only I/O is reading migration files from disk
//! in [`migration::MigrationSet::load`], so everything else is tested in milliseconds on
//! hand-built values.

pub mod decision;
pub mod declarative;
pub mod distribution;
pub mod generate;
pub mod graph;
pub mod history;
pub mod init;
pub mod journal;
pub mod migration;
pub mod plan;
mod plpgsql;
pub mod schema;
pub mod scope;
pub mod split;
pub mod sqltext;
pub mod step;
pub mod undistribute;
pub mod words;

pub use migration::{
    parse_file_name, Checksum, IdError, Migration, MigrationError, MigrationId, MigrationSet,
    Section,
};
pub use split::{line_of_offset, split_statements, SplitError, Statement};
pub use sqltext::inert;
