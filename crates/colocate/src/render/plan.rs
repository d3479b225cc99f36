//! How a plan reads: a human table grouped by role, the SQL `apply` runs, Graphviz and Mermaid
//! graphs, and `check`'s drift list (human, JSON, GitHub annotations).

use colocate_core::words::{count, verb};
use std::collections::BTreeMap;
use std::fmt::Write as _;

use colocate_core::plan::{
    Drift, Finding, Plan, Role, Severity, State, TablePlan, Unenforced, UnenforcedKey,
};
use colocate_core::schema::QualifiedName;
use colocate_core::sqltext::{comment, inert};
use comfy_table::Cell;
use serde::Serialize;

use super::{push_table, table};
use crate::style;

pub(super) fn citus_line(p: &Plan) -> String {
    match (&p.citus.installed, p.citus.available) {
        (Some(v), _) => format!(
            "Citus {v} installed, {} registered",
            count(p.citus.workers, "worker")
        ),
        (None, true) => {
            "Citus is available but not created in this database (apply creates it)".into()
        }
        (None, false) if p.citus.not_preloaded => format!(
            "Citus cannot be used yet: {}; the plan shows roles only, no steps",
            colocate_core::schema::CITUS_NOT_PRELOADED
        ),
        (None, false) => {
            "Citus is not installed on this server: the plan shows roles only, no steps".into()
        }
    }
}

fn state_label(t: &TablePlan) -> &'static str {
    match t.state {
        State::Done => "done",
        State::Pending => "pending",
        State::Blocked => "blocked",
        State::Conflict => "conflict",
    }
}

/// The human plan.
/// The plan in one line: tables by role and by state.
pub(super) fn summary(p: &Plan) -> String {
    let count = |f: &dyn Fn(&TablePlan) -> bool| p.tables.iter().filter(|t| f(t)).count();
    format!(
        "{} tables: {} distributed (incl. root), {} reference, {} local; {} blocked, {} conflicting, {} to convert, {} done",
        p.tables.len(),
        count(&|t| matches!(t.role, Role::Root | Role::Distributed)),
        count(&|t| t.role == Role::Reference),
        count(&|t| t.role == Role::Local),
        count(&|t| t.blocked),
        count(&|t| t.state == State::Conflict),
        count(&|t| t.state == State::Pending && t.role != Role::Local),
        count(&|t| t.state == State::Done && t.role != Role::Local),
    )
}

/// A blocked table's blocker codes, and the blocked table it waits for, if it only waits.
pub(super) fn blockers_of<'p>(
    p: &'p Plan,
    t: &TablePlan,
) -> (Vec<String>, Option<&'p QualifiedName>) {
    let mine: Vec<&Finding> = p
        .findings
        .iter()
        .filter(|f| f.table == t.name && f.severity == Severity::Blocker)
        .collect();
    let codes = mine.iter().map(|f| f.code.to_string()).collect();
    (codes, mine.iter().find_map(|f| f.waits_for.as_ref()))
}

/// What a finding's fix is, as its heading says.
pub(super) fn fix_label(f: &Finding) -> &'static str {
    if f.waits_for.is_some() {
        "what clears it"
    } else if f.fixed_by.is_some() {
        "fixed by `generate --with-fixes`"
    } else if f.manual {
        "suggested fix (needs a decision)"
    } else {
        "fix"
    }
}

/// The fixes, one line each (what changes) with who decided it, in the order found.
pub(super) fn fix_lines(p: &Plan) -> Vec<(String, String)> {
    p.fixes
        .iter()
        .map(|f| {
            let what: Vec<String> = f.changes.iter().map(|c| c.to_string()).collect();
            (
                format!("{} [{}]: {}", f.table, f.code, what.join("; ")),
                f.by.label(),
            )
        })
        .collect()
}

/// The heading of the fixes: how many, and what they unblock.
pub(super) fn fixes_heading(p: &Plan) -> String {
    let unblocked = p.tables.iter().filter(|t| t.fixable).count();
    format!(
        "{}: `colocate generate --with-fixes` writes them; {} convert once they ran",
        colocate_core::words::count_as(p.fixes.len(), "fix", "fixes"),
        count(unblocked, "blocked table")
    )
}

/// The heading of the open decisions: how many, and what deciding them all unblocks.
pub(super) fn decisions_heading(p: &Plan) -> String {
    let cases: usize = p.decisions.iter().map(|d| d.cases.len()).sum();
    let all = p.decisions.last().map(|d| d.unblocks).unwrap_or(0);
    format!(
        "{} ({}) to take in colocate.toml [distribution.decisions]; deciding {} unblocks {}",
        count(p.decisions.len(), "decision"),
        count(cases, "case"),
        if p.decisions.len() == 1 {
            "it"
        } else {
            "them all"
        },
        count(all, "table")
    )
}

/// One open decision as lines: the kind with what it unblocks, its first cases, its choices.
pub(super) fn decision_lines(d: &colocate_core::plan::OpenDecision, above: usize) -> Vec<String> {
    const SHOWN: usize = 5;
    let mut out = vec![format!(
        "{}: {}{}",
        d.kind,
        count(d.cases.len(), "case"),
        if above == 0 {
            format!("; deciding it unblocks {}", count(d.unblocks, "table"))
        } else {
            format!(
                "; with the {} above, unblocks {}",
                count(above, "decision"),
                count(d.unblocks, "table")
            )
        }
    )];
    for c in d.cases.iter().take(SHOWN) {
        out.push(format!(
            "  {}{} (holds back {})",
            c.table,
            c.constraint
                .as_deref()
                .map(|k| format!(" {}", colocate_core::plan::display_col(k)))
                .unwrap_or_default(),
            count(c.holds, "table")
        ));
    }
    if d.cases.len() > SHOWN {
        out.push(format!("  and {} more", d.cases.len() - SHOWN));
    }
    out.push(format!(
        "  choices: {}",
        d.kind
            .choices()
            .iter()
            .map(|(c, what)| format!("{c} ({what})"))
            .collect::<Vec<_>>()
            .join("; ")
    ));
    if let Some((choice, why)) = &d.recommended {
        out.push(format!("  recommended: {choice} ({why})"));
    }
    out.push(format!(
        "  e.g. {} = {{ choice = \"{}\", reason = \"...\" }}",
        d.kind,
        d.kind.choices()[0].0
    ));
    out
}

pub fn human_text(p: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", summary(p));
    let _ = writeln!(out, "{}", citus_line(p));
    if let Some(g) = p.groups.first() {
        let _ = writeln!(
            out,
            "colocation group: {} ({}), {}",
            g.anchor,
            g.column_type,
            count(g.tables.len(), "table")
        );
    }
    for (title, role) in [
        ("ROOT", Role::Root),
        ("DISTRIBUTED", Role::Distributed),
        ("REFERENCE", Role::Reference),
        ("LOCAL", Role::Local),
    ] {
        let rows: Vec<&TablePlan> = p
            .tables
            .iter()
            .filter(|t| t.role == role && !t.blocked)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{title} ({})", rows.len());
        let mut t = table(&["TABLE", "COLUMN", "STATE", "REASON"]);
        for r in rows {
            t.add_row(vec![
                Cell::new(&r.name),
                Cell::new(r.column.clone().unwrap_or_default()),
                style::cell(state_label(r), style::state_color(state_label(r))),
                Cell::new(&r.reason),
            ]);
        }
        push_table(&mut out, &t);
    }
    let blocked: Vec<&TablePlan> = p.tables.iter().filter(|t| t.blocked).collect();
    if !blocked.is_empty() {
        let _ = writeln!(out, "\nBLOCKED ({})", blocked.len());
        // A table that only waits for another one names the table whose blockers hold it back.
        let mut t = table(&[
            "TABLE",
            "WOULD BE",
            "COLUMN",
            "BLOCKERS",
            "WAITS FOR",
            "ONCE FIXED",
        ]);
        for r in blocked {
            let (codes, waits_for) = blockers_of(p, r);
            let waits_for = waits_for.map(|q| q.to_string()).unwrap_or_default();
            t.add_row(vec![
                Cell::new(&r.name),
                style::cell(r.role.label(), style::role_color(r.role.label())),
                Cell::new(r.column.clone().unwrap_or_default()),
                Cell::new(codes.join(", ")),
                Cell::new(waits_for),
                Cell::new(if r.fixable { "converts" } else { "" }),
            ]);
        }
        push_table(&mut out, &t);
    }
    for (title, sev) in [
        ("BLOCKERS", Severity::Blocker),
        ("CONFLICTS", Severity::Conflict),
        ("WARNINGS", Severity::Warning),
    ] {
        let fs: Vec<&Finding> = p.findings.iter().filter(|f| f.severity == sev).collect();
        if fs.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{title} ({})", fs.len());
        for f in fs {
            let _ = writeln!(out, "  [{}] {}", f.code, f.message);
            if let Some(fix) = &f.fix {
                let label = fix_label(f);
                let _ = writeln!(out, "    {label}:");
                for line in fix.lines() {
                    let _ = writeln!(out, "      {line}");
                }
            }
        }
    }
    if !p.decisions.is_empty() {
        let _ = writeln!(out, "\nDECISIONS NEEDED: {}", decisions_heading(p));
        for (i, d) in p.decisions.iter().enumerate() {
            for line in decision_lines(d, i) {
                let _ = writeln!(out, "  {line}");
            }
        }
    }
    if !p.fixes.is_empty() {
        let _ = writeln!(out, "\nFIXES: {}", fixes_heading(p));
        for (what, by) in fix_lines(p) {
            let _ = writeln!(out, "  {what}");
            let _ = writeln!(out, "    {by}");
        }
    }
    if !p.unenforced.is_empty() {
        let _ = writeln!(
            out,
            "\nFOREIGN KEYS NOT ENFORCED ({}): rows may break them; check fails until they hold",
            p.unenforced.len()
        );
        let mut t = table(&["TABLE", "KEY", "STATE"]);
        for u in &p.unenforced {
            t.add_row(vec![
                u.table.to_string(),
                inert(&u.key),
                u.state.as_str().to_string(),
            ]);
        }
        push_table(&mut out, &t);
    }
    if p.steps.is_empty() {
        let _ = writeln!(out, "\nSTEPS: none");
    } else {
        let _ = writeln!(out, "\nSTEPS ({})", p.steps.len());
        for (i, s) in p.steps.iter().enumerate() {
            let tx = if s.transaction() {
                ""
            } else {
                "  [outside a transaction]"
            };
            let _ = writeln!(out, "  {:>3}. {}{tx}", i + 1, s.sql());
            let _ = writeln!(out, "       {}", comment(&s.reason.to_string()));
        }
    }
    out
}

pub fn human(p: &Plan) {
    print!("{}", human_text(p));
}

/// The statements `apply` runs, in order, each with its reason.
pub fn sql(p: &Plan) -> String {
    let mut out = String::from("-- generated by colocate plan --format sql\n");
    if p.steps.is_empty() {
        out.push_str("-- nothing to do\n");
    }
    for (i, s) in p.steps.iter().enumerate() {
        let tx = if s.transaction() {
            ""
        } else {
            " (outside a transaction block)"
        };
        let _ = writeln!(
            out,
            "\n{}",
            comment(&format!("step {}: {}{tx}", i + 1, s.reason))
        );
        let _ = writeln!(out, "{}", s.sql());
    }
    let blockers = p.blockers().count();
    if blockers > 0 {
        let _ = writeln!(
            out,
            "\n-- {} {} some tables out of this script: see `colocate plan`",
            count(blockers, "blocker"),
            verb(blockers, "keeps", "keep")
        );
    }
    out
}

fn role_colour(t: &TablePlan) -> (&'static str, &'static str) {
    match t.role {
        Role::Root => ("#f4a261", "root"),
        Role::Distributed => ("#8ecae6", "distributed"),
        Role::Reference => ("#b7e4c7", "reference"),
        Role::Local => ("#e9ecef", "local"),
    }
}

fn dot_id(q: &QualifiedName) -> String {
    dot_string(&q.to_string())
}

/// Any text as a Graphviz double-quoted string.
fn dot_string(text: &str) -> String {
    let s = text.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{s}\"")
}

/// Graphviz: tables coloured by role, blocked ones with a red dashed border, the tenant
/// colocation group as a cluster, foreign keys as edges.
pub fn dot(p: &Plan) -> String {
    let mut out = String::from(
        "digraph colocate {\n  rankdir=LR;\n  node [shape=box, style=filled, fontname=\"Helvetica\"];\n",
    );
    let node = |t: &TablePlan| {
        let (fill, label) = role_colour(t);
        let extra = if t.blocked {
            ", color=\"#d62828\", penwidth=2, style=\"filled,dashed\""
        } else {
            ""
        };
        let blocked = if t.blocked { " BLOCKED" } else { "" };
        format!(
            "{} [fillcolor=\"{fill}\", tooltip=\"{label}{blocked}\"{extra}];",
            dot_id(&t.name)
        )
    };
    let in_group = |t: &TablePlan| matches!(t.role, Role::Root | Role::Distributed);
    if let Some(g) = p.groups.first() {
        let _ = writeln!(out, "  subgraph cluster_tenant {{");
        let _ = writeln!(
            out,
            "    label={};",
            dot_string(&format!("colocated with {}", g.anchor))
        );
        let _ = writeln!(out, "    style=rounded; color=\"#457b9d\";");
        for t in p.tables.iter().filter(|t| in_group(t)) {
            let _ = writeln!(out, "    {}", node(t));
        }
        let _ = writeln!(out, "  }}");
    }
    for t in p
        .tables
        .iter()
        .filter(|t| !in_group(t) || p.groups.is_empty())
    {
        let _ = writeln!(out, "  {}", node(t));
    }
    for (from, to, name) in &p.edges {
        let label = name.replace('\\', "\\\\").replace('"', "\\\"");
        let _ = writeln!(
            out,
            "  {} -> {} [tooltip=\"{label}\"];",
            dot_id(from),
            dot_id(to)
        );
    }
    out.push_str("}\n");
    out
}

/// Mermaid flowchart: ids are positional (t0, t1, ...) so any table name is safe.
pub fn mermaid(p: &Plan) -> String {
    let ids: BTreeMap<&QualifiedName, String> = p
        .tables
        .iter()
        .enumerate()
        .map(|(i, t)| (&t.name, format!("t{i}")))
        .collect();
    let label = |t: &TablePlan| {
        let name = t.name.to_string().replace('"', "#quot;");
        if t.blocked {
            format!("{}[\"{name} (blocked)\"]", ids[&t.name])
        } else {
            format!("{}[\"{name}\"]", ids[&t.name])
        }
    };
    let mut out = String::from("flowchart LR\n");
    let in_group = |t: &TablePlan| matches!(t.role, Role::Root | Role::Distributed);
    if let Some(g) = p.groups.first() {
        let title = format!("colocated with {}", g.anchor).replace('"', "#quot;");
        let _ = writeln!(out, "  subgraph tenant_group[\"{title}\"]");
        for t in p.tables.iter().filter(|t| in_group(t)) {
            let _ = writeln!(out, "    {}", label(t));
        }
        let _ = writeln!(out, "  end");
    }
    for t in p
        .tables
        .iter()
        .filter(|t| !in_group(t) || p.groups.is_empty())
    {
        let _ = writeln!(out, "  {}", label(t));
    }
    for (from, to, _) in &p.edges {
        if let (Some(a), Some(b)) = (ids.get(from), ids.get(to)) {
            let _ = writeln!(out, "  {a} --> {b}");
        }
    }
    for (class, fill) in [
        ("root", "#f4a261"),
        ("distributed", "#8ecae6"),
        ("reference", "#b7e4c7"),
        ("local", "#e9ecef"),
    ] {
        let _ = writeln!(out, "  classDef {class} fill:{fill}");
    }
    let _ = writeln!(
        out,
        "  classDef blocked stroke:#d62828,stroke-width:3px,stroke-dasharray:5"
    );
    for t in &p.tables {
        let (_, class) = role_colour(t);
        let _ = writeln!(out, "  class {} {class}", ids[&t.name]);
        if t.blocked {
            let _ = writeln!(out, "  class {} blocked", ids[&t.name]);
        }
    }
    out
}

/// The end of an apply run.
/// `apply --dry-run --format sql`: the statements apply would run, as a script, each after a
/// comment saying what it does (names made inert), then the journal repairs it would make.
pub fn apply_sql(r: &colocate_pg::apply::ApplyReport) -> String {
    let mut out = String::from("-- generated by colocate apply --dry-run --format sql\n");
    if r.steps.is_empty() && r.repaired.is_empty() {
        out.push_str("-- nothing to apply\n");
    }
    for s in &r.steps {
        let what = match &s.table {
            Some(t) => format!("step {}: {} {t}", s.index, s.kind.label()),
            None => format!("step {}: {}", s.index, s.kind.label()),
        };
        let _ = writeln!(out, "\n{}\n{}", comment(&what), s.sql);
    }
    for what in &r.repaired {
        let _ = writeln!(out, "{}", comment(what));
    }
    out
}

pub fn apply_human(r: &colocate_pg::apply::ApplyReport) {
    use colocate_pg::apply::CitusOutcome;
    if r.citus == CitusOutcome::Absent {
        println!("citus is not available on this server: nothing to apply (plain PostgreSQL)");
        if let Some(note) = r.note {
            anstream::println!("{} {note}", style::note());
        }
        return;
    }
    // Never "matches the plan" while tables the plan wants converted stay blocked, nor while
    // foreign keys do not hold.
    let blocked: std::collections::BTreeSet<&QualifiedName> =
        r.skipped.iter().map(|f| &f.table).collect();
    let unenforced = r.unenforced.len();
    let settled = if !blocked.is_empty() {
        format!(
            "{} blocked table{} stay{} as {} (`colocate plan` lists the blockers, their fixes and the decisions they need, ranked by what each unblocks)",
            blocked.len(),
            if blocked.len() == 1 { "" } else { "s" },
            if blocked.len() == 1 { "s" } else { "" },
            if blocked.len() == 1 {
                "it is"
            } else {
                "they are"
            }
        )
    } else if unenforced > 0 {
        format!(
            "{unenforced} foreign key{} not enforced (see the warnings; `colocate check` fails on {})",
            if unenforced == 1 { " is" } else { "s are" },
            if unenforced == 1 { "it" } else { "each" }
        )
    } else {
        "the database matches the plan".to_string()
    };
    if r.dry_run {
        if r.steps.is_empty() && r.repaired.is_empty() {
            println!("nothing to apply: {settled}");
        } else {
            println!(
                "-- apply --dry-run: {}, nothing changed",
                count(r.steps.len(), "statement")
            );
            for s in &r.steps {
                println!("{}", s.sql);
            }
            for what in &r.repaired {
                println!("{}", comment(what));
            }
        }
    } else if r.nothing_to_do() {
        println!("nothing to apply: {settled}; no DDL was run");
    } else {
        for s in &r.steps {
            let what = s.table.as_ref().map(|t| t.to_string()).unwrap_or_default();
            println!(
                "{:>4}. {:<26} {what}  ({:.1} ms)",
                s.index,
                s.kind.label(),
                s.elapsed_ms
            );
        }
        for what in &r.repaired {
            println!(
                "restored foreign key {what} from the journal (dropped by an interrupted run or a rolled-back step)"
            );
        }
        println!(
            "applied {} in {:.2} s ({:.2} s inside Citus functions)",
            count(r.steps.len(), "step"),
            r.total_ms / 1000.0,
            r.citus_ms / 1000.0
        );
        if r.citus == CitusOutcome::Created {
            println!("created the citus extension");
        }
        if let Some(v) = &r.verified {
            let rows = if v.rows_not_compared.is_empty() {
                format!(", row counts unchanged ({} rows)", v.rows)
            } else {
                String::new()
            };
            let enforced = if r.unenforced.is_empty() {
                " and enforced".to_string()
            } else {
                format!(" ({unenforced} not enforced, see the warnings)")
            };
            println!(
                "verified: {} as planned, {} present{enforced}{rows}",
                count(v.tables, "converted table"),
                count(v.foreign_keys, "foreign key")
            );
            if !v.rows_not_compared.is_empty() {
                let names: Vec<String> =
                    v.rows_not_compared.iter().map(|t| t.to_string()).collect();
                println!(
                    "row counts not compared for {} (an online run: the application keeps writing)",
                    names.join(", ")
                );
            }
        }
    }
    for what in &r.waiting {
        println!(
            "foreign key {what} waits in the journal: Citus refuses it between a plain table and a Citus table; it is restored once both are converted alike"
        );
    }
    if !r.skipped.is_empty() {
        eprintln!(
            "left as they are (--skip-blocked): {}",
            count(r.skipped.len(), "finding")
        );
        for f in &r.skipped {
            anstream::eprintln!("  [{}] {}", style::code(&f.code), f.message);
        }
    }
    for u in &r.unenforced {
        anstream::eprintln!("{} {}", style::warning(), unenforced_line(u));
    }
}

/// One key that does not hold, as apply's warnings say it.
fn unenforced_line(u: &UnenforcedKey) -> String {
    let key = inert(&u.key);
    match u.state {
        Unenforced::IntoDistributed => format!(
            "foreign key {key} on {} leads from a table that is not distributed into a distributed one: it checks only the coordinator's shell (it did before this run)",
            u.table
        ),
        Unenforced::NotValid => format!(
            "foreign key {key} on {} is NOT VALID: rows it never checked may break it",
            u.table
        ),
        Unenforced::Journaled(s) => format!(
            "foreign key {key} on {} is {} in the journal",
            u.table,
            s.as_str()
        ),
    }
}

pub fn undistribute_human(r: &colocate_pg::undistribute::UndistributeReport) {
    if !r.citus_installed {
        println!("citus is not installed in this database: nothing to undistribute");
        return;
    }
    if r.groups.is_empty() {
        for i in &r.identities {
            println!("restored identity column {i} (left by an interrupted run)");
        }
        if !r.properties.is_empty() {
            println!(
                "put back {} undistribute_table does not carry over (left by an interrupted run)",
                count(r.properties.len(), "thing")
            );
        }
        println!("nothing to undistribute: no Citus tables");
        return;
    }
    for g in &r.groups {
        let names: Vec<String> = g.tables.iter().map(|t| t.to_string()).collect();
        if r.dry_run {
            println!("{}  {}", g.sql, comment(&names.join(", ")));
        } else {
            println!(
                "undistributed {}  ({:.1} ms)",
                names.join(", "),
                g.elapsed_ms
            );
        }
    }
    for i in &r.identities {
        println!("restored identity column {i}");
    }
    if !r.properties.is_empty() {
        println!(
            "put back {} undistribute_table does not carry over (comments, NOT VALID checks, column options, rules, grants on views)",
            count(r.properties.len(), "thing")
        );
    }
    if !r.dry_run {
        let n: usize = r.groups.iter().map(|g| g.tables.len()).sum();
        println!(
            "{} {} local again; row counts and foreign keys unchanged ({})",
            count(n, "table"),
            verb(n, "is", "are"),
            count(r.rows as usize, "row")
        );
    }
}

/// What `check` found.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub citus_installed: bool,
    /// Why Citus is not installed, where the server could have it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
    pub converged: bool,
    pub tables: usize,
    pub drift: Vec<Drift>,
}

impl CheckReport {
    pub fn new(p: &Plan) -> CheckReport {
        let citus_installed = p.citus.installed.is_some();
        let drift = if citus_installed {
            p.drift()
        } else {
            Vec::new()
        };
        CheckReport {
            citus_installed,
            note: (!citus_installed && p.citus.not_preloaded)
                .then_some(colocate_core::schema::CITUS_NOT_PRELOADED),
            converged: citus_installed && drift.is_empty(),
            tables: p.tables.len(),
            drift,
        }
    }
}

pub fn check_human(r: &CheckReport) {
    if !r.citus_installed {
        println!("citus is not installed in this database: there is no topology to check");
        if let Some(note) = r.note {
            anstream::println!("{} {note}", style::note());
        }
        return;
    }
    if r.drift.is_empty() {
        println!("converged: all {} tables are placed as planned", r.tables);
        return;
    }
    println!("{} from the plan:", count(r.drift.len(), "difference"));
    for d in &r.drift {
        anstream::println!("  [{}] {}", style::code(&d.code), d.message);
        if let Some(fix) = &d.fix {
            for line in fix.lines() {
                println!("      {line}");
            }
        }
    }
    println!("\nrun `colocate plan` for the whole picture");
}

/// GitHub Actions annotations: `::error title=...::message` (newlines and % escaped).
pub fn check_github(r: &CheckReport, require_citus: bool) {
    let esc = |s: &str| {
        s.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    };
    if !r.citus_installed {
        let level = if require_citus { "error" } else { "notice" };
        let why = r.note.map(|n| format!(": {n}")).unwrap_or_default();
        println!(
            "::{level} title=colocate check::citus is not installed in this database{}",
            esc(&why)
        );
        return;
    }
    for d in &r.drift {
        println!(
            "::error title=colocate check ({})::{}",
            esc(d.code.as_str()),
            esc(&d.message)
        );
    }
    if r.drift.is_empty() {
        println!(
            "::notice title=colocate check::converged: all {} tables placed as planned",
            r.tables
        );
    }
}

#[cfg(test)]
mod tests {
    use colocate_core::distribution::{DistributionConfig, Forced};
    use colocate_core::plan::plan;
    use colocate_core::schema::{
        CitusKind, CitusState, CitusTable, Column, FkAction, ForeignKey, Key, KeyKind, Schema,
        Table, Trigger,
    };

    use super::*;

    fn t(name: &str, cols: &[(&str, &str)], pk: &[&str]) -> Table {
        let q = QualifiedName::parse(name, "public");
        let mut t = Table::new(&q.schema, &q.name);
        t.columns = cols
            .iter()
            .map(|(n, ty)| Column::new(n, ty, true))
            .collect();
        t.keys.push(Key {
            name: format!("{}_pkey", q.name),
            kind: KeyKind::PrimaryKey,
            columns: pk.iter().map(|c| Some(c.to_string())).collect(),
            predicate: None,
            definition: format!("PRIMARY KEY ({})", pk.join(", ")),
        });
        t.row_estimate = 10;
        t
    }

    fn fk(t: &mut Table, name: &str, cols: &[&str], target: &str, rcols: &[&str]) {
        t.foreign_keys.push(ForeignKey {
            name: name.into(),
            columns: cols.iter().map(|c| c.to_string()).collect(),
            ref_table: QualifiedName::parse(target, "public"),
            ref_columns: rcols.iter().map(|c| c.to_string()).collect(),
            on_delete: FkAction::NoAction,
            on_update: FkAction::NoAction,
            on_delete_columns: vec![],
            validated: true,
            definition: format!(
                "FOREIGN KEY ({}) REFERENCES {target}({})",
                cols.join(", "),
                rcols.join(", ")
            ),
        });
    }

    /// A small schema with every role, a blocker, a table held back by a blocked one, a cycle,
    /// a conflict and an awkward name.
    fn sample() -> Plan {
        let tenant = [("tenant", "uuid"), ("id", "bigint")];
        let mut s = Schema {
            citus: CitusState {
                available: true,
                not_preloaded: false,
                installed: Some("13.2-1".into()),
                workers: 2,
            },
            ..Default::default()
        };
        let mut root = t("tenants", &[("tenant", "uuid")], &["tenant"]);
        root.citus = Some(CitusTable {
            kind: CitusKind::Distributed,
            column: Some("tenant".into()),
            colocation_id: 1,
            shard_count: Some(32),
        });
        s.add(root);
        let mut users = t(
            "users",
            &[("tenant", "uuid"), ("id", "bigint"), ("team_id", "bigint")],
            &["tenant", "id"],
        );
        fk(
            &mut users,
            "users_team_fkey",
            &["tenant", "team_id"],
            "teams",
            &["tenant", "id"],
        );
        s.add(users);
        let mut teams = t(
            "teams",
            &[("tenant", "uuid"), ("id", "bigint"), ("lead_id", "bigint")],
            &["tenant", "id"],
        );
        fk(
            &mut teams,
            "teams_lead_fkey",
            &["tenant", "lead_id"],
            "users",
            &["tenant", "id"],
        );
        s.add(teams);
        let mut tickets = t(
            "tickets",
            &[("tenant", "uuid"), ("id", "bigint"), ("status", "int")],
            &["id"],
        );
        fk(
            &mut tickets,
            "tickets_status_fkey",
            &["status"],
            "statuses",
            &["id"],
        );
        tickets.triggers.push(Trigger {
            name: "touch".into(),
            definition: "CREATE TRIGGER touch ...".into(),
        });
        s.add(tickets);
        s.add(t("statuses", &[("id", "int")], &["id"]));
        let mut lines = t(
            "\"Billing Ops\".\"Invoice Lines\"",
            &tenant,
            &["tenant", "id"],
        );
        lines.citus = Some(CitusTable {
            kind: CitusKind::Distributed,
            column: Some("id".into()),
            colocation_id: 4,
            shard_count: Some(32),
        });
        s.add(lines);
        s.add(t("schema_migrations", &[("version", "text")], &["version"]));
        // A blocked table (a trigger) keeping a key to a tenant table: projects waits for it.
        s.add(t("projects", &tenant, &["tenant", "id"]));
        let mut exports = t(
            "project_exports",
            &[
                ("tenant", "uuid"),
                ("id", "bigint"),
                ("project_id", "bigint"),
            ],
            &["tenant", "id"],
        );
        fk(
            &mut exports,
            "project_exports_project_fkey",
            &["tenant", "project_id"],
            "projects",
            &["tenant", "id"],
        );
        exports.triggers.push(Trigger {
            name: "stamp".into(),
            definition: "CREATE TRIGGER stamp ...".into(),
        });
        s.add(exports);
        // A key on a surrogate id: widened without a decision.
        let mut notes = t("notes", &tenant, &["id"]);
        notes.columns[1].identity = Some('d');
        s.add(notes);
        let config = DistributionConfig {
            local: vec![Forced::WithReason {
                table: "schema_migrations".into(),
                reason: Some("the old runner's history".into()),
            }],
            // One trigger decided for its table; the other stays an open decision.
            decisions: colocate_core::decision::Decisions {
                by_kind: Default::default(),
                except: vec![colocate_core::decision::Exception {
                    kind: colocate_core::decision::DecisionKind::Triggers,
                    table: "project_exports".into(),
                    constraint: None,
                    choice: colocate_core::decision::Choice::Drop,
                    reason: "the export job stamps its rows itself".into(),
                }],
            },
            ..Default::default()
        };
        plan(&s, &config)
    }

    #[test]
    fn human_snapshot() {
        insta::assert_snapshot!(human_text(&sample()));
    }

    #[test]
    fn markdown_snapshot() {
        insta::assert_snapshot!(crate::render::markdown::markdown(&sample()));
    }

    #[test]
    fn sql_snapshot() {
        insta::assert_snapshot!(sql(&sample()));
    }

    #[test]
    fn dot_snapshot() {
        insta::assert_snapshot!(dot(&sample()));
    }

    #[test]
    fn mermaid_snapshot() {
        insta::assert_snapshot!(mermaid(&sample()));
    }

    #[test]
    fn json_snapshot() {
        insta::assert_json_snapshot!(sample());
    }

    #[test]
    fn check_json_snapshot() {
        insta::assert_json_snapshot!(CheckReport::new(&sample()));
    }
}
