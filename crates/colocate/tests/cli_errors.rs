//! Bad input: every case exits 2 with one `error:` line naming the file or setting (and a `hint:`
//! where there is one), and leaves the database exactly as it was. Connection failures never
//! print a password.

mod common;

use common::{create_table, migration, Project, Run, UP};

/// Nothing in the database: no history table, no table of any migration.
#[track_caller]
fn assert_untouched(p: &Project) {
    assert!(!p.table_exists("colocate_migrations"));
    assert_eq!(p.user_tables(), 0, "tables: {:?}", p.table_names());
}

/// Run `migrate` (the command that would change most) and check the refusal's shape.
#[track_caller]
fn refused(p: &Project, dirs: &[&str], args: &[&str]) -> Run {
    let r = p.colocate(dirs, args).expect(2);
    r.only_error();
    assert_untouched(p);
    r
}

#[track_caller]
fn snapshot(p: &Project, name: &str, r: &Run) {
    p.settings()
        .bind(|| insta::assert_snapshot!(name, r.transcript()));
}

// --- Migration files --------------------------------------------------------------------------

#[test]
fn file_name_with_month_13() {
    let p = Project::new();
    p.write("m", "20240101000000_fine.sql", &create_table("fine"));
    let bad = p.write("m", "20241301000000_x.sql", &create_table("x"));
    let r = refused(&p, &["m"], &["migrate"]);
    let err = r.only_error();
    assert!(err.contains(&bad.display().to_string()), "{err}");
    assert!(err.contains("month 13"), "{err}");
    assert!(
        r.hint_line()
            .unwrap_or_default()
            .contains("YYYYMMDDHHMMSS_name.sql"),
        "{}",
        r.stderr
    );
    snapshot(&p, "bad_input_month_13", &r);
    // status reads the same files and refuses the same way.
    let s = p.colocate(&["m"], &["status"]).expect(2);
    assert_eq!(s.only_error(), err);
}

#[test]
fn same_version_in_two_directories_names_both_paths() {
    let p = Project::new();
    let a = p.write("base", "20240101000000_users.sql", &create_table("users"));
    let b = p.write(
        "ee",
        "20240101000000_licenses.sql",
        &create_table("licenses"),
    );
    p.write("ee", "20240102000000_other.sql", &create_table("other"));
    let r = refused(&p, &["base", "ee"], &["migrate"]);
    let err = r.only_error();
    assert!(err.contains("20240101000000"), "{err}");
    assert!(err.contains(&a.display().to_string()), "{err}");
    assert!(err.contains(&b.display().to_string()), "{err}");
    assert!(r.hint_line().is_some(), "{}", r.stderr);
    snapshot(&p, "bad_input_duplicate_version", &r);
}

#[test]
fn empty_up_section() {
    let p = Project::new();
    p.write("m", "20240101000000_fine.sql", &create_table("fine"));
    let bad = p.write(
        "m",
        "20240102000000_todo.sql",
        "-- migrate:up\n-- TODO write this\n\n-- migrate:down\nDROP TABLE nothing;\n",
    );
    let r = refused(&p, &["m"], &["migrate"]);
    let err = r.only_error();
    assert!(err.contains(&bad.display().to_string()), "{err}");
    assert!(err.contains("up section has no statements"), "{err}");
    assert!(r.hint_line().is_some(), "{}", r.stderr);
    snapshot(&p, "bad_input_empty_up", &r);
}

#[test]
fn unterminated_dollar_quote_names_file_and_line() {
    let p = Project::new();
    p.write("m", "20240101000000_fine.sql", &create_table("fine"));
    let bad = p.write(
        "m",
        "20240102000000_func.sql",
        &format!(
            "{UP}CREATE TABLE t (id int);\n\nCREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$\n  SELECT 1;\n$bdoy$;\n"
        ),
    );
    let r = refused(&p, &["m"], &["migrate"]);
    let err = r.only_error();
    assert!(
        err.starts_with(&format!("error: {}:4: ", bad.display())),
        "{err}"
    );
    assert!(err.contains("$body$"), "{err}");
    assert!(r.hint_line().is_some(), "{}", r.stderr);
    snapshot(&p, "bad_input_unterminated_dollar_quote", &r);
}

#[test]
fn missing_directory() {
    let p = Project::new();
    p.write("m", "20240101000000_fine.sql", &create_table("fine"));
    let r = refused(&p, &["m", "not-there"], &["migrate"]);
    let err = r.only_error();
    assert!(
        err.contains(&p.root().join("not-there").display().to_string()),
        "{err}"
    );
    assert!(err.contains("does not exist"), "{err}");
    assert!(
        r.hint_line().unwrap_or_default().contains("migration_dirs"),
        "{}",
        r.stderr
    );
    snapshot(&p, "bad_input_missing_directory", &r);
}

#[test]
fn no_directory_configured_at_all() {
    let p = Project::new();
    let r = p.colocate(&[], &["migrate"]).expect(2);
    r.only_error();
    assert!(
        r.hint_line().unwrap_or_default().contains("--dir"),
        "{}",
        r.stderr
    );
    assert_untouched(&p);
}

// --- Configuration ------------------------------------------------------------------------------

fn with_config(p: &Project, text: &[u8]) -> std::path::PathBuf {
    p.write("db", "20240101000000_fine.sql", &create_table("fine"));
    let path = p.root().join("colocate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn invalid_toml() {
    let p = Project::new();
    let cfg = with_config(&p, b"migration_dirs = [\"db\"\nhistory_table = \"h\"\n");
    let r = p.colocate_in("sub", &["migrate"]).expect(2);
    let err = r.only_error();
    assert!(err.contains(&cfg.display().to_string()), "{err}");
    assert!(
        r.hint_line().unwrap_or_default().contains("line "),
        "{}",
        r.stderr
    );
    assert_untouched(&p);
    snapshot(&p, "bad_config_invalid_toml", &r);
}

#[test]
fn unknown_config_key_is_named() {
    let p = Project::new();
    let cfg = with_config(&p, b"migration_dir = [\"db\"]\n");
    let r = p.colocate_in("sub", &["migrate"]).expect(2);
    let err = r.only_error();
    assert!(err.contains(&cfg.display().to_string()), "{err}");
    assert!(err.contains("unknown field `migration_dir`"), "{err}");
    assert!(err.contains("migration_dirs"), "{err}");
    assert!(
        r.hint_line().unwrap_or_default().contains("line 1"),
        "{}",
        r.stderr
    );
    assert_untouched(&p);
    snapshot(&p, "bad_config_unknown_key", &r);
}

/// config.rs counts `text[..span.start].lines()`, which is one short when the offending key
/// starts a line (the text before it ends with a newline). The unit test
/// `config::tests::unknown_keys_are_errors_with_a_line` fails for the same reason.
#[test]
fn unknown_config_key_hint_names_its_line() {
    let p = Project::new();
    with_config(
        &p,
        b"migration_dirs = [\"db\"]\n# the history table\nhistory_tabel = \"h\"\n",
    );
    let r = p.colocate_in(".", &["migrate"]).expect(2);
    assert!(
        r.hint_line().unwrap_or_default().contains("line 3"),
        "{}",
        r.stderr
    );
}

#[test]
fn wrong_type_in_config() {
    let p = Project::new();
    let cfg = with_config(&p, b"migration_dirs = \"db\"\n");
    let r = p.colocate_in(".", &["migrate"]).expect(2);
    let err = r.only_error();
    assert!(err.contains(&cfg.display().to_string()), "{err}");
    assert!(err.contains("expected a sequence"), "{err}");
    assert_untouched(&p);
}

#[test]
fn unreadable_config() {
    let p = Project::new();
    // Not UTF-8, so it cannot be read as text (a permission test would not hold as root).
    let cfg = with_config(&p, b"migration_dirs = [\"\xff\"]\n");
    let r = p.colocate_in(".", &["migrate"]).expect(2);
    let err = r.only_error();
    assert!(err.contains(&cfg.display().to_string()), "{err}");
    assert!(err.contains("cannot read"), "{err}");
    assert_untouched(&p);
    snapshot(&p, "bad_config_unreadable", &r);
}

#[test]
fn config_flag_to_a_missing_file() {
    let p = Project::new();
    // A valid config the walk-up would find must not be used instead.
    with_config(&p, b"migration_dirs = [\"db\"]\n");
    let missing = p.root().join("conf/nope.toml");
    let mut cmd = p.cmd();
    cmd.arg("--config").arg(&missing).arg("migrate");
    let r = common::run(cmd).expect(2);
    let err = r.only_error();
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(
        r.hint_line().unwrap_or_default().contains("--config"),
        "{}",
        r.stderr
    );
    assert_untouched(&p);
    snapshot(&p, "bad_config_missing_file", &r);
}

/// Settings that cannot mean what they say are refused before anything connects, by every
/// command that reads them, with file, line and setting named. Before, `shard_count = 0` passed
/// `plan` and failed `apply` at step 6 after reference tables were made and a key dropped.
#[test]
fn contradictory_distribution_settings_are_refused_before_connecting() {
    let p = Project::new();
    p.write("db", "20240101000000_fine.sql", &create_table("fine"));
    let cases: &[(&str, &str, &str)] = &[
        (
            "[distribution]\nshard_count = 0\n",
            ":3: distribution.shard_count:",
            "1 to 64000",
        ),
        (
            "[distribution]\nreference = [\"t\"]\nlocal = [\"t\"]\n",
            ":4: distribution.local[0]:",
            "made local here but a reference table",
        ),
        (
            "[distribution]\nlocal = [\"tenants\"]\n",
            ":3: distribution.local[0]:",
            "root table",
        ),
        (
            "history_table = \"a.b.c\"\n",
            ":2: history_table:",
            "more than two parts",
        ),
        ("history_table = \"\"\n", ":2: history_table:", "empty"),
        (
            "[distribution]\nlocal = [{ reason = \"x\" }]\n",
            "needs `table`",
            "",
        ),
    ];
    for (body, at, words) in cases {
        let text = format!("migration_dirs = [\"db\"]\n{body}");
        let cfg = with_config(&p, text.as_bytes());
        for command in [&["migrate"][..], &["plan"], &["apply"], &["check"]] {
            let r = p.colocate_in(".", command).expect(2);
            let err = r.only_error();
            assert!(err.contains(&cfg.display().to_string()), "{body}: {err}");
            assert!(err.contains(at), "{body}: {err}");
            assert!(err.contains(words), "{body}: {err}");
            assert_untouched(&p);
        }
    }
    // An entry without `table` is named by its line too.
    with_config(
        &p,
        b"migration_dirs = [\"db\"]\n[distribution]\nlocal = [{ reason = \"x\" }]\n",
    );
    let r = p.colocate_in(".", &["plan"]).expect(2);
    assert!(
        r.hint_line().unwrap_or_default().contains("line 3"),
        "{}",
        r.stderr
    );
}

/// `history_table = '"we""ird"'` is a quoted identifier like every configured name: the table
/// made is `we"ird`, not one whose name holds the quotes.
#[test]
fn a_quoted_history_table_name_is_unquoted() {
    let p = Project::new();
    p.write("db", "20240101000000_fine.sql", &create_table("fine"));
    with_config(
        &p,
        b"migration_dirs = [\"db\"]\nhistory_table = '\"we\"\"ird\"'\n",
    );
    p.colocate_in(".", &["migrate"]).expect(0);
    assert_eq!(
        p.count("SELECT count(*) FROM pg_class WHERE relname = 'we\"ird' AND relkind = 'r'"),
        1
    );
}

/// `ROLLBACK` inside a transactional migration ended colocate's transaction: exit 0, recorded
/// applied, half the work gone. `COMMIT` then a failure said "rolled back, nothing kept" while
/// tables existed. Both are refused before anything runs, naming file, line and the way out.
#[test]
fn transaction_control_in_a_transactional_migration_is_refused_before_anything_runs() {
    for (stmt, word) in [
        ("ROLLBACK", "ROLLBACK"),
        ("commit", "COMMIT"),
        ("begin", "BEGIN"),
    ] {
        let p = Project::new();
        p.write("m", "20240101000000_first.sql", &create_table("first"));
        let bad = p.write(
            "m",
            "20240102000000_second.sql",
            &format!(
                "-- migrate:up\ncreate table a (id int);\n{stmt};\ncreate table b (id int);\n"
            ),
        );
        let r = refused(&p, &["m"], &["migrate"]);
        let err = r.only_error();
        assert!(
            err.contains(&format!("{}:3: {word}", bad.display())),
            "{err}"
        );
        assert!(
            r.hint_line()
                .unwrap_or_default()
                .contains("transaction:false"),
            "{}",
            r.stderr
        );
    }
    // Marked non-transactional, the file manages its own transaction and runs.
    let p = Project::new();
    p.write(
        "m",
        "20240101000000_own.sql",
        "-- migrate:up transaction:false\nbegin;\ncreate table own (id int);\ncommit;\n",
    );
    p.colocate(&["m"], &["migrate"]).expect(0);
    assert!(p.table_exists("own"));
}

// --- Connections --------------------------------------------------------------------------------

#[test]
fn unreachable_server() {
    let p = Project::new();
    p.write("m", "20240101000000_fine.sql", &create_table("fine"));
    let mut cmd = common::command();
    cmd.current_dir(p.root())
        .args(["--database-url", "postgres://postgres@127.0.0.1:1/x"])
        .arg("--dir")
        .arg(p.root().join("m"))
        .arg("migrate");
    let r = common::run(cmd).expect(2);
    let err = r.only_error();
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(
        r.hint_line().unwrap_or_default().contains("DATABASE_URL"),
        "{}",
        r.stderr
    );
    assert_untouched(&p);
    snapshot(&p, "bad_connection_unreachable", &r);
}

#[test]
fn no_database_url_at_all_falls_back_to_libpq_defaults() {
    let p = Project::new();
    p.write("m", "20240101000000_fine.sql", &create_table("fine"));
    let mut cmd = common::command();
    // Nothing listens on port 1: the run must fail to connect, not find some other server.
    cmd.current_dir(p.root())
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", "1")
        .arg("--dir")
        .arg(p.root().join("m"))
        .arg("migrate");
    let r = common::run(cmd).expect(2);
    let err = r.only_error();
    assert!(err.contains("cannot connect to"), "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");
    // It says that nothing named a server, and what to set.
    assert!(
        err.contains("neither --database-url nor DATABASE_URL is set"),
        "{err}"
    );
    assert!(
        r.hint_line()
            .unwrap_or_default()
            .contains("set DATABASE_URL"),
        "{}",
        r.stderr
    );
    assert_untouched(&p);
}

/// Each way of naming the wrong thing gets a hint about that thing: a database or a role the
/// server does not have, a URL of another database system.
#[test]
fn a_missing_database_a_missing_role_and_a_foreign_url_each_say_what_to_set() {
    let p = Project::new();
    p.write("m", "20240101000000_fine.sql", &create_table("fine"));
    let status = |url: &str| {
        let mut cmd = common::command();
        cmd.current_dir(p.root())
            .args(["--database-url", url, "--dir"])
            .arg(p.root().join("m"))
            .arg("status");
        common::run(cmd).expect(2)
    };
    let admin = colocate_testkit::admin_url();
    let (server, _) = admin.rsplit_once('/').unwrap();

    let r = status(&format!("{server}/no_such_database_here"));
    assert!(
        r.only_error()
            .contains("database \"no_such_database_here\" does not exist"),
        "{}",
        r.stderr
    );
    assert!(
        r.hint_line().unwrap_or_default().contains("createdb"),
        "{}",
        r.stderr
    );

    // Over the cluster's socket, where any role may try without a password.
    let port = server.rsplit_once(':').unwrap().1;
    let socket = colocate_testkit::socket_dir();
    let r = status(&format!(
        "host={} port={port} user=no_such_role_here dbname=postgres",
        socket.display()
    ));
    assert!(
        r.only_error()
            .contains("role \"no_such_role_here\" does not exist"),
        "{}",
        r.stderr
    );
    assert!(
        r.hint_line().unwrap_or_default().contains("PGUSER"),
        "{}",
        r.stderr
    );

    let r = status("mysql://root:hunter2@127.0.0.1/app");
    assert!(
        r.only_error().contains("mysql:// is not a PostgreSQL URL"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains("hunter2"), "{}", r.all());
    assert_untouched(&p);
}

/// A login role with a known password, dropped when the test ends.
struct Role {
    name: String,
}

impl Role {
    fn new() -> Role {
        let name = format!("pwtest_{}", common::unique());
        let mut c = colocate_testkit::connect(&colocate_testkit::admin_url());
        c.batch_execute(&format!("CREATE ROLE {name} LOGIN PASSWORD 'right-pass'"))
            .expect("create role");
        Role { name }
    }

    /// `url` with this role and `password` as its credentials.
    fn url(&self, url: &str, password: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
        let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        format!("{scheme}://{}:{password}@{host}", self.name)
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        // Best effort, and never a second panic while a failed test unwinds.
        let sql = format!("DROP ROLE IF EXISTS {}", self.name);
        let _ = std::panic::catch_unwind(|| {
            let mut c = colocate_testkit::connect(&colocate_testkit::admin_url());
            let _ = c.batch_execute(&sql);
        });
    }
}

#[test]
fn wrong_password_is_never_printed() {
    let p = Project::new();
    p.write("m", "20240101000000_fine.sql", &create_table("fine"));
    let role = Role::new();
    let wrong = role.url(p.db.url(), "S3cretWrong!");

    // Through --database-url ...
    let mut cmd = common::command();
    cmd.current_dir(p.root())
        .arg("--database-url")
        .arg(&wrong)
        .arg("--dir")
        .arg(p.root().join("m"))
        .arg("migrate");
    let by_flag = common::run(cmd).expect(2);
    // ... and through DATABASE_URL.
    let mut cmd = common::command();
    cmd.current_dir(p.root())
        .env("DATABASE_URL", &wrong)
        .arg("--dir")
        .arg(p.root().join("m"))
        .arg("migrate");
    let by_env = common::run(cmd).expect(2);

    for r in [&by_flag, &by_env] {
        let err = r.only_error();
        assert!(err.contains("password authentication failed"), "{err}");
        assert!(err.contains(&role.name), "{err}");
        assert!(!r.all().contains("S3cretWrong!"), "{}", r.all());
        assert!(!r.all().contains("right-pass"), "{}", r.all());
        assert!(
            r.hint_line().unwrap_or_default().contains("DATABASE_URL"),
            "{}",
            r.stderr
        );
    }
    assert_eq!(by_flag.stderr, by_env.stderr);
    assert_untouched(&p);
    let mut settings = p.settings();
    settings.add_filter(&common::regex_escape(&role.name), "pwtest_[ID]");
    settings
        .bind(|| insta::assert_snapshot!("bad_connection_wrong_password", by_flag.transcript()));

    // The right password through DATABASE_URL works (so the failure above was the password's).
    let mut cmd = common::command();
    cmd.current_dir(p.root())
        .env("DATABASE_URL", role.url(p.db.url(), "right-pass"))
        .arg("--dir")
        .arg(p.root().join("m"))
        .arg("status");
    let ok = common::run(cmd).expect(0);
    assert!(ok.stdout.contains("0 applied, 1 pending"), "{}", ok.stdout);
    assert!(!ok.all().contains("right-pass"));
}

#[test]
fn malformed_url_does_not_echo_its_password() {
    let p = Project::new();
    p.write("m", "20240101000000_fine.sql", &create_table("fine"));
    for url in [
        "postgres://someone:S3cretWrong!@127.0.0.1:notaport/db",
        "postgres://someone:S3cretWrong!@127.0.0.1:5432/db?sslmode=bogus",
        "host=127.0.0.1 user=someone password=S3cretWrong! bogus=1",
    ] {
        let mut cmd = common::command();
        cmd.current_dir(p.root())
            .env("DATABASE_URL", url)
            .arg("--dir")
            .arg(p.root().join("m"))
            .arg("status");
        let r = common::run(cmd).expect(2);
        r.only_error();
        assert!(!r.all().contains("S3cretWrong"), "{url}: {}", r.all());
    }
    assert_untouched(&p);
}

#[test]
fn sql_before_the_up_marker_is_refused() {
    let p = Project::new();
    let bad = p.write(
        "m",
        "20240101000000_x.sql",
        &format!(
            "CREATE TABLE early (id int);\n{}",
            migration("SELECT 1;", None)
        ),
    );
    let r = refused(&p, &["m"], &["migrate"]);
    assert!(
        r.only_error()
            .starts_with(&format!("error: {}:1: ", bad.display())),
        "{}",
        r.stderr
    );
}

// --- Numbers and durations --------------------------------------------------------------------

/// Every option that takes a number or a duration, fed values past every limit: each is refused
/// with one error line naming the option (exit 2), never a panic (exit 101), and nothing changes.
#[test]
fn extreme_numbers_and_durations_are_refused_without_a_panic() {
    let p = Project::new();
    p.write("m", "20240101000000_fine.sql", &create_table("fine"));
    let huge = "9".repeat(400);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["migrate", "--lock-timeout", "100000000000000000000s"],
            "--lock-timeout",
        ),
        (vec!["migrate", "--lock-timeout", &huge], "--lock-timeout"),
        (
            vec!["migrate", "--lock-timeout", "2147484s"],
            "--lock-timeout",
        ),
        (vec!["migrate", "--lock-timeout", "inf"], "--lock-timeout"),
        (vec!["migrate", "--lock-timeout", "nan"], "--lock-timeout"),
        (vec!["migrate", "--lock-timeout=-1s"], "--lock-timeout"),
        (vec!["migrate", "--target", &huge], "--target"),
        (
            vec!["rollback", "--steps", "99999999999999999999999"],
            "--steps",
        ),
        (vec!["rollback", "--steps=-1"], "--steps"),
        (vec!["rollback", "--to", &huge], "--to"),
        (
            vec!["rollback", "--lock-timeout", "99999999999m"],
            "--lock-timeout",
        ),
        (vec!["apply", "--online-threshold=-5"], "--online-threshold"),
        (
            vec!["apply", "--online-threshold", "99999999999999999999"],
            "--online-threshold",
        ),
        (vec!["apply", "--lock-timeout", "1e400s"], "--lock-timeout"),
        (
            vec![
                "undistribute",
                "--all",
                "--lock-timeout",
                "100000000000000000000ms",
            ],
            "--lock-timeout",
        ),
        (
            vec!["generate", "--out", "g", "--tables-per-file", "0"],
            "--tables-per-file",
        ),
        (
            vec!["generate", "--out", "g", "--tables-per-file", "99999999999"],
            "--tables-per-file",
        ),
        (vec!["demo", "--workers", "100000"], "--workers"),
    ];
    for (args, option) in &cases {
        let r = p.colocate(&["m"], args);
        assert_ne!(r.code, Some(101), "{args:?} panicked:\n{}", r.stderr);
        let r = r.expect(2);
        assert!(!r.stderr.contains("panicked"), "{args:?}: {}", r.stderr);
        assert!(r.error_line().contains(option), "{args:?}: {}", r.stderr);
        assert_untouched(&p);
    }
    // The largest value the server accepts still works.
    p.colocate(&["m"], &["migrate", "--lock-timeout", "2147483647ms"])
        .expect(0);
    assert!(p.table_exists("fine"));
}

/// A failed `undistribute` (its `undistribute_table` waits on a lock the application holds and
/// gives up at this database's `lock_timeout`) points at running undistribute again; before, its
/// hint said to run apply.
#[test]
fn citus_single_node_failed_undistribute_says_to_run_undistribute_again() {
    if colocate_testkit::skip_without_citus(
        "citus_single_node_failed_undistribute_says_to_run_undistribute_again",
    ) {
        return;
    }
    let p = Project::new();
    p.db.citus_single_node();
    let mut c = p.db.connect();
    c.batch_execute(
        "CREATE TABLE tenants (tenant uuid PRIMARY KEY);
         INSERT INTO tenants SELECT gen_random_uuid() FROM generate_series(1, 3);
         SELECT create_distributed_table('tenants', 'tenant');",
    )
    .unwrap();
    c.batch_execute(&format!(
        "ALTER DATABASE \"{}\" SET lock_timeout = '300ms'",
        p.db.name()
    ))
    .unwrap();
    let mut holder = p.db.connect();
    holder
        .batch_execute("BEGIN; LOCK TABLE tenants IN ROW EXCLUSIVE MODE;")
        .unwrap();
    let r = p.colocate(&[], &["undistribute", "tenants", "--yes"]);
    holder.batch_execute("ROLLBACK").unwrap();
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(r.error_line().contains("lock timeout"), "{}", r.all());
    let hint = r.hint_line().unwrap_or_default();
    assert!(hint.contains("run undistribute again"), "{}", r.all());
    assert!(!hint.contains("apply"), "{}", r.all());
}
