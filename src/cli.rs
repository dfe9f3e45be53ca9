//! The `parpipe` binary's command-line definitions (clap): the
//! subcommands and their flags, as the user types them. `main.rs` turns
//! them into the library's configuration.

use clap::{Args, Parser, Subcommand, ValueEnum};
use parpipe::Mode;
use parpipe::Replicas;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "parpipe",
    version,
    about = "Pipeline-parallel data processing: one pipeline, three modes"
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

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run a workload and write its outputs and report.
    Run(RunArgs),
    /// Write generated access-log lines.
    Generate(GenerateArgs),
    /// Join a multiprocess job as a worker (the token comes from
    /// --token-file or the PARPIPE_TOKEN environment variable).
    Worker(WorkerArgs),
    /// Benchmark every mode against a plain loop and a rayon baseline.
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
    /// Input sizes in lines, comma-separated (`k`/`M` suffixes allowed).
    #[arg(long, default_value = "25000,50000,100000,1000000")]
    pub(crate) sizes: String,
    /// Modes, comma-separated; a mode this build lacks is shown as n/a.
    #[arg(long, default_value = "serial,pipeline,multiprocess")]
    pub(crate) modes: String,
    /// Measured runs per column (after one warm-up run).
    #[arg(long, default_value_t = 5)]
    pub(crate) repeat: usize,
    /// Output directory: inputs, per-run outputs, bench.json, bench.svg.
    #[arg(long, default_value = "parpipe-bench")]
    pub(crate) out: PathBuf,
    /// Matrix size for the `matrix` workload, whose sizes count tasks
    /// (16×16 keeps a million tasks to seconds).
    #[arg(long, default_value_t = 16)]
    pub(crate) matrix_size: usize,
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
    #[arg(long, default_value_t = 0)]
    pub(crate) records: u64,
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    #[arg(long, default_value_t = 16)]
    pub(crate) matrix_size: usize,
    #[arg(long, default_value_t = 8192)]
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
            ModeArg::Pipeline => Mode::Pipeline,
            ModeArg::Multiprocess => Mode::Multiprocess,
        }
    }
}

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// The workload to run.
    #[arg(long, value_enum, default_value_t = WorkloadArg::Logs)]
    pub(crate) workload: WorkloadArg,
    /// Execution mode.
    #[arg(long, value_enum, default_value_t = ModeArg::Pipeline)]
    pub(crate) mode: ModeArg,
    /// Input file (repeatable; `-` is standard input; `.gz` is read transparently).
    /// Without it, the built-in generator makes the input.
    #[arg(long = "input", value_name = "PATH")]
    pub(crate) inputs: Vec<String>,
    /// Lines to generate when no input is given (logs, default 1000000);
    /// number of tasks (matrix, default 200).
    #[arg(long)]
    pub(crate) records: Option<u64>,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Records per batch, and per chunk in multiprocess mode
    /// (default: 8192 lines for logs; for matrix, about 10 ms of work:
    /// 4 tasks of 160×160; without it, multiprocess chunks are sized to
    /// what remains, from 1/8 to 2× the default).
    #[arg(long)]
    pub(crate) batch_size: Option<usize>,
    /// Matrix size of the matrix workload.
    #[arg(long, default_value_t = 160)]
    pub(crate) matrix_size: usize,
    /// Batches that may wait before each stage (pipeline mode).
    #[arg(long, default_value_t = 4)]
    pub(crate) queue_depth: usize,
    /// Actors for a stage (pipeline mode): STAGE=N (repeatable), or `auto`
    /// to measure the stages first and give the spare cores to the busiest.
    #[arg(long = "replicas", value_name = "STAGE=N|auto", value_parser = Replicas::parse_one)]
    pub(crate) replicas: Vec<Replicas>,
    /// Worker processes (multiprocess mode; default: number of cores).
    #[arg(long)]
    pub(crate) workers: Option<usize>,
    /// Output directory.
    #[arg(long, default_value = "parpipe-out")]
    pub(crate) out: PathBuf,
    /// Also write records.jsonl and rejects.txt.
    #[arg(long)]
    pub(crate) emit_records: bool,
    /// Where to write the JSON report (default: OUT/report.json).
    #[arg(long, value_name = "PATH")]
    pub(crate) report: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) multiprocess: MultiprocessArgs,
}

#[derive(Args, Debug)]
pub(crate) struct MultiprocessArgs {
    /// Chunks each worker may hold at once (multiprocess mode).
    #[arg(long, default_value_t = 2)]
    pub(crate) inflight: usize,
    /// Address to accept workers on (a non-loopback address needs a token).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "IP:PORT")]
    pub(crate) listen: String,
    /// File holding the shared token (else PARPIPE_TOKEN; never on the command line).
    #[arg(long, value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// Seconds of silence after which a worker is dropped and its chunks re-queued.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub(crate) heartbeat_timeout: f64,
    /// Seconds to wait for a first (or replacement) worker before failing.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub(crate) worker_wait_timeout: f64,
    /// Largest frame accepted or sent, in bytes.
    #[arg(long, default_value_t = parpipe::DEFAULT_MAX_FRAME)]
    pub(crate) max_frame: usize,
}

#[derive(Args, Debug)]
pub(crate) struct WorkerArgs {
    /// The coordinator, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) connect: String,
    /// File holding the shared token (else PARPIPE_TOKEN).
    #[arg(long, value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// Serve one job after another instead of exiting after the first.
    #[arg(long)]
    pub(crate) keep_alive: bool,
    /// Largest frame accepted or sent, in bytes.
    #[arg(long, default_value_t = parpipe::DEFAULT_MAX_FRAME)]
    pub(crate) max_frame: usize,
    /// Seconds to keep trying to connect the first time (0: forever); a
    /// keep-alive worker then waits for each next coordinator without a limit.
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    pub(crate) connect_timeout: f64,
}

#[derive(Args, Debug)]
pub(crate) struct GenerateArgs {
    /// Number of lines.
    #[arg(long)]
    pub(crate) records: u64,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Output file (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}
