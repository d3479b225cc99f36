//! `colocate.toml`: found by walking up from the working directory unless `--config` names it.
//! Relative paths in it are relative to the file's own directory.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use colocate_core::distribution::{ConfigProblem, DistributionConfig, Key};
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
    /// Where the search for a file started when none was found (the defaults apply).
    #[serde(skip)]
    pub searched_from: Option<PathBuf>,
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
                // Anything readable is a config (`--config /dev/null` is an empty one).
                if p.is_dir() || !p.exists() {
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
            return Ok(Config {
                searched_from: Some(cwd.to_path_buf()),
                ..Config::default()
            });
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
        config.validate(&path, &text)?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        config.migration_dirs = config
            .migration_dirs
            .into_iter()
            .map(|d| if d.is_absolute() { d } else { base.join(d) })
            .collect();
        config.path = Some(path);
        Ok(config)
    }

    /// Refuse, before anything connects, what cannot mean what it says: the first problem is
    /// the error, named by file, line and setting; the hint says how many more there are.
    fn validate(&self, path: &Path, text: &str) -> Result<()> {
        let mut problems = self.distribution.validate();
        if let Some(h) = &self.history_table {
            if let Err(e) = colocate_core::schema::split_table_name(h) {
                problems.insert(
                    0,
                    ConfigProblem {
                        path: vec![Key::Name("history_table".into())],
                        message: format!("not a table name: {e}"),
                        hint: Some(
                            "write `history_table = \"table\"` or `\"schema.table\"`".into(),
                        ),
                    },
                );
            }
        }
        let Some(first) = problems.first() else {
            return Ok(());
        };
        let at = match line_of(text, &first.path) {
            Some(line) => format!("{}:{line}", path.display()),
            None => path.display().to_string(),
        };
        let more = match problems.len() - 1 {
            0 => String::new(),
            1 => " (and 1 more problem in the file)".into(),
            n => format!(" (and {n} more problems in the file)"),
        };
        bail!(ConfigError {
            message: format!("{at}: {}: {}{more}", first.setting(), first.message),
            hint: first
                .hint
                .clone()
                .or_else(|| { Some("see the configuration section of docs/cli.md".into()) }),
        })
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

    /// [`Config::dirs`], each with the label history records for it: relative to the
    /// configuration file's directory, or for `--dir` to the working directory `cwd`, so a CI
    /// runner and a laptop record the same value. A directory outside that base keeps its
    /// absolute path.
    pub fn labeled_dirs(&self, from_cli: &[PathBuf], cwd: &Path) -> Result<Vec<(PathBuf, String)>> {
        let base = self.label_base(from_cli, cwd);
        Ok(self
            .dirs(from_cli)?
            .into_iter()
            .map(|d| {
                let label = relative_label(&d, &base);
                (d, label)
            })
            .collect())
    }

    /// What directory labels are relative to (see [`Config::labeled_dirs`]).
    pub fn label_base(&self, from_cli: &[PathBuf], cwd: &Path) -> PathBuf {
        match (from_cli.is_empty(), &self.path) {
            (true, Some(p)) => p.parent().unwrap_or(Path::new(".")).to_path_buf(),
            _ => cwd.to_path_buf(),
        }
    }

    /// Which configuration a command plans with, said on stderr before it reports, so a run
    /// in the wrong directory does not silently plan with the built-in defaults.
    pub fn describe(&self) -> String {
        match (&self.path, &self.searched_from) {
            (Some(p), _) => format!("config: {}", p.display()),
            (None, Some(from)) => format!(
                "config: no {FILE_NAME} in {} or its parents: the built-in defaults apply (root {}, columns {})",
                from.display(),
                self.distribution.root,
                self.distribution.columns.join(", ")
            ),
            (None, None) => "config: the built-in defaults apply".into(),
        }
    }

    /// The same for JSON: `{"path": "...", "defaults": false}`.
    pub fn source_json(&self) -> serde_json::Value {
        serde_json::json!({
            "path": self.path.as_ref().map(|p| p.display().to_string()),
            "defaults": self.path.is_none(),
        })
    }

    pub fn history_table(&self) -> &str {
        self.history_table
            .as_deref()
            .unwrap_or(colocate_pg::history::DEFAULT_HISTORY_TABLE)
    }
}

/// The line a setting is written on, found by walking the file's own syntax tree.
fn line_of(text: &str, path: &[Key]) -> Option<usize> {
    use toml_edit::{Item, Value};
    enum Node<'a> {
        Item(&'a Item),
        Value(&'a Value),
        /// One `[[table]]` of an array of tables.
        Table(&'a toml_edit::Table),
    }
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut node = Node::Item(doc.as_item());
    for k in path {
        node = match (node, k) {
            (Node::Item(i), Key::Name(n)) => match i {
                Item::Value(v) => Node::Value(v.as_inline_table()?.get(n)?),
                _ => Node::Item(i.get(n.as_str())?),
            },
            (Node::Table(t), Key::Name(n)) => Node::Item(t.get(n.as_str())?),
            (Node::Item(Item::ArrayOfTables(a)), Key::Index(i)) => Node::Table(a.get(*i)?),
            (Node::Table(_), Key::Index(_)) => return None,
            (Node::Value(v), Key::Name(n)) => Node::Value(v.as_inline_table()?.get(n)?),
            (Node::Item(Item::Value(v)), Key::Index(i)) | (Node::Value(v), Key::Index(i)) => {
                Node::Value(v.as_array()?.get(*i)?)
            }
            (Node::Item(_), Key::Index(_)) => return None,
        };
    }
    let span = match node {
        Node::Item(i) => i.span(),
        Node::Value(v) => v.span(),
        Node::Table(t) => t.span(),
    }?;
    Some(text[..span.start.min(text.len())].matches('\n').count() + 1)
}

/// `dir` as a path relative to `base` when it is inside it (or is relative already), without
/// `.` components; else as it is. `base` itself is `.`.
pub fn relative_label(dir: &Path, base: &Path) -> String {
    use std::path::Component;
    let rel = if dir.is_absolute() {
        match dir.strip_prefix(base) {
            Ok(r) => r,
            Err(_) => return dir.display().to_string(),
        }
    } else {
        dir
    };
    let parts: Vec<String> = rel
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
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
    fn directories_are_labeled_relative_to_their_base() {
        let base = Path::new("/home/alice/app");
        assert_eq!(
            relative_label(Path::new("/home/alice/app/ee/server/migrations"), base),
            "ee/server/migrations"
        );
        assert_eq!(relative_label(Path::new("./db/./m"), base), "db/m");
        assert_eq!(relative_label(Path::new("/home/alice/app"), base), ".");
        assert_eq!(
            relative_label(Path::new("/srv/shared/m"), base),
            "/srv/shared/m"
        );
        assert_eq!(
            relative_label(Path::new("../shared/m"), base),
            "../shared/m"
        );
    }

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

    fn refusal(toml_text: &str) -> String {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join(FILE_NAME);
        std::fs::write(&p, toml_text).unwrap();
        let err = Config::load(Some(&p), tmp.path()).unwrap_err();
        let message = err.downcast_ref::<ConfigError>().unwrap().message.clone();
        message.replace(&p.display().to_string(), "FILE")
    }

    #[test]
    fn problems_name_file_line_and_setting() {
        assert_eq!(
            refusal("history_table = \"x\"\n\n[distribution]\nshard_count = 0\n"),
            "FILE:4: distribution.shard_count: shard_count = 0 is outside what Citus accepts (1 to 64000)"
        );
        assert_eq!(
            refusal("history_table = \"a.b.c\"\n[distribution]\nshard_count = 0\n"),
            "FILE:1: history_table: not a table name: 'a.b.c' has more than two parts (write `table` or `schema.table`; quote a part that holds a dot) (and 1 more problem in the file)"
        );
        assert!(refusal("history_table = \"\"\n")
            .starts_with("FILE:1: history_table: not a table name: the name is empty"));
        assert_eq!(
            refusal("[distribution]\nreference = [\n  \"a\",\n  { table = \"b\" },\n]\nlocal = [\"x\", { table = \"b\", reason = \"r\" }]\n"),
            "FILE:6: distribution.local[1]: public.b is made local here but a reference table at distribution.reference[1]"
        );
        assert_eq!(
            refusal("[distribution.tables.tenants]\nreason = \"ops\"\nrole = \"local\"\n"),
            "FILE:3: distribution.tables.tenants.role: public.tenants is the root table, which is always distributed; it cannot be local"
        );
        assert_eq!(
            refusal("[distribution]\ntables = { t = { role = \"local\", column = \"c\" } }\n"),
            "FILE:2: distribution.tables.t.column: public.t has a distribution column but is made local"
        );
    }

    #[test]
    fn a_quoted_history_table_is_unquoted_like_every_other_name() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join(FILE_NAME);
        std::fs::write(&p, "history_table = '\"we\"\"ird\"'\n").unwrap();
        assert!(Config::load(Some(&p), tmp.path()).is_ok());
    }

    #[test]
    fn any_readable_file_is_a_config() {
        let c = Config::load(Some(Path::new("/dev/null")), Path::new("/")).unwrap();
        assert!(c.migration_dirs.is_empty());
    }
}
