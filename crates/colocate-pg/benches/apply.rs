//! `apply` benchmarks against a real Citus cluster: a coordinator with two workers on loopback
//! (`scripts/pg-test-cluster start --workers 2`; `scripts/bench` starts a private one), without a
//! benchmark framework: every figure is printed with what it measures and the load average.
//!
//! 1. Overhead: 300 generated tables with small data, each run in a fresh database, median of 3.
//!    The schema (deterministic): a `tenants (tenant uuid primary key)` root with 100 tenants;
//!    20 lookup tables `ref_<k>` (200 rows) that tenant tables reference, so they become
//!    reference tables; 250 tenant tables `t_<n>` keyed by `(tenant, id)` (300 rows: 3 per
//!    tenant), every one with a foreign key to `tenants`, the first 20 and then 40% of the rest
//!    with a key to a lookup table, 60% with `(tenant, parent_id)` to an earlier tenant table
//!    (so many reach a lookup table through their parent, which Citus converts only in
//!    sequential mode; `COLOCATE_BENCH_NO_LOOKUP_CHAINS=1` picks parents without a lookup key
//!    only), and two of them (`t_cycle_a`, `t_cycle_b`) referencing each other (a foreign-key
//!    cycle apply must break and restore); 9 `tid_<n>` tables keyed by `tenant_id`; 20 local
//!    tables `loc_<n>` that stay on the coordinator. Everything is analysed, so row estimates
//!    are set. `apply` runs through the library on a fresh connection made as the CLI makes it
//!    (`Target::connect`, with more connections allowed, so it renews its working session),
//!    with the default shard count (32).
//!    Figures: the outer wall time (connect + apply), `report.total_ms`, colocate's own
//!    `citus_ms` (client side), and two yardsticks independent of colocate's accounting:
//!    - inside the Citus functions: the delta of `total_time` in `pg_stat_user_functions` for
//!      `create_distributed_table`, `create_reference_table` and
//!      `truncate_local_data_after_distributing_table`, with `track_functions = 'all'` set on
//!      the database (these C functions are tracked at that level; `calls` must equal the
//!      number of Citus steps). It leaves out the statement's commit, where Citus commits the
//!      workers' side (two-phase commit);
//!    - the Citus statements with their commit: the durations the coordinator logs for them
//!      (`log_min_duration_statement = 0` on the database), read from the
//!      server log where pg-test-cluster writes it (`<data directory>.log`; not measured when
//!      it is elsewhere).
//!
//!    Target: `total_ms` within 1.15x of the first. The time outside the Citus steps is split
//!    from the step events (before the first step: lock, journal, introspection, planning,
//!    row counts; after the last: journal, introspection, planning, row counts of every
//!    converted table), and the pieces of the final verification are re-timed on the converged
//!    database (the row counts both as apply takes them, from the shards on every node, and as
//!    one distributed `count(*)` a table, which must agree).
//! 2. Online: a table `events (tenant uuid references tenants, id bigint, payload text,
//!    primary key (tenant, id))` of 1,000,000 rows, `tenants` already distributed, converted
//!    by `apply` while a second connection inserts one row every ~2 ms (one at a time; after a
//!    slow insert the next one is sent right away, not in a burst), each insert's latency
//!    recorded. Figures, for the blocking mode (`create_distributed_table`, one run), for
//!    `online` without colocate's waker (one run, Citus's own behaviour, for comparison) and for
//!    `online` as colocate runs it, with a threshold of 100,000 rows
//!    (`create_distributed_table_concurrently` with the waker, three runs, each on a fresh
//!    table, since the stall varies: see below): the longest insert (the
//!    stall), p99 and p50 over the inserts sent while apply ran, when the stall happened and
//!    during which step. Target: the longest online stall under 1 s. Afterwards the
//!    table's rows are checked (the million plus every insert that succeeded) and its
//!    distribution. What apply itself returns is printed, not asserted: its row-count
//!    verification compares counts taken before and after the run, which concurrent inserts
//!    change.
//!    The online mode needs `wal_level = logical` on the coordinator (Citus splits the table's
//!    single shard with logical replication; its decoder is the `citus` library, which
//!    PostgreSQL 15.19 and later only load when `output_plugin_libraries` lists it), and a free
//!    background worker on each worker node for the subscription (`max_worker_processes`; each
//!    database with Citus keeps a maintenance daemon on every node): without the settings the
//!    online half is skipped with the reason; without a free worker the conversion would wait
//!    for `citus.logical_replication_timeout` (two hours), so part 2 cancels an apply that runs
//!    too long. Citus 13.2 waits for the subscriptions to catch up with writes blocked, polling
//!    once a second (`WaitForGroupedLogicalRepTargetsToCatchUp`): when the subscriptions have
//!    not reported the source's position at the first check, writes wait a further second.
//!    colocate's waker (`colocate_pg::wake`) ends that sleep early by notifying a channel the
//!    apply session listens on every 20 ms; the run without it shows what it saves. Citus
//!    refuses the concurrent form on a table with any foreign key (it first makes the table a
//!    Citus local table), so apply journals the key to `tenants` for the copy and restores it
//!    (`NOT VALID`, then validated) right after: that is part of the online figures.
//!
//! `cargo bench -p colocate-pg --bench apply` runs the full sizes (about three minutes on two
//! cores, load average about 2; nearly all of it inside Citus).
//! Without `--bench` (e.g. `cargo test --all-targets`) it runs a small smoke pass (10 to 35 s). It skips (exit 0, with the reason) when Citus or
//! the workers are missing. With `COLOCATE_BENCH_KEEP=DIR` the summary also goes to
//! `DIR/apply-summary.txt`; `COLOCATE_BENCH_ONLY=overhead` or `=online` runs one part.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use colocate_core::distribution::DistributionConfig;
use colocate_core::plan::{StepKind, PARALLEL_MODE};
use colocate_core::schema::QualifiedName;
use colocate_pg::apply::{apply, ApplyEvent, ApplyOptions, ApplyReport};
use colocate_pg::introspect::introspect_with_stats;
use colocate_pg::verify::count_rows_many;
use colocate_pg::{Client, ErrorKind, PgError, Target};
use colocate_testkit::TestDb;
use postgres::NoTls;

const OVERHEAD_TARGET: f64 = 1.15;
const STALL_TARGET_MS: f64 = 1_000.0;
/// The Citus functions whose server-side time is the yardstick.
const CITUS_FUNCTIONS: &str = "'create_distributed_table', 'create_reference_table', \
     'truncate_local_data_after_distributing_table'";
const INSERT_EVERY: Duration = Duration::from_millis(2);
/// Inserts before apply starts (the baseline) and after it returns.
const LEAD: Duration = Duration::from_millis(500);
const TAIL: Duration = Duration::from_millis(300);

struct Sizes {
    tenants: usize,
    /// Rows per tenant in every tenant table (rows per table = tenants * this).
    ids: usize,
    lookups: usize,
    lookup_rows: usize,
    /// Tenant tables, the two of the cycle included.
    tenant_tables: usize,
    tid_tables: usize,
    local_tables: usize,
    runs: usize,
    big_rows: i64,
    online_threshold: i64,
    /// Online conversions (each of a fresh table): the stall varies from run to run.
    online_runs: usize,
    /// Longest an apply of part 2 may take before the benchmark cancels it.
    apply_limit: Duration,
}

const FULL: Sizes = Sizes {
    tenants: 100,
    ids: 3,
    lookups: 20,
    lookup_rows: 200,
    tenant_tables: 250,
    tid_tables: 9,
    local_tables: 20,
    runs: 3,
    big_rows: 1_000_000,
    online_threshold: 100_000,
    online_runs: 3,
    apply_limit: Duration::from_secs(180),
};

const SMOKE: Sizes = Sizes {
    tenants: 10,
    ids: 3,
    lookups: 3,
    lookup_rows: 20,
    tenant_tables: 20,
    tid_tables: 3,
    local_tables: 3,
    runs: 1,
    big_rows: 20_000,
    online_threshold: 1_000,
    online_runs: 1,
    apply_limit: Duration::from_secs(60),
};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full { FULL } else { SMOKE };
    let keep = std::env::var_os("COLOCATE_BENCH_KEEP").map(PathBuf::from);
    if !full {
        println!("smoke pass with small sizes (`cargo bench -p colocate-pg --bench apply` for real figures)");
    }
    if !colocate_testkit::citus_available() {
        println!(
            "SKIPPED apply benchmark: the citus extension is not installed on the test cluster"
        );
        return;
    }
    if colocate_testkit::worker_ports().len() < 2 {
        println!(
            "SKIPPED apply benchmark: it needs a coordinator with two workers \
             (scripts/pg-test-cluster start --workers 2, with COLOCATE_TEST_WORKER_PORTS set or \
             COLOCATE_PG_STATE pointing at that cluster)"
        );
        return;
    }
    let started = Instant::now();
    let mut summary = String::new();
    let _ = writeln!(
        summary,
        "load average at start:                   {}",
        load()
    );

    let only = std::env::var("COLOCATE_BENCH_ONLY").unwrap_or_default();
    if only != "online" {
        overhead(&sizes, &mut summary);
    }
    if only != "overhead" {
        online(&sizes, &mut summary);
    }

    println!();
    println!(
        "== summary ({:.1} s in all) ==",
        started.elapsed().as_secs_f64()
    );
    print!("{summary}");
    if let Some(dir) = &keep {
        fs::create_dir_all(dir).expect("create COLOCATE_BENCH_KEEP directory");
        fs::write(dir.join("apply-summary.txt"), &summary).expect("write apply-summary.txt");
    }
}

fn load() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

// ---------------------------------------------------------------------------------------------
// Part 1: colocate's time against the time inside Citus, 300 tables.

struct OverheadRun {
    load_before: String,
    load_after: String,
    connect_ms: f64,
    /// Connect + apply, measured around the call.
    outer_ms: f64,
    total_ms: f64,
    /// colocate's own sum over the Citus steps (client side, round trips included).
    citus_ms: f64,
    /// Server side: pg_stat_user_functions total_time delta of the three functions.
    server_ms: f64,
    server_calls: i64,
    /// Server side: durations the coordinator logged for the apply session's Citus statements
    /// (`log_min_duration_statement = 0`), which include the statement's commit (the two-phase
    /// commit on the workers); `None` when the server log is not where pg-test-cluster puts it.
    statements_ms: Option<f64>,
    /// Per function: (calls, total ms), server side.
    per_function: BTreeMap<String, (i64, f64)>,
    /// Per step kind: (steps, ms), client side.
    per_kind: BTreeMap<String, (usize, f64)>,
    /// From the call to the first step's start.
    before_steps_ms: f64,
    /// From the last step's end to the return.
    after_steps_ms: f64,
    /// Steps' total, and the gaps between them.
    steps_ms: f64,
    gaps_ms: f64,
    /// The verification's pieces re-timed on the converged database.
    introspect_after_ms: f64,
    introspect_queries: usize,
    counts_after_ms: f64,
    /// The same counts as one distributed `count(*)` a table.
    count_star_ms: f64,
    converted: usize,
}

fn overhead(sizes: &Sizes, summary: &mut String) {
    let chains = std::env::var_os("COLOCATE_BENCH_NO_LOOKUP_CHAINS").is_none();
    let g = generate(sizes, chains);
    println!();
    println!(
        "== part 1: apply on {} tables ({} tenant incl. a 2-table foreign-key cycle, {} tenant_id, \
         {} lookup -> reference, {} local, root tenants), {} rows per tenant table, coordinator + 2 workers ==",
        g.tables,
        sizes.tenant_tables,
        sizes.tid_tables,
        sizes.lookups,
        sizes.local_tables,
        sizes.tenants * sizes.ids
    );
    println!(
        "  {} foreign keys in all: {} to tenants, {} parent, {} lookup, 2 in the cycle",
        g.fks, g.tenant_fks, g.parent_fks, g.lookup_fks
    );
    let mut runs = Vec::new();
    for i in 0..sizes.runs {
        let r = overhead_run(sizes, &g);
        println!(
            "  run {}: outer {:.0} ms (connect {:.1}) | total_ms {:.0} | citus_ms {:.0} | \
             inside Citus functions {:.0} ms in {} calls | total/inside {:.3} | \
             statements incl. commit (log) {} | load {} -> {}",
            i + 1,
            r.outer_ms,
            r.connect_ms,
            r.total_ms,
            r.citus_ms,
            r.server_ms,
            r.server_calls,
            r.total_ms / r.server_ms,
            r.statements_ms
                .map_or("-".to_string(), |s| format!("{s:.0} ms")),
            r.load_before,
            r.load_after
        );
        println!(
            "         before the first step {:.0} ms, steps {:.0} ms, gaps between steps {:.1} ms, \
             after the last step {:.0} ms (re-timed: introspect {:.0} ms in {} queries, \
             row counts of {} converted tables {:.0} ms from their shards, {:.0} ms by count(*))",
            r.before_steps_ms,
            r.steps_ms,
            r.gaps_ms,
            r.after_steps_ms,
            r.introspect_after_ms,
            r.introspect_queries,
            r.converted,
            r.counts_after_ms,
            r.count_star_ms
        );
        let kinds: Vec<String> = r
            .per_kind
            .iter()
            .map(|(k, (n, ms))| format!("{k} {n} x {:.1} = {ms:.0} ms", ms / *n as f64))
            .collect();
        println!("         steps by kind (client side): {}", kinds.join("; "));
        let funcs: Vec<String> = r
            .per_function
            .iter()
            .map(|(f, (n, ms))| format!("{f} {n} x {:.1} = {ms:.0} ms", ms / *n as f64))
            .collect();
        println!("         inside Citus (server side): {}", funcs.join("; "));
        runs.push(r);
    }

    let med = |f: &dyn Fn(&OverheadRun) -> f64| median_f(runs.iter().map(f).collect());
    let total = med(&|r| r.total_ms);
    let outer = med(&|r| r.outer_ms);
    let server = med(&|r| r.server_ms);
    let citus = med(&|r| r.citus_ms);
    let ratio = med(&|r| r.total_ms / r.server_ms);
    let outer_ratio = med(&|r| r.outer_ms / r.server_ms);
    let logged: Option<Vec<f64>> = runs.iter().map(|r| r.statements_ms).collect();
    let statements_line = match &logged {
        Some(v) => {
            let st = median_f(v.clone());
            let r2 = median_f(runs.iter().zip(v).map(|(r, s)| r.total_ms / s).collect());
            let commit = median_f(
                runs.iter()
                    .zip(v)
                    .map(|(r, s)| (s - r.server_ms) / r.server_calls as f64)
                    .collect(),
            );
            format!(
                "  Citus statements incl. their commit (server log durations): {st:.0} ms \
                 ({commit:.1} ms a statement beyond the function); total / that = {r2:.3} ({})",
                if r2 <= OVERHEAD_TARGET {
                    "within 1.15x"
                } else {
                    "over 1.15x"
                }
            )
        }
        None => {
            "  Citus statements incl. their commit: server log not found, not measured".to_string()
        }
    };
    let verdict = if ratio <= OVERHEAD_TARGET {
        "PASS"
    } else {
        "FAIL"
    };
    let n = runs.len();
    let lines = [
        format!(
            "apply {} tables (coordinator + 2 workers{}), medians of {n} fresh databases:",
            g.tables,
            if chains {
                ""
            } else {
                ", no parent chains reaching lookup tables"
            }
        ),
        format!(
            "  colocate total_ms {total:.0} ms; outer wall (connect + apply) {outer:.0} ms; \
             colocate's citus_ms {citus:.0} ms"
        ),
        format!("  inside Citus (pg_stat_user_functions, track_functions=all): {server:.0} ms"),
        format!(
            "  total / inside Citus = {ratio:.3} (outer / inside = {outer_ratio:.3})  \
             target <= {OVERHEAD_TARGET}: {verdict}"
        ),
        statements_line,
        format!(
            "  colocate's own time (total_ms - citus_ms): {:.0} ms = {:.1}% of total_ms",
            med(&|r| r.total_ms - r.citus_ms),
            med(&|r| (r.total_ms - r.citus_ms) / r.total_ms * 100.0)
        ),
        format!(
            "  outside the Citus steps: before the first step {:.0} ms, after the last {:.0} ms \
             (verify: introspect {:.0} ms + row counts of {} tables {:.0} ms from their shards, \
             {:.0} ms by count(*)), between steps {:.1} ms",
            med(&|r| r.before_steps_ms),
            med(&|r| r.after_steps_ms),
            med(&|r| r.introspect_after_ms),
            runs[0].converted,
            med(&|r| r.counts_after_ms),
            med(&|r| r.count_star_ms),
            med(&|r| r.gaps_ms)
        ),
        format!(
            "  every run: ratio {}; total_ms {}; inside Citus {}; load {}",
            runs.iter()
                .map(|r| format!("{:.3}", r.total_ms / r.server_ms))
                .collect::<Vec<_>>()
                .join(", "),
            runs.iter()
                .map(|r| format!("{:.0}", r.total_ms))
                .collect::<Vec<_>>()
                .join(", "),
            runs.iter()
                .map(|r| format!("{:.0}", r.server_ms))
                .collect::<Vec<_>>()
                .join(", "),
            runs.iter()
                .map(|r| format!("[{} -> {}]", r.load_before, r.load_after))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    ];
    println!();
    for l in lines {
        println!("{l}");
        let _ = writeln!(summary, "{l}");
    }
}

fn overhead_run(sizes: &Sizes, g: &Generated) -> OverheadRun {
    let db = TestDb::new();
    let mut admin = db.citus_with_workers();
    for chunk in &g.chunks {
        admin.batch_execute(chunk).expect("create the schema");
    }
    admin
        .batch_execute("ANALYZE")
        .expect("analyze the generated tables");
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} SET track_functions = 'all'",
            ident(db.name())
        ))
        .expect("track functions");
    let log = server_log(&mut admin);
    if log.is_some() {
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {} SET log_min_duration_statement = 0",
                ident(db.name())
            ))
            .expect("log statement durations");
    }
    admin.batch_execute("CHECKPOINT").expect("checkpoint");
    let before = function_stats(&mut admin);
    let log_offset = log
        .as_ref()
        .and_then(|p| fs::metadata(p).ok())
        .map_or(0, |m| m.len());

    let config = DistributionConfig::default();
    let target = Target::new(Some(db.url())).expect("target");
    // As the CLI runs it: with more connections (renewed working sessions).
    let opts = ApplyOptions {
        more_connections: Some(target.clone()),
        ..ApplyOptions::default()
    };
    let mut marks: Vec<(Instant, bool, StepKind)> = Vec::new();
    let load_before = load();
    let t0 = Instant::now();
    let mut client = target.connect("colocate apply").expect("connect");
    let connected = Instant::now();
    let report = apply(&mut client, &config, &opts, &mut |e| match e {
        ApplyEvent::Start { step, .. } => marks.push((Instant::now(), true, step.kind())),
        ApplyEvent::Done { step, .. } => marks.push((Instant::now(), false, step.kind())),
        _ => {}
    })
    .unwrap_or_else(|e| panic!("apply failed: {e}"));
    let returned = Instant::now();
    let load_after = load();
    // Closing the session flushes its function statistics (the working sessions apply opened
    // are closed already).
    drop(client);

    check_report(&report, sizes, g);
    let citus_steps = report.steps.iter().filter(|s| is_citus(s.kind)).count() as i64;
    let statements_ms = log.and_then(|p| {
        let (n, total) = logged_citus_statements(&p, log_offset);
        if n == citus_steps as usize {
            Some(total)
        } else {
            println!(
                "  (server log {}: found {n} Citus statements, expected \
                 {citus_steps}; statement durations not used)",
                p.display()
            );
            None
        }
    });
    let after = wait_function_stats(&mut admin, &before, citus_steps);
    let mut per_function = BTreeMap::new();
    let (mut server_ms, mut server_calls) = (0.0, 0);
    for (f, (calls, ms)) in &after {
        let (c0, m0) = before.get(f).copied().unwrap_or((0, 0.0));
        if calls - c0 > 0 {
            per_function.insert(f.clone(), (calls - c0, ms - m0));
            server_ms += ms - m0;
            server_calls += calls - c0;
        }
    }
    let mut per_kind: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for s in &report.steps {
        let e = per_kind.entry(format!("{:?}", s.kind)).or_default();
        e.0 += 1;
        e.1 += s.elapsed_ms;
    }
    let steps_ms: f64 = report.steps.iter().map(|s| s.elapsed_ms).sum();
    let first = marks.first().map(|m| m.0).unwrap_or(returned);
    let last = marks.last().map(|m| m.0).unwrap_or(connected);
    let span = ms(last.saturating_duration_since(first));

    // Re-time the verification's pieces on the converged database.
    let mut c = db.connect();
    let (_, stats) = introspect_with_stats(&mut c, &config.schema_filter()).expect("introspect");
    let converted: Vec<QualifiedName> = report
        .steps
        .iter()
        .filter(|s| {
            matches!(
                s.kind,
                StepKind::CreateDistributedTable | StepKind::CreateReferenceTable
            )
        })
        .filter_map(|s| s.table.clone())
        .collect();
    // As apply counts them (from the shards on every node), and as one distributed count(*)
    // a table would.
    let t = Instant::now();
    let counted = count_rows_many(&mut c, &converted).expect("count rows");
    let counts_after_ms = ms(t.elapsed());
    let t = Instant::now();
    for table in &converted {
        let n: i64 = c
            .query_one(&format!("SELECT count(*) FROM {}", table.sql()), &[])
            .expect("count rows")
            .get(0);
        assert_eq!(counted[table], n, "{table}: shard sum and count(*) differ");
    }
    let count_star_ms = ms(t.elapsed());
    drop(c);
    drop(admin);
    drop(db);

    OverheadRun {
        load_before,
        load_after,
        connect_ms: ms(connected - t0),
        outer_ms: ms(returned - t0),
        total_ms: report.total_ms,
        citus_ms: report.citus_ms,
        server_ms,
        server_calls,
        statements_ms,
        per_function,
        per_kind,
        before_steps_ms: ms(first.saturating_duration_since(connected)),
        after_steps_ms: ms(returned.saturating_duration_since(last)),
        steps_ms,
        gaps_ms: span - steps_ms,
        introspect_after_ms: ms(stats.elapsed),
        introspect_queries: stats.queries,
        counts_after_ms,
        count_star_ms,
        converted: converted.len(),
    }
}

/// The coordinator's server log, where scripts/pg-test-cluster writes it (`<data directory>.log`).
fn server_log(c: &mut Client) -> Option<PathBuf> {
    let dir: String = c.query_one("SHOW data_directory", &[]).ok()?.get(0);
    let p = PathBuf::from(format!("{dir}.log"));
    p.is_file().then_some(p)
}

/// Count and total duration of the Citus function statements logged after `offset` (lines
/// `... [pid] LOG:  duration: 12.345 ms  statement: SELECT create_...`), by any session: apply
/// runs its steps on working sessions it renews, and nothing else sends these statements.
fn logged_citus_statements(path: &std::path::Path, offset: u64) -> (usize, f64) {
    let Ok(bytes) = fs::read(path) else {
        return (0, 0.0);
    };
    let text = String::from_utf8_lossy(&bytes[(offset as usize).min(bytes.len())..]).into_owned();
    let tag = "] LOG:  duration: ";
    let mut n = 0;
    let mut total = 0.0;
    for line in text.lines() {
        let Some((_, rest)) = line.split_once(tag) else {
            continue;
        };
        let Some((num, stmt)) = rest.split_once(" ms  statement: ") else {
            continue;
        };
        let citus = [
            "SELECT create_distributed_table(",
            "SELECT create_reference_table(",
            "SELECT truncate_local_data_after_distributing_table(",
        ]
        .iter()
        .any(|f| stmt.trim_start_matches(PARALLEL_MODE).starts_with(f));
        if let (true, Ok(d)) = (citus, num.parse::<f64>()) {
            n += 1;
            total += d;
        }
    }
    (n, total)
}

fn is_citus(k: StepKind) -> bool {
    matches!(
        k,
        StepKind::CreateDistributedTable
            | StepKind::CreateReferenceTable
            | StepKind::TruncateLocalData
    )
}

/// The run did what the schema calls for.
fn check_report(report: &ApplyReport, sizes: &Sizes, g: &Generated) {
    let count = |k: StepKind| report.steps.iter().filter(|s| s.kind == k).count();
    let converted = 1 + sizes.tenant_tables + sizes.tid_tables + sizes.lookups;
    assert_eq!(
        count(StepKind::CreateDistributedTable),
        1 + sizes.tenant_tables + sizes.tid_tables,
        "distributed steps"
    );
    assert_eq!(
        count(StepKind::CreateReferenceTable),
        sizes.lookups,
        "reference steps"
    );
    assert_eq!(
        count(StepKind::TruncateLocalData),
        converted,
        "truncate steps"
    );
    assert_eq!(count(StepKind::DropForeignKey), 1, "the cycle is broken");
    assert_eq!(count(StepKind::RestoreForeignKey), 1, "and restored");
    let v = report.verified.as_ref().expect("apply verified");
    assert_eq!(v.tables, converted, "verified tables");
    assert_eq!(v.foreign_keys, g.fks, "foreign keys all present");
    assert_eq!(
        v.rows,
        g.converted_rows + g.local_rows,
        "rows all present (every table in scope is counted)"
    );
}

type FunctionStats = BTreeMap<String, (i64, f64)>;

fn function_stats(c: &mut Client) -> FunctionStats {
    c.query(
        &format!(
            "SELECT funcname::text, calls, total_time FROM pg_stat_user_functions \
             WHERE funcname IN ({CITUS_FUNCTIONS})"
        ),
        &[],
    )
    .expect("read pg_stat_user_functions")
    .iter()
    .map(|r| (r.get(0), (r.get(1), r.get(2))))
    .collect()
}

/// The statistics once the apply session's have arrived (a backend reports them on exit).
fn wait_function_stats(c: &mut Client, before: &FunctionStats, calls: i64) -> FunctionStats {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = function_stats(c);
        let got: i64 =
            now.values().map(|v| v.0).sum::<i64>() - before.values().map(|v| v.0).sum::<i64>();
        if got == calls {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "pg_stat_user_functions shows {got} calls of the Citus functions, expected {calls} \
             (is track_functions = 'all' in effect?)"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// Part 2: the longest insert stall, blocking against online.

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Blocking,
    /// Online as colocate runs it: with the waker (`colocate_pg::wake`).
    Online,
    /// Online without the waker: Citus's own one-second catch-up poll, for comparison.
    OnlineUnwoken,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Blocking => "blocking (create_distributed_table)",
            Mode::Online => "online (create_distributed_table_concurrently, with the waker)",
            Mode::OnlineUnwoken => "online without the waker (Citus's own 1 s poll)",
        }
    }
}

struct Insert {
    sent: Instant,
    latency: f64,
    error: Option<String>,
}

struct StepSpan {
    kind: StepKind,
    online: bool,
    start: Instant,
    end: Option<Instant>,
}

struct Stall {
    mode: Mode,
    load_before: String,
    load_after: String,
    apply_ms: f64,
    apply_error: Option<String>,
    /// Latencies of the inserts sent while apply ran.
    during: Vec<f64>,
    /// When the longest of them was sent, in ms from the start of apply.
    max_at: f64,
    /// The step running when the longest insert was sent.
    stalled_by: String,
    errors: usize,
    first_error: Option<String>,
}

fn online(sizes: &Sizes, summary: &mut String) {
    println!();
    println!(
        "== part 2: apply of a {}-row table under a steady insert load (one insert every ~{} ms) ==",
        sizes.big_rows,
        INSERT_EVERY.as_millis()
    );
    let mut results = vec![stall_run(sizes, Mode::Blocking)];
    let not_ready = online_prerequisites();
    if let Some(why) = &not_ready {
        println!("  SKIPPED online mode: {why}");
    } else {
        results.push(stall_run(sizes, Mode::OnlineUnwoken));
        for _ in 0..sizes.online_runs {
            results.push(stall_run(sizes, Mode::Online));
        }
    }
    let max = |r: &Stall| r.during.iter().copied().fold(0.0, f64::max);
    let mut lines = vec![format!(
        "insert stall while apply converts a {}-row table (one insert every ~{} ms from another connection):",
        sizes.big_rows,
        INSERT_EVERY.as_millis()
    )];
    for r in &results {
        lines.push(format!(
            "  {}: longest insert {:.0} ms (sent at +{:.2} s, during {}), p99 {:.1} ms, p50 {:.2} ms \
             over {} inserts during apply; apply {:.1} s; failed inserts {}; load {} -> {}",
            r.mode.label(),
            max(r),
            r.max_at / 1000.0,
            r.stalled_by,
            percentile(&r.during, 0.99),
            percentile(&r.during, 0.50),
            r.during.len(),
            r.apply_ms / 1000.0,
            r.errors,
            r.load_before,
            r.load_after
        ));
        if let Some(e) = &r.first_error {
            lines.push(format!("    first failed insert: {e}"));
        }
        if let Some(e) = &r.apply_error {
            lines.push(format!("    apply returned an error: {e}"));
        }
    }
    let online: Vec<&Stall> = results.iter().filter(|r| r.mode == Mode::Online).collect();
    if let Some(why) = not_ready {
        lines.push(format!("  online mode SKIPPED: {why}"));
    } else {
        let stalls: Vec<f64> = online.iter().map(|r| max(r)).collect();
        let longest = stalls.iter().copied().fold(0.0, f64::max);
        let failed: usize = online.iter().map(|r| r.errors).sum();
        lines.push(format!(
            "  online: longest insert of each of {} runs {} ms; longest {longest:.0} ms, median \
             {:.0} ms; failed inserts {failed}  target < {STALL_TARGET_MS:.0} ms: {}",
            stalls.len(),
            stalls
                .iter()
                .map(|s| format!("{s:.0}"))
                .collect::<Vec<_>>()
                .join(", "),
            median_f(stalls.clone()),
            if longest < STALL_TARGET_MS && failed == 0 {
                "PASS"
            } else {
                "FAIL"
            }
        ));
        lines.push(format!(
            "  longest online stall / blocking stall = {longest:.0} / {:.0} ms = {:.3}",
            max(&results[0]),
            longest / max(&results[0])
        ));
    }
    println!();
    for l in lines {
        println!("{l}");
        let _ = writeln!(summary, "{l}");
    }
}

/// Why `create_distributed_table_concurrently` cannot work on this cluster, if it cannot.
fn online_prerequisites() -> Option<String> {
    let mut c = colocate_testkit::connect(&colocate_testkit::admin_url());
    let wal: String = c
        .query_one("SHOW wal_level", &[])
        .expect("show wal_level")
        .get(0);
    let mut missing = Vec::new();
    if wal != "logical" {
        missing.push(format!("wal_level is {wal} (must be logical)"));
    }
    // PostgreSQL builds with this setting allow only the listed logical decoding plugins.
    let plugins: Option<String> = c
        .query_opt(
            "SELECT setting FROM pg_settings WHERE name = 'output_plugin_libraries'",
            &[],
        )
        .expect("read output_plugin_libraries")
        .map(|r| r.get(0));
    if let Some(p) = plugins {
        if !p.split(',').any(|l| l.trim() == "citus") {
            missing.push(format!(
                "output_plugin_libraries is '{p}' (must include citus)"
            ));
        }
    }
    (!missing.is_empty()).then(|| {
        format!(
            "create_distributed_table_concurrently splits the table's shard with logical \
             replication from the coordinator; on this cluster {}",
            missing.join("; ")
        )
    })
}

fn stall_run(sizes: &Sizes, mode: Mode) -> Stall {
    let db = TestDb::new();
    let mut admin = db.citus_with_workers();
    let t = Instant::now();
    admin
        .batch_execute(&format!(
            "CREATE TABLE public.tenants (tenant uuid PRIMARY KEY);\n\
             INSERT INTO public.tenants SELECT md5('tenant-' || k)::uuid FROM generate_series(1, 1000) k;\n\
             CREATE TABLE public.events (tenant uuid NOT NULL REFERENCES public.tenants, \
             id bigint NOT NULL, payload text, PRIMARY KEY (tenant, id));\n\
             INSERT INTO public.events SELECT md5('tenant-' || (g % 1000 + 1))::uuid, g, md5(g::text) \
             FROM generate_series(1, {}) g;\n\
             SELECT create_distributed_table('public.tenants', 'tenant', colocate_with => 'none');\n\
             ANALYZE public.events;\n\
             CHECKPOINT;",
            sizes.big_rows
        ))
        .expect("create and fill the table");
    println!();
    println!(
        "  {}: table of {} rows ready in {:.1} s",
        mode.label(),
        sizes.big_rows,
        t.elapsed().as_secs_f64()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let inserter = {
        let url = db.url().to_string();
        let stop = stop.clone();
        let first_id = sizes.big_rows + 1;
        thread::spawn(move || insert_loop(&url, &stop, first_id))
    };
    // Baseline inserts before apply starts.
    thread::sleep(LEAD);

    let config = DistributionConfig::default();
    let target = Target::new(Some(db.url())).expect("target");
    let opts = ApplyOptions {
        online: mode != Mode::Blocking,
        online_threshold: sizes.online_threshold,
        more_connections: Some(target.clone()),
        online_waker: mode == Mode::Online,
        ..ApplyOptions::default()
    };
    let mut client = target.connect("colocate apply").expect("connect");
    let mut steps: Vec<StepSpan> = Vec::new();
    // A conversion whose logical replication cannot progress (no free background worker for
    // the subscription on a worker, say) waits for citus.logical_replication_timeout, two hours
    // by default: cancel it instead.
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = {
        let token = client.cancel_token();
        let limit = sizes.apply_limit;
        thread::spawn(move || {
            if done_rx.recv_timeout(limit).is_err() {
                eprintln!(
                    "apply still running after {} s: cancelling it",
                    limit.as_secs()
                );
                let _ = token.cancel_query(NoTls);
            }
        })
    };
    let load_before = load();
    let t0 = Instant::now();
    let res = apply(&mut client, &config, &opts, &mut |e| match e {
        ApplyEvent::Start { step, online, .. } => steps.push(StepSpan {
            kind: step.kind(),
            online,
            start: Instant::now(),
            end: None,
        }),
        ApplyEvent::Done { .. } => {
            if let Some(s) = steps.last_mut() {
                s.end = Some(Instant::now());
            }
        }
        _ => {}
    });
    let t1 = Instant::now();
    let _ = done_tx.send(());
    watchdog.join().expect("watchdog thread");
    let load_after = load();
    thread::sleep(TAIL);
    stop.store(true, Ordering::SeqCst);
    let inserts = inserter.join().expect("insert thread");
    drop(client);
    let rel = |i: Instant| {
        if i >= t0 {
            ms(i - t0)
        } else {
            -ms(t0 - i)
        }
    };

    for st in &steps {
        println!(
            "    step {:?}{} from +{:.2} s to {}",
            st.kind,
            if st.online { " (online)" } else { "" },
            rel(st.start) / 1000.0,
            st.end.map_or("its failure".to_string(), |e| format!(
                "+{:.2} s",
                rel(e) / 1000.0
            ))
        );
    }
    let apply_error = res.as_ref().err().map(describe);
    if let Some(e) = &apply_error {
        println!(
            "    apply returned an error after {:.1} s: {e}",
            ms(t1 - t0) / 1000.0
        );
    }
    if mode != Mode::Blocking {
        assert!(
            steps.iter().any(|s| s.online),
            "apply did not take the online path"
        );
    }

    // Every insert that succeeded is in the table, and the table is distributed as planned.
    let ok = inserts.iter().filter(|i| i.error.is_none()).count() as i64;
    let rows: i64 = admin
        .query_one("SELECT count(*) FROM public.events", &[])
        .expect("count")
        .get(0);
    let dist: Option<String> = admin
        .query_opt(
            "SELECT p.partmethod::text FROM pg_dist_partition p \
             JOIN pg_dist_partition r ON r.colocationid = p.colocationid \
             WHERE p.logicalrelid = 'public.events'::regclass \
             AND r.logicalrelid = 'public.tenants'::regclass",
            &[],
        )
        .expect("read pg_dist_partition")
        .map(|r| r.get(0));
    let yes = |b: bool| if b { "yes" } else { "NO" };
    println!(
        "    events: {rows} rows = {} + {ok} inserted: {}; distributed, colocated with tenants: {}",
        sizes.big_rows,
        yes(rows == sizes.big_rows + ok),
        yes(dist.as_deref() == Some("h"))
    );
    let during: Vec<&Insert> = inserts
        .iter()
        .filter(|i| i.sent >= t0 && i.sent <= t1)
        .collect();
    let baseline: Vec<f64> = inserts
        .iter()
        .filter(|i| i.sent < t0)
        .map(|i| i.latency)
        .collect();
    let longest = during.iter().max_by(|a, b| a.latency.total_cmp(&b.latency));
    // The step running when the longest insert was sent: the one it waited on.
    let stalled_by = longest.and_then(|i| {
        steps
            .iter()
            .rev()
            .find(|s| s.start <= i.sent)
            .map(|s| format!("{:?}{}", s.kind, if s.online { " (online)" } else { "" }))
    });
    let failed: Vec<&Insert> = inserts.iter().filter(|i| i.error.is_some()).collect();
    let r = Stall {
        mode,
        load_before,
        load_after,
        apply_ms: ms(t1 - t0),
        apply_error,
        during: during.iter().map(|i| i.latency).collect(),
        max_at: longest.map(|i| rel(i.sent)).unwrap_or(0.0),
        stalled_by: stalled_by.unwrap_or_else(|| "-".into()),
        errors: failed.len(),
        first_error: failed.first().and_then(|i| i.error.clone()),
    };
    println!(
        "    inserts: {} sent, {} during apply, {} failed; before apply p99 {:.2} ms, max {:.1} ms; \
         during apply max {:.0} ms (sent at +{:.2} s), p99 {:.1} ms",
        inserts.len(),
        r.during.len(),
        r.errors,
        percentile(&baseline, 0.99),
        baseline.iter().copied().fold(0.0, f64::max),
        r.during.iter().copied().fold(0.0, f64::max),
        r.max_at / 1000.0,
        percentile(&r.during, 0.99)
    );
    assert_eq!(
        dist.as_deref(),
        Some("h"),
        "{}: events is not distributed with tenants",
        mode.label()
    );
    assert_eq!(
        rows,
        sizes.big_rows + ok,
        "{}: rows lost or duplicated",
        mode.label()
    );
    drop(admin);
    drop(db);
    r
}

fn insert_loop(url: &str, stop: &AtomicBool, first_id: i64) -> Vec<Insert> {
    let mut c = colocate_testkit::connect(url);
    let sql = "INSERT INTO public.events (tenant, id, payload) \
               VALUES (md5('tenant-' || $1::int)::uuid, $2, 'inserted during apply')";
    let mut out = Vec::new();
    let mut id = first_id;
    let mut next = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        }
        let k = (id % 1000 + 1) as i32;
        let sent = Instant::now();
        let res = c.execute(sql, &[&k, &id]);
        let done = Instant::now();
        out.push(Insert {
            sent,
            latency: ms(done - sent),
            error: res.err().map(|e| format!("insert {id}: {e}")),
        });
        id += 1;
        // Steady pace; after a slow insert the next one goes right away, without catching up.
        next = (sent + INSERT_EVERY).max(done);
    }
    out
}

fn describe(e: &PgError) -> String {
    match e.kind() {
        ErrorKind::Verify {
            problems,
            unenforced,
        } => format!(
            "verification: {}",
            problems
                .iter()
                .chain(unenforced)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        ),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Schema generation for part 1

struct Generated {
    chunks: Vec<String>,
    tables: usize,
    fks: usize,
    tenant_fks: usize,
    parent_fks: usize,
    lookup_fks: usize,
    /// Rows of every table apply converts (root, tenant, tenant_id and lookup tables).
    converted_rows: i64,
    /// Rows of the tables that stay local (apply counts them too: its cleanup cascades).
    local_rows: i64,
}

/// SplitMix64: a fixed seed gives the same schema on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn generate(s: &Sizes, chains: bool) -> Generated {
    let mut rng = Rng(0x6170_706c_7962_656e);
    let per_table = (s.tenants * s.ids) as i64;
    let mut g = Generated {
        chunks: Vec::new(),
        tables: 1 + s.lookups + s.tenant_tables + s.tid_tables + s.local_tables,
        fks: 0,
        tenant_fks: 0,
        parent_fks: 0,
        lookup_fks: 0,
        converted_rows: 0,
        local_rows: 0,
    };
    let mut pieces: Vec<String> = Vec::new();
    pieces.push(format!(
        "CREATE SCHEMA app;\n\
         CREATE TABLE public.tenants (tenant uuid PRIMARY KEY, name text NOT NULL);\n\
         INSERT INTO public.tenants SELECT md5('tenant-' || k)::uuid, 'tenant ' || k \
         FROM generate_series(1, {}) k;\n",
        s.tenants
    ));
    g.converted_rows += s.tenants as i64;
    let schema = |rng: &mut Rng| if rng.below(3) == 0 { "app" } else { "public" };
    let lookups: Vec<String> = (1..=s.lookups)
        .map(|k| format!("{}.ref_{k}", schema(&mut rng)))
        .collect();
    for l in &lookups {
        pieces.push(format!(
            "CREATE TABLE {l} (id int PRIMARY KEY, name text NOT NULL);\n\
             INSERT INTO {l} SELECT i, 'name ' || i FROM generate_series(1, {}) i;\n",
            s.lookup_rows
        ));
        g.converted_rows += s.lookup_rows as i64;
    }
    // Rows of a tenant-keyed table: `ids` per tenant.
    let rows = |table: &str, col: &str, extra_cols: &str, extra_vals: &str| {
        format!(
            "INSERT INTO {table} ({col}, id{extra_cols}) SELECT t.tenant, i{extra_vals} \
             FROM public.tenants t CROSS JOIN generate_series(1, {}) i;\n",
            s.ids
        )
    };
    // Tables a later one may reference as its parent. Unless `chains`, only those without a
    // lookup key: Citus 13.2 refuses `create_distributed_table` in parallel mode on a table with
    // rows whose foreign keys reach a reference table through another distributed table
    // ("cannot execute parallel DDL on table ... after DDL command on reference table ..."),
    // which apply handles with sequential mode.
    let mut names: Vec<String> = Vec::new();
    let plain = s.tenant_tables - 2;
    for j in 1..=plain {
        let q = format!("{}.t_{j}", schema(&mut rng));
        let parent =
            (!names.is_empty() && rng.below(10) < 6).then(|| names[rng.below(names.len())].clone());
        let lookup = if j <= lookups.len() {
            Some(j - 1)
        } else {
            (rng.below(10) < 4).then(|| rng.below(lookups.len()))
        };
        let mut sql = format!(
            "CREATE TABLE {q} (\n  tenant uuid NOT NULL REFERENCES public.tenants,\n  \
             id bigint NOT NULL,\n  parent_id bigint,\n  lookup_id int{},\n  payload text,\n  \
             created_at timestamptz NOT NULL DEFAULT now(),\n  PRIMARY KEY (tenant, id)",
            lookup
                .map(|l| format!(" REFERENCES {}", lookups[l]))
                .unwrap_or_default()
        );
        if let Some(p) = &parent {
            let _ = write!(
                sql,
                ",\n  FOREIGN KEY (tenant, parent_id) REFERENCES {p} (tenant, id)"
            );
        }
        sql.push_str("\n);\n");
        sql.push_str(&rows(
            &q,
            "tenant",
            ", parent_id, lookup_id, payload",
            &format!(
                ", {}, {}, 'payload ' || i",
                if parent.is_some() { "i" } else { "NULL" },
                if lookup.is_some() {
                    format!("i % {} + 1", s.lookup_rows)
                } else {
                    "NULL".into()
                }
            ),
        ));
        pieces.push(sql);
        g.tenant_fks += 1;
        g.parent_fks += usize::from(parent.is_some());
        g.lookup_fks += usize::from(lookup.is_some());
        if chains || lookup.is_none() {
            names.push(q);
        }
    }
    // A foreign-key cycle: a -> b and b -> a.
    pieces.push(format!(
        "CREATE TABLE public.t_cycle_a (tenant uuid NOT NULL REFERENCES public.tenants, \
         id bigint NOT NULL, b_id bigint, PRIMARY KEY (tenant, id));\n\
         CREATE TABLE public.t_cycle_b (tenant uuid NOT NULL REFERENCES public.tenants, \
         id bigint NOT NULL, a_id bigint, PRIMARY KEY (tenant, id), \
         FOREIGN KEY (tenant, a_id) REFERENCES public.t_cycle_a (tenant, id));\n\
         ALTER TABLE public.t_cycle_a ADD FOREIGN KEY (tenant, b_id) \
         REFERENCES public.t_cycle_b (tenant, id);\n\
         {}{}UPDATE public.t_cycle_a SET b_id = id;\n",
        rows("public.t_cycle_a", "tenant", "", ""),
        rows("public.t_cycle_b", "tenant", ", a_id", ", i"),
    ));
    g.tenant_fks += 2;
    for k in 1..=s.tid_tables {
        let q = format!("{}.tid_{k}", schema(&mut rng));
        let mut sql = format!(
            "CREATE TABLE {q} (tenant_id uuid NOT NULL REFERENCES public.tenants, \
             id bigint NOT NULL, note text, PRIMARY KEY (tenant_id, id));\n"
        );
        sql.push_str(&rows(&q, "tenant_id", ", note", ", 'note ' || i"));
        pieces.push(sql);
        g.tenant_fks += 1;
    }
    for k in 1..=s.local_tables {
        let q = format!("{}.loc_{k}", schema(&mut rng));
        pieces.push(format!(
            "CREATE TABLE {q} (id bigint PRIMARY KEY, body text);\n\
             INSERT INTO {q} SELECT i, 'body ' || i FROM generate_series(1, {per_table}) i;\n"
        ));
    }
    g.converted_rows += per_table * (s.tenant_tables + s.tid_tables) as i64;
    g.local_rows = per_table * s.local_tables as i64;
    g.fks = g.tenant_fks + g.parent_fks + g.lookup_fks + 2;
    g.chunks = pieces.chunks(50).map(|c| c.concat()).collect();
    g
}

// ---------------------------------------------------------------------------------------------
// Formatting

fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let i = ((s.len() as f64 * p).ceil() as usize).clamp(1, s.len()) - 1;
    s[i]
}
