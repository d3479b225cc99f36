//! One session-level advisory lock per history table serialises `migrate`, `rollback` and
//! `baseline`: a second run waits up to its lock timeout, then fails naming the holder.

use std::time::{Duration, Instant};

use postgres::Client;

use crate::error::{ErrorKind, LockHolder, PgError};
use crate::history::HistoryTable;

/// The lock key: FNV-1a over the history table's name, so runs against different history tables
/// in one database do not wait for each other.
pub fn lock_key(history: &HistoryTable) -> i64 {
    named_key(&format!("colocate:{}", history.display()))
}

/// The key `apply`, `undistribute` and declarative migration steps share: one converging run
/// per database at a time.
pub const CONVERGE_LOCK: &str = "colocate:converge";

/// FNV-1a of a lock name.
pub fn named_key(name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

pub struct Lock {
    key: i64,
}

impl Lock {
    /// Take the lock, waiting up to `timeout`. `on_wait` is told once who holds it.
    pub fn acquire(
        c: &mut Client,
        history: &HistoryTable,
        timeout: Duration,
        on_wait: &mut dyn FnMut(&str),
    ) -> Result<Lock, PgError> {
        let what = format!("migration lock on {}", history.display());
        Lock::acquire_key(c, lock_key(history), &what, timeout, on_wait)
    }

    /// Take the converge lock that `apply`, `undistribute` and declarative steps share.
    pub fn converge(
        c: &mut Client,
        timeout: Duration,
        on_wait: &mut dyn FnMut(&str),
    ) -> Result<Lock, PgError> {
        Lock::acquire_key(
            c,
            named_key(CONVERGE_LOCK),
            "converge lock (apply, undistribute, declarative steps)",
            timeout,
            on_wait,
        )
    }

    /// Take the lock with this key (`what` names it in messages).
    pub fn acquire_key(
        c: &mut Client,
        key: i64,
        what: &str,
        timeout: Duration,
        on_wait: &mut dyn FnMut(&str),
    ) -> Result<Lock, PgError> {
        let got: bool = c
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .map_err(|e| PgError::query("take the migration lock", &e))?
            .get(0);
        if got {
            return Ok(Lock { key });
        }
        let started = Instant::now();
        on_wait(&holder(c, key).unwrap_or_else(|| "another session".into()));
        // Let the server wait (it wakes the moment the holder lets go) but no longer than asked.
        let ms = timeout.as_millis().max(1) as i64;
        c.execute(
            "SELECT set_config('lock_timeout', $1, false)",
            &[&format!("{ms}ms")],
        )
        .map_err(|e| PgError::query("set lock_timeout", &e))?;
        let res = c.execute("SELECT pg_advisory_lock($1)", &[&key]);
        let _ = c.batch_execute("RESET lock_timeout");
        match res {
            Ok(_) => Ok(Lock { key }),
            Err(e) if e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
                Err(ErrorKind::LockTimeout {
                    lock: what.to_string(),
                    holder: holder(c, key)
                        .unwrap_or_else(|| "a session that has since let go".into()),
                    waited: started.elapsed(),
                }
                .into())
            }
            Err(e) => Err(PgError::query("take the migration lock", &e)),
        }
    }

    pub fn release(self, c: &mut Client) {
        // The lock also goes with the session; a failed unlock only means it is already gone.
        let _ = c.execute("SELECT pg_advisory_unlock($1)", &[&self.key]);
    }
}

fn holder(c: &mut Client, key: i64) -> Option<String> {
    let hi = (key >> 32) & 0xffff_ffff;
    let lo = key & 0xffff_ffff;
    let row = c
        .query_opt(include_str!("sql/lock_holder.sql"), &[&hi, &lo])
        .ok()??;
    Some(
        LockHolder {
            pid: row.get(0),
            application: row.get(1),
            user: row.get(2),
            client: row.get(3),
            since: row.get(4),
        }
        .to_string(),
    )
}
