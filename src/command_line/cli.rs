//! The `parpipe` binary's command-line definitions (clap): the
//! subcommands and their flags, as the user types them, each numeric flag
//! with the range the program can honour (a value outside it is a usage
//! error naming the flag and the range, exit 2): the top-level command,
//! the limits and value parsers every flag shares, `worker` and
//! `generate` here; `run`'s flags in `cli/run.rs`, the benches' in
//! `cli/bench.rs`. `args.rs` and the other subcommand modules turn them
//! into the library's configuration.

mod bench;
mod run;

pub(crate) use bench::{BaselineArgs, BaselineKindArg, BenchArgs, BenchWorkloadArg};
pub(crate) use run::RunArgs;

use clap::{Args, Parser, Subcommand, ValueEnum};
use parpipe::Mode;
use parpipe::Replicas;
use std::path::PathBuf;

/// Most records a run may generate (logs lines, matrix tasks): some 28
/// hours of logs at 10 M lines/s, and far from any counter's overflow.
pub(crate) const MAX_RECORDS: u64 = 1_000_000_000_000;
/// Largest `--batch-size`: batches are allocated (and, in multiprocess
/// mode, framed) whole.
pub(crate) const MAX_BATCH: u64 = 1 << 20;
/// Largest `--queue-depth`: each actor's reorder buffer allocates its slots.
pub(crate) const MAX_QUEUE_DEPTH: u64 = 1024;
/// Largest `--workers`: each one is a process with its sockets.
pub(crate) const MAX_WORKERS: u64 = 1024;
/// Largest `--inflight`: chunks held per worker, in memory on both sides.
pub(crate) const MAX_INFLIGHT: u64 = 256;
/// Largest `--matrix-size`: three n×n f64 matrices per task (96 MiB at 2048).
pub(crate) const MAX_MATRIX: u64 = 2048;
/// Smallest `--max-frame`: room for any handshake or control message.
pub(crate) const MIN_FRAME: u64 = 1024;
/// Largest `--max-frame`: a frame's length field is a u32.
pub(crate) const MAX_FRAME: u64 = u32::MAX as u64;
/// Largest `--repeat` of `parpipe bench`.
pub(crate) const MAX_REPEAT: u64 = 1000;
/// Longest timeout, in seconds (a day): deadlines stay far from overflow.
pub(crate) const MAX_SECS: f64 = 86_400.0;
/// Most seconds `--linger` keeps the dashboard up after a run.
pub(crate) const MAX_LINGER: f64 = 3600.0;
/// `--linger` with `--dashboard` when not given: one scrape at
/// Prometheus's usual 15 s interval falls inside it.
pub(crate) const DEFAULT_LINGER: f64 = 16.0;

/// A parser for an integer flag in `lo..=hi`; the error states the range
/// (clap adds the flag and the value).
fn int_in<T>(lo: u64, hi: u64) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync
where
    T: TryFrom<u64>,
{
    move |text: &str| {
        let range = || format!("expected an integer from {lo} to {hi}");
        let n: u64 = text.trim().parse().map_err(|_| range())?;
        if !(lo..=hi).contains(&n) {
            return Err(range());
        }
        T::try_from(n).map_err(|_| range())
    }
}

/// A parser for `--connect`'s HOST:PORT: a host (a name, an IPv4 address
/// or a bracketed IPv6 one) and a port from 1 to 65535. The name is
/// resolved later; only its form is checked here.
fn host_port(text: &str) -> Result<String, String> {
    let form = || "expected HOST:PORT with a port from 1 to 65535".to_string();
    let (host, port) = text.rsplit_once(':').ok_or_else(form)?;
    let bracketed = host.starts_with('[') && host.ends_with(']') && host.len() > 2;
    if host.is_empty() || (host.contains(':') && !bracketed) {
        return Err(form());
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(text.to_string()),
        _ => Err(form()),
    }
}

/// A parser for a number of seconds in `lo..=hi`.
/// A share from 0 to 1.
fn ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("'{s}' is not a ratio from 0 to 1 (0.9 is 90 %)")),
    }
}

fn secs_in(lo: f64, hi: f64) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync {
    move |text: &str| {
        let range = || format!("expected a number of seconds from {lo} to {hi}");
        match text.trim().parse::<f64>() {
            Ok(t) if (lo..=hi).contains(&t) => Ok(t),
            _ => Err(range()),
        }
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "parpipe",
    version,
    about = "Pipeline-parallel data processing: one pipeline, three modes",
    long_about = "Runs one pipeline (source → stages → aggregate → sink) in serial, pipeline \
                  or multiprocess mode with byte-identical results. Built in: `logs` (web \
                  access-log analytics, the default) and `matrix`.",
    after_help = "Examples:\n  parpipe run --input access.log\n  parpipe run --mode multiprocess \
                  --workers 4 --input access.log.gz\n  parpipe run --follow --input \
                  /var/log/nginx/access.log --dashboard\n  parpipe worker --connect \
                  10.0.0.1:7070 --token-file token\n\nOutputs go to parpipe-out/ (summary.json, \
                  report.json). Exit codes: 0 success, 1 the run failed, 2 usage error. The \
                  rules the results follow: docs/logs-workload.md in the repository."
)]
pub(crate) struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    /// Only errors on stderr; no report table.
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

// Parsed once per process: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run a workload and write its outputs and report.
    #[command(allow_negative_numbers = true)]
    Run(RunArgs),
    /// Write generated access-log lines (the lines `run` makes without --input).
    #[command(allow_negative_numbers = true)]
    Generate(GenerateArgs),
    /// Join a multiprocess job as a worker (the token comes from
    /// --token-file or the PARPIPE_TOKEN environment variable).
    #[command(allow_negative_numbers = true)]
    Worker(WorkerArgs),
    /// Benchmark every mode against a plain loop and a rayon baseline.
    #[command(allow_negative_numbers = true)]
    Bench(BenchArgs),
    /// Run one bench baseline (used by `parpipe bench` as a child process).
    #[command(hide = true)]
    BenchBaseline(BaselineArgs),
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WorkloadArg {
    Logs,
    Matrix,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ModeArg {
    Serial,
    Pipeline,
    Multiprocess,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Mode {
        match m {
            ModeArg::Serial => Mode::Serial,
            ModeArg::Pipeline => Mode::Pipelined,
            ModeArg::Multiprocess => Mode::Multiprocess,
        }
    }
}

#[derive(Args, Debug)]
pub(crate) struct WorkerArgs {
    /// The coordinator, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", value_parser = host_port)]
    pub(crate) connect: String,
    /// File holding the shared token (else PARPIPE_TOKEN).
    #[arg(long, value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// Serve one job after another instead of exiting after the first.
    #[arg(long)]
    pub(crate) keep_alive: bool,
    /// Take a refused connection to mean the coordinator has finished its
    /// job and exit 0, for launchers that start workers once it listens
    /// (a worker arriving after the work is done then ends cleanly).
    #[arg(long, conflicts_with = "keep_alive")]
    pub(crate) done_if_refused: bool,
    /// Largest frame accepted or sent, in bytes, 1024 to 4294967295.
    #[arg(long, value_name = "BYTES", default_value_t = parpipe::DEFAULT_MAX_FRAME,
          value_parser = int_in::<usize>(MIN_FRAME, MAX_FRAME))]
    pub(crate) max_frame: usize,
    /// Seconds to keep trying to connect the first time (0: forever), 0 to
    /// 86400; a keep-alive worker then waits for each next coordinator
    /// without a limit.
    #[arg(long, default_value_t = 30.0, value_name = "SECS", value_parser = secs_in(0.0, MAX_SECS))]
    pub(crate) connect_timeout: f64,
    /// Chunks processed at once (default: the machine's cores), 1 to 256,
    /// each by a child process of this worker (or a thread, in a process
    /// that already has threads); the coordinator gives this worker that
    /// many times `--inflight` credits.
    #[arg(long, value_parser = int_in::<usize>(1, parpipe::protocol::MAX_WORKER_THREADS as u64))]
    pub(crate) threads: Option<usize>,
    /// A directory whose files this worker may read its chunks from itself
    /// (repeatable): the coordinator then sends byte ranges of inputs under
    /// it (same path on both machines) instead of the bytes.
    #[arg(long, value_name = "DIR")]
    pub(crate) allow_read: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct GenerateArgs {
    /// Number of lines, 0 to 10^12.
    #[arg(long, value_parser = int_in::<u64>(0, MAX_RECORDS))]
    pub(crate) records: u64,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Output file (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}
