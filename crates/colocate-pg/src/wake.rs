//! Shortening the write stall of `create_distributed_table_concurrently`.
//!
//! Citus 13.2 ends an online conversion by blocking writes to the table, then waiting for the
//! logical-replication subscriptions on the workers to reach the source's WAL position
//! (`WaitForGroupedLogicalRepTargetsToCatchUp`). It checks once, and when they have not caught
//! up yet it sleeps on the backend's latch for a whole second before checking again; catching
//! up usually takes a few milliseconds, so writes often wait that second for nothing.
//!
//! The sleep ends early when the backend's latch is set. A committed `NOTIFY` sets the latch of
//! every backend listening on its channel, even one busy in a statement (the notification
//! itself waits until the statement ends). So before an online step the apply session listens
//! on a channel of its own, and a second connection notifies that channel every
//! [`INTERVAL`] until the step ends: each wake-up makes Citus look again, so writes resume
//! within about one interval of the workers catching up. A wake-up that comes during any other
//! wait is harmless: PostgreSQL and Citus treat latch wake-ups as possibly spurious and simply
//! look again. The waker is best effort: if its connection cannot be made, the step runs as
//! it would without it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::Client;
use postgres_protocol::escape::escape_identifier;

use crate::connect::Target;

/// How often the waker notifies: the longest that writes stay blocked after the workers have
/// caught up.
pub const INTERVAL: Duration = Duration::from_millis(20);

/// What a waker did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wakeups {
    /// Notifications sent.
    pub sent: u64,
    /// Notifications that reached the session (those sent while it was busy arrive when the
    /// statement ends; any sent after it ended and before it stopped listening are dropped).
    pub received: u64,
}

/// A running waker; [`Waker::stop`] ends it and stops listening.
pub struct Waker {
    channel: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Waker {
    /// Listen on a channel named after this session and start notifying it from a second
    /// connection. `None` (and the session left as it was) when either part fails.
    pub fn start(c: &mut Client, target: &Target) -> Option<Waker> {
        let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).ok()?.get(0);
        let channel = format!("colocate_wake_{pid}");
        let mut notifier = target.connect("colocate apply (online waker)").ok()?;
        c.batch_execute(&format!("LISTEN {}", escape_identifier(&channel)))
            .ok()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let ch = channel.clone();
        let thread = thread::spawn(move || {
            let mut sent = 0u64;
            while !flag.load(Ordering::Relaxed) {
                thread::sleep(INTERVAL);
                if notifier
                    .execute("SELECT pg_notify($1, '')", &[&ch])
                    .is_err()
                {
                    break;
                }
                sent += 1;
            }
            sent
        });
        Some(Waker {
            channel,
            stop,
            thread: Some(thread),
        })
    }

    /// Stop notifying, stop listening and discard the notifications that reached this session.
    pub fn stop(mut self, c: &mut Client) -> Wakeups {
        self.stop.store(true, Ordering::Relaxed);
        let sent = self.thread.take().and_then(|t| t.join().ok()).unwrap_or(0);
        // Failing to unlisten leaves a harmless listener that ends with the session.
        let _ = c.batch_execute(&format!("UNLISTEN {}", escape_identifier(&self.channel)));
        let mut received = 0;
        let mut queued = c.notifications();
        let mut pending = queued.iter();
        while let Ok(Some(_)) = pending.next() {
            received += 1;
        }
        Wakeups { sent, received }
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        // A step that failed: the thread still ends; the listener ends with the session.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
