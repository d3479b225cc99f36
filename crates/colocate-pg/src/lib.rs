//! Everything colocate sends to PostgreSQL lives in this crate: connecting (with passwords kept
//! out of every message), the migration history table, the advisory lock that serialises runs,
//! and the execution of migrations and rollbacks. Decisions about *what* to run are made by the
//! pure `colocate-core`; this crate carries them out and reports what it did.

pub mod apply;
pub mod baseline;
pub mod connect;
pub mod copy_progress;
pub mod declarative;
pub mod error;
pub mod history;
pub mod introspect;
mod journal;
pub mod local;
pub mod lock;
pub mod runner;
mod split_guard;
pub mod topology;
pub mod undistribute;
pub mod verify;
pub mod wake;

pub use connect::Target;
pub use error::{Direction, Done, ErrorKind, KeysAfterFailure, PgError, ServerError};
pub use history::HistoryTable;
pub use postgres::Client;
pub use runner::{Event, MigrateOptions, MigrateReport, RollbackReport, Runner};
