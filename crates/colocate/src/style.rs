//! Colour, only where the stream takes it. Text is written with `anstyle` styles through
//! `anstream`'s `println!`/`eprintln!` (what clap prints its own help and errors with), which
//! decide per stream: no colour with `NO_COLOR` (even with `CLICOLOR_FORCE`), colour with
//! `CLICOLOR_FORCE`, none with `CLICOLOR=0`, otherwise colour on a terminal only; elsewhere the
//! styles are stripped, so what is piped (CI logs, tests) has no escape codes.

use std::fmt::{self, Display};

use anstyle::{AnsiColor, Style};
use comfy_table::{Cell, Color};

pub const ERROR: Style = AnsiColor::Red.on_default().bold();
pub const WARNING: Style = AnsiColor::Yellow.on_default().bold();
pub const NOTE: Style = AnsiColor::Cyan.on_default().bold();
pub const HINT: Style = AnsiColor::Green.on_default().bold();
/// A finding's or a difference's code (`[missing-distribution]`).
pub const CODE: Style = AnsiColor::Yellow.on_default();

/// `text` in `style`; plain wherever it is printed without colour.
pub struct Painted<T>(pub Style, pub T);

impl<T: Display> Display for Painted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Painted(style, text) = self;
        write!(f, "{style}{text}{style:#}")
    }
}

pub fn error() -> Painted<&'static str> {
    Painted(ERROR, "error:")
}

pub fn warning() -> Painted<&'static str> {
    Painted(WARNING, "warning:")
}

pub fn note() -> Painted<&'static str> {
    Painted(NOTE, "note:")
}

pub fn hint() -> Painted<&'static str> {
    Painted(HINT, "hint:")
}

pub fn code<T: Display>(code: T) -> Painted<T> {
    Painted(CODE, code)
}

/// Whether what goes to stdout is coloured, for the tables that colour their own cells
/// (comfy-table lays out the text before it styles it, so columns stay aligned).
pub fn stdout_colored() -> bool {
    anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never
}

/// A table cell, in `color` where stdout takes colour.
pub fn cell(text: &str, color: Option<Color>) -> Cell {
    match color {
        Some(c) if stdout_colored() => Cell::new(text).fg(c),
        _ => Cell::new(text),
    }
}

/// A table's colour for a plan's state (`done`, `pending`, `blocked`, `conflict`).
pub fn state_color(state: &str) -> Option<Color> {
    match state {
        "done" => Some(Color::Green),
        "pending" => Some(Color::Cyan),
        "blocked" | "conflict" => Some(Color::Red),
        _ => None,
    }
}

/// A table's colour for a role (`root`, `distributed`, `reference`, `local`).
pub fn role_color(role: &str) -> Option<Color> {
    match role {
        "root" => Some(Color::Magenta),
        "distributed" => Some(Color::Blue),
        "reference" => Some(Color::Cyan),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn painted_text_is_plain_once_stripped() {
        let s = format!("{} no such table", error());
        assert_eq!(s, "\u{1b}[1m\u{1b}[31merror:\u{1b}[0m no such table");
        assert_eq!(
            anstream::adapter::strip_str(&s).to_string(),
            "error: no such table"
        );
    }
}
