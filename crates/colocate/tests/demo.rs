//! `colocate demo` end to end: its own throwaway server, the example application's chain,
//! sample data, topology and check; nothing left running afterwards.

mod common;

use common::{command, run};

fn demo(args: &[&str]) -> common::Run {
    let mut c = command();
    c.arg("demo")
        .args(args)
        .timeout(std::time::Duration::from_secs(300));
    run(c)
}

fn assert_finished(r: &common::Run) {
    assert!(r.stdout.contains("26 applied, 0 pending"), "{}", r.all());
    assert!(
        r.stdout.contains("loaded sample data for three tenants"),
        "{}",
        r.all()
    );
    assert!(r.stderr.contains("demo finished in"), "{}", r.all());
}

#[test]
fn demo_runs_the_example_on_whatever_the_machine_has() {
    let r = demo(&[]).expect(0);
    assert_finished(&r);
    if r.stderr.contains("citus is installed") {
        assert!(r.stdout.contains("COLOCATION GROUPS"), "{}", r.stdout);
        assert!(r.stdout.contains("converged: all"), "{}", r.stdout);
    } else {
        assert!(r.stderr.contains("plain PostgreSQL"), "{}", r.stderr);
        assert!(
            r.stdout.contains("citus is not installed in this database"),
            "{}",
            r.stdout
        );
    }
}

#[test]
fn citus_two_workers_demo_spreads_the_colocated_tables() {
    if colocate_testkit::skip_without_citus("citus_two_workers_demo_spreads_the_colocated_tables") {
        return;
    }
    let r = demo(&["--workers", "2"]).expect(0);
    assert_finished(&r);
    assert!(r.stderr.contains("with 2 workers"), "{}", r.stderr);
    assert!(r.stdout.contains("reference   5 tables"), "{}", r.stdout);
    assert!(r.stdout.contains("32 shards"), "{}", r.stdout);
    let placements: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.contains("  shard "))
        .collect();
    assert_eq!(placements.len(), 3, "{}", r.stdout);
    // Rows on every worker (before, all three sample tenants landed on one).
    let nodes: std::collections::BTreeSet<&str> = placements
        .iter()
        .filter_map(|l| l.rsplit_once(" on ").map(|(_, n)| n))
        .collect();
    assert_eq!(nodes.len(), 2, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("the sample tenants' rows are spread over 2 of the 2 workers"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("converged: all"), "{}", r.stdout);
}

#[test]
fn demo_keep_prints_the_url_and_working_stop_commands() {
    let r = demo(&["--keep"]).expect(0);
    let url = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("the servers keep running: "))
        .expect("url printed")
        .to_string();
    let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("kept server answers");
    let n: i64 = c
        .query_one("SELECT count(*) FROM colocate_migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 26);
    drop(c);
    let remove = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("then remove their data: "))
        .expect("the data's removal printed")
        .to_string();
    let data = std::path::PathBuf::from(remove.strip_prefix("rm -rf ").unwrap());
    assert!(data.is_dir());
    for cmd in r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("stop with: "))
        .chain([remove.as_str()])
    {
        let ok = std::process::Command::new("sh")
            .args(["-c", cmd])
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "{cmd}");
    }
    assert!(
        postgres::Client::connect(&url, postgres::NoTls).is_err(),
        "stopped"
    );
    // Nothing is left in the temporary directory (before: 239 MB after every run).
    assert!(!data.exists(), "{} is left behind", data.display());
}

/// A demo killed part way leaves its directory; the next demo removes it, since its process
/// is gone and none of its servers runs.
#[test]
fn a_killed_demo_s_directory_is_removed_by_the_next_demo() {
    let stale = std::env::temp_dir().join("colocate-demo-999999999-1");
    std::fs::create_dir_all(stale.join("coordinator")).unwrap();
    std::fs::write(stale.join("coordinator/postmaster.pid"), "999999998\n").unwrap();
    demo(&[]).expect(0);
    assert!(!stale.exists(), "{} is left behind", stale.display());
}
