//! Rows copied so far by a running step, as far as the servers can tell.
//!
//! PostgreSQL reports every running `COPY` in `pg_stat_progress_copy`, with the rows it has
//! processed so far. What it shows for a Citus conversion was checked on Citus 13.2 with a
//! coordinator and two workers, converting a table of 1,000,000 rows with
//! `create_distributed_table`:
//! - the coordinator's view shows nothing: the session reads the local table and streams the
//!   rows to the shards over connections Citus opens, one per shard (32 at once by default);
//! - each worker's view shows one `COPY FROM` per shard it holds, from a backend whose
//!   application name is `citus_internal gpid=N`, N naming the coordinator session
//!   (node id × 10¹⁰ + pid), its rows growing as the copy goes;
//! - the copies end one by one near the end, and their rows leave the view with them;
//! - on a single node (the coordinator holds the shards) the same copies show in the
//!   coordinator's own view, through connections Citus opens to the node itself.
//!
//! So a [`CopyWatch`] polls, from a connection of its own in a background thread, the
//! coordinator's view and (through `run_command_on_workers`) each worker's, for the copies of
//! this run's sessions and of the Citus connections opened for them, and keeps for every copy
//! the most rows it has seen: their sum is the rows copied so far, never going back when a copy
//! ends. It can fall short of the truth (a copy that starts and ends between two polls is never
//! seen), never beyond it; the rows a shard holds are only visible once the step commits. A
//! reference table is copied whole to every node, so there the count is the largest of any one
//! node. Where nothing is copied (a plain table, a step that copies no rows) nothing is known
//! and nothing is claimed.
//!
//! The watch is best effort: if its connection cannot be made or a poll fails, the run goes on
//! as it would without it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use colocate_core::schema::QualifiedName;
use postgres::Client;

use crate::connect::Target;

/// How often the watch polls while a step runs.
pub const INTERVAL: Duration = Duration::from_millis(250);

const LOCAL_SQL: &str = include_str!("sql/copy_progress_local.sql");
const WORKERS_SQL: &str = include_str!("sql/copy_progress_workers.sql");

/// The sessions of this run: the caller's and those it opens (apply's work sessions, the
/// online waker), whose application names all start with the caller's.
const SESSIONS_SQL: &str = "SELECT pid FROM pg_stat_activity \
     WHERE datname = current_database() AND left(application_name, length($1)) = $1 \
     AND pid <> pg_backend_pid()";

/// Citus's global process id: node id × this + pid.
const GPID_NODE_MULTIPLIER: i64 = 10_000_000_000;

/// No value (the atomics hold `u64`).
const NONE: u64 = u64::MAX;

/// A running watch; [`CopyWatch::stop`] (or dropping it) ends its thread.
pub struct CopyWatch {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// What a step copies: its table (for the estimate of its rows) and whether every node gets
/// every row (a reference table).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watched {
    pub table: Option<QualifiedName>,
    pub replicated: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    rows: AtomicU64,
    estimate: AtomicU64,
}

#[derive(Default)]
struct State {
    stop: bool,
    /// Bumped at each step: the thread starts counting again.
    generation: u64,
    /// `None` between steps: nothing to poll.
    step: Option<Watched>,
}

impl CopyWatch {
    /// Start watching the copies of the sessions whose application name starts with
    /// `application` (the run's own, as given to [`Target::connect`]). The watch connects in
    /// its thread and polls only between [`CopyWatch::watch`] and [`CopyWatch::idle`].
    pub fn start(target: &Target, application: &str) -> CopyWatch {
        let shared = Arc::new(Shared {
            rows: AtomicU64::new(NONE),
            estimate: AtomicU64::new(NONE),
            ..Shared::default()
        });
        let target = target.clone();
        let application = application.to_string();
        let s = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("copy progress".into())
            .spawn(move || run(&s, &target, &application))
            .ok();
        CopyWatch { shared, thread }
    }

    /// A step starts: count its copies from zero.
    pub fn watch(&self, step: Watched) {
        let mut st = self.lock();
        st.generation += 1;
        st.step = Some(step);
        self.shared.rows.store(NONE, Ordering::Relaxed);
        self.shared.estimate.store(NONE, Ordering::Relaxed);
        self.shared.changed.notify_all();
    }

    /// The step ended: stop polling until the next one, and forget its counts (a poll still
    /// under way cannot bring them back).
    pub fn idle(&self) {
        let mut st = self.lock();
        st.generation += 1;
        st.step = None;
        self.shared.rows.store(NONE, Ordering::Relaxed);
        self.shared.estimate.store(NONE, Ordering::Relaxed);
        self.shared.changed.notify_all();
    }

    /// Rows the current step has copied so far, once any copy of it has been seen.
    pub fn rows(&self) -> Option<u64> {
        self.count().rows()
    }

    /// The planner's estimate of the current step's table's rows (`pg_class.reltuples`), when
    /// it has one.
    pub fn estimate(&self) -> Option<u64> {
        self.count().estimate()
    }

    /// A reader of the counts that can be handed to another thread (a progress bar's).
    pub fn count(&self) -> CopyCount {
        CopyCount(Arc::clone(&self.shared))
    }

    /// End the thread (after the poll it may be in, bounded by its statement timeout).
    pub fn stop(mut self) {
        self.end();
    }

    fn end(&mut self) {
        self.lock().stop = true;
        self.shared.changed.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.shared)
    }
}

/// The counts of a [`CopyWatch`], readable from anywhere while it runs.
#[derive(Clone)]
pub struct CopyCount(Arc<Shared>);

impl CopyCount {
    /// See [`CopyWatch::rows`].
    pub fn rows(&self) -> Option<u64> {
        some(self.0.rows.load(Ordering::Relaxed))
    }

    /// See [`CopyWatch::estimate`].
    pub fn estimate(&self) -> Option<u64> {
        some(self.0.estimate.load(Ordering::Relaxed))
    }
}

impl Drop for CopyWatch {
    fn drop(&mut self) {
        self.end();
    }
}

fn some(v: u64) -> Option<u64> {
    (v != NONE).then_some(v)
}

fn run(shared: &Shared, target: &Target, application: &str) {
    let Ok(mut c) = target.connect("colocate progress") else {
        return;
    };
    // A poll must never hold the run up: it waits for no lock and ends quickly.
    if c.batch_execute("SET statement_timeout = '2s'; SET lock_timeout = '200ms'")
        .is_err()
    {
        return;
    }
    let mut poller = Poller::default();
    let mut generation = 0;
    loop {
        let (step, new) = {
            let mut st = lock(shared);
            if st.step.is_some() && st.generation == generation {
                // This step was polled already: wait for the next poll, or for its end.
                st = shared
                    .changed
                    .wait_timeout_while(st, INTERVAL, |s| {
                        !s.stop && s.step.is_some() && s.generation == generation
                    })
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .0;
            }
            st = shared
                .changed
                .wait_while(st, |s| !s.stop && s.step.is_none())
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if st.stop {
                return;
            }
            let Some(step) = st.step.clone() else {
                continue;
            };
            let new = st.generation != generation;
            generation = st.generation;
            (step, new)
        };
        if new {
            poller.seen.clear();
            if let Some(n) = step.table.as_ref().and_then(|t| estimate(&mut c, t)) {
                let st = lock(shared);
                if st.generation == generation {
                    shared.estimate.store(n, Ordering::Relaxed);
                }
            }
        }
        match poller.poll(&mut c, application) {
            Ok(()) => {
                if let Some(n) = poller.rows(step.replicated) {
                    // A step that ended during the poll must not show the rows of the next.
                    let st = lock(shared);
                    if st.generation == generation {
                        shared.rows.store(n, Ordering::Relaxed);
                    }
                }
            }
            // The connection is gone: nothing more can be known.
            Err(_) if c.is_closed() => return,
            Err(_) => {}
        }
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared
        .state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn estimate(c: &mut Client, table: &QualifiedName) -> Option<u64> {
    let row = c
        .query_opt(
            "SELECT c.reltuples::bigint FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&table.schema, &table.name],
        )
        .ok()??;
    // -1: never vacuumed nor analyzed; 0 may mean the same before PostgreSQL 14.
    u64::try_from(row.get::<_, i64>(0)).ok().filter(|n| *n > 0)
}

/// Copies seen during the current step: (node, pid, relation) → the most rows seen.
#[derive(Default)]
struct Poller {
    seen: HashMap<(String, i32, i64), i64>,
    /// This node's Citus node id, once the citus extension is there.
    citus_node: Option<i64>,
}

impl Poller {
    fn poll(&mut self, c: &mut Client, application: &str) -> Result<(), postgres::Error> {
        let pids: Vec<i32> = c
            .query(SESSIONS_SQL, &[&application])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if self.citus_node.is_none() {
            self.citus_node = citus_node(c);
        }
        let internal: Vec<String> = match self.citus_node {
            Some(node) => pids
                .iter()
                .map(|p| {
                    format!(
                        "citus_internal gpid={}",
                        node * GPID_NODE_MULTIPLIER + i64::from(*p)
                    )
                })
                .collect(),
            None => Vec::new(),
        };
        for r in c.query(LOCAL_SQL, &[&pids, &internal])? {
            self.saw("", r.get(0), r.get(1), r.get(2));
        }
        if self.citus_node.is_some() && !internal.is_empty() {
            for r in c.query(WORKERS_SQL, &[&internal])? {
                let node: String = r.get(0);
                let result: String = r.get(1);
                for copy in result.split(',') {
                    let mut f = copy.split(' ').map(str::parse::<i64>);
                    if let (Some(Ok(pid)), Some(Ok(rel)), Some(Ok(n))) =
                        (f.next(), f.next(), f.next())
                    {
                        if let Ok(pid) = i32::try_from(pid) {
                            self.saw(&node, pid, rel, n);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn saw(&mut self, node: &str, pid: i32, rel: i64, rows: i64) {
        let most = self.seen.entry((node.to_string(), pid, rel)).or_insert(0);
        *most = (*most).max(rows);
    }

    /// Rows copied so far, once any copy has been seen: the sum over every copy, or for a
    /// replicated table the most that any one node received.
    fn rows(&self, replicated: bool) -> Option<u64> {
        if self.seen.is_empty() {
            return None;
        }
        let n = if replicated {
            let mut per_node: HashMap<&str, i64> = HashMap::new();
            for ((node, _, _), n) in &self.seen {
                *per_node.entry(node).or_insert(0) += n;
            }
            per_node.into_values().max().unwrap_or(0)
        } else {
            self.seen.values().sum()
        };
        u64::try_from(n).ok()
    }
}

/// This node's Citus node id, from the global pid of the watching session itself.
fn citus_node(c: &mut Client) -> Option<i64> {
    let has_citus = c
        .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'citus'", &[])
        .ok()?
        .is_some();
    if !has_citus {
        return None;
    }
    let gpid: i64 = c.query_one("SELECT citus_backend_gpid()", &[]).ok()?.get(0);
    Some(gpid / GPID_NODE_MULTIPLIER)
}

#[cfg(test)]
mod tests {
    use super::Poller;

    #[test]
    fn rows_keep_what_ended_copies_reached() {
        let mut p = Poller::default();
        assert_eq!(p.rows(false), None, "nothing seen, nothing claimed");
        p.saw("w1", 10, 100, 400);
        p.saw("w2", 11, 200, 300);
        assert_eq!(p.rows(false), Some(700));
        // The next poll: one copy went on, the other ended and left the view.
        p.saw("w1", 10, 100, 900);
        assert_eq!(p.rows(false), Some(1200));
        // A number that went back (a new copy reusing the key) never lowers the count.
        p.saw("w1", 10, 100, 5);
        assert_eq!(p.rows(false), Some(1200));
    }

    #[test]
    fn a_replicated_table_counts_the_fullest_node() {
        let mut p = Poller::default();
        p.saw("", 10, 100, 1000);
        p.saw("w1", 12, 300, 900);
        p.saw("w2", 13, 400, 800);
        assert_eq!(p.rows(true), Some(1000));
        assert_eq!(p.rows(false), Some(2700));
    }
}
