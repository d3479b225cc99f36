//! The pure domain of colocate: migration identities, files and sets, and (later) the schema
//! model and the distribution planner. Nothing here talks to a database; the only I/O is reading
//! migration files from disk in [`migration::MigrationSet::load`], so everything else is tested
//! in milliseconds on hand-built values.

pub mod distribution;
pub mod history;
pub mod migration;
pub mod plan;
pub mod schema;
pub mod split;

pub use migration::{
    parse_file_name, Checksum, IdError, Migration, MigrationError, MigrationId, MigrationSet,
    Section,
};
pub use split::{line_of_offset, split_statements, SplitError, Statement};
