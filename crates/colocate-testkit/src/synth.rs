//! A deterministic multi-tenant schema of any size with the blockers of a real one, in real
//! proportions: the material the planner's decisions are measured on at scale (the hand-written
//! counterpart is `fixtures/decisions-schema`).
//!
//! [`schema`] returns the DDL in chunks of at most [`CHUNK`] tables (each chunk runs as one
//! transaction) and the [`Facts`] the generator counted while it wrote them; [`decisions_toml`]
//! writes the decisions-only `colocate.toml` that answers every kind of decision present.
//!
//! Shape for `tables` = N (the root included): a root `tenants (tenant uuid)`; 3% lookups (a key
//! points at them), 2% catalogs (no key points at them; tenant tables carry a column of the same
//! name and type as their key), 2% tenant-less local tables, 1% control-plane tables with a key
//! to `tenants` that stay local, 1% tenant-less children (below a table whose key lacks the
//! tenant, every third one a level deeper); the rest tenant tables, 5% of all tables keyed by
//! `tenant_id`. Blockers, as shares of N, one per table: a key lacking the tenant 1 in 10 (four
//! fifths on surrogate ids — identity, bigserial, uuid — a fifth on natural values: a token
//! hash, an external id, a unique index on an e-mail), a foreign key lacking the tenant (into a
//! surrogate key) 1 in 15, `ON DELETE SET NULL` on a key with the tenant 1 in 15 (every third in
//! PostgreSQL 15's column-list form), an `updated_at` trigger 1 in 100, a `varchar(36)` tenant
//! column 1 in 250; one foreign-key cycle between two tenant tables. Half the tenant tables have
//! a key `(tenant, parent_id)` to an earlier one, often a recent one, so chains run several
//! tables deep. Every identifier in the SQL goes through `escape_identifier`, and a few table
//! names are mixed case so that a missing quote shows.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use postgres_protocol::escape::escape_identifier;

/// Tables per DDL chunk: one transaction each stays well inside `max_locks_per_transaction`.
pub const CHUNK: usize = 200;

/// The smallest schema that holds at least one of every pattern.
pub const MIN_TABLES: usize = 50;

/// The root table's name and its tenant column.
const ROOT: &str = "tenants";
const TENANT: &str = "tenant";
const TENANT_ID: &str = "tenant_id";
/// The shared trigger function of the trigger tables.
const TRIGGER_FN: &str = "synth_set_updated_at";

/// What [`schema`] generated, counted by the generator as it wrote the SQL. Table lists are in
/// creation order; every name is unqualified (schema `public`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    pub seed: u64,
    pub root: String,
    /// Every table created, the root included.
    pub tables: usize,
    /// Tables with a tenant column (`tenant` or `tenant_id`) the team means to distribute: the
    /// root and the control-plane tables excluded, the varchar ones included.
    pub tenant_tables: Vec<String>,
    /// Those of `tenant_tables` whose tenant column is `tenant_id`.
    pub tenant_id_tables: Vec<String>,
    /// Tenant-less tables a foreign key points at (reference tables by the rules).
    pub lookup_tables: Vec<String>,
    /// Tenant-less catalogs no foreign key points at.
    pub catalog_tables: Vec<String>,
    /// Columns of tenant tables whose name and type match a catalog's key, no key declared.
    pub catalog_matches: usize,
    /// Tenant-less tables with no key at all (local by the rules).
    pub local_tables: Vec<String>,
    /// Tables with a tenant column and a key to the root that stay local (configuration).
    pub control_plane_tables: Vec<String>,
    /// Tenant-less tables below a tenant table, with their depth (1: a key into a tenant table).
    pub tenantless_children: Vec<Child>,

    // Blockers: one entry per table that has it.
    /// Primary key on a surrogate id alone.
    pub key_lacking_tenant_surrogate: Vec<String>,
    /// Unique key or index on a natural value alone (token hash, external id, e-mail).
    pub key_lacking_tenant_natural: Vec<Natural>,
    /// Foreign key `(x_id) REFERENCES t (id)` into a surrogate key, the tenant on neither side.
    pub fk_lacking_tenant: Vec<String>,
    /// `ON DELETE SET NULL` on a key that includes the tenant.
    pub refused_key_action: Vec<String>,
    /// Of `refused_key_action`, those written `SET NULL (column)` (PostgreSQL 15).
    pub refused_key_action_column_list: usize,
    /// Tables with an `updated_at` trigger.
    pub triggers: Vec<String>,
    /// Tenant tables whose tenant column is `varchar(36)` (the root's is `uuid`).
    pub varchar_tenant: Vec<String>,
    /// The two tables of the one foreign-key cycle (the first created first).
    pub cycle: Option<(String, String)>,
    /// The longest chain of foreign keys that ends at a table with a blocker of its own, in
    /// keys (the cycle's closing key not followed), and that chain from its first table to the
    /// blocked one.
    pub cascade_depth: usize,
    pub cascade_chain: Vec<String>,

    // What a database holding the schema shows in its catalogs.
    pub primary_keys: usize,
    pub foreign_keys: usize,
    /// UNIQUE constraints (primary keys not counted).
    pub unique_constraints: usize,
    /// Unique indexes that back no constraint.
    pub unique_indexes: usize,
    /// Foreign keys with `ON DELETE SET NULL`.
    pub set_null_keys: usize,
    pub views: usize,
}

/// A tenant-less child table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub table: String,
    pub parent: String,
    pub depth: usize,
}

/// A table whose key on a natural value lacks the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Natural {
    pub table: String,
    /// The unique constraint's or unique index's name.
    pub constraint: String,
    /// What the value is, for a decision's reason.
    pub what: &'static str,
}

impl Facts {
    /// Tables with a blocker of their own (each counted once).
    pub fn blocked_tables(&self) -> usize {
        self.key_lacking_tenant_surrogate.len()
            + self.key_lacking_tenant_natural.len()
            + self.fk_lacking_tenant.len()
            + self.refused_key_action.len()
            + self.triggers.len()
            + self.varchar_tenant.len()
    }
}

/// The generated schema: DDL chunks in order, and what they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synth {
    /// At most [`CHUNK`] tables each; run each as one transaction, in order.
    pub sql: Vec<String>,
    pub facts: Facts,
}

/// A small seeded generator (splitmix64 to seed, xorshift64* to draw): the same seed gives the
/// same schema on every platform, without a dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(if z == 0 { 1 } else { z })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is irrelevant at these sizes.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.next() % n == 0
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// Nouns for table names (whitespace-separated).
const WORDS: &str = "orders visits assets contacts quotes routes crews vehicles checklists \
    permits readings meters inspections estimates tasks forms photos signatures schedules parts \
    bins transfers rentals warranties claims leads campaigns surveys messages timecards";

/// The kind of a tenant table: clean, or the one blocker it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Clean,
    Surrogate(IdType),
    Natural(NaturalKind),
    FkLacking,
    RefusedAction { column_list: bool },
    Trigger,
    Varchar,
    ControlPlane,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdType {
    Identity,
    Bigserial,
    Uuid,
}

impl IdType {
    fn column(self) -> &'static str {
        match self {
            IdType::Identity => "bigint GENERATED BY DEFAULT AS IDENTITY",
            IdType::Bigserial => "bigserial",
            IdType::Uuid => "uuid DEFAULT gen_random_uuid()",
        }
    }

    /// The type of a column that references it.
    fn referencing(self) -> &'static str {
        match self {
            IdType::Uuid => "uuid",
            _ => "bigint",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NaturalKind {
    TokenHash,
    ExternalId,
    Email,
}

/// A table already written, as later tables may refer to it.
struct Made {
    name: String,
    /// Its tenant column, when it has one.
    tenant: Option<&'static str>,
    /// `Some(type)` when its primary key is a surrogate `id` alone (of that referencing type).
    surrogate: Option<&'static str>,
    /// It may be the target of a `(tenant, x) -> (tenant, id)` key.
    composite_target: bool,
    blocked: bool,
}

/// Counts per pattern for `tables`: see the module documentation.
struct Plan {
    lookups: usize,
    catalogs: usize,
    locals: usize,
    control_plane: usize,
    children: usize,
    surrogate: usize,
    natural: usize,
    fk_lacking: usize,
    refused: usize,
    triggers: usize,
    varchar: usize,
    tenant_id: usize,
    tenant: usize,
}

impl Plan {
    fn new(tables: usize) -> Plan {
        let keys = tables / 10;
        let natural = (keys / 5).max(1);
        let mut p = Plan {
            lookups: (tables * 3 / 100).max(1),
            catalogs: (tables * 2 / 100).max(1),
            locals: (tables * 2 / 100).max(1),
            control_plane: (tables / 100).max(1),
            children: (tables / 100).max(2),
            surrogate: keys - natural,
            natural,
            fk_lacking: tables / 15,
            refused: tables / 15,
            triggers: (tables / 100).max(1),
            varchar: (tables / 250).max(1),
            tenant_id: tables / 20,
            tenant: 0,
        };
        p.tenant = tables - 1 - p.lookups - p.catalogs - p.locals - p.control_plane - p.children;
        p
    }
}

fn q(name: &str) -> String {
    escape_identifier(name)
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Generate a schema of `tables` tables (the root included; at least [`MIN_TABLES`]) from
/// `seed`. The same arguments give the same SQL and facts.
pub fn schema(tables: usize, seed: u64) -> Synth {
    assert!(
        tables >= MIN_TABLES,
        "synth::schema needs at least {MIN_TABLES} tables to hold every pattern, got {tables}"
    );
    let plan = Plan::new(tables);
    let mut g = Gen {
        rng: Rng::new(seed),
        facts: Facts {
            seed,
            root: ROOT.to_string(),
            ..Facts::default()
        },
        made: Vec::new(),
        by_name: BTreeMap::new(),
        edges: Vec::new(),
        catalogs: Vec::new(),
        lookups: Vec::new(),
        catalog_users: Vec::new(),
        chunks: Vec::new(),
        current: String::new(),
        in_chunk: 0,
        serial: 0,
    };

    g.current.push_str("SET client_min_messages = warning;\n");
    let _ = writeln!(
        g.current,
        "CREATE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;",
        q(TRIGGER_FN)
    );
    g.root();
    for _ in 0..plan.lookups {
        g.lookup();
    }
    for _ in 0..plan.catalogs {
        g.catalog();
    }
    for _ in 0..plan.locals {
        g.local();
    }

    // The tenant tables in a shuffled order, then fixed up so that every table that needs an
    // earlier one of some kind has it.
    let mut kinds = Vec::with_capacity(plan.tenant + plan.control_plane);
    let id_types = [IdType::Identity, IdType::Bigserial, IdType::Uuid];
    for i in 0..plan.surrogate {
        kinds.push(Kind::Surrogate(id_types[i % 3]));
    }
    let naturals = [
        NaturalKind::TokenHash,
        NaturalKind::ExternalId,
        NaturalKind::Email,
    ];
    for i in 0..plan.natural {
        kinds.push(Kind::Natural(naturals[i % 3]));
    }
    kinds.extend(std::iter::repeat_n(Kind::FkLacking, plan.fk_lacking));
    for i in 0..plan.refused {
        kinds.push(Kind::RefusedAction {
            column_list: i % 3 == 2,
        });
    }
    kinds.extend(std::iter::repeat_n(Kind::Trigger, plan.triggers));
    kinds.extend(std::iter::repeat_n(Kind::Varchar, plan.varchar));
    kinds.extend(std::iter::repeat_n(Kind::ControlPlane, plan.control_plane));
    let blocked = kinds.len() - plan.control_plane;
    assert!(
        blocked + 2 <= plan.tenant,
        "synth::schema: {tables} tables leave too few clean tenant tables"
    );
    kinds.extend(std::iter::repeat_n(Kind::Clean, plan.tenant - blocked));
    g.rng.shuffle(&mut kinds);
    // Every table with a key to a (tenant, id) target needs one before it: a clean table first.
    // A table with a key into a surrogate key needs a surrogate-keyed table before it.
    let clean = kinds
        .iter()
        .position(|k| *k == Kind::Clean)
        .expect("clean tables");
    let first = kinds.remove(clean);
    kinds.insert(0, first);
    let surrogate = kinds
        .iter()
        .position(|k| matches!(k, Kind::Surrogate(_)))
        .expect("at least one surrogate key");
    if kinds[..surrogate].contains(&Kind::FkLacking) {
        let k = kinds.remove(surrogate);
        kinds.insert(1, k);
    }
    // Which tables use tenant_id: drawn among all tenant tables but the control plane.
    let mut tenant_id_slots: Vec<usize> = (0..kinds.len())
        .filter(|&i| kinds[i] != Kind::ControlPlane)
        .collect();
    g.rng.shuffle(&mut tenant_id_slots);
    tenant_id_slots.truncate(plan.tenant_id);
    tenant_id_slots.sort_unstable();
    // The cycle: two clean tables, the second closing it.
    let cleans: Vec<usize> = (0..kinds.len())
        .filter(|&i| kinds[i] == Kind::Clean)
        .collect();
    let a = cleans[g.rng.below(cleans.len() / 2)];
    let b = cleans[cleans.len() / 2 + g.rng.below(cleans.len() - cleans.len() / 2)];

    let mut cycle_first = None;
    for (i, kind) in kinds.iter().enumerate() {
        let tcol = if tenant_id_slots.binary_search(&i).is_ok() {
            TENANT_ID
        } else {
            TENANT
        };
        let name = g.tenant_table(*kind, tcol, i == a);
        if i == a {
            cycle_first = Some(name);
        } else if i == b {
            let first = cycle_first
                .clone()
                .expect("cycle's first table comes first");
            g.close_cycle(&first, &name);
        }
    }

    // Tenant-less children come last, as a later feature would add them.
    let mut depth1: Vec<String> = Vec::new();
    for i in 0..plan.children {
        if i % 3 == 2 {
            let parent = depth1.last().cloned().expect("a depth-1 child first");
            g.child(&parent, 2);
        } else {
            let parent = g.pick_surrogate();
            depth1.push(g.child(&parent, 1));
        }
    }
    g.view();
    g.cascade();
    if !g.current.is_empty() {
        g.chunks.push(std::mem::take(&mut g.current));
    }
    Synth {
        sql: g.chunks,
        facts: g.facts,
    }
}

struct Gen {
    rng: Rng,
    facts: Facts,
    made: Vec<Made>,
    by_name: BTreeMap<String, usize>,
    /// Foreign keys between tables (source, target), by index into `made`, the cycle's
    /// closing key not included.
    edges: Vec<(usize, usize)>,
    /// Catalog name, key type.
    catalogs: Vec<(String, String)>,
    lookups: Vec<String>,
    /// (catalog, tenant table with a column matching its key), in creation order.
    catalog_users: Vec<(String, String)>,
    chunks: Vec<String>,
    current: String,
    in_chunk: usize,
    serial: usize,
}

impl Gen {
    /// A new table name: `prefix` + word + serial, every 40th mixed case.
    fn name(&mut self, prefix: &str) -> String {
        self.serial += 1;
        let words: Vec<&str> = WORDS.split_whitespace().collect();
        let word = words[self.rng.below(words.len())];
        if self.serial % 40 == 0 {
            let mut cap = String::new();
            for part in format!("{prefix}{word}").split('_') {
                let mut cs = part.chars();
                if let Some(c) = cs.next() {
                    cap.extend(c.to_uppercase());
                    cap.push_str(cs.as_str());
                }
            }
            format!("{cap}{:04}", self.serial)
        } else {
            format!("{prefix}{word}_{:04}", self.serial)
        }
    }

    /// Write one table's statements, starting a new chunk when the current one is full.
    fn emit(&mut self, made: Made, sql: &str) {
        if self.in_chunk == CHUNK {
            self.chunks.push(std::mem::take(&mut self.current));
            self.in_chunk = 0;
        }
        self.in_chunk += 1;
        self.current.push_str(sql);
        self.facts.tables += 1;
        self.by_name.insert(made.name.clone(), self.made.len());
        self.made.push(made);
    }

    fn index(&self, name: &str) -> usize {
        self.by_name[name]
    }

    fn root(&mut self) {
        let sql = format!(
            "CREATE TABLE {t} ({c} uuid NOT NULL, {n} text NOT NULL, {at} timestamptz NOT NULL DEFAULT now(), CONSTRAINT {pk} PRIMARY KEY ({c}));\n",
            t = q(ROOT),
            c = q(TENANT),
            n = q("name"),
            at = q("created_at"),
            pk = q(&format!("{ROOT}_pkey")),
        );
        self.facts.primary_keys += 1;
        self.emit(
            Made {
                name: ROOT.to_string(),
                tenant: Some(TENANT),
                surrogate: None,
                composite_target: false,
                blocked: false,
            },
            &sql,
        );
    }

    fn lookup(&mut self) {
        let name = self.name("lk_");
        let sql = format!(
            "CREATE TABLE {t} ({code} text NOT NULL, {label} text NOT NULL, CONSTRAINT {pk} PRIMARY KEY ({code}));\n",
            t = q(&name),
            code = q("code"),
            label = q("label"),
            pk = q(&format!("{name}_pkey")),
        );
        self.facts.primary_keys += 1;
        self.facts.lookup_tables.push(name.clone());
        self.lookups.push(name.clone());
        self.emit(tenantless(name), &sql);
    }

    fn catalog(&mut self) {
        let name = self.name("cat_");
        let ty = format!("char({})", 2 + self.rng.below(3));
        let sql = format!(
            "CREATE TABLE {t} ({code} {ty} NOT NULL, {label} text NOT NULL, CONSTRAINT {pk} PRIMARY KEY ({code}));\n",
            t = q(&name),
            code = q("code"),
            label = q("label"),
            pk = q(&format!("{name}_pkey")),
        );
        self.facts.primary_keys += 1;
        self.facts.catalog_tables.push(name.clone());
        self.catalogs.push((name.clone(), ty));
        self.emit(tenantless(name), &sql);
    }

    fn local(&mut self) {
        let name = self.name("ops_");
        let sql = format!(
            "CREATE TABLE {t} ({id} bigint GENERATED ALWAYS AS IDENTITY, {p} jsonb NOT NULL DEFAULT '{{}}', CONSTRAINT {pk} PRIMARY KEY ({id}));\n",
            t = q(&name),
            id = q("id"),
            p = q("payload"),
            pk = q(&format!("{name}_pkey")),
        );
        self.facts.primary_keys += 1;
        self.facts.local_tables.push(name.clone());
        self.emit(tenantless(name), &sql);
    }

    fn pick_surrogate(&mut self) -> String {
        let s = &self.facts.key_lacking_tenant_surrogate;
        s[self.rng.below(s.len())].clone()
    }

    /// A composite target for a `(tenant, x)` key: often one of the latest, so chains grow deep.
    fn pick_composite(&mut self) -> Option<usize> {
        let targets: Vec<usize> = (0..self.made.len())
            .filter(|&i| self.made[i].composite_target)
            .collect();
        if targets.is_empty() {
            return None;
        }
        let recent = targets.len().min(4);
        Some(if self.rng.one_in(2) {
            targets[targets.len() - 1 - self.rng.below(recent)]
        } else {
            targets[self.rng.below(targets.len())]
        })
    }

    fn tenant_table(&mut self, kind: Kind, tcol: &'static str, cycle_first: bool) -> String {
        let prefix = if kind == Kind::ControlPlane {
            "platform_"
        } else {
            ""
        };
        let name = self.name(prefix);
        let t = q(&name);
        let tc = q(tcol);
        let mut cols: Vec<String> = Vec::new();
        let mut cons: Vec<String> = Vec::new();
        let mut after = String::new();
        let mut targets: Vec<usize> = Vec::new();
        let con = |suffix: &str| q(&format!("{name}_{suffix}"));

        let tenant_type = if kind == Kind::Varchar {
            "varchar(36)"
        } else {
            "uuid"
        };
        let mut surrogate = None;
        match kind {
            Kind::Surrogate(id) => {
                cols.push(format!("{} {} NOT NULL", q("id"), id.column()));
                cols.push(format!("{tc} {tenant_type} NOT NULL"));
                cons.push(format!(
                    "CONSTRAINT {} PRIMARY KEY ({})",
                    con("pkey"),
                    q("id")
                ));
                surrogate = Some(id.referencing());
                self.facts.key_lacking_tenant_surrogate.push(name.clone());
            }
            Kind::ControlPlane => {
                cols.push(format!("{tc} uuid NOT NULL"));
                cols.push(format!("{} bigserial NOT NULL", q("id")));
                cons.push(format!(
                    "CONSTRAINT {} PRIMARY KEY ({tc}, {})",
                    con("pkey"),
                    q("id")
                ));
            }
            _ => {
                cols.push(format!("{tc} {tenant_type} NOT NULL"));
                cols.push(format!("{} bigint NOT NULL", q("id")));
                cons.push(format!(
                    "CONSTRAINT {} PRIMARY KEY ({tc}, {})",
                    con("pkey"),
                    q("id")
                ));
            }
        }
        self.facts.primary_keys += 1;
        cols.push(format!("{} text", q("title")));
        cols.push(format!(
            "{} timestamptz NOT NULL DEFAULT now()",
            q("created_at")
        ));

        // Every uuid tenant table keys the root; a varchar one cannot.
        if kind != Kind::Varchar {
            cons.push(format!(
                "CONSTRAINT {} FOREIGN KEY ({tc}) REFERENCES {} ({})",
                con("tenant_fkey"),
                q(ROOT),
                q(TENANT)
            ));
            self.facts.foreign_keys += 1;
            targets.push(0);
        }

        let mut blocked = true;
        match kind {
            Kind::Natural(nk) => {
                let (col, what) = match nk {
                    NaturalKind::TokenHash => ("token_hash", "a token hash"),
                    NaturalKind::ExternalId => ("external_id", "an external id"),
                    NaturalKind::Email => ("email", "an e-mail address"),
                };
                cols.push(format!("{} text NOT NULL", q(col)));
                let constraint = format!("{name}_{col}_key");
                if nk == NaturalKind::Email {
                    let _ = writeln!(
                        after,
                        "CREATE UNIQUE INDEX {} ON {t} (lower({}));",
                        q(&constraint),
                        q(col)
                    );
                    self.facts.unique_indexes += 1;
                } else {
                    cons.push(format!("CONSTRAINT {} UNIQUE ({})", q(&constraint), q(col)));
                    self.facts.unique_constraints += 1;
                }
                self.facts.key_lacking_tenant_natural.push(Natural {
                    table: name.clone(),
                    constraint,
                    what,
                });
            }
            Kind::FkLacking => {
                let target = self.pick_surrogate();
                let ti = self.index(&target);
                let ty = self.made[ti].surrogate.expect("a surrogate key");
                cols.push(format!("{} {ty} NOT NULL", q("owner_id")));
                cons.push(format!(
                    "CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({})",
                    con("owner_fkey"),
                    q("owner_id"),
                    q(&target),
                    q("id")
                ));
                self.facts.foreign_keys += 1;
                targets.push(ti);
                self.facts.fk_lacking_tenant.push(name.clone());
            }
            Kind::RefusedAction { column_list } => {
                let ti = self.pick_composite().expect("a composite target");
                let target = self.made[ti].name.clone();
                let ptc = self.made[ti].tenant.expect("tenant column");
                let action = if column_list {
                    format!("ON DELETE SET NULL ({})", q("assignee_id"))
                } else {
                    "ON DELETE SET NULL".to_string()
                };
                cols.push(format!("{} bigint", q("assignee_id")));
                cons.push(format!(
                    "CONSTRAINT {} FOREIGN KEY ({tc}, {}) REFERENCES {} ({}, {}) {action}",
                    con("assignee_fkey"),
                    q("assignee_id"),
                    q(&target),
                    q(ptc),
                    q("id")
                ));
                self.facts.foreign_keys += 1;
                self.facts.set_null_keys += 1;
                targets.push(ti);
                self.facts.refused_key_action.push(name.clone());
                if column_list {
                    self.facts.refused_key_action_column_list += 1;
                }
            }
            Kind::Trigger => {
                cols.push(format!(
                    "{} timestamptz NOT NULL DEFAULT now()",
                    q("updated_at")
                ));
                let _ = writeln!(
                    after,
                    "CREATE TRIGGER {} BEFORE UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION {}();",
                    con("set_updated_at"),
                    q(TRIGGER_FN)
                );
                self.facts.triggers.push(name.clone());
            }
            Kind::Varchar => self.facts.varchar_tenant.push(name.clone()),
            Kind::Surrogate(_) => {}
            Kind::Clean | Kind::ControlPlane => blocked = false,
        }

        // A parent key, a lookup key and a catalog-matching column, on ordinary tenant tables.
        let ordinary = !matches!(kind, Kind::Varchar | Kind::ControlPlane | Kind::Natural(_));
        if ordinary && self.rng.one_in(2) {
            if let Some(ti) = self.pick_composite() {
                let target = self.made[ti].name.clone();
                let ptc = self.made[ti].tenant.expect("tenant column");
                cols.push(format!("{} bigint", q("parent_id")));
                cons.push(format!(
                    "CONSTRAINT {} FOREIGN KEY ({tc}, {}) REFERENCES {} ({}, {})",
                    con("parent_fkey"),
                    q("parent_id"),
                    q(&target),
                    q(ptc),
                    q("id")
                ));
                self.facts.foreign_keys += 1;
                targets.push(ti);
            }
        }
        if ordinary && self.rng.one_in(3) {
            let lk = self.lookups[self.rng.below(self.lookups.len())].clone();
            cols.push(format!("{} text", q("kind_code")));
            cons.push(format!(
                "CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({})",
                con("kind_fkey"),
                q("kind_code"),
                q(&lk),
                q("code")
            ));
            self.facts.foreign_keys += 1;
            targets.push(self.index(&lk));
        }
        if kind != Kind::ControlPlane && self.rng.one_in(4) {
            let (cat, ty) = self.catalogs[self.rng.below(self.catalogs.len())].clone();
            cols.push(format!("{} {ty}", q(&format!("{cat}_code"))));
            self.facts.catalog_matches += 1;
            self.catalog_users.push((cat, name.clone()));
        }
        if cycle_first {
            cols.push(format!("{} bigint", q("partner_id")));
        }

        let mut sql = format!("CREATE TABLE {t} (\n    ");
        sql.push_str(
            &cols
                .into_iter()
                .chain(cons)
                .collect::<Vec<_>>()
                .join(",\n    "),
        );
        sql.push_str("\n);\n");
        sql.push_str(&after);

        match kind {
            Kind::ControlPlane => self.facts.control_plane_tables.push(name.clone()),
            _ => {
                self.facts.tenant_tables.push(name.clone());
                if tcol == TENANT_ID {
                    self.facts.tenant_id_tables.push(name.clone());
                }
            }
        }
        let me = self.made.len();
        for ti in targets {
            self.edges.push((me, ti));
        }
        let composite_target = !matches!(
            kind,
            Kind::Surrogate(_) | Kind::Varchar | Kind::ControlPlane | Kind::Natural(_)
        );
        self.emit(
            Made {
                name: name.clone(),
                tenant: Some(tcol),
                surrogate,
                composite_target,
                blocked,
            },
            &sql,
        );
        name
    }

    /// `first` was created with a `partner_id`; `second` exists and references `first` or not:
    /// give both a key to the other (second -> first here, first -> second as the closing key).
    fn close_cycle(&mut self, first: &str, second: &str) {
        let (fi, si) = (self.index(first), self.index(second));
        let (ftc, stc) = (
            self.made[fi].tenant.expect("tenant"),
            self.made[si].tenant.expect("tenant"),
        );
        let _ = writeln!(
            self.current,
            "ALTER TABLE {s} ADD COLUMN {c} bigint, ADD CONSTRAINT {k} FOREIGN KEY ({stc}, {c}) REFERENCES {f} ({ftc}, {id});",
            s = q(second),
            c = q("partner_id"),
            k = q(&format!("{second}_partner_fkey")),
            stc = q(stc),
            f = q(first),
            ftc = q(ftc),
            id = q("id"),
        );
        let _ = writeln!(
            self.current,
            "ALTER TABLE {f} ADD CONSTRAINT {k} FOREIGN KEY ({ftc}, {c}) REFERENCES {s} ({stc}, {id});",
            f = q(first),
            k = q(&format!("{first}_partner_fkey")),
            ftc = q(ftc),
            c = q("partner_id"),
            s = q(second),
            stc = q(stc),
            id = q("id"),
        );
        self.facts.foreign_keys += 2;
        self.edges.push((si, fi));
        self.facts.cycle = Some((first.to_string(), second.to_string()));
    }

    fn child(&mut self, parent: &str, depth: usize) -> String {
        let name = self.name("detail_");
        let pi = self.index(parent);
        let ty = self.made[pi].surrogate.expect("a parent keyed by id alone");
        let sql = format!(
            "CREATE TABLE {t} ({id} bigserial NOT NULL, {p} {ty} NOT NULL, {b} text, CONSTRAINT {pk} PRIMARY KEY ({id}), CONSTRAINT {fk} FOREIGN KEY ({p}) REFERENCES {pt} ({id}) ON DELETE CASCADE);\n",
            t = q(&name),
            id = q("id"),
            p = q("parent_id"),
            b = q("body"),
            pk = q(&format!("{name}_pkey")),
            fk = q(&format!("{name}_parent_fkey")),
            pt = q(parent),
        );
        self.facts.primary_keys += 1;
        self.facts.foreign_keys += 1;
        self.facts.tenantless_children.push(Child {
            table: name.clone(),
            parent: parent.to_string(),
            depth,
        });
        let me = self.made.len();
        self.edges.push((me, pi));
        self.emit(
            Made {
                name: name.clone(),
                tenant: None,
                surrogate: Some("bigint"),
                composite_target: false,
                blocked: false,
            },
            &sql,
        );
        name
    }

    /// One view joining a catalog with the first tenant table that carries its key's column.
    fn view(&mut self) {
        let Some((cat, table)) = self.catalog_users.first().cloned() else {
            return;
        };
        let _ = writeln!(
            self.current,
            "CREATE VIEW {v} AS SELECT x.{id}, c.{label} FROM {t} x JOIN {c} c ON c.{code} = x.{col};",
            v = q(&format!("{cat}_board")),
            id = q("id"),
            label = q("label"),
            t = q(&table),
            c = q(&cat),
            code = q("code"),
            col = q(&format!("{cat}_code")),
        );
        self.facts.views += 1;
    }

    /// The longest chain of keys ending at a blocked table (edges go to earlier tables, so one
    /// pass in creation order settles every table).
    fn cascade(&mut self) {
        let n = self.made.len();
        let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
        for &(s, t) in &self.edges {
            out[s].push(t);
        }
        // reach[i]: longest chain from i ending at a blocked table, with its next table.
        let mut reach: Vec<Option<(usize, Option<usize>)>> = vec![None; n];
        for i in 0..n {
            let mut best = self.made[i].blocked.then_some((0, None));
            for &t in &out[i] {
                if let Some((d, _)) = reach[t] {
                    if best.is_none_or(|(b, _)| d + 1 > b) {
                        best = Some((d + 1, Some(t)));
                    }
                }
            }
            reach[i] = best;
        }
        let start = (0..n)
            .filter_map(|i| reach[i].map(|(d, _)| (d, i)))
            .max_by_key(|&(d, i)| (d, std::cmp::Reverse(i)));
        if let Some((depth, mut i)) = start {
            self.facts.cascade_depth = depth;
            let mut chain = vec![self.made[i].name.clone()];
            while let Some((_, Some(next))) = reach[i] {
                chain.push(self.made[next].name.clone());
                i = next;
            }
            self.facts.cascade_chain = chain;
        }
    }
}

fn tenantless(name: String) -> Made {
    Made {
        name,
        tenant: None,
        surrogate: None,
        composite_target: false,
        blocked: false,
    }
}

/// The decisions-only `colocate.toml` for a generated schema: every kind of decision present
/// answered at the kind level, and up to three natural-key tables kept local by exception.
pub fn decisions_toml(facts: &Facts) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Decisions for colocate_testkit::synth::schema({}, {}): every kind present answered once,",
        facts.tables, facts.seed
    );
    out.push_str(
        "# with per-table exceptions where the team chose otherwise. Only decisions, no SQL.\n",
    );
    out.push_str("[distribution]\n");
    let _ = writeln!(out, "root = {}", toml_str(&facts.root));
    let _ = writeln!(
        out,
        "columns = [{}, {}]",
        toml_str(TENANT),
        toml_str(TENANT_ID)
    );
    out.push_str("shard_count = 4\n");
    if !facts.control_plane_tables.is_empty() {
        out.push_str("local = [\n");
        for t in &facts.control_plane_tables {
            let _ = writeln!(
                out,
                "    {{ table = {}, reason = {} }},",
                toml_str(t),
                toml_str("control plane: read across all tenants by the platform")
            );
        }
        out.push_str("]\n");
    }
    if !facts.catalog_tables.is_empty() {
        out.push_str("reference = [\n");
        for t in &facts.catalog_tables {
            let _ = writeln!(
                out,
                "    {{ table = {}, reason = {} }},",
                toml_str(t),
                toml_str("catalog joined by its code on every node; no key declares it")
            );
        }
        out.push_str("]\n");
    }

    out.push_str("\n[distribution.decisions]\n");
    let line = |out: &mut String, kind: &str, choice: &str, reason: &str| {
        let _ = writeln!(
            out,
            "{kind} = {{ choice = {}, reason = {} }}",
            toml_str(choice),
            toml_str(reason)
        );
    };
    if !facts.key_lacking_tenant_surrogate.is_empty()
        || !facts.key_lacking_tenant_natural.is_empty()
    {
        line(
            &mut out,
            "unique-without-tenant",
            "widen",
            "surrogate ids stay unique with the tenant in front; keys then carry it",
        );
    }
    if !facts.refused_key_action.is_empty() {
        line(
            &mut out,
            "key-action-on-tenant",
            "no-action",
            "the application clears the column before deleting the referenced row",
        );
    }
    if !facts.triggers.is_empty() {
        line(
            &mut out,
            "triggers",
            "drop",
            "updated_at is set by the application",
        );
    }
    if !facts.varchar_tenant.is_empty() {
        line(
            &mut out,
            "tenant-column-type",
            "convert",
            "the text holds the tenant's uuid",
        );
    }
    if !facts.tenantless_children.is_empty() {
        line(
            &mut out,
            "tenant-less-child",
            "add-tenant-column",
            "child rows belong to their parent's tenant",
        );
    }
    let keeps: Vec<&Natural> = facts.key_lacking_tenant_natural.iter().take(3).collect();
    if !facts.control_plane_tables.is_empty() || !keeps.is_empty() {
        line(
            &mut out,
            "local-references-distributed",
            "drop-keys",
            "tables that stay on the coordinator keep the tenant as a plain value",
        );
    }
    for n in keeps {
        out.push_str("\n[[distribution.decisions.except]]\n");
        out.push_str("kind = \"unique-without-tenant\"\n");
        let _ = writeln!(out, "table = {}", toml_str(&n.table));
        let _ = writeln!(out, "constraint = {}", toml_str(&n.constraint));
        out.push_str("choice = \"keep-local\"\n");
        let _ = writeln!(
            out,
            "reason = {}",
            toml_str(&format!(
                "looked up by {} alone, before the tenant is known",
                n.what
            ))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_schema_other_seed_other_schema() {
        let a = schema(500, 1);
        assert_eq!(a, schema(500, 1));
        assert_eq!(
            decisions_toml(&a.facts),
            decisions_toml(&schema(500, 1).facts)
        );
        assert_ne!(a.sql, schema(500, 2).sql);
    }

    #[test]
    fn chunks_hold_at_most_200_tables_and_every_table_once() {
        let s = schema(500, 1);
        let per: Vec<usize> = s
            .sql
            .iter()
            .map(|c| c.matches("CREATE TABLE ").count())
            .collect();
        assert_eq!(per, vec![200, 200, 100]);
        assert_eq!(s.facts.tables, 500);
    }

    fn within(what: &str, got: usize, want: f64, tolerance: f64) {
        let (lo, hi) = (want * (1.0 - tolerance), want * (1.0 + tolerance));
        assert!(
            (lo..=hi).contains(&(got as f64)),
            "{what}: {got}, expected {want} ± {:.0}%",
            tolerance * 100.0
        );
    }

    #[test]
    fn facts_match_the_proportions() {
        for seed in [1, 2, 3, 42] {
            let f = schema(500, seed).facts;
            let n = f.tables as f64;
            let keys = f.key_lacking_tenant_surrogate.len() + f.key_lacking_tenant_natural.len();
            within("keys lacking the tenant", keys, n / 10.0, 0.2);
            assert!(
                f.key_lacking_tenant_surrogate.len() >= 3 * f.key_lacking_tenant_natural.len(),
                "most keys lacking the tenant are on surrogate ids: {f:?}"
            );
            assert!(!f.key_lacking_tenant_natural.is_empty());
            within(
                "foreign keys lacking the tenant",
                f.fk_lacking_tenant.len(),
                n / 15.0,
                0.2,
            );
            within(
                "refused key actions",
                f.refused_key_action.len(),
                n / 15.0,
                0.2,
            );
            assert!(f.refused_key_action_column_list > 0);
            assert!((2..=10).contains(&f.triggers.len()), "{:?}", f.triggers);
            assert!(!f.varchar_tenant.is_empty());
            assert!((2..=10).contains(&f.tenantless_children.len()));
            assert_eq!(
                f.tenantless_children.iter().map(|c| c.depth).max(),
                Some(2),
                "children two levels deep"
            );
            assert!(f.cycle.is_some());
            assert!(
                f.cascade_depth >= 4,
                "cascades several levels deep: {} ({:?})",
                f.cascade_depth,
                f.cascade_chain
            );
            assert_eq!(f.cascade_chain.len(), f.cascade_depth + 1);
            within("tenant_id tables", f.tenant_id_tables.len(), n / 20.0, 0.2);
            assert!(!f.catalog_tables.is_empty() && f.catalog_matches > 0);
            assert_eq!(f.views, 1);
            assert_eq!(f.set_null_keys, f.refused_key_action.len());
            let all = 1
                + f.tenant_tables.len()
                + f.lookup_tables.len()
                + f.catalog_tables.len()
                + f.local_tables.len()
                + f.control_plane_tables.len()
                + f.tenantless_children.len();
            assert_eq!(all, f.tables, "every table in exactly one class");
            within("tenant tables", f.tenant_tables.len(), n * 0.9, 0.05);
        }
    }

    #[test]
    fn small_schemas_hold_every_pattern() {
        let f = schema(MIN_TABLES, 7).facts;
        assert_eq!(f.tables, MIN_TABLES);
        assert!(f.blocked_tables() > 0 && f.cycle.is_some() && !f.triggers.is_empty());
    }

    /// SQL words this module writes itself; every other word must be a quoted identifier.
    const FIXED: &str = "SET client_min_messages warning CREATE FUNCTION RETURNS trigger LANGUAGE \
        plpgsql AS BEGIN NEW updated_at now RETURN END TABLE uuid NOT NULL text timestamptz DEFAULT \
        CONSTRAINT PRIMARY KEY char bigint GENERATED ALWAYS BY IDENTITY jsonb bigserial \
        gen_random_uuid FOREIGN REFERENCES UNIQUE INDEX ON lower DELETE varchar TRIGGER BEFORE \
        UPDATE FOR EACH ROW EXECUTE ALTER ADD COLUMN CASCADE VIEW SELECT FROM JOIN x c";

    /// Words of `sql` outside quoted identifiers and string literals, and the quoted
    /// identifiers themselves.
    fn words(sql: &str) -> (Vec<String>, Vec<String>) {
        let (mut bare, mut quoted) = (Vec::new(), Vec::new());
        let mut chars = sql.chars().peekable();
        let mut word = String::new();
        while let Some(ch) = chars.next() {
            if ch.is_ascii_alphanumeric() || ch == '_' {
                word.push(ch);
                continue;
            }
            if !word.is_empty() {
                bare.push(std::mem::take(&mut word));
            }
            match ch {
                '"' => {
                    let mut id = String::from("\"");
                    while let Some(c) = chars.next() {
                        id.push(c);
                        if c == '"' {
                            if chars.peek() == Some(&'"') {
                                id.push(chars.next().unwrap_or('"'));
                            } else {
                                break;
                            }
                        }
                    }
                    quoted.push(id);
                }
                '\'' => {
                    for c in chars.by_ref() {
                        if c == '\'' {
                            break;
                        }
                    }
                }
                _ => {}
            }
        }
        if !word.is_empty() {
            bare.push(word);
        }
        (bare, quoted)
    }

    #[test]
    fn every_name_is_quoted_or_a_fixed_word() {
        let s = schema(500, 1);
        let mut mixed_case = 0;
        for chunk in &s.sql {
            let (bare, quoted) = words(chunk);
            for w in bare {
                let fixed = FIXED.split_whitespace().any(|f| f == w)
                    || w.chars().all(|c| c.is_ascii_digit());
                assert!(fixed, "unquoted word {w:?} in the generated SQL");
            }
            for id in quoted {
                let inner = id[1..id.len() - 1].replace("\"\"", "\"");
                assert_eq!(
                    id,
                    escape_identifier(&inner),
                    "quoted as escape_identifier does"
                );
                if inner.chars().any(|c| c.is_ascii_uppercase()) {
                    mixed_case += 1;
                }
            }
        }
        assert!(mixed_case > 0, "some names need their quotes");
    }

    #[test]
    fn decisions_cover_every_kind_present() {
        let f = schema(500, 1).facts;
        let toml = decisions_toml(&f);
        for kind in [
            "unique-without-tenant = { choice = \"widen\"",
            "key-action-on-tenant = { choice = \"no-action\"",
            "triggers = { choice = \"drop\"",
            "tenant-column-type = { choice = \"convert\"",
            "tenant-less-child = { choice = \"add-tenant-column\"",
            "local-references-distributed = { choice = \"drop-keys\"",
        ] {
            assert!(toml.contains(kind), "missing {kind}:\n{toml}");
        }
        assert_eq!(toml.matches("[[distribution.decisions.except]]").count(), 3);
        assert_eq!(toml.matches("choice = \"keep-local\"").count(), 3);
        for n in f.key_lacking_tenant_natural.iter().take(3) {
            assert!(toml.contains(&format!("table = \"{}\"", n.table)));
        }
    }
}
