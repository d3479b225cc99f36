//! `apply --online` through the binary on a Citus cluster: large tables linked by foreign keys,
//! the application writing into them while they convert, a run resumed after one that was
//! killed, and the settings `create_distributed_table_concurrently` needs checked before
//! anything changes.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use colocate_testkit::skip_without_citus;
use common::{run, Project, Run};

/// Run the binary; an online conversion on a loaded machine can take longer than the usual
/// per-command limit of the test suite.
fn colocate(p: &Project, args: &[&str]) -> Run {
    let mut c = p.cmd();
    c.args(args).timeout(Duration::from_secs(300));
    run(c)
}

const ONLINE: &[&str] = &["apply", "--online", "--online-threshold", "1000"];

/// The root, and two large tables linked by a key (`order_lines` -> `orders`), both eligible
/// for the concurrent form.
const LINKED: &str = "
CREATE TABLE tenants (tenant uuid PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (tenant uuid NOT NULL REFERENCES tenants, id bigint NOT NULL, note text,
    PRIMARY KEY (tenant, id));
CREATE TABLE order_lines (tenant uuid NOT NULL REFERENCES tenants, id bigint NOT NULL,
    order_id bigint NOT NULL, qty int NOT NULL, PRIMARY KEY (tenant, id),
    CONSTRAINT order_lines_order_fk FOREIGN KEY (tenant, order_id) REFERENCES orders (tenant, id));
INSERT INTO tenants SELECT ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid,
    'tenant ' || g FROM generate_series(1, 4) g;
INSERT INTO orders SELECT tenant, g, 'order ' || g FROM tenants, generate_series(1, 3000) g;
INSERT INTO order_lines SELECT tenant, g, 1 + g % 3000, g % 7 FROM tenants, generate_series(1, 6000) g;
ANALYZE;
";

const CONFIG: &str =
    "[distribution]\nroot = \"tenants\"\ncolumns = [\"tenant\"]\nshard_count = 4\n";

fn wal_level(p: &Project) -> String {
    p.db.connect()
        .query_one("SHOW wal_level", &[])
        .unwrap()
        .get(0)
}

/// A project on two workers with the linked schema; `None` (skipped) when the server cannot
/// convert online at all.
fn linked_project(test: &str) -> Option<Project> {
    if skip_without_citus(test) {
        return None;
    }
    let p = Project::new();
    p.db.citus_with_workers();
    p.db.citus_operation_ids_apart();
    let wal = wal_level(&p);
    if wal != "logical" {
        eprintln!("SKIPPED: {test}: wal_level is {wal}; create_distributed_table_concurrently needs logical");
        return None;
    }
    p.db.connect().batch_execute(LINKED).unwrap();
    std::fs::write(p.root().join("colocate.toml"), CONFIG).unwrap();
    Some(p)
}

fn converged(
    p: &Project,
    tables: &[String],
    keys: &std::collections::BTreeSet<common::ForeignKey>,
) {
    let citus: Vec<String> = p.citus_tables().into_keys().collect();
    assert_eq!(
        citus,
        ["public.order_lines", "public.orders", "public.tenants"]
    );
    assert_eq!(&p.foreign_keys(tables), keys, "every key back, validated");
    assert_eq!(p.journal_open(), Vec::<String>::new());
    assert!(p.coordinator_leftovers().is_empty());
    colocate(p, &["check"]).expect(0);
}

/// The application: a session writing `sql(i)` (i = 100001, 100002, ...) every few
/// milliseconds until stopped, counting what it committed and keeping every error's message.
struct Application {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<(i64, Vec<String>)>,
}

impl Application {
    fn start(p: &Project, sql: fn(i64) -> String) -> Application {
        let stop = Arc::new(AtomicBool::new(false));
        let mut c = p.db.connect();
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            let mut committed = 0i64;
            let mut errors: Vec<String> = Vec::new();
            let mut i = 100_000i64;
            while !flag.load(Ordering::Relaxed) {
                i += 1;
                match c.batch_execute(&sql(i)) {
                    Ok(()) => committed += 1,
                    Err(e) => {
                        let _ = c.batch_execute("ROLLBACK");
                        errors.push(
                            e.as_db_error()
                                .map(|d| d.message().to_string())
                                .unwrap_or_else(|| e.to_string()),
                        );
                    }
                }
                thread::sleep(Duration::from_millis(5));
            }
            (committed, errors)
        });
        thread::sleep(Duration::from_millis(200));
        Application { stop, thread }
    }

    /// Stop writing: (transactions committed, errors).
    fn stop(self) -> (i64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Both large tables go online; the key between them is detached once (for the first of them)
/// and restored once both are distributed. Before, the second step dropped it again and failed
/// with `constraint "order_lines_order_fk" ... does not exist`.
#[test]
fn citus_two_workers_online_two_large_tables_linked_by_a_key_detach_it_once() {
    let Some(p) =
        linked_project("citus_two_workers_online_two_large_tables_linked_by_a_key_detach_it_once")
    else {
        return;
    };
    let tables = p.tables_in(&["public"]);
    let sums = p.checksums(&tables);
    let keys = p.foreign_keys(&tables);
    assert_eq!(keys.len(), 3);

    let mut dry = ONLINE.to_vec();
    dry.push("--dry-run");
    let dry = colocate(&p, &dry).expect(0);
    assert_eq!(
        dry.stdout
            .matches("DROP CONSTRAINT \"order_lines_order_fk\";  -- journaled")
            .count(),
        1,
        "the key between the two large tables is detached once\n{}",
        dry.all()
    );
    assert_eq!(
        dry.stdout
            .matches("create_distributed_table_concurrently")
            .count(),
        2,
        "{}",
        dry.all()
    );

    let r = colocate(&p, ONLINE);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert_eq!(p.checksums(&tables), sums);
    converged(&p, &tables, &keys);
}

/// Application writes into the root, the parent and the child (one transaction each, in that
/// order, as an application inserts) all through an `--online` run: the run locks a key's
/// referenced table before its referencing one, as the application does, so neither side
/// deadlocks (before, restoring `order_lines_tenant_fkey` did, 3 runs of 3); a validation that
/// meets a child row whose parent's shard has not committed yet is tried again. Every
/// committed row is there afterwards.
#[test]
fn citus_two_workers_online_with_writes_into_root_parent_and_child_does_not_deadlock() {
    let Some(p) = linked_project(
        "citus_two_workers_online_with_writes_into_root_parent_and_child_does_not_deadlock",
    ) else {
        return;
    };
    let tables = p.tables_in(&["public"]);
    let keys = p.foreign_keys(&tables);
    let w = online_run_with_writes(&p);
    every_write_there(&p, &w, &tables, &keys);
}

/// The same in two databases of the server at once. Citus 13.2 keeps a non-blocking split's
/// state in one place per server and keeps splits apart only per database (see colocate-pg's
/// `split_guard`): before, when the two runs' conversions overlapped, one of them lost the
/// writes made during its catch-up (8 of 16 runs of two copies of the test above at once,
/// `orders` rows missing, or `order_lines` with 155 of 809 new rows); now each conversion
/// waits until the other database's split has ended.
#[test]
fn citus_two_workers_online_runs_in_two_databases_at_once_lose_no_writes() {
    let test = "citus_two_workers_online_runs_in_two_databases_at_once_lose_no_writes";
    let (Some(a), Some(b)) = (linked_project(test), linked_project(test)) else {
        return;
    };
    let tables = a.tables_in(&["public"]);
    let keys = a.foreign_keys(&tables);
    let (wa, wb) = thread::scope(|s| {
        let wa = s.spawn(|| online_run_with_writes(&a));
        let wb = s.spawn(|| online_run_with_writes(&b));
        (wa.join().unwrap(), wb.join().unwrap())
    });
    every_write_there(&a, &wa, &tables, &keys);
    every_write_there(&b, &wb, &tables, &keys);
}

/// A Citus split under way in another database of the server (its replication slot; here a
/// stand-in of the same name) holds the online conversion back until it has ended, and the
/// run then goes on.
#[test]
fn citus_two_workers_online_conversion_waits_for_a_split_in_another_database() {
    let Some(p) =
        linked_project("citus_two_workers_online_conversion_waits_for_a_split_in_another_database")
    else {
        return;
    };
    let tables = p.tables_in(&["public"]);
    let keys = p.foreign_keys(&tables);
    let other = Project::new();
    let mut split = other.db.connect();
    // Temporary: it goes when this session ends, also when the test fails.
    split
        .execute(
            "SELECT pg_create_logical_replication_slot($1, 'pgoutput', true)",
            &[&format!(
                "citus_shard_split_slot_colocate_test_{}",
                std::process::id()
            )],
        )
        .unwrap();
    let method = |t: &str| p.citus_tables().get(t).map(|c| c.method.clone());
    let (r, orders_while_split) = thread::scope(|s| {
        let run = s.spawn(|| colocate(&p, ONLINE));
        let t0 = Instant::now();
        // The root goes first (not online); the next step converts orders online.
        while method("public.tenants").is_none() && t0.elapsed() < Duration::from_secs(120) {
            thread::sleep(Duration::from_millis(50));
        }
        thread::sleep(Duration::from_secs(2));
        let orders = method("public.orders");
        drop(split);
        (run.join().unwrap(), orders)
    });
    assert_eq!(orders_while_split, None, "orders waited for the split");
    assert_eq!(r.code, Some(0), "{}", r.all());
    converged(&p, &tables, &keys);
}

/// What an online run did while the application wrote.
struct Written {
    run: Run,
    committed: i64,
    errors: Vec<String>,
}

/// `apply --online` on `p` while the application inserts a tenant, an order and a line of it
/// in one transaction, again and again.
fn online_run_with_writes(p: &Project) -> Written {
    let app = Application::start(p, |i| {
        format!(
            "BEGIN;
             INSERT INTO tenants VALUES (('00000000-0000-4000-9000-' || lpad('{i}', 12, '0'))::uuid, 'new');
             INSERT INTO orders VALUES (('00000000-0000-4000-9000-' || lpad('{i}', 12, '0'))::uuid, {i}, 'new');
             INSERT INTO order_lines VALUES (('00000000-0000-4000-9000-' || lpad('{i}', 12, '0'))::uuid, {i}, {i}, 1);
             COMMIT;"
        )
    });
    let t0 = Instant::now();
    let run = colocate(p, ONLINE);
    let took = t0.elapsed();
    thread::sleep(Duration::from_millis(300));
    let (committed, errors) = app.stop();
    eprintln!(
        "apply --online took {took:?} while {committed} write transactions committed; writer errors: {errors:?}\n{}",
        run.all()
    );
    Written {
        run,
        committed,
        errors,
    }
}

/// The run succeeded without a deadlock on either side, and every committed write is there,
/// once, with its key intact.
fn every_write_there(
    p: &Project,
    w: &Written,
    tables: &[String],
    keys: &std::collections::BTreeSet<common::ForeignKey>,
) {
    let (r, committed) = (&w.run, w.committed);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(
        !r.all().contains("deadlock"),
        "the run met a deadlock: {}",
        r.all()
    );
    assert!(
        w.errors.iter().all(|e| !e.contains("deadlock")),
        "the application met a deadlock: {:?}",
        w.errors
    );
    assert!(committed > 10, "the application kept writing ({committed})");
    assert_eq!(
        p.count("SELECT count(*) FROM tenants WHERE name = 'new'"),
        committed
    );
    assert_eq!(
        p.count("SELECT count(*) FROM orders WHERE note = 'new'"),
        committed
    );
    assert_eq!(
        p.count("SELECT count(*) FROM order_lines WHERE id > 100000"),
        committed
    );
    assert_eq!(p.count("SELECT count(*) FROM orders"), 12_000 + committed);
    assert_eq!(
        p.count("SELECT count(*) FROM order_lines"),
        24_000 + committed
    );
    converged(p, tables, keys);
}

/// A run killed after it distributed `orders` online and while it converted `order_lines`;
/// the application then writes into `orders` (converted already) while the next `--online`
/// run finishes the job. Before, that run counted `orders` before and after and failed
/// verification ("public.orders had N rows before apply and has M").
#[test]
fn citus_two_workers_resumed_online_run_does_not_compare_rows_of_tables_converted_earlier() {
    let Some(p) = linked_project(
        "citus_two_workers_resumed_online_run_does_not_compare_rows_of_tables_converted_earlier",
    ) else {
        return;
    };
    let tables = p.tables_in(&["public"]);
    let keys = p.foreign_keys(&tables);
    let mut child = p
        .process(ONLINE)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(p.root().join("first-run.log")).unwrap())
        .spawn()
        .unwrap();
    let distributed = |t: &str| p.citus_tables().get(t).is_some_and(|c| c.method == "h");
    let t0 = Instant::now();
    // Generous: on a loaded 2-core machine the first conversions alone took over 120 s once.
    while !distributed("public.orders") && t0.elapsed() < Duration::from_secs(300) {
        thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        distributed("public.orders"),
        "the first run distributed orders:\n{}",
        std::fs::read_to_string(p.root().join("first-run.log")).unwrap_or_default()
    );
    // A killed run's working session finishes the statement it was running first.
    let t0 = Instant::now();
    while p.count(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'colocate apply%' \
         AND datname = current_database()",
    ) > 0
    {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the killed run's sessions did not end"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let open = p.journal_open();
    assert!(!open.is_empty(), "the killed run left keys in the journal");

    let app = Application::start(&p, |i| {
        format!("INSERT INTO orders SELECT tenant, {i}, 'new' FROM tenants ORDER BY tenant LIMIT 1")
    });
    let r = colocate(&p, ONLINE);
    let (committed, errors) = app.stop();
    assert_eq!(errors, Vec::<String>::new());
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(
        r.stdout.contains("restored foreign key"),
        "the second run finished what the first left: {open:?}\n{}",
        r.all()
    );
    assert!(committed > 10, "the application kept writing ({committed})");
    assert_eq!(p.count("SELECT count(*) FROM orders"), 12_000 + committed);
    assert_eq!(p.count("SELECT count(*) FROM order_lines"), 24_000);
    converged(&p, &tables, &keys);
}

/// Without `citus` in `output_plugin_libraries` Citus refuses the concurrent form only after
/// it made the table a Citus local table (and apply had dropped its keys). The setting is
/// changed for this test's database alone (`ALTER DATABASE ... SET`, which the logical
/// replication's sender on that database reads too), not for the shared servers. Before,
/// apply failed half way; now it stops before changing anything, naming the setting.
#[test]
fn citus_two_workers_online_without_citus_as_an_output_plugin_changes_nothing() {
    let Some(p) = linked_project(
        "citus_two_workers_online_without_citus_as_an_output_plugin_changes_nothing",
    ) else {
        return;
    };
    let has_setting =
        p.count("SELECT count(*) FROM pg_settings WHERE name = 'output_plugin_libraries'") == 1;
    if !has_setting {
        eprintln!("SKIPPED: this server has no output_plugin_libraries setting");
        return;
    }
    p.db.connect()
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" SET output_plugin_libraries = pgoutput, test_decoding",
            p.db.name().replace('"', "\"\"")
        ))
        .unwrap();
    let tables = p.tables_in(&["public"]);
    let sums = p.checksums(&tables);
    let keys = p.foreign_keys(&tables);

    let r = colocate(&p, ONLINE);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(
        r.error_line().contains("stopped before changing anything")
            && r.error_line().contains("output_plugin_libraries")
            && r.error_line().contains("'pgoutput, test_decoding'"),
        "{}",
        r.all()
    );
    assert!(
        r.hint_line()
            .is_some_and(|h| h.contains("add citus to output_plugin_libraries")),
        "{}",
        r.all()
    );
    assert_eq!(
        p.citus_tables().len(),
        0,
        "nothing converted, no Citus local table"
    );
    assert_eq!(p.foreign_keys(&tables), keys, "no key dropped");
    assert_eq!(p.journal_open(), Vec::<String>::new());
    assert_eq!(p.checksums(&tables), sums);
    let dry = colocate(&p, &[ONLINE, &["--dry-run"]].concat());
    assert_eq!(dry.code, Some(2), "a dry run says so too\n{}", dry.all());
    // Without --online the same server converts as usual.
    colocate(&p, &["apply"]).expect(0);
}
