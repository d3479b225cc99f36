//! `new` (timestamped files, strictly increasing versions) and `--help`.

mod common;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use colocate_core::MigrationId;
use common::{create_table, Project, Run};

/// `new` needs no database: run it with a clean environment in `cwd`.
fn new(cwd: &Path, args: &[&str]) -> Run {
    let mut cmd = common::command();
    cmd.current_dir(cwd).arg("new").args(args);
    common::run(cmd)
}

fn now_id() -> MigrationId {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    MigrationId::from_unix_seconds(secs)
}

/// The file `new` printed, checked for name and content; returns its version.
#[track_caller]
fn created(r: &Run, dir: &Path, name: &str, transaction: bool) -> (MigrationId, PathBuf) {
    let printed = PathBuf::from(r.stdout.trim());
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    assert_eq!(printed.parent(), Some(dir), "{}", r.stdout);
    let file = printed.file_name().unwrap().to_str().unwrap().to_string();
    let (digits, rest) = file.split_at(14);
    assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{file}");
    assert_eq!(rest, format!("_{name}.sql"), "{file}");
    let id: MigrationId = digits.parse().expect("a valid timestamp");
    let text = std::fs::read_to_string(&printed).expect("the file exists");
    let opt = if transaction {
        ""
    } else {
        " transaction:false"
    };
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.contains(&format!("-- migrate:up{opt}").as_str()),
        "{text}"
    );
    assert!(
        lines.contains(&format!("-- migrate:down{opt}").as_str()),
        "{text}"
    );
    assert!(
        text.find("-- migrate:up") < text.find("-- migrate:down"),
        "{text}"
    );
    (id, printed)
}

#[test]
fn new_in_dir_creates_a_timestamped_file_with_both_markers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db/migrations");
    let before = now_id();
    let r = new(
        tmp.path(),
        &["Add invoice due-date!", "--in", dir.to_str().unwrap()],
    )
    .expect(0);
    let after = now_id();
    let (id, _) = created(&r, &dir, "add_invoice_due_date", true);
    assert!(
        before <= id && id <= after,
        "{before:?} <= {id:?} <= {after:?}"
    );
    assert!(r.stderr.contains("before running migrate"), "{}", r.stderr);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

    let r = new(
        tmp.path(),
        &[
            "index invoices",
            "--no-transaction",
            "--in",
            dir.to_str().unwrap(),
        ],
    )
    .expect(0);
    created(&r, &dir, "index_invoices", false);
}

#[test]
fn each_new_file_gets_a_strictly_later_version() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let mut ids = Vec::new();
    // Faster than one per second, so most land in the same second.
    for i in 0..4 {
        let r = new(
            tmp.path(),
            &[&format!("step {i}"), "--in", dir.to_str().unwrap()],
        )
        .expect(0);
        ids.push(created(&r, &dir, &format!("step_{i}"), true).0);
    }
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "versions must increase: {ids:?}"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 4);
}

#[test]
fn new_goes_after_the_newest_existing_version_even_in_the_future() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("20991231235959_from_the_future.sql"),
        create_table("f"),
    )
    .unwrap();
    let r = new(tmp.path(), &["next", "--in", dir.to_str().unwrap()]).expect(0);
    let (id, _) = created(&r, &dir, "next", true);
    assert_eq!(id.to_string(), "21000101000000");
}

#[test]
fn new_uses_the_only_configured_directory() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("colocate.toml"),
        "migration_dirs = [\"db/migrations\"]\n",
    )
    .unwrap();
    let sub = tmp.path().join("src");
    std::fs::create_dir_all(&sub).unwrap();
    let r = new(&sub, &["create users"]).expect(0);
    created(&r, &tmp.path().join("db/migrations"), "create_users", true);
}

#[test]
fn new_with_two_directories_and_no_in_lists_them() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("server/migrations");
    let b = tmp.path().join("ee/server/migrations");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let mut cmd = common::command();
    cmd.current_dir(tmp.path())
        .arg("--dir")
        .arg(&a)
        .arg("--dir")
        .arg(&b)
        .args(["new", "create_users"]);
    let r = common::run(cmd).expect(2);
    r.only_error();
    let hint = r.hint_line().expect("a hint");
    assert!(hint.contains("--in"), "{hint}");
    assert!(hint.contains(&a.display().to_string()), "{hint}");
    assert!(hint.contains(&b.display().to_string()), "{hint}");
    let mut settings = common::settings();
    settings.add_filter(
        &common::regex_escape(&tmp.path().display().to_string()),
        "[TMP]",
    );
    settings.bind(|| insta::assert_snapshot!("new_which_directory", r.transcript()));
    // Nothing was written anywhere.
    assert_eq!(std::fs::read_dir(&a).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(&b).unwrap().count(), 0);

    // Naming one works.
    let mut cmd = common::command();
    cmd.current_dir(tmp.path())
        .arg("--dir")
        .arg(&a)
        .arg("--dir")
        .arg(&b)
        .args(["new", "create_users", "--in"])
        .arg(&b);
    let r = common::run(cmd).expect(0);
    created(&r, &b, "create_users", true);
}

#[test]
fn new_refuses_a_name_without_letters() {
    let tmp = tempfile::tempdir().unwrap();
    let r = new(tmp.path(), &["--in", "m", "--", "!!"]).expect(2);
    assert!(r.only_error().contains("'!!'"), "{}", r.stderr);
    assert!(r.hint_line().is_some(), "{}", r.stderr);
    assert!(!tmp.path().join("m").exists());
}

#[test]
fn a_new_empty_file_stops_migrate_until_written() {
    let p = Project::new();
    p.write("m", "20240101000000_a.sql", &create_table("a"));
    let dir = p.root().join("m");
    let r = new(p.root(), &["todo", "--in", dir.to_str().unwrap()]).expect(0);
    let (_, path) = created(&r, &dir, "todo", true);
    let m = p.colocate(&["m"], &["migrate"]).expect(2);
    assert!(
        m.only_error().contains(&path.display().to_string()),
        "{}",
        m.stderr
    );
    assert_eq!(p.user_tables(), 0);
}

// --- Help ----------------------------------------------------------------------------------------

#[test]
fn help_mentions_database_url_and_dir() {
    for args in [
        &["--help"][..],
        &["migrate", "--help"][..],
        &["help", "migrate"][..],
    ] {
        let mut cmd = common::command();
        cmd.args(args);
        let r = common::run(cmd).expect(0);
        assert!(r.stdout.contains("DATABASE_URL"), "{args:?}: {}", r.stdout);
        assert!(
            r.stdout.contains("--database-url"),
            "{args:?}: {}",
            r.stdout
        );
        assert!(r.stdout.contains("--dir"), "{args:?}: {}", r.stdout);
        assert!(r.stderr.is_empty(), "{args:?}: {}", r.stderr);
    }
    let mut cmd = common::command();
    cmd.arg("--help");
    let r = common::run(cmd).expect(0);
    for sub in ["migrate", "rollback", "status", "new", "baseline"] {
        assert!(
            r.stdout.lines().any(|l| l.trim_start().starts_with(sub)),
            "{sub}: {}",
            r.stdout
        );
    }
    assert!(r.stdout.contains("Exit codes"), "{}", r.stdout);

    let mut cmd = common::command();
    cmd.args(["migrate", "--help"]);
    let r = common::run(cmd).expect(0);
    for flag in [
        "--dry-run",
        "--target",
        "--allow-out-of-order",
        "--lock-timeout",
    ] {
        assert!(r.stdout.contains(flag), "{flag}: {}", r.stdout);
    }
}

#[test]
fn help_never_shows_the_database_url_from_the_environment() {
    for args in [
        &["--help"][..],
        &["-h"][..],
        &["migrate", "--help"][..],
        &["status", "-h"][..],
    ] {
        let mut cmd = common::command();
        cmd.env(
            "DATABASE_URL",
            "postgres://app:Hunter2Secret@db.example:6432/app",
        )
        .args(args);
        let r = common::run(cmd).expect(0);
        assert!(r.stdout.contains("DATABASE_URL"), "{args:?}: {}", r.stdout);
        assert!(!r.all().contains("Hunter2Secret"), "{args:?}: {}", r.all());
        assert!(!r.all().contains("db.example"), "{args:?}: {}", r.all());
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["frobnicate"][..],
        &["migrate", "--no-such-flag"][..],
        &["migrate", "--lock-timeout", "5h"][..],
    ] {
        let mut cmd = common::command();
        cmd.args(args);
        let r = common::run(cmd).expect(2);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
        assert!(!r.stderr.is_empty(), "{args:?}");
    }
    let mut cmd = common::command();
    cmd.arg("--version");
    let r = common::run(cmd).expect(0);
    assert!(r.stdout.starts_with("colocate "), "{}", r.stdout);
}
