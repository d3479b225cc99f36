//! Planner benchmarks against the real test cluster (`scripts/pg-test-cluster start`), without a
//! benchmark framework: every figure is printed with what it measures.
//!
//! For multi-tenant schemas of 500, 2,000 and 10,000 tables, each in a fresh database:
//! introspection (`introspect_with_stats`) and planning (`plan` with the default configuration:
//! root `tenants`, columns `tenant`, `tenant_id`) are timed SEPARATELY, median of 5 each, with
//! the query count, the time per table and the growth against the smallest size (linear growth
//! is 4x at 2,000 and 20x at 10,000). Target: 2,000 tables introspected and planned in under 1 s.
//!
//! The generated schema (deterministic, from a fixed seed) over `public`, `app` and `billing`:
//! a `tenants (tenant uuid primary key)` root; 85% tenant tables `t_<n>` keyed by
//! `(tenant, id)`, half of them with a foreign key `(tenant, parent_id)` to an earlier tenant
//! table, a third with a foreign key to a lookup table, a tenth with a unique index that includes
//! the tenant, and 5% with a blocker (a primary key without the tenant, or a trigger); 5%
//! `tid_<n>` tables keyed by `tenant_id`; 5% tenant-less lookup tables `l_<n>`; 5% tenant-less
//! local tables `loc_<n>`. The DDL is sent in chunks of 200 tables, one transaction (one round
//! trip) each, to stay well inside `max_locks_per_transaction` (1024 on the test cluster). The
//! plan is checked against what was generated (roles, blocker counts), so a fast wrong answer
//! cannot pass.
//!
//! Introspection is timed on a fresh connection per run, as the CLI does (its backend starts
//! with cold catalog caches; connecting is not counted), and, for context, on one warm
//! connection. Before timing, the catalogs are vacuumed and analysed, as autovacuum would have
//! done on a real database, and a checkpoint writes out the generation's dirty buffers.
//!
//! `cargo bench -p colocate-pg --bench planner` runs the full sizes (about a minute on two cores,
//! most of it creating the 10,000 tables: the server slows down per table as the catalog grows,
//! which the first and last chunk times show). Without `--bench` (e.g. `cargo test --all-targets`) it runs a
//! small smoke pass. With `COLOCATE_BENCH_KEEP=DIR` the summary also goes to
//! `DIR/planner-summary.txt` (`scripts/bench` prints it with its other figures).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use colocate_core::distribution::DistributionConfig;
use colocate_core::plan::{plan, Code, Plan, Role};
use colocate_core::schema::Schema;
use colocate_pg::introspect::introspect_with_stats;
use colocate_pg::Client;
use colocate_testkit::TestDb;

const SCHEMAS: [&str; 3] = ["public", "app", "billing"];
/// Tables per DDL transaction.
const CHUNK: usize = 200;
const TARGET_TABLES: usize = 2_000;
const TARGET_MS: f64 = 1_000.0;
/// Catalogs the generation grows and introspection reads: vacuumed and analysed before timing.
const CATALOGS: &str = "pg_catalog.pg_class, pg_catalog.pg_attribute, pg_catalog.pg_type, \
     pg_catalog.pg_constraint, pg_catalog.pg_index, pg_catalog.pg_trigger, pg_catalog.pg_depend, \
     pg_catalog.pg_inherits, pg_catalog.pg_namespace";

struct Sizes {
    /// Total tables of each generated schema (the root included); the first is the baseline.
    tables: &'static [usize],
    /// Repetitions of every timed step.
    runs: usize,
}

const FULL: Sizes = Sizes {
    tables: &[500, 2_000, 10_000],
    runs: 5,
};

const SMOKE: Sizes = Sizes {
    tables: &[60, 240],
    runs: 1,
};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full { FULL } else { SMOKE };
    let keep = std::env::var_os("COLOCATE_BENCH_KEEP").map(PathBuf::from);
    if !full {
        println!("smoke pass with small sizes (`cargo bench -p colocate-pg --bench planner` for real figures)");
    }
    let started = Instant::now();
    let mut summary = String::new();
    if let Ok(load) = fs::read_to_string("/proc/loadavg") {
        // Other work on the machine shows up in every figure; say how busy it was.
        let _ = writeln!(
            summary,
            "load average at start:                   {}",
            load.trim()
        );
    }
    let results: Vec<Measured> = sizes
        .tables
        .iter()
        .map(|&n| measure(n, sizes.runs))
        .collect();
    report(&results, &mut summary);
    println!();
    println!(
        "== summary ({:.1} s in all) ==",
        started.elapsed().as_secs_f64()
    );
    print!("{summary}");
    if let Some(dir) = &keep {
        fs::create_dir_all(dir).expect("create COLOCATE_BENCH_KEEP directory");
        fs::write(dir.join("planner-summary.txt"), &summary).expect("write planner-summary.txt");
    }
}

// ---------------------------------------------------------------------------------------------
// Measuring one size

struct Measured {
    tables: usize,
    generate: Duration,
    /// Time of each DDL transaction, in order: shows whether creating a table slows down as
    /// the catalog grows.
    chunks: Vec<Duration>,
    settle: Duration,
    queries: usize,
    /// Introspection on a fresh connection per run (connecting not counted).
    introspect: Vec<Duration>,
    /// Introspection repeated on one warm connection.
    introspect_warm: Vec<Duration>,
    planning: Vec<Duration>,
}

fn measure(n: usize, runs: usize) -> Measured {
    println!();
    println!("== {n} tables ==");
    let g = generate(n);
    println!(
        "schema: {} tenant tables ({} with a parent foreign key, {} with a lookup foreign key, \
         {} with a unique index, {} primary keys without the tenant, {} with a trigger), \
         {} tenant_id tables, {} lookup tables ({} referenced), {} local tables; \
         longest parent chain {} tables",
        g.tenant,
        g.parent_fks,
        g.lookup_fks,
        g.unique_indexes,
        g.pk_blockers,
        g.trigger_blockers,
        g.tenant_id,
        g.lookup,
        g.referenced_lookups,
        g.local,
        g.depth
    );

    let db = TestDb::new();
    let mut client = db.connect();
    let mut chunks = Vec::with_capacity(g.chunks.len());
    for chunk in &g.chunks {
        let t = Instant::now();
        client.batch_execute(chunk).expect("create the schema");
        chunks.push(t.elapsed());
    }
    let generate: Duration = chunks.iter().sum();
    println!(
        "generate:                                {} ({} transactions of up to {CHUNK} tables, \
         {} per table; first chunk {}, last {})",
        secs(generate),
        g.chunks.len(),
        ms(generate / n as u32),
        ms(chunks[0]),
        ms(chunks[chunks.len() - 1])
    );
    assert_eq!(count_tables(&mut client), n as i64, "every table created");

    let t = Instant::now();
    settle(&mut client);
    let settle_time = t.elapsed();
    println!(
        "settle (VACUUM ANALYZE catalogs, CHECKPOINT): {}",
        ms(settle_time)
    );
    drop(client);

    let config = DistributionConfig::default();
    let filter = config.schema_filter();

    // Fresh connection per run, as the CLI does.
    let mut introspect = Vec::new();
    let mut queries = 0;
    let mut schema = Schema::default();
    for _ in 0..runs {
        let mut c = db.connect();
        let (s, stats) = introspect_with_stats(&mut c, &filter).expect("introspect");
        introspect.push(stats.elapsed);
        queries = stats.queries;
        schema = s;
    }
    assert_eq!(schema.tables.len(), n, "every table introspected");
    row("introspect, fresh connection each:", &introspect);
    println!(
        "  {queries} queries; {} per table",
        us(median(&introspect) / n as u32)
    );

    // One warm connection, for context: the server's catalog caches are filled.
    let mut introspect_warm = Vec::new();
    let mut c = db.connect();
    introspect_with_stats(&mut c, &filter).expect("warm-up introspection");
    for _ in 0..runs {
        let (_, stats) = introspect_with_stats(&mut c, &filter).expect("introspect");
        introspect_warm.push(stats.elapsed);
    }
    drop(c);
    row("introspect, warm connection:", &introspect_warm);

    let mut planning = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let p = plan(&schema, &config);
        planning.push(t.elapsed());
        last = Some(p);
    }
    let p = last.expect("at least one run");
    row("plan:", &planning);
    println!(
        "  {} per table; {} tables, {} findings, {} steps",
        us(median(&planning) / n as u32),
        p.tables.len(),
        p.findings.len(),
        p.steps.len()
    );
    check_plan(&p, &g);

    let d = Instant::now();
    drop(db);
    println!(
        "drop database:                           {}",
        ms(d.elapsed())
    );
    Measured {
        tables: n,
        generate,
        chunks,
        settle: settle_time,
        queries,
        introspect,
        introspect_warm,
        planning,
    }
}

/// The planner must have seen what was generated: roles and blockers by count.
fn check_plan(p: &Plan, g: &Generated) {
    let mut roles: BTreeMap<Role, usize> = BTreeMap::new();
    for t in &p.tables {
        *roles.entry(t.role).or_default() += 1;
    }
    let role = |r: Role| roles.get(&r).copied().unwrap_or(0);
    let code = |c: Code| p.findings.iter().filter(|f| f.code == c).count();
    let expect = [
        ("root", role(Role::Root), 1),
        (
            "distributed",
            role(Role::Distributed),
            g.tenant + g.tenant_id,
        ),
        ("reference", role(Role::Reference), g.referenced_lookups),
        (
            "local",
            role(Role::Local),
            g.local + g.lookup - g.referenced_lookups,
        ),
        ("has-triggers", code(Code::HasTriggers), g.trigger_blockers),
        (
            "key-missing-distribution-column",
            code(Code::KeyMissingDistributionColumn),
            g.pk_blockers,
        ),
        // Every tenant table keys tenants, so once one is blocked the integrity closure holds
        // tenants back (referenced-by-blocked-table) and every other tenant table waits:
        // through a key (references-blocked-table, or referenced-by-blocked-table for the parent
        // of a blocked table) or, with no key to what waits, for the root it is colocated with
        // (colocated-with-blocked-root). One finding per waiting table.
        (
            "references-blocked-table + referenced-by-blocked-table + colocated-with-blocked-root",
            code(Code::ReferencesBlockedTable)
                + code(Code::ReferencedByBlockedTable)
                + code(Code::ColocatedWithBlockedRoot),
            g.waiting(),
        ),
        ("findings", p.findings.len(), g.findings()),
    ];
    let mut line = String::from("  plan as generated:");
    for (what, got, want) in expect {
        assert_eq!(got, want, "plan: {what}");
        let _ = write!(line, " {what} {got}");
    }
    println!("{line}");
    assert_eq!(p.root.as_ref().map(|r| r.name.as_str()), Some("tenants"));
}

fn settle(client: &mut Client) {
    client
        .batch_execute(&format!("VACUUM ANALYZE {CATALOGS}"))
        .expect("vacuum catalogs");
    client.batch_execute("CHECKPOINT").expect("checkpoint");
    // Best effort: without `sync` the figures are only noisier.
    let _ = std::process::Command::new("sync").status();
}

fn count_tables(client: &mut Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname IN ('public', 'app', 'billing')",
            &[],
        )
        .expect("count tables")
        .get(0)
}

// ---------------------------------------------------------------------------------------------
// Summary

fn report(results: &[Measured], summary: &mut String) {
    let Some(base) = results.first() else { return };
    let m = |v: &[Duration]| median(v).as_secs_f64() * 1000.0;
    // Microseconds per table, over all tables and over those added since the previous size
    // (which leaves out fixed costs such as round trips).
    let per = |t: f64, n: usize| t * 1000.0 / n as f64;
    let marginal = |t: f64, n: usize, prev: Option<(f64, usize)>| match prev {
        Some((pt, pn)) => format!("{:.1}", (t - pt) * 1000.0 / (n - pn) as f64),
        None => "-".to_string(),
    };
    let runs = base.introspect.len();
    let mut lines = vec![
        format!(
            "planner: default config (root tenants; columns tenant, tenant_id), medians of {runs}; growth = time(n) / time({}), linear = n / {}",
            base.tables, base.tables
        ),
        "  introspection (introspect_with_stats, fresh connection per run, connect not counted):"
            .to_string(),
        format!(
            "  {:>6} {:>7} | {:>9} {:>7} {:>8} {:>8} {:>6} | {:>9}",
            "tables", "linear", "median ms", "queries", "µs/table", "marginal", "growth", "warm ms"
        ),
    ];
    let mut prev = None;
    for r in results {
        let t = m(&r.introspect);
        lines.push(format!(
            "  {:>6} {:>6.1}x | {:>9.1} {:>7} {:>8.1} {:>8} {:>5.1}x | {:>9.1}",
            r.tables,
            r.tables as f64 / base.tables as f64,
            t,
            r.queries,
            per(t, r.tables),
            marginal(t, r.tables, prev),
            t / m(&base.introspect),
            m(&r.introspect_warm)
        ));
        prev = Some((t, r.tables));
    }
    lines.push("  planning (plan, pure, no I/O):".to_string());
    lines.push(format!(
        "  {:>6} {:>7} | {:>9} {:>8} {:>8} {:>6}",
        "tables", "linear", "median ms", "µs/table", "marginal", "growth"
    ));
    let mut prev = None;
    for r in results {
        let t = m(&r.planning);
        lines.push(format!(
            "  {:>6} {:>6.1}x | {:>9.1} {:>8.1} {:>8} {:>5.1}x",
            r.tables,
            r.tables as f64 / base.tables as f64,
            t,
            per(t, r.tables),
            marginal(t, r.tables, prev),
            t / m(&base.planning)
        ));
        prev = Some((t, r.tables));
    }
    lines.push(
        "  introspection + planning, and schema generation (not part of the target):".to_string(),
    );
    lines.push(format!(
        "  {:>6} {:>7} | {:>9} {:>6} | {:>10} {:>8} {:>11} {:>10}",
        "tables",
        "linear",
        "total ms",
        "growth",
        "generate s",
        "ms/table",
        "first chunk",
        "last chunk"
    ));
    let base_total = m(&base.introspect) + m(&base.planning);
    for r in results {
        let total = m(&r.introspect) + m(&r.planning);
        lines.push(format!(
            "  {:>6} {:>6.1}x | {:>9.1} {:>5.1}x | {:>10.1} {:>8.2} {:>8.1} ms {:>7.1} ms",
            r.tables,
            r.tables as f64 / base.tables as f64,
            total,
            total / base_total,
            r.generate.as_secs_f64(),
            r.generate.as_secs_f64() * 1000.0 / r.tables as f64,
            r.chunks[0].as_secs_f64() * 1000.0,
            r.chunks[r.chunks.len() - 1].as_secs_f64() * 1000.0
        ));
    }
    for r in results {
        lines.push(format!(
            "  {} tables, every run (ms): introspect {}; warm {}; plan {}; settle {:.1} s",
            r.tables,
            list_ms(&r.introspect),
            list_ms(&r.introspect_warm),
            list_ms(&r.planning),
            r.settle.as_secs_f64()
        ));
    }
    if let Some(r) = results.iter().find(|r| r.tables == TARGET_TABLES) {
        let total = m(&r.introspect) + m(&r.planning);
        lines.push(format!(
            "planner {}: introspect {:.1} ms + plan {:.1} ms = {:.1} ms  target < {TARGET_MS} ms: {}",
            r.tables,
            m(&r.introspect),
            m(&r.planning),
            total,
            if total < TARGET_MS { "PASS" } else { "FAIL" }
        ));
    }
    println!();
    for l in lines {
        println!("{l}");
        let _ = writeln!(summary, "{l}");
    }
}

// ---------------------------------------------------------------------------------------------
// Schema generation

/// A generated schema: its DDL, one transaction per chunk, and what the plan must find in it.
#[derive(Default)]
struct Generated {
    chunks: Vec<String>,
    tenant: usize,
    tenant_id: usize,
    lookup: usize,
    local: usize,
    parent_fks: usize,
    lookup_fks: usize,
    unique_indexes: usize,
    pk_blockers: usize,
    trigger_blockers: usize,
    /// Lookup tables some tenant table references: they become reference tables.
    referenced_lookups: usize,

    /// The longest chain of parent foreign keys, in tables.
    depth: usize,
}

impl Generated {
    /// The root and the distributed tables without a blocker of their own, all waiting for
    /// the blocked ones when there are any (see `check_plan`).
    fn waiting(&self) -> usize {
        let own = self.pk_blockers + self.trigger_blockers;
        if own == 0 {
            return 0;
        }
        1 + self.tenant + self.tenant_id - own
    }

    fn findings(&self) -> usize {
        self.pk_blockers + self.trigger_blockers + self.waiting()
    }
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

    fn schema(&mut self) -> &'static str {
        SCHEMAS[self.below(SCHEMAS.len())]
    }
}

/// `n` tables in all: the root, then 5% each of lookup, `tenant_id` and local tables, and the
/// rest tenant tables. Lookups come first so tenant tables can reference them.
fn generate(n: usize) -> Generated {
    assert!(n >= 20, "too few tables for every kind");
    let mut rng = Rng(0x636f_6c6f_6361_7465);
    let others = n - 1;
    let mut g = Generated {
        lookup: others * 5 / 100,
        tenant_id: others * 5 / 100,
        local: others * 5 / 100,
        ..Generated::default()
    };
    g.tenant = others - g.lookup - g.tenant_id - g.local;

    // Each piece creates one table (with its index or trigger); chunks group CHUNK pieces.
    let mut pieces: Vec<String> = Vec::with_capacity(n);
    pieces.push(
        "CREATE SCHEMA app;\n\
         CREATE SCHEMA billing;\n\
         CREATE FUNCTION public.bench_touch() RETURNS trigger LANGUAGE plpgsql AS \
         $$BEGIN NEW.created_at := now(); RETURN NEW; END$$;\n\
         CREATE TABLE public.tenants (tenant uuid PRIMARY KEY);\n"
            .to_string(),
    );

    let mut lookups = Vec::with_capacity(g.lookup);
    for k in 1..=g.lookup {
        let q = format!("{}.l_{k}", rng.schema());
        pieces.push(format!(
            "CREATE TABLE {q} (id int PRIMARY KEY, name text NOT NULL);\n"
        ));
        lookups.push(q);
    }
    for k in 1..=g.tenant_id {
        pieces.push(format!(
            "CREATE TABLE {}.tid_{k} (tenant_id uuid NOT NULL REFERENCES public.tenants, \
             id bigint NOT NULL, note text, created_at timestamptz NOT NULL DEFAULT now(), \
             PRIMARY KEY (tenant_id, id));\n",
            rng.schema()
        ));
    }
    for k in 1..=g.local {
        pieces.push(format!(
            "CREATE TABLE {}.loc_{k} (id bigint PRIMARY KEY, body text, \
             updated_at timestamptz);\n",
            rng.schema()
        ));
    }

    // Tenant tables that others may reference (those keyed by (tenant, id)), by index.
    let mut parents: Vec<usize> = Vec::new();
    let mut names: Vec<String> = Vec::with_capacity(g.tenant);
    let mut depth: Vec<usize> = Vec::with_capacity(g.tenant);
    let mut referenced = vec![false; g.lookup];
    for j in 0..g.tenant {
        let q = format!("{}.t_{}", rng.schema(), j + 1);
        let blocker = rng.below(100) < 5;
        let pk_blocker = blocker && (g.pk_blockers + g.trigger_blockers) % 2 == 0;
        let trigger = blocker && !pk_blocker;
        let parent =
            (!parents.is_empty() && rng.below(2) == 0).then(|| parents[rng.below(parents.len())]);
        let lookup = (rng.below(3) == 0).then(|| rng.below(g.lookup));
        let unique = rng.below(10) == 0;

        let mut sql = format!(
            "CREATE TABLE {q} (\n  tenant uuid NOT NULL REFERENCES public.tenants,\n  \
             id bigint NOT NULL,\n  parent_id bigint,\n  lookup_id int{},\n  payload text,\n  \
             created_at timestamptz NOT NULL DEFAULT now(),\n  PRIMARY KEY ({})",
            lookup
                .map(|l| format!(" REFERENCES {}", lookups[l]))
                .unwrap_or_default(),
            if pk_blocker { "id" } else { "tenant, id" }
        );
        if let Some(p) = parent {
            let _ = write!(
                sql,
                ",\n  FOREIGN KEY (tenant, parent_id) REFERENCES {} (tenant, id)",
                names[p]
            );
        }
        sql.push_str("\n);\n");
        if unique {
            let _ = writeln!(
                sql,
                "CREATE UNIQUE INDEX t_{}_created ON {q} (tenant, created_at);",
                j + 1
            );
        }
        if trigger {
            let _ = writeln!(
                sql,
                "CREATE TRIGGER touch BEFORE UPDATE ON {q} FOR EACH ROW \
                 EXECUTE FUNCTION public.bench_touch();"
            );
        }
        pieces.push(sql);

        g.parent_fks += usize::from(parent.is_some());
        g.lookup_fks += usize::from(lookup.is_some());
        g.unique_indexes += usize::from(unique);
        g.pk_blockers += usize::from(pk_blocker);
        g.trigger_blockers += usize::from(trigger);
        if let Some(l) = lookup {
            referenced[l] = true;
        }
        depth.push(1 + parent.map_or(0, |p| depth[p]));
        if !pk_blocker {
            // A primary key without the tenant leaves no (tenant, id) key to reference.
            parents.push(j);
        }
        names.push(q);
    }
    g.referenced_lookups = referenced.iter().filter(|&&r| r).count();
    g.depth = depth.iter().copied().max().unwrap_or(0);
    g.chunks = pieces.chunks(CHUNK).map(|c| c.concat()).collect();
    g
}

// ---------------------------------------------------------------------------------------------
// Formatting

fn row(label: &str, v: &[Duration]) {
    println!(
        "{label:<40} {} median of {} ({})",
        ms(median(v)),
        v.len(),
        spread(v)
    );
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s[s.len() / 2]
}

fn spread(v: &[Duration]) -> String {
    let min = v.iter().min().copied().unwrap_or_default();
    let max = v.iter().max().copied().unwrap_or_default();
    format!("min {}, max {}", ms(min), ms(max))
}

fn list_ms(v: &[Duration]) -> String {
    v.iter()
        .map(|d| format!("{:.1}", d.as_secs_f64() * 1000.0))
        .collect::<Vec<_>>()
        .join(", ")
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}
