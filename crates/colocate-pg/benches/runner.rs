//! Runner benchmarks against the real test cluster (`scripts/pg-test-cluster start`), without a
//! benchmark framework: every figure is printed with what it measures.
//!
//! 1. Overhead per migration: 1,000 small migrations over 3 directories. (a) `MigrationSet::load`,
//!    (b) `Runner::migrate` on a fresh database, (c) the same up SQL through a bare client, each
//!    migration in its own transaction, and (d) as (c) plus the runner's history row, to tell
//!    the history write from the runner's own code. Overhead = (b - c) / 1000, target under 2 ms.
//!    Part 1 runs `CREATE TABLE` + `INSERT` migrations; part 1b repeats it with `SELECT 1`
//!    migrations, where the runner's own cost is not buried in the noise of 1,000 DDL statements.
//! 2. `status` with 10,000 applied migrations (recorded with `baseline --to <last>`): the CLI's
//!    path `MigrationSet::load` + `Runner::status`, target under 200 ms.
//!
//! `cargo bench -p colocate-pg --bench runner` runs the full sizes (about a minute). Without
//! `--bench` (e.g. `cargo test --all-targets`) it runs a small smoke pass so the code stays
//! exercised without taking long. With `COLOCATE_BENCH_KEEP=DIR` the status benchmark's migration
//! directories are written to `DIR/a`, `DIR/b`, `DIR/c` and its database is kept; its URL and
//! name go to `DIR/database_url` and `DIR/database_name`, and the summary to `DIR/summary.txt`
//! (`scripts/bench` uses them to time the release CLI, then drops the database).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use colocate_core::history as core_history;
use colocate_core::{MigrationId, MigrationSet};
use colocate_pg::baseline::BaselineSource;
use colocate_pg::runner::{Event, MigrateOptions, Runner};
use colocate_pg::{Client, HistoryTable};
use colocate_testkit::TestDb;

const HISTORY: &str = "colocate_migrations";
/// 2024-01-01T00:00:00Z: migration `n` gets this plus `n` seconds as its version.
const FIRST_SECOND: u64 = 1_704_067_200;
const DIRS: [&str; 3] = ["a", "b", "c"];
const MIGRATE_TARGET_MS: f64 = 2.0;
const STATUS_TARGET_MS: f64 = 200.0;

struct Sizes {
    /// Migrations applied in part 1.
    migrate: usize,
    /// Fresh-database repetitions of (b) and (c).
    migrate_reps: usize,
    /// Applied migrations `status` compares in part 2.
    status: usize,
    /// Repetitions of every timed step that is cheap to repeat.
    runs: usize,
}

const FULL: Sizes = Sizes {
    migrate: 1_000,
    migrate_reps: 3,
    status: 10_000,
    runs: 5,
};

const SMOKE: Sizes = Sizes {
    migrate: 30,
    migrate_reps: 1,
    status: 90,
    runs: 1,
};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full { FULL } else { SMOKE };
    let keep = std::env::var_os("COLOCATE_BENCH_KEEP").map(PathBuf::from);
    if !full {
        println!("smoke pass with small sizes (`cargo bench -p colocate-pg --bench runner` for real figures)");
    }
    let started = Instant::now();
    let mut summary = String::new();
    if let Ok(load) = fs::read_to_string("/proc/loadavg") {
        // Other work on the machine shows up in every figure; say how busy it was.
        let _ = writeln!(
            summary,
            "load average at start:                   {}",
            load.trim()
        );
    }
    round_trip(&mut summary);
    migrate_overhead(&sizes, Body::Table, &mut summary);
    migrate_overhead(&sizes, Body::Trivial, &mut summary);
    status_at_scale(&sizes, keep.as_deref(), &mut summary);
    println!();
    println!(
        "== summary ({:.1} s in all) ==",
        started.elapsed().as_secs_f64()
    );
    print!("{summary}");
    if let Some(dir) = &keep {
        fs::write(dir.join("summary.txt"), &summary).expect("write summary.txt");
    }
}

// ---------------------------------------------------------------------------------------------
// Part 0: the cost of one round trip, which explains most of the per-migration overhead.

fn round_trip(summary: &mut String) {
    let db = TestDb::new();
    let mut c = db.connect();
    let stmt = c.prepare("SELECT 1").expect("prepare");
    for _ in 0..200 {
        c.query_one(&stmt, &[]).expect("warm up");
    }
    let n = 2_000;
    let t = Instant::now();
    for _ in 0..n {
        c.query_one(&stmt, &[]).expect("select 1");
    }
    let per = t.elapsed() / n;
    println!("== round trip ==");
    println!(
        "prepared SELECT 1, {n} times:            {} per round trip",
        us(per)
    );
    let _ = writeln!(
        summary,
        "round trip (prepared SELECT 1):          {}",
        us(per)
    );
}

// ---------------------------------------------------------------------------------------------
// Part 1: runner overhead per migration.

/// What each generated migration does.
#[derive(Clone, Copy, PartialEq)]
enum Body {
    /// `CREATE TABLE t_<n> (id int primary key, tenant uuid)` and one row: the real workload.
    Table,
    /// `SELECT 1`: next to nothing, so the runner's own cost is not lost in the DDL's noise.
    Trivial,
}

fn migrate_overhead(sizes: &Sizes, body: Body, summary: &mut String) {
    let n = sizes.migrate;
    let (part, what) = match body {
        Body::Table => ("1", "CREATE TABLE + INSERT"),
        Body::Trivial => ("1b", "SELECT 1"),
    };
    let tag = format!("migrate {n} ({what})");
    println!();
    println!(
        "== part {part}: overhead per migration ({n} migrations of {what} over 3 directories) =="
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let dirs = make_dirs(tmp.path());
    let t = Instant::now();
    write_migrations(&dirs, n, body);
    println!(
        "generate files:                          {}",
        ms(t.elapsed())
    );

    // (a) Loading, repeated; the files were just written, so the page cache is warm.
    let mut loads = Vec::new();
    let mut set = MigrationSet::default();
    for _ in 0..sizes.runs {
        let t = Instant::now();
        set = MigrationSet::load(&dirs).expect("load");
        loads.push(t.elapsed());
    }
    assert_eq!(set.len(), n);
    let a = median(&loads);
    println!(
        "(a) MigrationSet::load:                  {} median of {} ({}; {} per file)",
        ms(a),
        loads.len(),
        spread(&loads),
        us(a / n as u32)
    );

    // (b), (c) and (d), each on its own fresh database, rotating which goes first.
    let variants = [Variant::Runner, Variant::Bare, Variant::BareWithHistory];
    let mut times: [Vec<Duration>; 3] = Default::default();
    for rep in 0..sizes.migrate_reps {
        for k in 0..variants.len() {
            let i = (rep + k) % variants.len();
            let db = TestDb::new();
            let mut client = db.connect();
            settle(&mut client);
            let took = match variants[i] {
                Variant::Runner => run_with_runner(&mut client, &set),
                Variant::Bare => run_bare(&mut client, &set, false),
                Variant::BareWithHistory => run_bare(&mut client, &set, true),
            };
            if body == Body::Table {
                assert_eq!(count_tables(&mut client), n as i64, "every table created");
            }
            times[i].push(took);
            println!(
                "  rep {}: {:<38} {} ({} per migration)",
                rep + 1,
                variants[i].label(),
                ms(took),
                us(took / n as u32)
            );
        }
    }
    let [runner_times, bare_times, history_times] = times;
    let b = median(&runner_times);
    let c = median(&bare_times);
    let d = median(&history_times);
    let per = |d: Duration| d.as_secs_f64() * 1000.0 / n as f64;
    let overhead = per(b) - per(c);
    // The same, from each repetition's own pair: less sensitive to one slow run.
    let paired: Vec<f64> = runner_times
        .iter()
        .zip(&bare_times)
        .map(|(b, c)| per(*b) - per(*c))
        .collect();
    let paired_median = median_f64(&paired);
    let overhead_with_load = overhead + per(a);
    println!(
        "(b) Runner::migrate:                     {} median of {} ({}), {:.3} ms per migration",
        ms(b),
        runner_times.len(),
        spread(&runner_times),
        per(b)
    );
    println!(
        "(c) bare client baseline:                {} median of {} ({}), {:.3} ms per migration",
        ms(c),
        bare_times.len(),
        spread(&bare_times),
        per(c)
    );
    println!(
        "(d) bare client + history row:           {} median of {} ({}), {:.3} ms per migration",
        ms(d),
        history_times.len(),
        spread(&history_times),
        per(d)
    );
    let verdict = |v: f64, target: f64| if v < target { "PASS" } else { "FAIL" };
    let lines = [
        format!(
            "{tag}: load (a) {}, runner (b) {}, bare (c) {}, bare + history row (d) {} (medians)",
            ms(a),
            ms(b),
            ms(c),
            ms(d)
        ),
        format!(
            "  every run (ms): b {}; c {}; d {}",
            list_ms(&runner_times),
            list_ms(&bare_times),
            list_ms(&history_times)
        ),
        format!(
            "  per migration: load {:.3} ms, runner {:.3} ms, bare {:.3} ms",
            per(a),
            per(b),
            per(c)
        ),
        format!(
            "  overhead per migration (b-c)/{n}:      {:.3} ms  target < {MIGRATE_TARGET_MS} ms: {}",
            overhead,
            verdict(overhead, MIGRATE_TARGET_MS)
        ),
        format!(
            "  overhead, median of {} paired (b-c)/{n}: {:.3} ms ({})",
            paired.len(),
            paired_median,
            paired
                .iter()
                .map(|d| format!("{d:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!(
            "  of which the history row (d-c)/{n}:  {:.3} ms; the rest of the runner (b-d)/{n}: {:.3} ms",
            per(d) - per(c),
            per(b) - per(d)
        ),
        format!(
            "  overhead incl. loading (a+b-c)/{n}:    {:.3} ms  target < {MIGRATE_TARGET_MS} ms: {}",
            overhead_with_load,
            verdict(overhead_with_load, MIGRATE_TARGET_MS)
        ),
    ];
    for l in lines {
        println!("{l}");
        let _ = writeln!(summary, "{l}");
    }
}

fn run_with_runner(client: &mut Client, set: &MigrationSet) -> Duration {
    let t = Instant::now();
    let mut runner = Runner::new(client, HistoryTable::new(HISTORY), Duration::from_secs(10));
    let report = runner
        .migrate(set, &MigrateOptions::default(), &mut |_: Event<'_>| {})
        .expect("migrate");
    let took = t.elapsed();
    assert_eq!(report.applied.len(), set.len());
    took
}

#[derive(Clone, Copy)]
enum Variant {
    /// (b) `Runner::migrate`.
    Runner,
    /// (c) The up SQL through a bare client, one transaction per migration.
    Bare,
    /// (d) As (c), plus the runner's history row (its prepared upsert) in each transaction: what
    /// (b) costs beyond (c) that is not the runner's own code.
    BareWithHistory,
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::Runner => "(b) Runner::migrate",
            Variant::Bare => "(c) bare client, BEGIN/sql/COMMIT",
            Variant::BareWithHistory => "(d) bare client + history row",
        }
    }
}

fn run_bare(client: &mut Client, set: &MigrationSet, with_history: bool) -> Duration {
    let t = Instant::now();
    let upsert = with_history.then(|| {
        let h = HistoryTable::new(HISTORY);
        h.ensure(client).expect("history table");
        client.prepare(&h.upsert_sql()).expect("prepare upsert")
    });
    for m in set {
        let mut tx = client.transaction().expect("begin");
        tx.batch_execute(&m.up.sql).expect("migration sql");
        if let Some(upsert) = &upsert {
            let dir = m.dir.display().to_string();
            let checksum = m.checksum.to_string();
            tx.execute(
                upsert,
                &[
                    &(m.id.as_u64() as i64),
                    &m.name,
                    &dir,
                    &checksum,
                    &1i32,
                    &0.0f64,
                    &"applied",
                    &None::<i32>,
                    &None::<String>,
                    &None::<String>,
                ],
            )
            .expect("history row");
        }
        tx.commit().expect("commit");
    }
    t.elapsed()
}

/// Start every run from the same state: no dirty buffers left by the run before, and the
/// file system done with the files the last dropped database left (creating 1,000 tables makes
/// 2,000+ files, so leftover writeback from the run before is the largest source of noise).
fn settle(client: &mut Client) {
    client.batch_execute("CHECKPOINT").expect("checkpoint");
    // Best effort: without `sync` the figures are only noisier.
    let _ = std::process::Command::new("sync").status();
}

fn count_tables(client: &mut Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 't\\_%'",
            &[],
        )
        .expect("count tables")
        .get(0)
}

// ---------------------------------------------------------------------------------------------
// Part 2: status with many applied migrations.

fn status_at_scale(sizes: &Sizes, keep: Option<&Path>, summary: &mut String) {
    let n = sizes.status;
    println!();
    println!("== part 2: status with {n} applied migrations (3 directories) ==");
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = match keep {
        Some(dir) => {
            fs::create_dir_all(dir).expect("create COLOCATE_BENCH_KEEP directory");
            for d in DIRS {
                assert!(
                    !dir.join(d).exists(),
                    "{} already exists: give COLOCATE_BENCH_KEEP a fresh directory",
                    dir.join(d).display()
                );
            }
            dir.to_path_buf()
        }
        None => tmp.path().to_path_buf(),
    };
    let dirs = make_dirs(&root);
    let t = Instant::now();
    write_migrations(&dirs, n, Body::Table);
    println!(
        "generate files:                          {}",
        ms(t.elapsed())
    );

    let db = TestDb::new();
    let mut client = db.connect();
    let set = MigrationSet::load(&dirs).expect("load");
    assert_eq!(set.len(), n);
    let last = set.last().expect("migrations").id;
    let t = Instant::now();
    let report = Runner::new(
        &mut client,
        HistoryTable::new(HISTORY),
        Duration::from_secs(10),
    )
    .baseline(&set, &BaselineSource::UpTo(last), &mut |_: Event<'_>| {})
    .expect("baseline");
    let took = t.elapsed();
    assert_eq!(report.marked.len(), n);
    println!(
        "baseline --to {last} ({n} rows):   {} ({} per row, one INSERT round trip each)",
        ms(took),
        us(took / n as u32)
    );
    client
        .batch_execute(&format!("VACUUM ANALYZE {HISTORY}"))
        .expect("vacuum");

    // Connecting is part of the CLI's path but not of the target; shown for context.
    let mut connects = Vec::new();
    for _ in 0..sizes.runs {
        let t = Instant::now();
        let c = db.connect();
        connects.push(t.elapsed());
        drop(c);
    }

    // The CLI's path: load, then status (history read + compare), on one connection.
    let mut whole = Vec::new();
    let mut loads = Vec::new();
    let mut statuses = Vec::new();
    for _ in 0..sizes.runs {
        let t0 = Instant::now();
        let set = MigrationSet::load(&dirs).expect("load");
        let t1 = Instant::now();
        let mut runner = Runner::new(&mut client, HistoryTable::new(HISTORY), Duration::ZERO);
        let report = runner.status(&set).expect("status");
        let t2 = Instant::now();
        assert_eq!(report.counts.applied, n);
        assert!(!report.needs_attention(false));
        loads.push(t1 - t0);
        statuses.push(t2 - t1);
        whole.push(t2 - t0);
    }

    // Status split further: the history query (with row decoding) and the pure comparison.
    let mut reads = Vec::new();
    let mut compares = Vec::new();
    for _ in 0..sizes.runs {
        let mut runner = Runner::new(&mut client, HistoryTable::new(HISTORY), Duration::ZERO);
        let t0 = Instant::now();
        let rows = runner.rows().expect("rows");
        let t1 = Instant::now();
        let report = core_history::status(&set, &rows);
        let t2 = Instant::now();
        assert_eq!(report.counts.applied, n);
        reads.push(t1 - t0);
        compares.push(t2 - t1);
    }

    // Load split further: only listing and reading the files, no parsing or hashing.
    let mut raw = Vec::new();
    for _ in 0..sizes.runs {
        let t = Instant::now();
        let bytes = read_all(&dirs);
        raw.push(t.elapsed());
        assert_eq!(bytes.0, n);
    }

    let row = |label: &str, v: &[Duration]| {
        println!(
            "{label:<40} {} median of {} ({})",
            ms(median(v)),
            v.len(),
            spread(v)
        )
    };
    row("connect (context, not in the target):", &connects);
    row("load + status (the CLI's path):", &whole);
    row("  MigrationSet::load:", &loads);
    row("    of which list + read files only:", &raw);
    row("  Runner::status (query + compare):", &statuses);
    row("    history read (query + decode rows):", &reads);
    row("    compare (history::status):", &compares);
    let total = median(&whole).as_secs_f64() * 1000.0;
    let lines = [
        format!(
            "status {n}: load + status {:.1} ms  target < {STATUS_TARGET_MS} ms: {}",
            total,
            if total < STATUS_TARGET_MS {
                "PASS"
            } else {
                "FAIL"
            }
        ),
        format!(
            "status {n}: load {} (list+read {}), status {} (read rows {}, compare {})",
            ms(median(&loads)),
            ms(median(&raw)),
            ms(median(&statuses)),
            ms(median(&reads)),
            ms(median(&compares))
        ),
    ];
    for l in lines {
        println!("{l}");
        let _ = writeln!(summary, "{l}");
    }

    drop(client);
    if let Some(dir) = keep {
        fs::write(dir.join("database_url"), db.url()).expect("write database_url");
        fs::write(dir.join("database_name"), db.name()).expect("write database_name");
        println!(
            "kept {} and database {} (COLOCATE_BENCH_KEEP)",
            dir.display(),
            db.name()
        );
        // The caller drops it.
        std::mem::forget(db);
    }
}

fn read_all(dirs: &[PathBuf]) -> (usize, usize) {
    let mut files = 0;
    let mut bytes = 0;
    for dir in dirs {
        for entry in fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            bytes += fs::read(&path).expect("read").len();
            files += 1;
        }
    }
    (files, bytes)
}

// ---------------------------------------------------------------------------------------------
// Fixtures and formatting

fn make_dirs(root: &Path) -> Vec<PathBuf> {
    DIRS.iter()
        .map(|d| {
            let p = root.join(d);
            fs::create_dir_all(&p).expect("create migration dir");
            p
        })
        .collect()
}

/// Migration `i` (0-based) goes to directory `i % 3`, so versions interleave across directories.
fn write_migrations(dirs: &[PathBuf], n: usize, body: Body) {
    for i in 0..n {
        let id = MigrationId::from_unix_seconds(FIRST_SECOND + i as u64);
        let (name, text) = match body {
            Body::Table => (
                format!("create_t_{i}"),
                format!(
                    "-- migrate:up\n\
                     CREATE TABLE t_{i} (id int primary key, tenant uuid);\n\
                     INSERT INTO t_{i} VALUES (1, gen_random_uuid());\n\
                     \n\
                     -- migrate:down\n\
                     DROP TABLE t_{i};\n"
                ),
            ),
            Body::Trivial => (
                format!("noop_{i}"),
                "-- migrate:up\nSELECT 1;\n\n-- migrate:down\nSELECT 1;\n".to_string(),
            ),
        };
        let path = dirs[i % dirs.len()].join(format!("{id}_{name}.sql"));
        fs::write(path, text).expect("write migration");
    }
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s[s.len() / 2]
}

fn median_f64(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

fn spread(v: &[Duration]) -> String {
    let min = v.iter().min().copied().unwrap_or_default();
    let max = v.iter().max().copied().unwrap_or_default();
    format!("min {}, max {}", ms(min), ms(max))
}

fn list_ms(v: &[Duration]) -> String {
    v.iter()
        .map(|d| format!("{:.1}", d.as_secs_f64() * 1000.0))
        .collect::<Vec<_>>()
        .join(", ")
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}
