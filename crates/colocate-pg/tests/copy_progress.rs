//! The copy watch (`colocate_pg::copy_progress`): while `create_distributed_table` copies a
//! table into its shards, it reports rows copied so far that only grow and never exceed the
//! table's rows, on a coordinator with two workers (the copies show on the workers) and on a
//! single node (they show on the coordinator); where nothing is copied it claims nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use colocate_core::schema::QualifiedName;
use colocate_pg::copy_progress::{CopyWatch, Watched};
use colocate_pg::Target;
use colocate_testkit::{skip_without_citus, TestDb};

const ROWS: i64 = 400_000;
const RUN: &str = "colocate test run";

fn fill(c: &mut postgres::Client) {
    c.batch_execute(&format!(
        "CREATE TABLE big (tenant int, id bigint, payload text, PRIMARY KEY (tenant, id));
         INSERT INTO big SELECT g % 1000, g, repeat('x', 100) FROM generate_series(1, {ROWS}) g;
         ANALYZE big;"
    ))
    .unwrap();
}

/// Run `sql` on a session named like a colocate run while the watch samples its count; the
/// samples taken during the statement and the count after it.
fn watched(db: &TestDb, sql: &str) -> (Vec<u64>, Option<u64>, Option<u64>) {
    let target = Target::new(Some(db.url())).unwrap();
    let mut run = target.connect(RUN).unwrap();
    let watch = CopyWatch::start(&target, RUN);
    watch.watch(Watched {
        table: Some(QualifiedName::new("public", "big")),
        replicated: false,
    });
    let running = AtomicBool::new(true);
    let samples = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut seen = Vec::new();
            while running.load(Ordering::Relaxed) {
                if let Some(n) = watch.rows() {
                    seen.push(n);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            seen
        });
        run.batch_execute(sql).unwrap();
        running.store(false, Ordering::Relaxed);
        sampler.join().unwrap()
    });
    let (rows, estimate) = (watch.rows(), watch.estimate());
    watch.idle();
    watch.stop();
    (samples, rows, estimate)
}

fn assert_counts(samples: &[u64], rows: Option<u64>, estimate: Option<u64>) {
    let total = u64::try_from(ROWS).unwrap();
    assert!(!samples.is_empty(), "no count was seen during the copy");
    assert!(
        samples.windows(2).all(|w| w[0] <= w[1]),
        "the count went back: {samples:?}"
    );
    let last = rows.expect("a count after the copy");
    assert!(
        last > 0 && last <= total,
        "{last} rows copied of {total} ({samples:?})"
    );
    // ANALYZE estimates from a sample; close to the truth on a table this regular.
    let est = estimate.expect("an estimate after ANALYZE");
    assert!(
        est.abs_diff(total) < total / 10,
        "estimate {est} for {total} rows"
    );
}

#[test]
fn copies_into_shards_on_two_workers_are_counted() {
    if skip_without_citus("copies_into_shards_on_two_workers_are_counted") {
        return;
    }
    let db = TestDb::new();
    let mut c = db.citus_with_workers();
    fill(&mut c);
    let (samples, rows, estimate) =
        watched(&db, "SELECT create_distributed_table('big', 'tenant')");
    eprintln!("two workers: samples {samples:?}, after {rows:?} of ~{estimate:?}");
    assert_counts(&samples, rows, estimate);
}

#[test]
fn copies_into_shards_on_a_single_node_are_counted() {
    if skip_without_citus("copies_into_shards_on_a_single_node_are_counted") {
        return;
    }
    let db = TestDb::new();
    let mut c = db.citus_single_node();
    fill(&mut c);
    let (samples, rows, estimate) =
        watched(&db, "SELECT create_distributed_table('big', 'tenant')");
    eprintln!("single node: samples {samples:?}, after {rows:?} of ~{estimate:?}");
    assert_counts(&samples, rows, estimate);
}

#[test]
fn nothing_copied_claims_nothing() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute("CREATE TABLE big (id int); ANALYZE big;")
        .unwrap();
    // Rows written without COPY: the server reports no copy, so no count.
    let (samples, rows, estimate) = watched(
        &db,
        "INSERT INTO big SELECT generate_series(1, 200000); SELECT pg_sleep(0.3);",
    );
    assert!(samples.is_empty(), "{samples:?}");
    assert_eq!(rows, None);
    assert_eq!(estimate, None, "an empty, analyzed table has no estimate");
}
