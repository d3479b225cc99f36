//! What runs show while they work, and colour (issue 12, item 4): off a terminal, plain
//! progress lines in order, one as each step starts and one as it ends with its duration, with
//! no escape codes; none with `--quiet`; on a terminal (a pseudo-terminal here) a progress bar
//! with the step, its table and the rows copied so far; colour only with `CLICOLOR_FORCE`, and
//! never with `NO_COLOR`.

mod common;

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};

use common::{migration, Project, BIN, COLOUR_ENV, CONNECTION_ENV};

const ESC: char = '\u{1b}';

/// Three migrations in two directories, merged by version.
fn three(p: &Project) {
    for (dir, file, table) in [
        ("a", "20240101000000_one.sql", "one"),
        ("b", "20240102000000_two.sql", "two"),
        ("a", "20240103000000_three.sql", "three"),
    ] {
        p.write(
            dir,
            file,
            &migration(
                &format!("CREATE TABLE {table} (id int);"),
                Some(&format!("DROP TABLE {table};")),
            ),
        );
    }
}

fn exec(p: &Project, sql: &str) {
    p.db.connect()
        .batch_execute(sql)
        .expect("set up the schema");
}

/// A line's duration, for comparing lines whatever the machine's speed.
fn without_duration(line: &str) -> String {
    match line.split_once(": done in ") {
        Some((head, _)) => format!("{head}: done in [DURATION]"),
        None => line.to_string(),
    }
}

#[test]
fn off_a_terminal_progress_streams_as_plain_lines_in_order() {
    let p = Project::new();
    three(&p);
    let r = p.colocate(&["a", "b"], &["migrate"]).expect(0);
    assert!(!r.all().contains(ESC), "escape codes in {}", r.all());
    let lines: Vec<String> = r.stderr.lines().map(without_duration).collect();
    assert_eq!(
        lines,
        [
            "[1/3] 20240101000000_one.sql",
            "[1/3] 20240101000000_one.sql: done in [DURATION]",
            "[2/3] 20240102000000_two.sql",
            "[2/3] 20240102000000_two.sql: done in [DURATION]",
            "[3/3] 20240103000000_three.sql",
            "[3/3] 20240103000000_three.sql: done in [DURATION]",
        ]
    );
    // The report on stdout is what it always was.
    assert!(r.stdout.starts_with("applied   "), "{}", r.stdout);

    let r = p
        .colocate(&["a", "b"], &["rollback", "--steps", "2", "--yes"])
        .expect(0);
    let lines: Vec<String> = r.stderr.lines().map(without_duration).collect();
    assert_eq!(
        lines,
        [
            "[1/2] 20240103000000_three.sql",
            "[1/2] 20240103000000_three.sql: done in [DURATION]",
            "[2/2] 20240102000000_two.sql",
            "[2/2] 20240102000000_two.sql: done in [DURATION]",
        ],
        "{}",
        r.stderr
    );
}

#[test]
fn quiet_shows_no_progress() {
    let p = Project::new();
    three(&p);
    let r = p.colocate(&["a", "b"], &["--quiet", "migrate"]).expect(0);
    assert_eq!(r.stderr, "");
    assert!(r.stdout.contains("batch 1: 3 migrations applied"));
    let r = p
        .colocate(&["a", "b"], &["rollback", "-q", "--yes"])
        .expect(0);
    assert_eq!(r.stderr, "");
    // -q and -v contradict each other.
    let r = p.colocate(&["a", "b"], &["migrate", "-q", "-v"]).expect(2);
    assert!(r.stderr.contains("cannot be used with"), "{}", r.stderr);
}

#[test]
fn apply_streams_its_steps_by_their_human_names() {
    if colocate_testkit::skip_without_citus("apply_streams_its_steps_by_their_human_names") {
        return;
    }
    let p = Project::new();
    p.db.citus_single_node();
    exec(
        &p,
        "CREATE TABLE tenants (tenant int PRIMARY KEY);
         CREATE TABLE tickets (tenant int REFERENCES tenants, id int, PRIMARY KEY (tenant, id));
         INSERT INTO tenants SELECT generate_series(1, 5);
         INSERT INTO tickets SELECT t, 1 FROM tenants AS s(t);",
    );
    std::fs::write(
        p.root().join("colocate.toml"),
        "[distribution]\nroot = \"tenants\"\ncolumns = [\"tenant\"]\n",
    )
    .unwrap();
    let r = p.colocate(&[], &["apply"]).expect(0);
    assert!(!r.all().contains(ESC), "escape codes in {}", r.all());
    let lines: Vec<String> = r.stderr.lines().map(without_duration).collect();
    let steps: Vec<&str> = lines
        .iter()
        .filter(|l| !l.contains(": done in "))
        .map(String::as_str)
        .collect();
    assert_eq!(
        steps,
        [
            "[1/5] session setting",
            "[2/5] create_distributed_table public.tenants",
            "[3/5] create_distributed_table public.tickets",
            "[4/5] truncate_local_data_after_distributing_table public.tickets",
            "[5/5] truncate_local_data_after_distributing_table public.tenants",
        ],
        "{}",
        r.stderr
    );
    // Each start is followed by its end.
    for pair in lines.chunks(2) {
        assert_eq!(pair[1], format!("{}: done in [DURATION]", pair[0]));
    }
    for rust_name in [
        "CreateDistributedTable",
        "TruncateLocalData",
        "SessionSetting",
    ] {
        assert!(!r.all().contains(rust_name), "{rust_name} in {}", r.all());
    }

    // JSON on stdout keeps its shape: one object per step, then the summary; the lines stay on
    // stderr.
    let r = p
        .colocate(&[], &["undistribute", "--all", "--yes"])
        .expect(0);
    let lines: Vec<String> = r.stderr.lines().map(without_duration).collect();
    assert_eq!(
        lines,
        [
            "[1/1] undistribute public.tenants, public.tickets",
            "[1/1] undistribute public.tenants, public.tickets: done in [DURATION]",
        ],
        "{}",
        r.stderr
    );
    let r = p.colocate(&[], &["apply", "--format", "json"]).expect(0);
    let events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 6, "{}", r.stdout);
    assert!(events[..5].iter().all(|e| e["event"] == "step"));
    assert_eq!(events[5]["event"], "summary");
    assert_eq!(r.stderr.lines().count(), 10, "{}", r.stderr);
}

/// A run that fails before connecting: `error:` then `hint:`.
fn failing(env: &[(&str, &str)]) -> String {
    let mut cmd = common::command();
    cmd.args(["--dir", "/nonexistent/colocate-migrations", "status"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    common::run(cmd).expect(2).stderr
}

#[test]
fn colour_only_when_forced_and_never_with_no_color() {
    let plain = failing(&[]);
    assert!(plain.starts_with("error: "), "{plain:?}");
    assert!(!plain.contains(ESC), "{plain:?}");

    let forced = failing(&[("CLICOLOR_FORCE", "1")]);
    assert!(
        forced.starts_with("\u{1b}[1m\u{1b}[31merror:\u{1b}[0m "),
        "{forced:?}"
    );
    assert!(forced.contains("\u{1b}[32mhint:\u{1b}[0m "), "{forced:?}");
    assert_eq!(strip(&forced), plain);

    assert_eq!(
        failing(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]),
        plain
    );
    assert_eq!(failing(&[("CLICOLOR", "0")]), plain);
}

/// `text` without its escape codes.
fn strip(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == ESC {
            // CSI: ESC [ parameters final-byte
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn forced_colour_keeps_the_plan_table_aligned() {
    let p = Project::new();
    exec(
        &p,
        "CREATE TABLE tenants (tenant int PRIMARY KEY);
         CREATE TABLE tickets (tenant int REFERENCES tenants, id int, PRIMARY KEY (tenant, id));
         CREATE TABLE countries (code text PRIMARY KEY);",
    );
    std::fs::write(
        p.root().join("colocate.toml"),
        "[distribution]\nroot = \"tenants\"\ncolumns = [\"tenant\"]\n",
    )
    .unwrap();
    let plain = p.colocate(&[], &["plan"]);
    assert!(!plain.stdout.contains(ESC));
    let mut cmd = p.cmd();
    cmd.env("CLICOLOR_FORCE", "1").arg("plan");
    let coloured = common::run(cmd);
    assert_eq!(coloured.code, plain.code);
    assert!(
        coloured.stdout.contains(ESC) && coloured.stdout.contains("pending"),
        "{:?}",
        coloured.stdout
    );
    assert_eq!(strip(&coloured.stdout), plain.stdout);
}

/// Open a pseudo-terminal `cols` wide: (the side the test reads, the side the child writes).
fn pty(cols: u16) -> (OwnedFd, OwnedFd) {
    let mut master = -1;
    let mut slave = -1;
    let size = libc::winsize {
        ws_row: 24,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors it opened into the locals; nothing else is shared.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened by openpty and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

#[test]
fn on_a_terminal_apply_draws_a_bar_with_rows_copied() {
    if colocate_testkit::skip_without_citus("on_a_terminal_apply_draws_a_bar_with_rows_copied") {
        return;
    }
    let p = Project::new();
    p.db.citus_with_workers();
    exec(
        &p,
        "CREATE TABLE tenants (tenant int PRIMARY KEY);
         INSERT INTO tenants SELECT generate_series(1, 1000);
         CREATE TABLE big (tenant int REFERENCES tenants, id bigint, payload text,
                           PRIMARY KEY (tenant, id));
         INSERT INTO big SELECT g % 1000 + 1, g, repeat('x', 100) FROM generate_series(1, 400000) g;
         ANALYZE;",
    );
    std::fs::write(
        p.root().join("colocate.toml"),
        "[distribution]\nroot = \"tenants\"\ncolumns = [\"tenant\"]\n",
    )
    .unwrap();

    let (master, slave) = pty(140);
    let mut cmd = Command::new(BIN);
    for var in CONNECTION_ENV.iter().chain(COLOUR_ENV) {
        cmd.env_remove(var);
    }
    let child = cmd
        .current_dir(p.root())
        .env("TERM", "xterm-256color")
        .args(["--database-url", p.db.url(), "apply"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(slave))
        .spawn()
        .expect("start colocate");
    // Only the child holds the terminal now: reading ends when it exits.
    drop(cmd);
    let reader = std::thread::spawn(move || {
        let mut screen = Vec::new();
        let _ = std::fs::File::from(master).read_to_end(&mut screen);
        String::from_utf8_lossy(&screen).into_owned()
    });
    let out = child.wait_with_output().expect("wait for colocate");
    let screen = reader.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{screen}");

    // The bar: step n of m with its table, and the rows that reached the workers so far.
    assert!(
        screen.contains("[3/5] create_distributed_table public.big"),
        "{screen:?}"
    );
    let copied: Vec<u64> = screen
        .split("[3/5] create_distributed_table public.big")
        .skip(1)
        .filter_map(|s| s.split(" of ~").next())
        .filter_map(|s| s.trim().replace(',', "").parse().ok())
        .collect();
    // Redrawn while the step runs (not only when it ends): the count was seen growing.
    let mut distinct = copied.clone();
    distinct.dedup();
    assert!(
        distinct.len() >= 2,
        "the count was not redrawn as it grew: {copied:?} in {screen:?}"
    );
    assert!(
        copied.windows(2).all(|w| w[0] <= w[1]) && copied.iter().all(|n| *n <= 400_000),
        "{copied:?}"
    );
    assert!(screen.contains("rows copied"), "{screen:?}");
    // A bar, not the lines: no "done in", and nothing of it left on stdout.
    assert!(!screen.contains("done in"), "{screen:?}");
    assert!(!stdout.contains(ESC), "{stdout:?}");
    assert!(
        stdout.contains("create_distributed_table   public.big"),
        "{stdout}"
    );
}
