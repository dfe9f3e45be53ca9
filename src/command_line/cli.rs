//! The `parpipe` binary's command-line definitions (clap): the
//! subcommands and their flags, as the user types them, each numeric flag
//! with the range the program can honour (a value outside it is a usage
//! error naming the flag and the range, exit 2). `args.rs` and the
//! other subcommand modules turn them into the library's configuration.

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
pub(crate) enum BenchWorkloadArg {
    Logs,
    Matrix,
    All,
}

#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    /// Workload to benchmark (`all`: every workload this build can run).
    #[arg(long, value_enum, default_value_t = BenchWorkloadArg::Logs)]
    pub(crate) workload: BenchWorkloadArg,
    /// Input sizes in lines, comma-separated (`k`/`M` suffixes allowed;
    /// default 25000,50000,100000,1000000, with --grid 100000).
    #[arg(long)]
    pub(crate) sizes: Option<String>,
    /// Modes, comma-separated; a mode this build lacks is shown as n/a.
    #[arg(long, default_value = "serial,pipeline,multiprocess")]
    pub(crate) modes: String,
    /// Measured runs per column (after one warm-up run), 1 to 1000.
    #[arg(long, default_value_t = 5, value_parser = int_in::<usize>(1, MAX_REPEAT))]
    pub(crate) repeat: usize,
    /// Output directory: inputs, per-run outputs, bench.json, bench.svg.
    #[arg(long, default_value = "parpipe-bench")]
    pub(crate) out: PathBuf,
    /// Matrix size for the `matrix` workload, whose sizes count tasks
    /// (16×16 keeps a million tasks to seconds), 1 to 2048.
    #[arg(long, default_value_t = 16, value_parser = int_in::<usize>(1, MAX_MATRIX))]
    pub(crate) matrix_size: usize,
    /// Serial processes run at once, each on 1/N of the input, for the
    /// bound column (default: number of cores), 1 to 1024.
    #[arg(long, value_name = "N", value_parser = int_in::<usize>(1, MAX_WORKERS))]
    pub(crate) bound_ways: Option<usize>,
    /// Instead of the table, search the parallel modes' knobs (pipeline:
    /// replicas, batch size, queue depth; multiprocess: batch size,
    /// inflight, workers) and compare the best fixed configuration with the
    /// automatic one; writes grid.json.
    #[arg(long)]
    pub(crate) grid: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BaselineKindArg {
    Plain,
    Rayon,
}

#[derive(Args, Debug)]
pub(crate) struct BaselineArgs {
    #[arg(long, value_enum, default_value_t = WorkloadArg::Logs)]
    pub(crate) workload: WorkloadArg,
    #[arg(long, value_enum)]
    pub(crate) kind: BaselineKindArg,
    #[arg(long)]
    pub(crate) input: PathBuf,
    #[arg(long, default_value_t = 0, value_parser = int_in::<u64>(0, MAX_RECORDS))]
    pub(crate) records: u64,
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    #[arg(long, default_value_t = 16, value_parser = int_in::<usize>(1, MAX_MATRIX))]
    pub(crate) matrix_size: usize,
    #[arg(long, default_value_t = 8192, value_parser = int_in::<usize>(1, MAX_BATCH))]
    pub(crate) batch_size: usize,
    #[arg(long)]
    pub(crate) out: PathBuf,
    #[arg(long)]
    pub(crate) report: PathBuf,
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
pub(crate) struct RunArgs {
    /// The workload to run.
    #[arg(long, value_enum, default_value_t = WorkloadArg::Logs)]
    pub(crate) workload: WorkloadArg,
    /// Execution mode: serial (one thread), pipeline (an actor per stage),
    /// multiprocess (worker processes).
    #[arg(long, value_enum, default_value_t = ModeArg::Pipeline)]
    pub(crate) mode: ModeArg,
    /// Input file of access-log lines (repeatable, read in the order given;
    /// `-` is standard input; gzip is detected by its content). Without it,
    /// the built-in generator makes the input.
    #[arg(long = "input", value_name = "PATH")]
    pub(crate) inputs: Vec<String>,
    /// Lines to generate when no input is given (logs, default 1000000);
    /// number of tasks (matrix, default 200); 0 to 10^12.
    #[arg(long, value_parser = int_in::<u64>(0, MAX_RECORDS))]
    pub(crate) records: Option<u64>,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Records per batch, and per chunk in multiprocess mode
    /// (default: 8192 lines for logs; for matrix, about 10 ms of work:
    /// 4 tasks of 160×160; without it, multiprocess chunks are sized to
    /// what remains, from 1/8 to 2× the default); 1 to 1048576.
    #[arg(long, value_parser = int_in::<usize>(1, MAX_BATCH))]
    pub(crate) batch_size: Option<usize>,
    /// Matrix size of the matrix workload, 1 to 2048.
    #[arg(long, default_value_t = 160, value_parser = int_in::<usize>(1, MAX_MATRIX))]
    pub(crate) matrix_size: usize,
    /// Batches that may wait before each stage (pipeline mode), 1 to 1024.
    #[arg(long, default_value_t = 4, value_parser = int_in::<usize>(1, MAX_QUEUE_DEPTH))]
    pub(crate) queue_depth: usize,
    /// Actors for a stage (pipeline mode): STAGE=N (repeatable: the stage
    /// actors, whatever the input), or `auto`: over plain files a reading
    /// lane per core (as without the flag), else measure the stages first
    /// and give the spare cores to the busiest, or pack cheap stages.
    #[arg(long = "replicas", value_name = "STAGE=N|auto", value_parser = Replicas::parse_one)]
    pub(crate) replicas: Vec<Replicas>,
    /// Worker processes (multiprocess mode; default: number of cores), 0 to
    /// 1024 (0: remote workers only).
    #[arg(long, value_parser = int_in::<usize>(0, MAX_WORKERS))]
    pub(crate) workers: Option<usize>,
    /// Small inputs (logs): pipeline mode's stage actors run inline, as
    /// serial mode does, when the input's estimated size is at most this
    /// many batches (too few to overlap and win back the actors'
    /// start-up); 0 to 1048576, 0: never.
    #[arg(long, value_name = "BATCHES", default_value_t = 16,
          value_parser = int_in::<u64>(0, parpipe::plan::limits::MAX_INLINE_BATCHES))]
    pub(crate) inline_batches_pipeline: u64,
    /// Small inputs (logs): multiprocess mode runs inline at most this many
    /// batches when its workers read their own byte ranges of the input;
    /// 0 to 1048576, 0: never.
    #[arg(long, value_name = "BATCHES", default_value_t = 12,
          value_parser = int_in::<u64>(0, parpipe::plan::limits::MAX_INLINE_BATCHES))]
    pub(crate) inline_batches_readers: u64,
    /// Small inputs (logs): multiprocess mode runs inline at most this many
    /// batches when the coordinator reads and ships every chunk (gzip,
    /// generated lines); 0 to 1048576, 0: never.
    #[arg(long, value_name = "BATCHES", default_value_t = 24,
          value_parser = int_in::<u64>(0, parpipe::plan::limits::MAX_INLINE_BATCHES))]
    pub(crate) inline_batches_shipped: u64,
    /// Small inputs (logs): from this many records on, an input within
    /// --inline-batches-pipeline runs on the stage actors in smaller
    /// batches (3 × that many) instead of inline; 0 to 2^40.
    #[arg(long, value_name = "RECORDS", default_value_t = 65536,
          value_parser = int_in::<u64>(0, parpipe::plan::limits::MAX_SMALLER_BATCHES_FROM))]
    pub(crate) smaller_batches_from: u64,
    /// Output directory: summary.json, report.json, and with --emit-records
    /// records.jsonl and rejects.txt.
    #[arg(long, default_value = "parpipe-out")]
    pub(crate) out: PathBuf,
    /// Also write records.jsonl and rejects.txt.
    #[arg(long)]
    pub(crate) emit_records: bool,
    /// Where to write the JSON report (default: OUT/report.json).
    #[arg(long, value_name = "PATH")]
    pub(crate) report: Option<PathBuf>,
    /// Serve a live dashboard (/), Prometheus metrics (/metrics) and the
    /// status as JSON (/api/status) while the run lasts; alone, on
    /// 127.0.0.1:7071. A non-loopback address needs the job's token.
    #[arg(long, value_name = "IP:PORT", num_args = 0..=1, default_missing_value = "127.0.0.1:7071")]
    pub(crate) dashboard: Option<String>,
    /// Keep serving the dashboard and /metrics this long after the run
    /// ends, so that its final state (parpipe_running 0, the final totals)
    /// can be scraped; SIGINT, SIGTERM or SIGHUP ends it at once. Default
    /// with --dashboard: 16 (one scrape at a 15 s interval). 0 to 3600.
    #[arg(long, value_name = "SECS", requires = "dashboard", value_parser = secs_in(0.0, MAX_LINGER))]
    pub(crate) linger: Option<f64>,
    /// Write the run's final metrics (Prometheus text format) to PATH
    /// when it ends, atomically, for node_exporter's textfile collector.
    #[arg(long, value_name = "PATH")]
    pub(crate) metrics_file: Option<PathBuf>,
    /// Read the --input file as it grows, as `tail -F` does (rotation by
    /// rename and truncation followed), until SIGINT or SIGTERM, which end
    /// the run normally with its outputs written (serial and pipeline mode).
    #[arg(long)]
    pub(crate) follow: bool,
    /// Rewrite OUT/summary.json and the report of everything read so far,
    /// atomically, every SECS while the run goes on (logs workload).
    #[arg(long, value_name = "SECS", value_parser = secs_in(0.1, MAX_SECS))]
    pub(crate) snapshot_every: Option<f64>,
    /// How long a batch of standard input or of a --follow file waits for
    /// more lines once it has its first one; then it leaves partial, so a
    /// slow stream still flows.
    /// 0.001 to 3600
    #[arg(long, value_name = "SECS", default_value_t = 0.2, value_parser = secs_in(0.001, 3600.0))]
    pub(crate) max_batch_delay: f64,
    /// Log format (logs): combined (default), common, vcombined, w3c[:FIELDS],
    /// alb, cloudfront, caddy, traefik, json[:KEY=PATH,…], nginx:'LOG_FORMAT',
    /// apache:'LOGFORMAT' (docs/log-formats.md).
    // The brackets are the help text's notation for an optional part, not links.
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(long, value_name = "FORMAT", default_value = "combined",
          value_parser = |s: &str| parpipe::workloads::logs::format::LogFormat::parse(s).map(Box::new))]
    pub(crate) log_format: Box<parpipe::workloads::logs::format::LogFormat>,
    /// Fail (exit 1, writing nothing) when more than this share of the
    /// lines is rejected (logs), 0 to 1.
    #[arg(long, value_name = "RATIO", default_value_t = 0.9, value_parser = ratio)]
    pub(crate) max_rejected_ratio: f64,
    /// Entries in every top list of summary.json (logs), 0 for all;
    /// 0 to 1000000.
    #[arg(long, value_name = "N", default_value_t = parpipe::workloads::logs::metrics::TOP_N,
          value_parser = int_in::<usize>(0, parpipe::workloads::logs::metrics::MAX_TOP as u64))]
    pub(crate) top: usize,
    /// Time zone of the hour and day buckets (logs): UTC, an IANA name
    /// such as Europe/Berlin, or an offset such as +02:00.
    #[arg(long, value_name = "ZONE", default_value = "UTC", allow_hyphen_values = true,
          value_parser = |s: &str| parpipe::workloads::logs::zone::Zone::parse(s).map(|_| s.to_string()))]
    pub(crate) tz: String,
    /// Where a line's client comes from (logs): remote (the address
    /// field) or x-forwarded-for (the first address of that field, for
    /// formats that log it; the remote address when a line's is empty).
    #[arg(long, value_name = "FROM", default_value = "remote",
          value_parser = ["remote", "x-forwarded-for"])]
    pub(crate) client_from: String,
    #[command(flatten)]
    pub(crate) multiprocess: MultiprocessArgs,
}

#[derive(Args, Debug)]
pub(crate) struct MultiprocessArgs {
    /// Chunks each worker may hold at once (multiprocess mode), 1 to 256.
    #[arg(long, default_value_t = 2, value_parser = int_in::<usize>(1, MAX_INFLIGHT))]
    pub(crate) inflight: usize,
    /// Address to accept workers on (a non-loopback address needs a token).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "IP:PORT")]
    pub(crate) listen: String,
    /// File holding the shared token (else PARPIPE_TOKEN; never on the command line).
    #[arg(long, value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// Seconds of silence after which a worker is dropped and its chunks
    /// re-queued, 0.1 to 86400.
    #[arg(long, default_value_t = 5.0, value_name = "SECS", value_parser = secs_in(0.1, MAX_SECS))]
    pub(crate) heartbeat_timeout: f64,
    /// Seconds to wait for a first (or replacement) worker before failing,
    /// 0.1 to 86400.
    #[arg(long, default_value_t = 10.0, value_name = "SECS", value_parser = secs_in(0.1, MAX_SECS))]
    pub(crate) worker_wait_timeout: f64,
    /// Largest frame accepted or sent, in bytes, 1024 to 4294967295.
    #[arg(long, value_name = "BYTES", default_value_t = parpipe::DEFAULT_MAX_FRAME,
          value_parser = int_in::<usize>(MIN_FRAME, MAX_FRAME))]
    pub(crate) max_frame: usize,
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
    /// Chunks processed at once, one thread each (default: the machine's
    /// cores), 1 to 256; the coordinator gives this worker that many times
    /// `--inflight` credits.
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
