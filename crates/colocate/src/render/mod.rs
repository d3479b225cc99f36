//! What users read: human tables and JSON (the same serde structs the library returns, under a
//! top-level `version`). Results go to stdout; progress and warnings to stderr.

pub mod history;
pub mod markdown;
pub mod plan;

use std::fmt::Write as _;

use comfy_table::{presets, ContentArrangement, Table};
use serde::Serialize;

/// The JSON output format's version: bumped when a field changes meaning or goes away.
pub const JSON_VERSION: u32 = 1;

pub fn json<T: Serialize>(command: &str, value: &T) {
    json_with(command, value, &[]);
}

/// [`json`] with more top-level fields (`config` for the commands that plan).
pub fn json_with<T: Serialize>(command: &str, value: &T, extra: &[(&str, serde_json::Value)]) {
    let mut v = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(map) = &mut v {
        map.insert("version".into(), JSON_VERSION.into());
        map.insert("command".into(), command.into());
        for (k, x) in extra {
            map.insert((*k).into(), x.clone());
        }
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&v).unwrap_or_else(|_| "{}".into())
    );
}

/// A borderless table with a header row: columns line up, nothing else.
fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.to_vec());
    // Cells coloured by `style::cell` are styled only when stdout takes colour.
    if crate::style::stdout_colored() {
        t.enforce_styling();
    }
    t
}

/// Print a table without trailing blanks.
fn print_table(t: &Table) {
    let mut out = String::new();
    push_table(&mut out, t);
    print!("{out}");
}

/// Append a table to `out`, one line per row, without trailing blanks.
fn push_table(out: &mut String, t: &Table) {
    for line in t.to_string().lines() {
        let _ = writeln!(out, "{}", line.trim_end());
    }
}
