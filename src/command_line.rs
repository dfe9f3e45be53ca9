//! The `parpipe` command line: parses and validates arguments into the
//! library's configuration, runs, prints the report. No logic lives here.
//!
//! It is a private module of the library (feature `cli`), so that it may
//! use what the library keeps private (`parpipe bench`, the progress bar,
//! the `logs` workload's internals); `src/bin/parpipe.rs` only calls
//! [`main`]. It names the library `parpipe::…`, as any program would.
//!
//! This file keeps the entry point, logging, [`Failure`] (an error and its
//! exit code) and the dispatch; each subcommand lives in `command_line/`:
//! `cli.rs` (the clap definitions), `args.rs` (`run`'s arguments into the
//! library's configuration), `run.rs`, `shutdown.rs` (its signals),
//! `generate.rs`, `bench.rs` and `worker.rs`.

mod args;
mod bench;
mod cli;
mod generate;
mod run;
mod shutdown;
mod worker;

use clap::Parser;
use cli::{Cli, Command};

use std::io::IsTerminal;
use std::process::ExitCode;

/// A failure and the exit code it maps to.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl From<parpipe::outputs::OutputError> for Failure {
    fn from(error: parpipe::outputs::OutputError) -> Self {
        // Its message already ends with the cause: not repeated as a chain.
        Failure {
            code: 1,
            error: anyhow::anyhow!("{error}"),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure { code: 1, error }
    }
}

fn usage(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: 2,
        error: error.into(),
    }
}

/// The `parpipe` program (feature `cli`): parses the process's arguments,
/// runs what they ask for, and returns the exit code (0 done, 1 failed, 2 a
/// usage error, 128 + N interrupted by signal N). The `parpipe` binary is
/// `fn main() -> ExitCode { parpipe::cli_main() }`.
pub fn main() -> ExitCode {
    parpipe::allocator::tune_for_batches();
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("parpipe: error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Run(args) => run::run_job(args, cli.quiet),
        Command::Generate(args) => generate::generate(args),
        Command::Worker(args) => worker::worker(args),
        Command::Bench(args) => bench::bench(args, cli.quiet),
        Command::BenchBaseline(args) => bench::bench_baseline(args),
    }
}
