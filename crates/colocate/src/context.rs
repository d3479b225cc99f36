//! What every command shares: exit codes, the connection and confirmation of destructive runs.

use std::io::{IsTerminal, Write};

use anyhow::{bail, Result};
use colocate_pg::Target;

use crate::cli::Global;
use crate::config::ConfigError;

/// Exit codes: the contract CI scripts rely on.
pub const EXIT_OK: u8 = 0;
pub const EXIT_FINDINGS: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

pub fn connect(g: &Global, application: &str) -> Result<colocate_pg::Client> {
    let target = Target::new(g.database_url.as_deref())?;
    Ok(target.connect(application)?)
}

/// Ask on a terminal; elsewhere require `--yes`.
pub fn confirm(g: &Global, what: &str) -> Result<()> {
    if g.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!(ConfigError {
            message: format!("refusing to {what} without confirmation"),
            hint: Some("pass --yes to confirm when not running on a terminal".into()),
        });
    }
    eprint!("{what}? [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        return Ok(());
    }
    bail!(ConfigError {
        message: "cancelled: nothing was rolled back".into(),
        hint: None,
    })
}
