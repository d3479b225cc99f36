//! How the migration commands read: `migrate`, `rollback`, `baseline` and `status` as tables.

use colocate_core::history::{Status, StatusReport};
use colocate_core::words::{count, verb};
use colocate_pg::baseline::BaselineReport;
use colocate_pg::runner::RunItem;
use colocate_pg::{MigrateReport, RollbackReport};

use super::{print_table, table};
use crate::style;

fn dry_run_listing(verb: &str, items: &[RunItem]) {
    if items.is_empty() {
        println!("nothing to {verb}");
        return;
    }
    println!(
        "would {verb} {} (dry run, nothing changed):",
        count(items.len(), "migration")
    );
    for i in items {
        let tx = if i.transaction {
            ""
        } else {
            " [outside a transaction]"
        };
        let resume = if i.resumed_at > 0 {
            format!(" [resuming at statement {}]", i.resumed_at + 1)
        } else {
            String::new()
        };
        println!("\n-- {}{tx}{resume}", i.file);
        if let Some(sql) = &i.sql {
            println!("{sql}");
        }
    }
}

/// What a declarative step did, under its line.
fn notes(i: &RunItem) {
    for n in &i.notes {
        println!("          {n}");
    }
}

pub fn migrate(r: &MigrateReport) {
    if r.dry_run {
        return dry_run_listing("apply", &r.applied);
    }
    if r.applied.is_empty() {
        println!("nothing to apply: the database is up to date");
        return;
    }
    for i in &r.applied {
        println!("applied   {}  ({:.1} ms)", i.file, i.duration_ms);
        notes(i);
    }
    let total: f64 = r.applied.iter().map(|i| i.duration_ms).sum();
    println!(
        "batch {}: {} applied in {:.1} ms",
        r.batch.unwrap_or_default(),
        count(r.applied.len(), "migration"),
        total
    );
}

/// On stderr: applied migrations whose files were edited since they ran. They are not run
/// again; the history no longer says what the database holds.
pub fn changed_warning(files: &[String]) {
    if files.is_empty() {
        return;
    }
    let (what, since) = match files.len() {
        1 => ("1 applied migration has".to_string(), "it ran (its file's checksum differs from the one recorded), and is not run again"),
        n => (format!("{n} applied migrations have"), "they ran (their files' checksums differ from the ones recorded), and are not run again"),
    };
    anstream::eprintln!(
        "{} {what} changed since {since}: {}",
        style::warning(),
        files.join(", ")
    );
    anstream::eprintln!("{} undo the edit and put the change in a new migration (`colocate new`); `colocate status` marks such files `changed`", style::hint());
}

pub fn rollback(r: &RollbackReport) {
    if r.dry_run {
        return dry_run_listing("roll back", &r.reverted);
    }
    if r.reverted.is_empty() {
        println!("nothing to roll back");
        return;
    }
    for i in &r.reverted {
        println!("reverted  {}  ({:.1} ms)", i.file, i.duration_ms);
        notes(i);
    }
    println!("{} rolled back", count(r.reverted.len(), "migration"));
}

pub fn baseline(r: &BaselineReport) {
    for i in &r.marked {
        println!("marked applied  {}", i.file);
    }
    println!(
        "{} marked applied{}, {} already recorded",
        count(r.marked.len(), "migration"),
        r.batch
            .map(|b| format!(" as batch {b}"))
            .unwrap_or_default(),
        r.already_recorded
    );
    if !r.unmatched.is_empty() {
        anstream::eprintln!(
            "{} {} in the source table {} no migration file: {}",
            style::warning(),
            count(r.unmatched.len(), "name"),
            verb(r.unmatched.len(), "matches", "match"),
            r.unmatched.join(", ")
        );
    }
}

pub fn status(r: &StatusReport) {
    if r.entries.is_empty() {
        println!("no migrations");
        return;
    }
    let mut t = table(&[
        "VERSION",
        "NAME",
        "STATUS",
        "BATCH",
        "APPLIED AT",
        "DIRECTORY",
    ]);
    for e in &r.entries {
        let status = match (e.status, e.progress) {
            (Status::Partial | Status::Reverting, Some((done, total))) => {
                format!("{} ({done}/{total} statements)", e.status.label())
            }
            _ => e.status.label().to_string(),
        };
        t.add_row(vec![
            e.version.to_string(),
            e.name.clone(),
            status,
            e.batch.map(|b| b.to_string()).unwrap_or_default(),
            e.applied_at.clone().unwrap_or_default(),
            e.dir.clone(),
        ]);
    }
    print_table(&t);
    let c = &r.counts;
    let mut parts = vec![
        format!("{} applied", c.applied),
        format!("{} pending", c.pending),
    ];
    for (n, label) in [
        (c.changed, "changed since applied"),
        (c.missing, "missing locally"),
        (c.partial, "stopped part way"),
        (c.reverting, "half rolled back"),
        (c.empty, "empty (write the up part before running migrate)"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {label}"));
        }
    }
    println!("\n{}", parts.join(", "));
}
