//! What a Citus cluster looks like from the coordinator: whether Citus is created in this
//! database, colocation groups and where a tenant's rows live (shard and node), for `demo` and
//! for people reading it.

use std::sync::atomic::{AtomicUsize, Ordering};

use colocate_core::schema::QualifiedName;
use postgres::Client;
use serde::Serialize;

use crate::error::PgError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColocationGroup {
    pub colocation_id: i32,
    pub shard_count: i32,
    pub tables: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placement {
    pub tenant: String,
    pub shard: i64,
    pub node: String,
}

/// Every colocation group with its tables (reference tables form a group of their own).
pub fn colocation_groups(c: &mut Client) -> Result<Vec<ColocationGroup>, PgError> {
    let rows = c
        .query(
            "SELECT p.colocationid, coalesce(g.shardcount, 0), \
                    array_agg(p.logicalrelid::regclass::text ORDER BY p.logicalrelid::regclass::text) \
             FROM pg_dist_partition p LEFT JOIN pg_dist_colocation g USING (colocationid) \
             GROUP BY 1, 2 ORDER BY 1",
            &[],
        )
        .map_err(|e| PgError::query("read colocation groups", &e))?;
    Ok(rows
        .iter()
        .map(|r| ColocationGroup {
            colocation_id: r.get(0),
            shard_count: r.get(1),
            tables: r.get(2),
        })
        .collect())
}

/// Shard and node of the first `limit` tenants of `table` (distributed by `column`).
pub fn tenant_placements(
    c: &mut Client,
    table: &QualifiedName,
    column: &str,
    limit: i64,
) -> Result<Vec<Placement>, PgError> {
    let col = postgres_protocol::escape::escape_identifier(column);
    let sql = format!(
        "SELECT t.v::text, s.shardid, n.nodename || ':' || n.nodeport \
         FROM (SELECT DISTINCT {col} AS v FROM {tbl} ORDER BY 1 LIMIT $1) t \
         CROSS JOIN LATERAL (SELECT get_shard_id_for_distribution_column($2::text::regclass, t.v) AS shardid) s \
         JOIN pg_dist_placement p ON p.shardid = s.shardid \
         JOIN pg_dist_node n ON n.groupid = p.groupid \
         ORDER BY 1",
        tbl = table.sql()
    );
    let rows = c
        .query(&sql, &[&limit, &table.sql()])
        .map_err(|e| PgError::query(format!("locate the tenants of {table}"), &e))?;
    Ok(rows
        .iter()
        .map(|r| Placement {
            tenant: r.get(0),
            shard: r.get(1),
            node: r.get(2),
        })
        .collect())
}

/// Whether the citus extension is created in this database (so its catalogs can be read).
pub(crate) fn citus_installed(c: &mut Client) -> Result<bool, PgError> {
    c.query_one(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')",
        &[],
    )
    .map(|r| r.get(0))
    .map_err(|e| PgError::query("look up the citus extension", &e))
}

/// Settle what an interrupted run may have left on the cluster before planning from it: shards
/// and resources Citus marked for cleanup, and two-phase commits a lost connection left
/// prepared on a worker. Those hold locks on their shards until Citus's maintenance daemon
/// resolves them (`citus.recover_2pc_interval`, a minute by default), so a re-run after a
/// connection fault would otherwise wait for it. Recovery needs a superuser; without one the
/// run goes on and the daemon does it.
pub(crate) fn settle(c: &mut Client) -> Result<(), PgError> {
    if !citus_installed(c)? {
        return Ok(());
    }
    c.batch_execute("CALL citus_cleanup_orphaned_resources()")
        .map_err(|e| PgError::query("clean up Citus's orphaned resources", &e))?;
    match c.query_one("SELECT recover_prepared_transactions()", &[]) {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) => Ok(()),
        Err(e) => Err(PgError::query(
            "recover two-phase commits left prepared on the workers",
            &e,
        )),
    }
}

/// How many times, in this process, Citus warned that the second phase of a commit did not
/// reach a worker (`failed to commit transaction on host:port`). The statement still succeeds:
/// the coordinator has committed, and the worker keeps a prepared transaction, holding its
/// shards' locks, until recovery. Counted by the notice callback every connection gets.
static LOST_COMMITS: AtomicUsize = AtomicUsize::new(0);

/// Count a server notice if it is Citus's lost-commit warning.
pub(crate) fn observe_notice(message: &str) {
    if message.starts_with("failed to commit transaction on") {
        LOST_COMMITS.fetch_add(1, Ordering::SeqCst);
    }
}

/// Whether a lost commit was reported since `seen`, which is brought up to date.
pub(crate) fn lost_commits_since(seen: &mut usize) -> bool {
    let now = LOST_COMMITS.load(Ordering::SeqCst);
    std::mem::replace(seen, now) != now
}
