//! Keeping an online conversion apart from every other Citus shard split on the same server.
//!
//! `create_distributed_table_concurrently` is a non-blocking shard split of the table's one
//! coordinator shard. Citus 13.2 keeps what the split's logical decoding needs (which child
//! shard each decoded row goes to) in a dynamic shared memory segment whose handle lives in a
//! single slot per server (`StoreShardSplitSharedMemoryHandle` in
//! `src/backend/distributed/shardsplit/shardsplit_shared_memory.c`, "We only support non
//! concurrent split"), while the lock that keeps splits apart is per database
//! (`AcquireNonblockingSplitLock` in `operations/shard_split.c` locks
//! `SET_LOCKTAG_CITUS_OPERATION`, which holds `MyDatabaseId`). When splits in two databases of
//! one server overlap, the second overwrites the first one's handle; a WAL sender of the first
//! that reads the map after that (`PopulateSourceToDestinationShardMapForSlot`, called once at
//! the first decoded change in `shardsplit_decoder.c`) finds no entry for its slot and drops
//! every change it decodes (`FindTargetRelationOid` returns `InvalidOid`: "not responsible"),
//! and the first split's end releases the second one's segment. The writes the application
//! made during the copy are then silently missing from the new shards; the coordinator logs
//! "Previous split shard worflow was not successfully and could not complete the cleanup
//! phase" when it happens.
//!
//! So before each online conversion the working session waits until no other database on the
//! server has a Citus split under way (its replication slots, `citus_shard_split_slot_...`,
//! are listed server-wide in `pg_replication_slots`) and no other colocate session is
//! converting online, and marks itself as converting (its `application_name`, which every
//! session on the server can read in `pg_stat_activity`) until the conversion ends. Marking
//! before looking, and backing off when anything is seen, means two colocate runs never both
//! go ahead. A split that another tool starts in another database while a conversion runs is
//! not prevented by this; see docs/cli.md.

use std::time::{Duration, Instant};

use postgres::Client;

use crate::error::Cause;

/// The `application_name` of a session converting a table online.
const MARK: &str = "colocate apply (online conversion)";

/// How long to wait for other splits on the server before giving up.
const PATIENCE: Duration = Duration::from_secs(900);

/// The working session, marked as converting online; [`Claim::release`] gives its name back.
pub(crate) struct Claim {
    previous: String,
}

impl Claim {
    /// Wait until this session may run a non-blocking split alone on the server, then mark it.
    pub(crate) fn take(c: &mut Client) -> Result<Claim, Cause> {
        let previous: String = c
            .query_one("SELECT current_setting('application_name')", &[])
            .map_err(|e| Cause::from_postgres(&e))?
            .get(0);
        let started = Instant::now();
        let mut attempt: u64 = 0;
        loop {
            set_name(c, MARK)?;
            let busy = others(c)?;
            if busy.is_empty() {
                return Ok(Claim { previous });
            }
            set_name(c, &previous)?;
            if started.elapsed() > PATIENCE {
                return Err(Cause::client(format!(
                    "waited {} s for other Citus shard splits on this server to end before converting online, and they still run: {}; Citus 13.2 loses writes when two databases of one server split shards at the same time (if nothing runs there any more, CALL citus_cleanup_orphaned_resources() in that database removes what it left)",
                    PATIENCE.as_secs(),
                    busy.join(", ")
                )));
            }
            attempt += 1;
            // Two runs that marked themselves at once both back off: wait a different time.
            let pid = u64::from(std::process::id());
            std::thread::sleep(Duration::from_millis(
                200 + (pid * 7919 + attempt * 131) % 300,
            ));
        }
    }

    /// Give the session its name back (a failure only leaves the mark until the session ends).
    pub(crate) fn release(self, c: &mut Client) {
        let _ = set_name(c, &self.previous);
    }
}

fn set_name(c: &mut Client, name: &str) -> Result<(), Cause> {
    c.execute("SELECT set_config('application_name', $1, false)", &[&name])
        .map(|_| ())
        .map_err(|e| Cause::from_postgres(&e))
}

/// What else splits on this server now: other colocate sessions converting online, and Citus
/// split replication slots of other databases, described.
fn others(c: &mut Client) -> Result<Vec<String>, Cause> {
    c.query(
        "SELECT format('colocate converting online in database %s (pid %s)', datname, pid) \
         FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid() \
         UNION ALL \
         SELECT format('replication slot %s of database %s', slot_name, database) \
         FROM pg_replication_slots \
         WHERE slot_name LIKE 'citus\\_shard\\_split\\_%' AND database IS DISTINCT FROM current_database() \
         ORDER BY 1",
        &[&MARK],
    )
    .map(|rows| rows.iter().map(|r| r.get(0)).collect())
    .map_err(|e| Cause::from_postgres(&e))
}
