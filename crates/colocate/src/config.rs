//! `colocate.toml`: found by walking up from the working directory unless `--config` names it.
//! Relative paths in it are relative to the file's own directory.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use colocate_core::distribution::DistributionConfig;
use serde::Deserialize;

pub const FILE_NAME: &str = "colocate.toml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Migration directories, merged by version.
    #[serde(default)]
    pub migration_dirs: Vec<PathBuf>,
    /// `table` or `schema.table`.
    pub history_table: Option<String>,
    /// The distribution settings read by `plan` and `check`.
    #[serde(default)]
    pub distribution: DistributionConfig,
    /// Where the file was found (set after reading).
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// A user error in the configuration: exit 2 with a hint.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    pub message: String,
    pub hint: Option<String>,
}

impl Config {
    /// Read the config named by `--config`, else the nearest `colocate.toml` up from `cwd`,
    /// else an empty one.
    pub fn load(explicit: Option<&Path>, cwd: &Path) -> Result<Config> {
        let path = match explicit {
            Some(p) => {
                if !p.is_file() {
                    let what = if p.is_dir() {
                        "is a directory, not a file"
                    } else {
                        "does not exist"
                    };
                    bail!(ConfigError {
                        message: format!("config file {} {what}", p.display()),
                        hint: Some("pass the path of an existing colocate.toml to --config".into()),
                    });
                }
                Some(p.to_path_buf())
            }
            None => cwd
                .ancestors()
                .map(|d| d.join(FILE_NAME))
                .find(|p| p.is_file()),
        };
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
            message: format!("{}: cannot read: {e}", path.display()),
            hint: None,
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError {
            message: format!(
                "{}: {}",
                path.display(),
                e.message().lines().next().unwrap_or("invalid TOML")
            ),
            hint: Some(match e.span() {
                Some(span) => format!(
                    "at line {}; see the configuration section of the README",
                    text.as_bytes()[..span.start.min(text.len())]
                        .iter()
                        .filter(|b| **b == b'\n')
                        .count()
                        + 1
                ),
                None => "see the configuration section of the README".into(),
            }),
        })?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        config.migration_dirs = config
            .migration_dirs
            .into_iter()
            .map(|d| if d.is_absolute() { d } else { base.join(d) })
            .collect();
        config.path = Some(path);
        Ok(config)
    }

    /// `--dir` wins over `migration_dirs`.
    pub fn dirs(&self, from_cli: &[PathBuf]) -> Result<Vec<PathBuf>> {
        if !from_cli.is_empty() {
            return Ok(from_cli.to_vec());
        }
        if self.migration_dirs.is_empty() {
            bail!(ConfigError {
                message: "no migration directories configured".into(),
                hint: Some(
                    "pass --dir DIR (repeatable) or set migration_dirs in colocate.toml".into()
                ),
            });
        }
        Ok(self.migration_dirs.clone())
    }

    pub fn history_table(&self) -> &str {
        self.history_table
            .as_deref()
            .unwrap_or(colocate_pg::history::DEFAULT_HISTORY_TABLE)
    }
}

/// Read `--config` strictly enough that a typo is caught, with context for the caller.
pub fn load_from(explicit: Option<&Path>) -> Result<Config> {
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    Config::load(explicit, &cwd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_up_and_resolves_relative_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join(FILE_NAME),
            "migration_dirs = [\"db/a\", \"db/b\"]\nhistory_table = \"ops.hist\"\n",
        )
        .unwrap();
        let deep = tmp.path().join("x/y");
        std::fs::create_dir_all(&deep).unwrap();
        let c = Config::load(None, &deep).unwrap();
        assert_eq!(
            c.migration_dirs,
            vec![tmp.path().join("db/a"), tmp.path().join("db/b")]
        );
        assert_eq!(c.history_table(), "ops.hist");
        assert_eq!(
            c.dirs(&[PathBuf::from("z")]).unwrap(),
            vec![PathBuf::from("z")]
        );
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join(FILE_NAME);
        std::fs::write(&p, "migration_dirs = []\nmigration_dir = \"x\"\n").unwrap();
        let err = Config::load(Some(&p), tmp.path()).unwrap_err();
        let ce = err.downcast_ref::<ConfigError>().unwrap();
        assert!(
            ce.message.contains("unknown field `migration_dir`"),
            "{}",
            ce.message
        );
        assert!(ce.hint.as_deref().unwrap().contains("line 2"));
    }

    #[test]
    fn no_dirs_anywhere_is_an_error() {
        let err = Config::default().dirs(&[]).unwrap_err();
        assert!(err.to_string().contains("no migration directories"));
    }
}
