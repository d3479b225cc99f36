//! `init`: write a first, commented `colocate.toml` from the migration directories under the
//! working directory and, given a database, the root and tenant columns its schema shows.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use colocate_core::init::{detect, render};
use colocate_core::parse_file_name;
use colocate_pg::introspect::introspect;

use crate::cli::{Global, InitArgs};
use crate::config::{self, Config, ConfigError, FILE_NAME};
use crate::context::{connect, EXIT_OK};

/// Directories never searched for migrations.
const SKIP: &[&str] = &["target", "node_modules", "vendor"];

/// How deep under the working directory migration directories are looked for.
const DEPTH: usize = 6;

pub fn run(g: &Global, a: &InitArgs) -> Result<u8> {
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    let path = g.config.clone().unwrap_or_else(|| cwd.join(FILE_NAME));
    if path.exists() && !a.force {
        bail!(ConfigError {
            message: format!("{} already exists", path.display()),
            hint: Some("edit it, or pass --force to write a new one over it".into()),
        });
    }
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let dirs: Vec<PathBuf> = if g.dirs.is_empty() {
        let mut found = Vec::new();
        find_migration_dirs(&base, 0, &mut found);
        found.sort();
        found
    } else {
        g.dirs.iter().map(|d| cwd.join(d)).collect()
    };
    let labels: Vec<String> = dirs
        .iter()
        .map(|d| config::relative_label(d, &base))
        .collect();
    let detected = match &g.database_url {
        Some(_) => {
            let mut client = connect(g, "colocate init")?;
            let schema = introspect(&mut client, &Default::default())?;
            Some(detect(&schema))
        }
        None => None,
    };
    let text = render(&labels, detected.as_ref());
    std::fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    // What was written reads back as a configuration.
    Config::load(Some(&path), &cwd)?;
    println!("wrote {}", path.display());
    match labels.len() {
        0 => println!("  no migration directory found: list yours in migration_dirs"),
        n => println!(
            "  {n} migration director{}: {}",
            if n == 1 { "y" } else { "ies" },
            labels.join(", ")
        ),
    }
    match &detected {
        Some(d) => {
            let root = d
                .root
                .as_ref()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "none found (the default, tenants, is written)".into());
            println!("  root: {root}");
            let cols: Vec<&str> = d.columns.iter().map(|(c, _)| c.as_str()).collect();
            if cols.is_empty() {
                println!("  tenant columns: none found (the defaults are written)");
            } else {
                println!("  tenant columns: {}", cols.join(", "));
            }
        }
        None => println!(
            "  no database given (--database-url or DATABASE_URL): root and columns are the defaults"
        ),
    }
    println!("next: check the file, then `colocate status` and `colocate plan`");
    Ok(EXIT_OK)
}

/// Directories under `dir` (not hidden, not build output) holding at least one migration file.
fn find_migration_dirs(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut has_migration = false;
    let mut subdirs = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        match e.file_type() {
            Ok(t) if t.is_dir() && !SKIP.contains(&name.as_str()) => subdirs.push(e.path()),
            Ok(t) if t.is_dir() => {}
            Ok(t) if t.is_file() => has_migration |= parse_file_name(&name).is_ok(),
            _ => {}
        }
    }
    if has_migration {
        out.push(dir.to_path_buf());
    }
    if depth < DEPTH {
        for d in subdirs {
            find_migration_dirs(&d, depth + 1, out);
        }
    }
}
