//! One module per group of subcommands; each function takes the parsed arguments and returns
//! the exit code.

pub mod apply;
pub mod demo;
pub mod generate;
pub mod init;
pub mod migrate;
pub mod plan;
