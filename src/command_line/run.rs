//! `parpipe run`: stages the outputs, runs the job under the signal
//! handling of [`shutdown`], with the progress bar, the
//! dashboard, report snapshots and the metrics file it asks for, then
//! commits the outputs or says why not.

use super::args::{job_from_args, seconds};
use super::cli::{self, RunArgs};
use super::shutdown;
use super::{usage, Failure};
use anyhow::Context as _;
use parpipe::outputs::Staging;
use parpipe::workloads::logs::{self, LogsParams};
use parpipe::ErrorKind;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(super) fn run_job(args: RunArgs, quiet: bool) -> Result<(), Failure> {
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
                logs::stop_following();
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
