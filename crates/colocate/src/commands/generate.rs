//! `generate`: introspect and plan like `plan`, read the chain already in the output directory
//! and the migration directories, then write what of the plan it does not cover yet as a
//! migration set into a directory (what is covered, and the files themselves, are decided in
//! `colocate_core::generate`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use colocate_core::generate::{
    generate_over, Chain, GenerateError, GenerateOptions, GeneratedFile, SetFormat,
};
use colocate_core::plan::plan as make_plan;
use colocate_core::MigrationId;
use colocate_pg::introspect::introspect;

use crate::cli::{GenerateArgs, GenerateFormat, Global};
use crate::config::{self, ConfigError};
use crate::context::{connect, EXIT_OK};

pub fn run(g: &Global, a: &GenerateArgs) -> Result<u8> {
    let config = config::load_from(g.config.as_deref())?;
    // The migration directories are only read for their newest version: none configured is fine.
    let dirs = config.dirs(&g.dirs).unwrap_or_default();
    let format = match a.format {
        GenerateFormat::Toml => SetFormat::Toml,
        GenerateFormat::Sql => SetFormat::Sql,
        GenerateFormat::Knex => SetFormat::Knex,
    };
    if format == SetFormat::Knex && dirs.iter().any(|d| same_dir(d, &a.out)) {
        bail!(ConfigError {
            message: format!(
                "{} is a colocate migration directory, where knex's .cjs files are not allowed",
                a.out.display()
            ),
            hint: Some(
                "write knex migrations into knex's own directory, or use --format toml|sql".into()
            ),
        });
    }
    let dist = &config.distribution;
    let mut client = connect(g, "colocate generate")?;
    let schema = introspect(&mut client, &dist.schema_filter())?;
    let plan = make_plan(&schema, dist);

    let mut scanned = dirs.clone();
    scanned.push(a.out.clone());
    let newest = newest_version(&scanned);
    // The chain it writes into, applied or pending: the output directory first, so a conflict
    // names the file there when the same directory is also configured.
    let mut chain_dirs = vec![a.out.clone()];
    chain_dirs.extend(dirs.iter().cloned());
    let chain = Chain::load(&chain_dirs).map_err(|e| ConfigError {
        message: format!("cannot read the chain generate writes into: {e}"),
        hint: Some(
            "generate reads the declarative steps and the files it wrote to know what they cover: fix or move that file".into(),
        ),
    })?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let opts = GenerateOptions {
        format,
        tables_per_file: a.tables_per_file.map(|n| n as usize),
        with_fixes: a.with_fixes,
        shard_count: dist.shard_count,
    };
    // Files an earlier generate wrote before it marked what they do: say why they count for
    // nothing, since the set written now converts their tables again.
    match chain.unmarked.as_slice() {
        [] => {}
        [one] => eprintln!(
            "note: {} was written by an earlier colocate generate, without the `colocate:covers` lines that say what it converts: it counts as covering nothing",
            one.display()
        ),
        [first, ..] => eprintln!(
            "note: {} files ({} first) were written by an earlier colocate generate, without the `colocate:covers` lines that say what they convert: they count as covering nothing",
            chain.unmarked.len(),
            first.display()
        ),
    }
    let generated = generate_over(
        &schema,
        &plan,
        &opts,
        &chain,
        newest,
        MigrationId::from_unix_seconds(now),
    )
    .map_err(|e| ConfigError {
        message: match &e {
            GenerateError::Conflicts(_) => format!("{e}; nothing written"),
            _ => e.to_string(),
        },
        hint: e.hint().map(Into::into),
    })?;
    let files = &generated.files;
    if files.is_empty() {
        eprintln!(
            "nothing to generate: the chain already covers the plan ({})",
            count(generated.covering_files, "file")
        );
        return Ok(EXIT_OK);
    }
    if generated.covering_files > 0 {
        eprintln!(
            "the chain already covers {} of the plan ({}): writing only the rest",
            count(generated.covered_tables, "table"),
            count(generated.covering_files, "file")
        );
    }

    for path in write_all(&a.out, files)? {
        println!("{}", path.display());
    }
    let left_out = plan.tables.iter().filter(|t| t.blocked).count();
    eprintln!(
        "wrote {} into {}",
        colocate_core::words::count(files.len(), "migration file"),
        a.out.display()
    );
    if left_out > 0 && !a.with_fixes {
        eprintln!(
            "note: {} {} left out (named at the top of the first file); --with-fixes writes the fixes that exist first",
            colocate_core::words::count(left_out, "blocked table"),
            colocate_core::words::verb(left_out, "is", "are")
        );
    }
    Ok(EXIT_OK)
}

/// `n` and `noun`, the noun in the plural unless `n` is 1.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Write the files into `dir` (created if missing). Every name is checked first, so a file
/// that exists (another run's, written in the same second) stops the run before anything is
/// written; `create_new` keeps even a race from overwriting one.
fn write_all(dir: &Path, files: &[GeneratedFile]) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    if let Some(taken) = files.iter().map(|f| dir.join(&f.name)).find(|p| p.exists()) {
        bail!(ConfigError {
            message: format!(
                "{} already exists; generate never overwrites a file",
                taken.display()
            ),
            hint: Some("move it away, or choose another --out".into()),
        });
    }
    let mut written = Vec::with_capacity(files.len());
    for f in files {
        let path = dir.join(&f.name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut file| file.write_all(f.contents.as_bytes()))
            .with_context(|| format!("cannot create {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// The newest version among file names that start with one (`20240101000000_x.sql`, knex's
/// `20240101000000_x.js`, ...), in the directories that exist.
fn newest_version(dirs: &[PathBuf]) -> Option<MigrationId> {
    dirs.iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (version, _) = name.split_once('_')?;
            MigrationId::parse(version).ok()
        })
        .max()
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_file_is_never_overwritten() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let files = vec![
            GeneratedFile {
                name: "20240101000000_a.toml".into(),
                contents: "new".into(),
            },
            GeneratedFile {
                name: "20240101000001_b.toml".into(),
                contents: "new".into(),
            },
        ];
        assert_eq!(write_all(&out, &files[1..]).unwrap().len(), 1);
        std::fs::write(out.join("20240101000001_b.toml"), "mine").unwrap();
        let err = write_all(&out, &files).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} already exists; generate never overwrites a file",
                out.join("20240101000001_b.toml").display()
            )
        );
        // Nothing was written, the file kept.
        assert!(!out.join("20240101000000_a.toml").exists());
        assert_eq!(
            std::fs::read_to_string(out.join("20240101000001_b.toml")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn the_newest_version_counts_every_runner_s_files() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for (d, n) in [
            (a.path(), "20240101000000_a.sql"),
            (a.path(), "20240301000000_b.toml"),
            (b.path(), "20240201000000_c.cjs"),
            (b.path(), "README.md"),
            (b.path(), "20249999999999_bad.sql"),
        ] {
            std::fs::write(d.join(n), "").unwrap();
        }
        let dirs = vec![
            a.path().to_path_buf(),
            b.path().to_path_buf(),
            a.path().join("missing"),
        ];
        assert_eq!(
            newest_version(&dirs).map(|v| v.to_string()).as_deref(),
            Some("20240301000000")
        );
        assert_eq!(newest_version(&[]), None);
    }
}
