//! The command line, as clap sees it. `--help` text is the first documentation users read.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use colocate_core::MigrationId;

#[derive(Debug, Parser)]
#[command(
    name = "colocate",
    version = concat!(env!("CARGO_PKG_VERSION"), " (git ", env!("COLOCATE_GIT_REVISION"), ")"),
    about = "Move a multi-tenant PostgreSQL schema onto Citus and keep it there.",
    long_about = "Move a multi-tenant PostgreSQL schema onto Citus and keep it there.\n\n\
        colocate runs SQL migrations merged from several directories in timestamp order, \
        tracked in a history table with checksums and rollback.\n\n\
        Progress goes to stderr: a progress bar on a terminal, plain lines elsewhere, none with \
        --quiet. Colour follows NO_COLOR, CLICOLOR and CLICOLOR_FORCE.\n\n\
        Exit codes: 0 ok, 1 findings (pending or changed migrations with --check), 2 error."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Database to work on: a libpq URL or key=value string. Unset parts come from PGHOST,
    /// PGPORT, PGUSER, PGPASSWORD and PGDATABASE. Printed without its password.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Migration directory (repeatable); replaces `migration_dirs` from colocate.toml.
    #[arg(long = "dir", value_name = "DIR", global = true)]
    pub dirs: Vec<PathBuf>,

    /// Configuration file [default: the nearest colocate.toml up from the working directory].
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    /// Show progress as plain lines on a terminal too, instead of the progress bar (off a
    /// terminal the lines are shown anyway).
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// Show no progress: neither the progress bar on a terminal nor the lines elsewhere.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Answer yes to confirmations (needed for destructive steps when not on a terminal).
    #[arg(long, global = true)]
    pub yes: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations from every directory, merged by version, as one batch.
    Migrate(MigrateArgs),
    /// Undo the last batch (or --steps N, or --to VERSION) with each migration's down part.
    Rollback(RollbackArgs),
    /// List every migration: applied, pending, changed since applied, missing locally, partial.
    Status(StatusArgs),
    /// Create an empty timestamped migration file.
    New(NewArgs),
    /// Write a first, commented colocate.toml: the migration directories found here and, given a
    /// database, the root table and tenant columns its schema shows.
    Init(InitArgs),
    /// Record migrations another runner already applied, so adopting colocate re-runs nothing.
    Baseline(BaselineArgs),
    /// Read the live schema and print the distribution plan: every table's role, column and
    /// colocation, each blocker with the SQL that fixes it, and the ordered steps.
    Plan(PlanArgs),
    /// CI gate: exit 1 when the live Citus topology differs from the plan.
    Check(CheckArgs),
    /// Converge the database to the plan: create the extension, reference tables, then the
    /// distributed tables in dependency order; crash-safe and idempotent.
    Apply(ApplyArgs),
    /// Turn Citus tables back into plain local tables (data and foreign keys kept), one
    /// foreign-key-connected group at a time.
    Undistribute(UndistributeArgs),
    /// Write the plan as a migration set: the extension, reference tables, the root, then the
    /// distributed tables by dependency layer, each idempotent with a down part.
    Generate(GenerateArgs),
    /// Start a throwaway PostgreSQL (Citus when installed), run the example application's merged
    /// chain, load sample data, and show status, colocation groups, row placement and check.
    Demo(DemoArgs),
    /// Print a shell completion script (e.g. `colocate completions bash > /etc/bash_completion.d/colocate`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from this command line's definition; with --out,
    /// write colocate.1 and one colocate-COMMAND.1 page per command into a directory.
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Write over an existing colocate.toml.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Print this command's page (colocate-COMMAND(1)) instead of colocate(1).
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
    /// Write every page into this directory (created if needed), e.g. /usr/local/share/man/man1.
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub out: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// How long to wait for another run's migration lock, with its unit (30s, 500ms, 2m).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Print what would run, with its SQL, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply pending migrations up to and including this version.
    #[arg(long, value_name = "VERSION")]
    pub target: Option<MigrationId>,
    /// Run pending migrations older than the newest applied one (refused otherwise).
    #[arg(long)]
    pub allow_out_of_order: bool,
    #[command(flatten)]
    pub lock: LockArgs,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Undo the newest N migrations instead of the last batch.
    #[arg(long, value_name = "N", conflicts_with = "to")]
    pub steps: Option<usize>,
    /// Undo every migration applied after VERSION (VERSION stays applied); 0 undoes all.
    #[arg(long, value_name = "VERSION", value_parser = parse_rollback_target)]
    pub to: Option<RollbackTo>,
    /// Print what would be undone, with its SQL, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub lock: LockArgs,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy)]
pub enum RollbackTo {
    Zero,
    Version(MigrationId),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Exit 1 when anything is pending, changed since applied, stopped part way, or missing
    /// (recorded as applied, but in none of the directories: often a directory left out).
    #[arg(long)]
    pub check: bool,
    /// With --check: do not fail on missing files (a chain whose old files were removed on
    /// purpose, e.g. squashed into a baseline).
    #[arg(long, requires = "check")]
    pub allow_missing: bool,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// What the migration does, e.g. add_invoice_due_date (made snake_case).
    pub name: String,
    /// Directory to create it in [default: the only configured one].
    #[arg(long = "in", value_name = "DIR")]
    pub in_dir: Option<PathBuf>,
    /// Write `transaction:false` sections (for CREATE INDEX CONCURRENTLY, Citus functions).
    #[arg(long)]
    pub no_transaction: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["from_table", "to"])))]
pub struct BaselineArgs {
    /// Table of another runner whose rows name applied migrations (e.g. knex_migrations).
    #[arg(long, value_name = "TABLE")]
    pub from_table: Option<String>,
    /// Column of --from-table holding names that start with the version.
    #[arg(
        long,
        value_name = "COLUMN",
        default_value = "name",
        requires = "from_table"
    )]
    pub column: String,
    /// Mark every migration up to and including VERSION as applied.
    #[arg(long, value_name = "VERSION")]
    pub to: Option<MigrationId>,
    #[command(flatten)]
    pub lock: LockArgs,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// Tables grouped by role, then blockers, then the ordered steps.
    Human,
    /// The plan as data (documented in docs/cli.md).
    Json,
    /// The exact statements `apply` would run, in order.
    Sql,
    /// Graphviz: the foreign-key graph coloured by role, colocation groups as clusters.
    Dot,
    /// Mermaid flowchart of the same graph.
    Mermaid,
    /// For a pull-request comment: the summary, blocked tables, findings with their fixes and
    /// the steps, names escaped.
    Markdown,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[arg(long, value_enum, default_value_t = PlanFormat::Human)]
    pub format: PlanFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    Human,
    Json,
    /// GitHub Actions workflow annotations (::error ...).
    Github,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Fail (exit 1) when the database has no Citus extension, instead of passing with a note.
    #[arg(long)]
    pub require_citus: bool,
    #[arg(long, value_enum, default_value_t = CheckFormat::Human)]
    pub format: CheckFormat,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Print exactly the statements apply would run, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Distribute large tables with create_distributed_table_concurrently so writes continue
    /// (their foreign keys are journaled for the copy and restored, validated, as soon as Citus
    /// accepts them again).
    #[arg(long)]
    pub online: bool,
    /// With --online: tables estimated above this many rows are distributed concurrently.
    #[arg(long, value_name = "ROWS", default_value_t = 100_000,
          value_parser = clap::value_parser!(i64).range(0..))]
    pub online_threshold: i64,
    /// Leave blocked and conflicting tables as they are, converge the rest, and report them.
    #[arg(long)]
    pub skip_blocked: bool,
    #[command(flatten)]
    pub lock: LockArgs,
    /// `json` prints one JSON object per step, then a summary object; `sql` (with --dry-run)
    /// prints the statements as a script, each after a comment saying what it does.
    #[arg(long, value_enum, default_value_t = ApplyFormat::Human)]
    pub format: ApplyFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApplyFormat {
    Human,
    Json,
    /// Only with --dry-run.
    Sql,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["tables", "all"])))]
pub struct UndistributeArgs {
    /// Tables to undistribute (`name` or `schema.name`).
    #[arg(value_name = "TABLE")]
    pub tables: Vec<String>,
    /// Every Citus table in the database.
    #[arg(long)]
    pub all: bool,
    /// Also undistribute tables joined to the named ones by foreign keys.
    #[arg(long)]
    pub cascade: bool,
    /// Print the statements and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub lock: LockArgs,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GenerateFormat {
    /// Declarative step files that `colocate migrate` runs through the apply engine.
    Toml,
    /// dbmate `.sql` files of guarded, idempotent SQL, for any runner.
    Sql,
    /// knex `.cjs` migrations (`transaction: false`) raising the same SQL.
    Knex,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Directory to write into (created if missing; an existing file is never overwritten).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t = GenerateFormat::Toml)]
    pub format: GenerateFormat,
    /// At most N tables per distribution file, in dependency order, instead of one file per
    /// dependency layer (the tables of a foreign-key cycle always share a file).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub tables_per_file: Option<u32>,
    /// Start with the blockers' automatic fixes (keys rebuilt with the tenant column, foreign
    /// keys re-created with it) and include the tables they unblock; fixes that need a decision
    /// are written as comments.
    #[arg(long)]
    pub with_fixes: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Leave the server running and print the URL to connect to.
    #[arg(long)]
    pub keep: bool,
    /// With Citus installed: start this many workers on loopback ports beside the coordinator
    /// (0: the coordinator holds the shards itself).
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u16).range(0..=MAX_DEMO_WORKERS))]
    pub workers: u16,
}

/// PostgreSQL keeps `lock_timeout` as whole milliseconds in a 32-bit integer.
const MAX_TIMEOUT_MS: f64 = i32::MAX as f64;

/// More workers than this on one machine demonstrate nothing but port exhaustion.
const MAX_DEMO_WORKERS: i64 = 16;

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        // A bare number is ambiguous (seconds? milliseconds, as the server reads it?).
        None => return Err(format!("'{s}' has no unit (write {s}s, {s}ms or {s}m)")),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (try 30s, 500ms, 2m)"))?;
    let ms = match unit {
        "ms" => n,
        "s" => n * 1000.0,
        "m" | "min" => n * 60_000.0,
        _ => return Err(format!("unknown unit '{unit}' in '{s}' (use ms, s or m)")),
    };
    if !ms.is_finite() || ms > MAX_TIMEOUT_MS {
        return Err(format!(
            "'{s}' is longer than the server allows (at most {}ms, about 24 days)",
            MAX_TIMEOUT_MS as i64
        ));
    }
    Ok(Duration::from_secs_f64(ms / 1000.0))
}

fn parse_rollback_target(s: &str) -> Result<RollbackTo, String> {
    if s == "0" {
        return Ok(RollbackTo::Zero);
    }
    s.parse::<MigrationId>()
        .map(RollbackTo::Version)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("5").unwrap_err().contains("no unit"));
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn extreme_durations_are_refused_not_panics() {
        for s in [
            "100000000000000000000s",
            "99999999999999999999999999999999999999999999ms",
            &"9".repeat(400),
            "2147484s",
            "25days",
            ".",
            "1.2.3s",
            "",
            "-1s",
        ] {
            assert!(parse_duration(s).is_err(), "{s:?} was accepted");
        }
        assert_eq!(
            parse_duration("2147483647ms").unwrap(),
            Duration::from_millis(2_147_483_647)
        );
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
