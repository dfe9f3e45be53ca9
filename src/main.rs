//! The `parpipe` command line: parses and validates arguments into the
//! library's configuration, runs, prints the report. No logic lives here.
//!
//! It is a private module of the library (feature `cli`), so that it may
//! use what the library keeps private (`parpipe bench`, the progress bar,
//! the `logs` workload's internals); `src/bin/parpipe.rs` only calls
//! [`main`]. It names the library `parpipe::…`, as any program would.

mod cli;
mod shutdown;

use anyhow::Context as _;
use clap::Parser;
use cli::{
    BaselineArgs, BaselineKindArg, BenchArgs, BenchWorkloadArg, Cli, Command, GenerateArgs,
    ModeArg, RunArgs, WorkerArgs, WorkloadArg,
};
use parpipe::outputs::Staging;
use parpipe::worker::WorkerConfig;
use parpipe::workloads::logs::{
    self, generate::Generator, input::InputSpec, LogsInput, LogsParams,
};
use parpipe::workloads::matrix::{self, MatrixParams};
use parpipe::Replicas;
use parpipe::Token;
use parpipe::{ErrorKind, JobSpec, RunConfig};

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

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
        Command::Run(args) => run_job(args, cli.quiet),
        Command::Generate(args) => generate(args),
        Command::Worker(args) => worker(args),
        Command::Bench(args) => bench(args, cli.quiet),
        Command::BenchBaseline(args) => bench_baseline(args),
    }
}

fn token(file: &Option<PathBuf>) -> Result<Option<Token>, Failure> {
    match file {
        Some(path) => Token::from_file(path)
            .map(Some)
            .map_err(|e| usage(anyhow::anyhow!(e))),
        None => Token::from_env().map_err(|e| usage(anyhow::anyhow!(e))),
    }
}

fn seconds(value: f64, flag: &str) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(value).map_err(|e| usage(anyhow::anyhow!("{flag}: {e}")))
}

/// A workload's parameters, still without the directory it writes into.
enum Params {
    Matrix(MatrixParams),
    Logs(LogsParams),
}

impl Params {
    /// The job, writing into `out_dir`.
    fn into_job(self, out_dir: &Path) -> Result<JobSpec, Failure> {
        match self {
            Params::Matrix(mut p) => {
                p.out_dir = out_dir.to_path_buf();
                JobSpec::new(matrix::NAME, &p).map_err(usage)
            }
            Params::Logs(mut p) => {
                p.out_dir = out_dir.to_path_buf();
                JobSpec::new(logs::NAME, &p).map_err(usage)
            }
        }
    }
}

/// `--follow` takes one growing file, in serial or pipeline mode.
fn check_follow(args: &RunArgs) -> Result<(), Failure> {
    if !args.follow {
        return Ok(());
    }
    let why = if args.workload != WorkloadArg::Logs {
        Some("--follow is for the logs workload".to_string())
    } else if args.inputs.len() != 1 || args.inputs[0] == "-" {
        Some("--follow takes exactly one --input FILE (not standard input)".to_string())
    } else if matches!(args.mode, ModeArg::Multiprocess) {
        // The coordinator must never wait inside its source (heartbeats,
        // signals): a growing file is read in serial or pipeline mode.
        Some("--follow works in serial and pipeline mode, not multiprocess".to_string())
    } else {
        None
    };
    match why {
        Some(why) => Err(usage(anyhow::anyhow!(why))),
        None => Ok(()),
    }
}

/// Raw arguments validated into what the library needs (touching no file
/// but the token's).
fn job_from_args(args: &RunArgs) -> Result<(Params, RunConfig), Failure> {
    check_follow(args)?;
    let (params, default_batch) = match args.workload {
        WorkloadArg::Matrix => {
            if args.snapshot_every.is_some() {
                return Err(usage(anyhow::anyhow!(
                    "--snapshot-every is for the logs workload (matrix writes its summary at the end)"
                )));
            }
            if !args.inputs.is_empty() {
                return Err(usage(anyhow::anyhow!(
                    "workload 'matrix' takes no --input (its tasks are generated)"
                )));
            }
            let params = MatrixParams {
                tasks: args.records.unwrap_or(200),
                n: args.matrix_size,
                seed: args.seed,
                out_dir: args.out.clone(),
            };
            let batch = matrix::default_batch(params.n);
            (Params::Matrix(params), batch)
        }
        WorkloadArg::Logs => {
            let input = if args.inputs.is_empty() {
                LogsInput::Generate {
                    records: args.records.unwrap_or(1_000_000),
                    seed: args.seed,
                }
            } else if args.follow {
                LogsInput::Files(
                    args.inputs
                        .iter()
                        .map(|a| InputSpec::Follow(a.into()))
                        .collect(),
                )
            } else {
                LogsInput::Files(args.inputs.iter().map(|a| InputSpec::parse(a)).collect())
            };
            let format = logs_format(args, &input)?;
            let client_from = if args.client_from == "x-forwarded-for" {
                if !format.has_forwarded_for() {
                    return Err(usage(anyhow::anyhow!(
                        "--client-from x-forwarded-for: the log format '{}' has no X-Forwarded-For field \
                         (give the server's own format, e.g. --log-format nginx:'… \"$http_x_forwarded_for\"')",
                        format.name
                    )));
                }
                logs::ClientFrom::ForwardedFor
            } else {
                logs::ClientFrom::Remote
            };
            let params = LogsParams {
                format,
                max_rejected_ppm: (args.max_rejected_ratio * 1e6).round() as u32,
                input,
                out_dir: args.out.clone(),
                emit_records: args.emit_records,
                snapshot: args.snapshot_every.map(|secs| logs::SnapshotPlan {
                    dir: args.out.clone(),
                    every_ms: (secs * 1000.0) as u64,
                    // An input that can pause: a snapshot also comes
                    // while no batch does.
                    trailing: args.follow || args.inputs.iter().any(|a| a == "-"),
                }),
                max_batch_delay_ms: (args.max_batch_delay * 1000.0).round().max(1.0) as u64,
                dimensions: logs::Dimensions {
                    top: args.top,
                    time_zone: args.tz.clone(),
                    client_from,
                },
            };
            (Params::Logs(params), 8192)
        }
    };
    let mp = &args.multiprocess;
    let config = RunConfig {
        mode: args.mode.into(),
        batch_size: args.batch_size.unwrap_or(default_batch),
        grow_chunks: args.batch_size.is_none(),
        queue_depth: args.queue_depth,
        workers: args.workers,
        replicas: Replicas::combine(args.replicas.iter().cloned())
            .map_err(|e| usage(anyhow::anyhow!("--replicas: {e}")))?,
        inflight: mp.inflight,
        listen: mp.listen.clone(),
        token: token(&mp.token_file)?,
        heartbeat_timeout: seconds(mp.heartbeat_timeout, "--heartbeat-timeout")?,
        worker_wait_timeout: seconds(mp.worker_wait_timeout, "--worker-wait-timeout")?,
        max_frame: mp.max_frame,
        dashboard: args.dashboard.clone(),
        // The default: this binary's `worker`, allowed to read the input
        // files' directories.
        worker_command: None,
        // Log lines are cheap: a small input is not worth an engine. (A
        // matrix task is heavy: multiprocess mode gains from 16 tasks.)
        inline_small: matches!(params, Params::Logs(_)),
        inline_limits: parpipe::plan::InlineLimits {
            pipeline_batches: args.inline_batches_pipeline,
            reader_batches: args.inline_batches_readers,
            shipped_batches: args.inline_batches_shipped,
            smaller_batches_from: args.smaller_batches_from,
        },
        ..RunConfig::default()
    };
    config.validate().map_err(usage)?;
    Ok((params, config))
}

/// `--log-format`, its W3C fields read from the inputs' `#Fields:`
/// header when not given (so that every worker knows them).
fn logs_format(args: &RunArgs, input: &LogsInput) -> Result<logs::format::LogFormat, Failure> {
    let format = (*args.log_format).clone();
    match input {
        LogsInput::Generate { .. } if !format.is_combined() => Err(usage(anyhow::anyhow!(
            "--log-format is for --input: the generator writes combined lines"
        ))),
        LogsInput::Files(specs) if format.needs_w3c_fields() => {
            let name = format.name.clone();
            format
                .with_fields_of(specs)
                .map_err(|e| Failure::from(anyhow::anyhow!("--log-format {name}: {e}")))
        }
        _ => Ok(format),
    }
}

fn worker(args: WorkerArgs) -> Result<(), Failure> {
    let config = WorkerConfig {
        connect: args.connect,
        token: token(&args.token_file)?,
        keep_alive: args.keep_alive,
        done_if_refused: args.done_if_refused,
        max_frame: args.max_frame,
        connect_timeout: match args.connect_timeout {
            0.0 => None,
            t => Some(seconds(t, "--connect-timeout")?),
        },
        allow_read: parpipe::file_range::AllowedRoots::new(&args.allow_read)
            .map_err(|e| usage(anyhow::anyhow!(e)))?,
        threads: args.threads.unwrap_or_else(WorkerConfig::default_threads),
    };
    let registry = parpipe::workloads::builtin_registry();
    parpipe::worker::run_worker(&registry, &config)
        .map_err(|e| Failure::from(anyhow::Error::new(e)))
}

fn run_job(args: RunArgs, quiet: bool) -> Result<(), Failure> {
    let (params, mut config) = job_from_args(&args)?;
    let report_path = args
        .report
        .clone()
        .unwrap_or_else(|| args.out.join("report.json"));
    // Remote workers need the address; a quiet local run does not.
    // The dashboard's address is announced even in a quiet run: it is why
    // the dashboard was asked for.
    config.announce_listen = !quiet || args.workers == Some(0) || args.dashboard.is_some();
    let mut registry = parpipe::workloads::builtin_registry();
    let cancel = config.cancel.clone();
    let follow = args.follow;
    let report_snapshots = match args.snapshot_every {
        Some(secs) => {
            let board = config.live.get_or_insert_with(Default::default).clone();
            Some(ReportSnapshots::start(board, report_path.clone(), secs))
        }
        None => None,
    };
    if let Some(path) = &args.metrics_file {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if !dir.unwrap_or(Path::new(".")).is_dir() || path.file_name().is_none() {
            return Err(usage(anyhow::anyhow!(
                "--metrics-file '{}': expected a file in an existing directory",
                path.display()
            )));
        }
    }
    // The board the dashboard shows and the metrics file is written from.
    let board = (args.dashboard.is_some() || args.metrics_file.is_some())
        .then(|| config.live.get_or_insert_with(Default::default).clone());
    if let Some(board) = board.clone() {
        // The dashboard's traffic panels and the parpipe_logs_* metrics:
        // the logs sink sets the traffic so far on the board.
        registry.register(logs::NAME, move |params: LogsParams| {
            Ok(logs::builder().with_live(board.clone()).build(params))
        });
    }
    let display = (!quiet && std::io::stderr().is_terminal())
        .then(|| parpipe::progress::spawn(config.progress.clone(), config.mode.as_str()));
    let system = actix::System::new();
    let outcome = system.block_on(async move {
        // Caught from before the first file is made: from then on a signal
        // stops the run, which removes what it staged.
        let shutdown = shutdown::signal().context("cannot catch signals")?;
        // Before any input is read: temporaries of killed runs cleaned, and
        // the output places proven writable. Every output is staged until
        // the run and its report are complete; dropping `staging` removes
        // it all.
        let staging = Staging::prepare(&args.out, &report_path)?;
        let job = params.into_job(staging.dir())?;
        // Started here rather than by the run, so that it can outlive it.
        let dashboard = parpipe::live::Dashboard::start_for(&mut config)
            .map_err(|e| usage(anyhow::anyhow!(e)))?;
        let run = parpipe::execute(&registry, &job, &config);
        let (result, signal) = shutdown::run_until(run, shutdown, |_| {
            if follow {
                // The normal end of a follow: reading stops at what was
                // written, and the outputs are written as usual.
                logs::follow::stop_following();
            } else {
                cancel.cancel();
            }
        })
        .await;
        Ok::<_, Failure>(((staging, result, signal), dashboard))
    });
    if let Some(d) = display {
        d.finish();
    }
    if let Some(s) = report_snapshots {
        s.stop();
    }
    let (outcome, dashboard) = match outcome {
        Ok((outcome, dashboard)) => (Ok(outcome), dashboard),
        Err(e) => (Err(e), None),
    };
    // A run a signal ended does not linger: the signal asked to stop.
    let signalled = matches!(&outcome, Ok((_, _, Some(_))));
    let ended = conclude(outcome, follow, quiet);
    if ended.is_err() {
        // No snapshot of a run that gave no result may stay behind.
        for path in parpipe::outputs::retract_snapshots() {
            tracing::info!("removed the snapshot '{}'", path.display());
        }
    }
    let metrics = match (&args.metrics_file, &board) {
        (Some(path), Some(board)) => parpipe::live::write_metrics_file(board, path)
            .map_err(|e| Failure::from(anyhow::anyhow!("--metrics-file: {e}"))),
        _ => Ok(()),
    };
    if let Some(dash) = dashboard {
        let linger = args.linger.unwrap_or(cli::DEFAULT_LINGER);
        let linger = if signalled {
            Duration::ZERO
        } else {
            seconds(linger, "--linger")?
        };
        if !linger.is_zero() {
            // Said even under -q: otherwise the wait looks like a hang.
            eprintln!(
                "parpipe: the run {}; the dashboard stays up {} s for a last scrape \
                 (--linger; SIGINT, SIGTERM or SIGHUP ends it now)",
                if ended.is_ok() { "ended" } else { "failed" },
                linger.as_secs_f64()
            );
        }
        system.block_on(dash.linger(linger));
    }
    drop(system);
    ended.and(metrics)
}

/// What a run's outcome means: the outputs committed, or the failure.
fn conclude(
    outcome: Result<RunOutcome, Failure>,
    follow: bool,
    quiet: bool,
) -> Result<(), Failure> {
    let (staging, result, signal) = outcome?;
    let interrupted = |sig: shutdown::Signal| Failure {
        code: sig.exit_code(),
        error: anyhow::anyhow!("interrupted by {}; no result was written", sig.name()),
    };
    let result = match (result, signal) {
        (Some(result), None) => result,
        // A follow ends normally on a signal.
        (Some(Ok(finished)), Some(_)) if follow => Ok(finished),
        // Stopped on request: whatever it gave, it is no result.
        (_, Some(sig)) => return Err(interrupted(sig)),
        (None, None) => unreachable!("a run is only dropped after a signal"),
    };
    let report = result
        .map_err(|e| match e.kind() {
            ErrorKind::Config => usage(e),
            _ => Failure::from(anyhow::Error::new(e)),
        })?
        .report;
    if !quiet {
        eprint!("{}", report.to_table());
        if report.pipeline == logs::NAME {
            // The staged summary is the result about to be committed.
            let staged = staging.dir().join(logs::report::SUMMARY_FILE);
            if let Ok(text) = std::fs::read_to_string(staged) {
                eprint!("{}", logs::report::terminal_summary(&text));
            }
        }
    }
    staging.commit(&(report.to_json() + "\n"))?;
    Ok(())
}

/// The staged outputs, the run's result (`None`: dropped after a signal)
/// and the signal that stopped it, if one did.
type RunOutcome = (
    Staging,
    Option<Result<parpipe::Finished<parpipe::pipeline::AnyData>, parpipe::Error>>,
    Option<shutdown::Signal>,
);

/// Rewrites the report of a run with `--snapshot-every` from its live
/// status, on a thread of its own, until stopped.
struct ReportSnapshots {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl ReportSnapshots {
    fn start(board: parpipe::live::LiveBoard, path: PathBuf, secs: f64) -> Self {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let every = Duration::from_secs_f64(secs);
        let thread = std::thread::spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every)
            {
                if let Some(status) = board.latest().filter(|s| s.running) {
                    let text = status.report.to_json() + "\n";
                    if let Err(e) = parpipe::outputs::write_snapshot(&path, &text) {
                        tracing::warn!("report snapshot: {e}");
                    }
                }
            }
        });
        ReportSnapshots { stop, thread }
    }

    /// Stops before the final report is written in its place.
    fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

fn generate(args: GenerateArgs) -> Result<(), Failure> {
    let mut generator = Generator::new(args.seed, args.records);
    let Some(path) = &args.output else {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
        return match generator.write_all(&mut out).and_then(|_| out.flush()) {
            // A closed pipe (`parpipe generate … | head`) is the reader's choice, not a failure.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other
                .context("cannot write to standard output")
                .map_err(Failure::from),
        };
    };
    // Written under a temporary name and renamed: a failure leaves nothing.
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("--output '{}' names no file", path.display()))?
        .to_string_lossy()
        .into_owned();
    let tmp = parpipe::outputs::temp_path(dir, &name);
    let written = parpipe::outputs::create_temp(&tmp)
        .and_then(|file| {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            generator.write_all(&mut out)?;
            out.flush()
        })
        .with_context(|| format!("cannot write '{}'", tmp.display()))
        .and_then(|()| {
            std::fs::rename(&tmp, path).with_context(|| {
                format!("cannot rename '{}' to '{}'", tmp.display(), path.display())
            })
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(Failure::from)
}

fn bench(args: BenchArgs, quiet: bool) -> Result<(), Failure> {
    use parpipe::bench::{self, BenchPlan, BenchWorkload};
    let range = format!(
        "expected comma-separated sizes from 1 to {}",
        cli::MAX_RECORDS
    );
    let default_sizes = if args.grid {
        "100000"
    } else {
        "25000,50000,100000,1000000"
    };
    let sizes = bench::parse_sizes(args.sizes.as_deref().unwrap_or(default_sizes))
        .map_err(|e| usage(anyhow::anyhow!("--sizes: {e}; {range}")))?;
    if let Some(big) = sizes.iter().find(|&&n| n > cli::MAX_RECORDS) {
        return Err(usage(anyhow::anyhow!(
            "--sizes: size {big} is out of range; {range}"
        )));
    }
    let modes =
        bench::parse_modes(&args.modes).map_err(|e| usage(anyhow::anyhow!("--modes: {e}")))?;
    let exe = std::env::current_exe().context("cannot find the parpipe binary")?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create '{}'", args.out.display()))?;
    let workloads = match args.workload {
        BenchWorkloadArg::Logs => vec![BenchWorkload::Logs],
        BenchWorkloadArg::Matrix => vec![BenchWorkload::Matrix],
        BenchWorkloadArg::All => [BenchWorkload::Logs, BenchWorkload::Matrix]
            .into_iter()
            .filter(|&w| bench::workload_available(&exe, w, &args.out))
            .collect(),
    };
    if workloads == [BenchWorkload::Matrix]
        && !bench::workload_available(&exe, BenchWorkload::Matrix, &args.out)
    {
        return Err(usage(anyhow::anyhow!(
            "workload 'matrix' is not available yet"
        )));
    }
    let plan = BenchPlan {
        workloads,
        sizes,
        modes,
        repeat: args.repeat,
        out: args.out.clone(),
        exe,
        progress: !quiet,
        matrix_size: args.matrix_size,
        bound_ways: args
            .bound_ways
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
    };
    if args.grid {
        if !plan.has_parallel_mode() {
            return Err(usage(anyhow::anyhow!(
                "--grid: --modes must include pipeline or multiprocess"
            )));
        }
        let results = plan.run_grid()?;
        let table = bench::grid::write_outputs(&results, &args.out)?;
        println!("{table}");
        if !quiet {
            eprintln!("bench: wrote {}", args.out.join("grid.json").display());
        }
        return Ok(());
    }
    let results = plan.run()?;
    let table = bench::write_outputs(&results, &args.out)?;
    println!("{table}");
    if !quiet {
        eprintln!(
            "bench: wrote {} and {}",
            args.out.join("bench.json").display(),
            args.out.join("bench.svg").display()
        );
    }
    Ok(())
}

fn bench_baseline(args: BaselineArgs) -> Result<(), Failure> {
    use parpipe::bench::baseline::{measure, measure_matrix, BaselineKind};
    let kind = match args.kind {
        BaselineKindArg::Plain => BaselineKind::Plain,
        BaselineKindArg::Rayon => BaselineKind::Rayon,
    };
    let report = match args.workload {
        WorkloadArg::Logs => measure(kind, &args.input, &args.out, args.batch_size.max(1)),
        WorkloadArg::Matrix => {
            measure_matrix(kind, args.records, args.matrix_size, args.seed, &args.out)
        }
    }
    .map_err(|e| anyhow::anyhow!("{} baseline: {e}", kind.as_str()))?;
    let json = serde_json::to_string_pretty(&report).context("cannot encode the report")?;
    parpipe::outputs::write_atomic(&args.report, (json + "\n").as_bytes())?;
    Ok(())
}
