//! The `colocate` binary: command-line definitions, configuration discovery, rendering and exit
//! codes. It sends no SQL itself: everything that touches the server is in `colocate-pg`, every
//! decision in `colocate-core`.

mod cli;
mod commands;
mod config;
mod context;
mod errors;
mod progress;
mod render;
mod style;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use commands::{apply, demo, generate, init, migrate, plan};
use context::{EXIT_ERROR, EXIT_OK};

fn main() -> ExitCode {
    // Like every Unix filter: a closed pipe (`colocate plan | head`) ends the program quietly
    // instead of a panic on the next print.
    #[cfg(unix)]
    // SAFETY: restoring the default action of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { EXIT_OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            errors::print(&err);
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let g = &cli.global;
    match &cli.command {
        Command::Migrate(a) => migrate::migrate(g, a),
        Command::Rollback(a) => migrate::rollback(g, a),
        Command::Status(a) => migrate::status(g, a),
        Command::New(a) => migrate::new(g, a),
        Command::Init(a) => init::run(g, a),
        Command::Baseline(a) => migrate::baseline(g, a),
        Command::Plan(a) => plan::plan(g, a),
        Command::Check(a) => plan::check(g, a),
        Command::Apply(a) => apply::apply(g, a),
        Command::Undistribute(a) => apply::undistribute(g, a),
        Command::Generate(a) => generate::run(g, a),
        Command::Demo(a) => demo::run(g, a),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "colocate",
                &mut std::io::stdout(),
            );
            Ok(EXIT_OK)
        }
        Command::Man(a) => man(a),
    }
}

/// `colocate man`: the page of the tool or of one command, or every page into a directory.
fn man(a: &cli::ManArgs) -> anyhow::Result<u8> {
    use clap::CommandFactory;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        clap_mangen::generate_to(cmd, dir).map_err(|e| {
            anyhow::anyhow!("cannot write the man pages into {}: {e}", dir.display())
        })?;
        println!("wrote the man pages into {}", dir.display());
        return Ok(EXIT_OK);
    }
    let page = match &a.command {
        None => cmd,
        Some(name) => match cmd.find_subcommand(name) {
            Some(sub) => sub.clone(),
            None => anyhow::bail!(config::ConfigError {
                message: format!("colocate has no command {name:?}"),
                hint: Some(format!(
                    "one of: {}",
                    cmd.get_subcommands()
                        .map(|c| c.get_name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }),
        },
    };
    clap_mangen::Man::new(page).render(&mut std::io::stdout())?;
    Ok(EXIT_OK)
}
