//! The online waker (`colocate_pg::wake`): it notifies a session busy in a statement, and it
//! leaves that session as it found it, listening on nothing with nothing queued.

use colocate_pg::wake::Waker;
use colocate_pg::Target;
use colocate_testkit::TestDb;

fn listening(c: &mut colocate_pg::Client) -> Vec<String> {
    c.query("SELECT pg_listening_channels()", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn waker_notifies_a_busy_session_and_leaves_it_as_it_was() {
    let db = TestDb::new();
    let target = Target::new(Some(db.url())).unwrap();
    let mut c = target.connect("colocate test").unwrap();
    let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);

    let waker = Waker::start(&mut c, &target).expect("the waker starts");
    assert_eq!(listening(&mut c), vec![format!("colocate_wake_{pid}")]);
    // A statement that keeps the session busy, as an online conversion does: the
    // notifications reach it all the same (they set its latch; the messages arrive after).
    c.batch_execute("SELECT pg_sleep(0.4)").unwrap();
    let w = waker.stop(&mut c);
    assert!(w.sent >= 3, "only {} wake-ups in 0.4 s", w.sent);
    assert!(
        w.received >= 1 && w.received <= w.sent,
        "the busy session received {} of {} notifications",
        w.received,
        w.sent
    );

    assert!(listening(&mut c).is_empty(), "still listening after stop");
    assert_eq!(
        c.notifications().len(),
        0,
        "notifications left for the caller"
    );
    // The notifier's connection ends with the waker (its backend may take a moment to exit).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let notifiers: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE application_name = 'colocate apply (online waker)' \
                 AND datname = current_database()",
                &[],
            )
            .unwrap()
            .get(0);
        if notifiers == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the waker's connection outlived it"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn waker_that_cannot_connect_leaves_the_session_untouched() {
    let db = TestDb::new();
    let target = Target::new(Some(db.url())).unwrap();
    let mut c = target.connect("colocate test").unwrap();
    // A database that does not exist: the second connection fails.
    let nowhere = Target::new(Some(&colocate_testkit::with_database(
        db.url(),
        "colocate_no_such_database",
    )))
    .unwrap();
    assert!(Waker::start(&mut c, &nowhere).is_none());
    assert!(listening(&mut c).is_empty(), "listening without a waker");
}
