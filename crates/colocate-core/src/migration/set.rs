//! The migration set: every migration of the configured directories, merged into one
//! sequence by version, which is what history is compared against.
//!
//! SPEC:
//! - Anything in a migration directory other than a migration file is an error naming the file
//!   (dotfiles and sub-directories are ignored).
//! - `MigrationSet::load(dirs)`: reads every directory (missing dir → error naming it), merges by
//!   version; the same version twice (in one dir or across dirs) is an error naming both paths.
//!   Sorted by id.

use std::path::{Path, PathBuf};

use super::{parse_file_name, Migration, MigrationError, MigrationId};

/// Every migration of the configured directories, merged and sorted by version. Versions are
/// unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationSet {
    migrations: Vec<Migration>,
    /// Files whose up part has no statement yet (just made by `colocate new`), kept apart by
    /// [`MigrationSet::load_for_status`]; the strict loaders refuse them.
    pub empty: Vec<EmptyFile>,
}

/// A migration file with nothing to run yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmptyFile {
    pub id: MigrationId,
    pub name: String,
    /// Its directory as history would record it (see [`Migration::source`]).
    pub source: String,
}

impl MigrationSet {
    /// Read every directory, in order. Entries are read sorted by name so the first error found
    /// is the same on every machine. Dotfiles and sub-directories are skipped; every other entry
    /// must be a migration file.
    pub fn load(dirs: &[PathBuf]) -> Result<MigrationSet, MigrationError> {
        let labeled: Vec<(PathBuf, String)> = dirs
            .iter()
            .map(|d| (d.clone(), d.display().to_string()))
            .collect();
        MigrationSet::load_labeled(&labeled)
    }

    /// [`MigrationSet::load`], each directory with the label history records for its
    /// migrations ([`Migration::source`]).
    pub fn load_labeled(dirs: &[(PathBuf, String)]) -> Result<MigrationSet, MigrationError> {
        MigrationSet::load_with(dirs, None)
    }

    /// [`MigrationSet::load_labeled`] for `status`, which lists a file with an empty up part
    /// (just made by `colocate new`) as `empty` instead of refusing to report anything.
    pub fn load_for_status(dirs: &[(PathBuf, String)]) -> Result<MigrationSet, MigrationError> {
        let mut empty = Vec::new();
        let mut set = MigrationSet::load_with(dirs, Some(&mut empty))?;
        set.empty = empty;
        Ok(set)
    }

    fn load_with(
        dirs: &[(PathBuf, String)],
        mut empty: Option<&mut Vec<EmptyFile>>,
    ) -> Result<MigrationSet, MigrationError> {
        let mut migrations = Vec::new();
        for (dir, label) in dirs {
            let first = migrations.len();
            load_dir(dir, label, &mut migrations, empty.as_deref_mut())?;
            for m in &mut migrations[first..] {
                m.source.clone_from(label);
            }
        }
        MigrationSet::from_migrations(migrations)
    }

    /// Sort by version and reject duplicates. Of two migrations with one version, the one given
    /// first is named first.
    pub fn from_migrations(mut migrations: Vec<Migration>) -> Result<MigrationSet, MigrationError> {
        // Stable, so equal versions keep the order they came in.
        migrations.sort_by_key(|m| m.id);
        if let Some(pair) = migrations.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(MigrationError::DuplicateVersion {
                version: pair[0].id,
                first: pair[0].path.clone(),
                second: pair[1].path.clone(),
            });
        }
        Ok(MigrationSet {
            migrations,
            empty: Vec::new(),
        })
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Migration> {
        self.migrations.iter()
    }

    pub fn as_slice(&self) -> &[Migration] {
        &self.migrations
    }

    pub fn len(&self) -> usize {
        self.migrations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.migrations.is_empty()
    }

    pub fn get(&self, id: MigrationId) -> Option<&Migration> {
        self.migrations
            .binary_search_by_key(&id, |m| m.id)
            .ok()
            .map(|i| &self.migrations[i])
    }

    /// The newest migration.
    pub fn last(&self) -> Option<&Migration> {
        self.migrations.last()
    }
}

impl<'a> IntoIterator for &'a MigrationSet {
    type Item = &'a Migration;
    type IntoIter = std::slice::Iter<'a, Migration>;

    fn into_iter(self) -> Self::IntoIter {
        self.migrations.iter()
    }
}

fn load_dir(
    dir: &Path,
    label: &str,
    out: &mut Vec<Migration>,
    mut empty: Option<&mut Vec<EmptyFile>>,
) -> Result<(), MigrationError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MigrationError::Io { path, source }
    };
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(MigrationError::NotADirectory {
                path: dir.to_path_buf(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(MigrationError::DirNotFound {
                path: dir.to_path_buf(),
            })
        }
        Err(e) => return Err(io(dir)(e)),
    }
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        // The directory entry knows its type without a stat; only links need following.
        let kind = entry.file_type().map_err(io(&entry.path()))?;
        entries.push((entry.file_name(), kind.is_dir(), kind.is_symlink()));
    }
    entries.sort();
    for (file_name, is_dir, is_link) in entries {
        if file_name.as_encoded_bytes().starts_with(b".") || is_dir {
            continue;
        }
        let path = dir.join(&file_name);
        // Follows symlinks: a link to a directory is skipped like the directory.
        if is_link && std::fs::metadata(&path).map_err(io(&path))?.is_dir() {
            continue;
        }
        // Check the name before reading, so a stray large file is not read for nothing.
        if let Err(reason) = parse_file_name(&file_name.to_string_lossy()) {
            return Err(MigrationError::InvalidFileName { path, reason });
        }
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        match (Migration::parse(dir, &path, &bytes), empty.as_deref_mut()) {
            (Ok(m), _) => out.push(m),
            (Err(MigrationError::EmptyUp { .. }), Some(empty)) => {
                if let Ok((id, name)) = parse_file_name(&file_name.to_string_lossy()) {
                    empty.push(EmptyFile {
                        id,
                        name,
                        source: label.to_string(),
                    });
                }
            }
            (Err(e), _) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::declarative::DeclarativeStep;
    use crate::migration::Checksum;

    fn id(s: &str) -> MigrationId {
        MigrationId::parse(s).unwrap()
    }

    fn migration(dir: &str, file: &str) -> Migration {
        let dir = Path::new(dir);
        Migration::parse(dir, &dir.join(file), b"-- migrate:up\nselect 1;").unwrap()
    }

    #[test]
    fn from_migrations_sorts_and_gets() {
        let set = MigrationSet::from_migrations(vec![
            migration("b", "20240103000000_c.sql"),
            migration("a", "20240101000000_a.sql"),
            migration("b", "20240102000000_b.sql"),
        ])
        .unwrap();
        let names: Vec<&str> = set.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(set.len(), 3);
        assert!(!set.is_empty());
        assert_eq!(set.get(id("20240102000000")).unwrap().name, "b");
        assert!(set.get(id("20240104000000")).is_none());
        assert_eq!(set.last().unwrap().name, "c");
        assert_eq!((&set).into_iter().count(), 3);
        assert!(MigrationSet::from_migrations(vec![]).unwrap().is_empty());
    }

    #[test]
    fn from_migrations_rejects_duplicates_naming_both() {
        let err = MigrationSet::from_migrations(vec![
            migration("base", "20240101000000_a.sql"),
            migration("ee", "20240101000000_b.sql"),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "version 20240101000000 appears twice: base/20240101000000_a.sql and ee/20240101000000_b.sql"
        );
    }

    mod load {
        use super::*;
        use std::fs;

        const UP: &str = "-- migrate:up\nselect 1;\n";

        fn write(dir: &Path, name: &str, body: &str) {
            fs::write(dir.join(name), body).unwrap();
        }

        fn load(dirs: &[&Path]) -> Result<MigrationSet, MigrationError> {
            MigrationSet::load(&dirs.iter().map(|d| d.to_path_buf()).collect::<Vec<_>>())
        }

        #[test]
        fn merges_directories_by_version() {
            let base = tempfile::tempdir().unwrap();
            let ee = tempfile::tempdir().unwrap();
            write(base.path(), "20240101000000_tenants.sql", UP);
            write(base.path(), "20240103000000_users.sql", UP);
            write(ee.path(), "20240102000000_licenses.sql", UP);
            let set = load(&[base.path(), ee.path()]).unwrap();
            let got: Vec<(String, &Path)> = set
                .iter()
                .map(|m| (m.file_name(), m.dir.as_path()))
                .collect();
            assert_eq!(
                got,
                [
                    ("20240101000000_tenants.sql".to_string(), base.path()),
                    ("20240102000000_licenses.sql".to_string(), ee.path()),
                    ("20240103000000_users.sql".to_string(), base.path()),
                ]
            );
            assert_eq!(
                set.get(id("20240102000000")).unwrap().path,
                ee.path().join("20240102000000_licenses.sql")
            );
        }

        #[test]
        fn empty_directory_gives_an_empty_set() {
            let d = tempfile::tempdir().unwrap();
            assert!(load(&[d.path()]).unwrap().is_empty());
            assert!(MigrationSet::load(&[]).unwrap().is_empty());
        }

        #[test]
        fn duplicate_across_directories_names_both_paths() {
            let base = tempfile::tempdir().unwrap();
            let ee = tempfile::tempdir().unwrap();
            write(base.path(), "20240101000000_a.sql", UP);
            write(ee.path(), "20240101000000_b.sql", UP);
            let err = load(&[base.path(), ee.path()]).unwrap_err();
            let a = base.path().join("20240101000000_a.sql");
            let b = ee.path().join("20240101000000_b.sql");
            assert_eq!(
                err.to_string(),
                format!(
                    "version 20240101000000 appears twice: {} and {}",
                    a.display(),
                    b.display()
                )
            );
            // The order follows the directories given.
            let err = load(&[ee.path(), base.path()]).unwrap_err();
            assert!(matches!(
                err,
                MigrationError::DuplicateVersion { first, second, .. } if first == b && second == a
            ));
        }

        #[test]
        fn duplicate_within_one_directory() {
            let d = tempfile::tempdir().unwrap();
            write(d.path(), "20240101000000_b.sql", UP);
            write(d.path(), "20240101000000_a.sql", UP);
            match load(&[d.path()]).unwrap_err() {
                MigrationError::DuplicateVersion {
                    version,
                    first,
                    second,
                } => {
                    assert_eq!(version, id("20240101000000"));
                    assert_eq!(first, d.path().join("20240101000000_a.sql"));
                    assert_eq!(second, d.path().join("20240101000000_b.sql"));
                }
                other => panic!("{other:?}"),
            }
        }

        #[test]
        fn dotfiles_and_subdirectories_are_ignored() {
            let d = tempfile::tempdir().unwrap();
            write(d.path(), "20240101000000_a.sql", UP);
            write(d.path(), ".gitkeep", "");
            write(d.path(), ".20240101000000_a.sql.swp", "junk");
            fs::create_dir(d.path().join("archive")).unwrap();
            write(&d.path().join("archive"), "not a migration.txt", "");
            fs::create_dir(d.path().join("20240102000000_dir.sql")).unwrap();
            let set = load(&[d.path()]).unwrap();
            assert_eq!(set.len(), 1);
        }

        #[test]
        fn bad_file_names_are_errors() {
            let d = tempfile::tempdir().unwrap();
            write(d.path(), "20240101000000_a.sql", UP);
            write(d.path(), "20241301000000_b.sql", UP);
            let err = load(&[d.path()]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "{}: invalid migration file name: month 13 is not 1-12",
                    d.path().join("20241301000000_b.sql").display()
                )
            );
            assert_eq!(
                err.hint().as_deref(),
                Some(
                    "rename it to YYYYMMDDHHMMSS_name.sql, or move it out of the migration directory"
                )
            );
            assert_eq!(err.path(), d.path().join("20241301000000_b.sql"));
        }

        #[test]
        fn the_first_bad_file_by_name_is_reported() {
            let d = tempfile::tempdir().unwrap();
            write(d.path(), "README.md", "");
            write(d.path(), "NOTES.txt", "");
            write(d.path(), "zz.sql", "");
            for _ in 0..3 {
                let err = load(&[d.path()]).unwrap_err();
                assert_eq!(err.path(), d.path().join("NOTES.txt"));
            }
        }

        #[test]
        fn toml_step_files_load_beside_sql_migrations() {
            let d = tempfile::tempdir().unwrap();
            write(d.path(), "20240101000000_tenants.sql", UP);
            let body = "[distribute]\ncolumn = \"tenant\"\ntables = [\"tenants\"]\n";
            write(d.path(), "20240102000000_distribute_tenants.toml", body);
            let set = load(&[d.path()]).unwrap();
            assert_eq!(set.len(), 2);
            let m = set.get(id("20240102000000")).unwrap();
            assert_eq!(m.file_name(), "20240102000000_distribute_tenants.toml");
            assert_eq!(m.name, "distribute_tenants");
            assert_eq!(m.checksum, Checksum::of(body.as_bytes()));
            assert!(matches!(m.step, Some(DeclarativeStep::Distribute { .. })));
            assert!(!m.up.transaction && m.up.statements.is_empty());
            assert_eq!(
                m.up.sql,
                "-- declarative step: distribute public.tenants by tenant as the root of a new colocation group\n"
            );
            // The down part is automatic.
            assert!(m.down.is_some());
            assert!(set.get(id("20240101000000")).unwrap().step.is_none());
        }

        #[test]
        fn bad_toml_step_files_name_the_file_and_line() {
            let d = tempfile::tempdir().unwrap();
            write(
                d.path(),
                "20240101000000_distribute.toml",
                "[citus]\nextension = true\nx = 1\n",
            );
            let err = load(&[d.path()]).unwrap_err();
            assert!(matches!(err, MigrationError::Declarative { .. }));
            let path = d.path().join("20240101000000_distribute.toml");
            assert_eq!(
                err.to_string(),
                format!(
                    "{}:3: unknown field `x`, expected `extension`",
                    path.display()
                )
            );
            assert_eq!(err.path(), path);
            assert!(err.hint().is_some());
            write(
                d.path(),
                "20240101000000_distribute.toml",
                "[reference]\ntables = []\n",
            );
            assert_eq!(
                load(&[d.path()]).unwrap_err().to_string(),
                format!("{}: [reference] tables is empty", path.display())
            );
            write(
                d.path(),
                "20240101000000_distribute.toml",
                "[citus]\nextension = true\n[reference]\ntables = [\"a\"]\n",
            );
            assert_eq!(
                load(&[d.path()]).unwrap_err().to_string(),
                format!(
                    "{}: declares [citus] and [reference]: one step per file",
                    path.display()
                )
            );
        }

        #[test]
        fn missing_directory() {
            let d = tempfile::tempdir().unwrap();
            let missing = d.path().join("nope");
            let err = load(&[d.path(), &missing]).unwrap_err();
            assert!(matches!(err, MigrationError::DirNotFound { .. }));
            assert_eq!(
                err.to_string(),
                format!("migration directory {} does not exist", missing.display())
            );
            assert!(err.hint().is_some());
        }

        #[test]
        fn a_file_given_as_directory() {
            let d = tempfile::tempdir().unwrap();
            write(d.path(), "20240101000000_a.sql", UP);
            let file = d.path().join("20240101000000_a.sql");
            let err = load(&[&file]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("migration directory {} is not a directory", file.display())
            );
        }

        #[test]
        fn content_errors_name_the_file_and_line() {
            let d = tempfile::tempdir().unwrap();
            write(
                d.path(),
                "20240101000000_f.sql",
                "-- migrate:up\ncreate function f() returns int as $body$\nselect 1;\n",
            );
            let err = load(&[d.path()]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "{}:2: unterminated dollar quote $body$",
                    d.path().join("20240101000000_f.sql").display()
                )
            );
        }

        #[cfg(unix)]
        #[test]
        fn unreadable_file_keeps_the_io_error() {
            use std::error::Error as _;
            let d = tempfile::tempdir().unwrap();
            // A dangling symlink: listed in the directory, but cannot be read.
            std::os::unix::fs::symlink(
                d.path().join("gone"),
                d.path().join("20240101000000_a.sql"),
            )
            .unwrap();
            let err = load(&[d.path()]).unwrap_err();
            assert!(matches!(err, MigrationError::Io { .. }));
            // The OS error is the source, not also part of the message: the CLI prints the
            // chain, and printed it twice when both held it.
            assert_eq!(
                err.to_string(),
                format!(
                    "{}: cannot read",
                    d.path().join("20240101000000_a.sql").display()
                )
            );
            assert!(err.source().is_some());
            assert_eq!(err.hint(), None);
        }
    }
}
