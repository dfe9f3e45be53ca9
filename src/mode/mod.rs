//! Execution modes: the [`Mode`] enum, the [`RunConfig`] shared by all of
//! them, and [`execute`]/[`run`], the one entry point that runs a pipeline in
//! the chosen mode and returns its [`crate::RunReport`].

pub(crate) mod chunked;
pub(crate) mod engine;
pub(crate) mod fused;
pub(crate) mod inline;
pub(crate) mod multiprocess;
pub(crate) mod pipelined;
pub(crate) mod reorder;
pub(crate) mod serial;

pub use multiprocess::WorkerCommand;
pub use pipelined::Replicas;

use crate::error::{Error, RunError};
use crate::pipeline::{AnyData, JobSpec, Pipeline, Registry};
use crate::plan::{plan, Engine, Machine, PipelineFacts};
use crate::run::Finished;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How a pipeline runs. The same pipeline gives the same result in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One actor runs every stage inline, batch after batch.
    Serial,
    /// The parts run on threads of this process: reading lanes over plain
    /// files (each reads, decodes and runs every stage on its own chunks),
    /// else an actor per stage with credit-bounded queues; the plan says
    /// which (`parpipe run --mode pipeline`; named `pipeline` in reports).
    #[serde(rename = "pipeline")]
    Pipelined,
    /// Chunks are fanned out to worker processes over sockets.
    Multiprocess,
}

impl Mode {
    /// The mode's name as the CLI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Serial => "serial",
            Mode::Pipelined => "pipeline",
            Mode::Multiprocess => "multiprocess",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A flag that asks a running pipeline to stop (Ctrl-C, a caller's timeout).
/// It also interrupts a source that is waiting for input.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<CancelInner>);

#[derive(Debug, Default)]
struct CancelInner {
    raised: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Cancel {
    /// A flag that is not raised.
    pub fn new() -> Self {
        Cancel::default()
    }

    /// Asks the run to stop.
    pub fn cancel(&self) {
        self.0.raised.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    /// True once [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.raised.load(Ordering::SeqCst)
    }

    /// Completes once [`cancel`](Self::cancel) is called.
    pub async fn cancelled(&self) {
        let notified = self.0.notify.notified();
        tokio::pin!(notified);
        // Registered before the check, so a cancel in between is not missed.
        notified.as_mut().enable();
        if self.is_cancelled() {
            return;
        }
        notified.await;
    }

    /// `wake`, cut short by a cancel.
    pub(crate) fn or_cancelled(&self, wake: crate::pipeline::Wake) -> crate::pipeline::Wake {
        let cancel = self.clone();
        Box::pin(async move {
            tokio::select! {
                () = wake => {}
                () = cancel.cancelled() => {}
            }
        })
    }
}

/// Settings of one run that do not change its result.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The execution mode.
    pub mode: Mode,
    /// Records per batch (per chunk in multiprocess mode).
    pub batch_size: usize,
    /// Multiprocess mode: chunks are sized to what remains, by the plan's
    /// one rule ([`ChunkSizing`](crate::plan::ChunkSizing)), so that a
    /// large input pays the per-chunk cost (a partial built, sent and
    /// merged) fewer times while a small one is still spread over every
    /// worker; off, a chunk is a batch. Pipeline mode: lets a small input
    /// run in smaller batches. On by default; the CLI turns it off when
    /// `--batch-size` is given (the batch size then is the chunk size).
    pub grow_chunks: bool,
    /// Batches that may wait in each stage's queue (pipeline mode).
    pub queue_depth: usize,
    /// Worker processes (multiprocess mode); `None` = number of cores.
    pub workers: Option<usize>,
    /// Actors per stage (pipeline mode): none, `STAGE=N`, or `auto`.
    pub replicas: pipelined::Replicas,
    /// Raised to stop the run early.
    pub cancel: Cancel,
    /// Updated as the source is read, for progress display.
    pub progress: crate::metrics::Progress,
    // --- multiprocess mode (see `multiprocess::MultiprocessDefaults`) ---
    /// Chunks each worker may hold at once (credits).
    pub inflight: usize,
    /// Address the coordinator listens on (`127.0.0.1:0`: loopback, any port).
    pub listen: String,
    /// Shared secret of the job; required to listen beyond loopback.
    pub token: Option<crate::protocol::Token>,
    /// A worker silent this long is dropped and its chunks re-queued.
    pub heartbeat_timeout: std::time::Duration,
    /// Largest frame accepted or sent.
    pub max_frame: usize,
    /// How long to wait for a first (or replacement) worker before failing.
    pub worker_wait_timeout: std::time::Duration,
    /// The command that starts a local worker (`None`: this executable + `worker`).
    pub worker_command: Option<multiprocess::WorkerCommand>,
    /// Where the run publishes its live status (set it to read the status
    /// yourself; [`dashboard`](Self::dashboard) sets one up when unset).
    pub live: Option<crate::live::LiveBoard>,
    /// Serve the live dashboard on this `IP:PORT` while the run lasts
    /// (a non-loopback address needs [`token`](Self::token)).
    pub dashboard: Option<String>,
    /// Let a parallel mode run a small input inline, as serial mode does,
    /// when the source's size estimate says its engine cannot pay (see
    /// [`plan`]; the report's `plan` then says so). Only
    /// taken when the engine's shape is left to the defaults (no
    /// `workers` count, no token, `listen` on loopback port 0, no
    /// per-stage replicas). Off by default: the work per record of a
    /// user's pipeline is unknown, and a heavy one (the `matrix` workload
    /// gains from 16 tasks on) would lose its speed-up. `parpipe run`
    /// turns it on for the `logs` workload, whose records are cheap.
    pub inline_small: bool,
    /// How small an input is for [`inline_small`](Self::inline_small)
    /// (the `--inline-batches-*` and `--smaller-batches-from` flags).
    pub inline_limits: crate::plan::InlineLimits,
    /// Print `parpipe: listening on ADDR` (and `parpipe: dashboard on
    /// http://ADDR`) on stderr once bound (for people
    /// and scripts starting remote workers); otherwise it is only logged.
    pub announce_listen: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            mode: Mode::Serial,
            batch_size: 8192,
            grow_chunks: true,
            queue_depth: 4,
            workers: None,
            replicas: pipelined::Replicas::None,
            cancel: Cancel::new(),
            progress: crate::metrics::Progress::new(),
            inflight: 2,
            listen: "127.0.0.1:0".to_string(),
            token: None,
            heartbeat_timeout: std::time::Duration::from_secs(5),
            max_frame: crate::protocol::DEFAULT_MAX_FRAME,
            worker_wait_timeout: std::time::Duration::from_secs(10),
            announce_listen: false,
            inline_small: false,
            inline_limits: crate::plan::InlineLimits::default(),
            worker_command: None,
            live: None,
            dashboard: None,
        }
    }
}

impl RunConfig {
    /// Checks the settings that every mode relies on.
    pub fn validate(&self) -> Result<(), Error> {
        if self.batch_size == 0 {
            return Err(RunError::Config("batch size must be at least 1".into()).into());
        }
        if self.queue_depth == 0 {
            return Err(RunError::Config("queue depth must be at least 1".into()).into());
        }
        self.inline_limits.validate().map_err(RunError::Config)?;
        if self.mode == Mode::Multiprocess {
            multiprocess::validate(self)?;
        }
        if let Some(addr) = &self.dashboard {
            crate::live::check_dashboard_address(addr, self.token.as_ref())
                .map_err(|e| RunError::Config(e.to_string()))?;
        }
        Ok(())
    }
}

/// Runs `job` (built from `registry`) in the configured mode and gives back
/// the sink's output (type-erased: see [`Registry::run`] for a typed one)
/// with the report. On the caller's actix `System` when there is one (the
/// CLI, an actix-web app); from any other async runtime it runs on a
/// `System` thread of its own.
pub async fn execute(
    registry: &Registry,
    job: &JobSpec,
    config: &RunConfig,
) -> Result<Finished<AnyData>, Error> {
    let (registry, job, config) = (registry.clone(), job.clone(), config.clone());
    let run = move || async move {
        let pipeline = registry.build(&job)?;
        Ok(execute_pipeline(pipeline, Some(&job), &config).await?)
    };
    crate::run::on_system(run).await
}

/// Runs `job` to completion, blocking the caller (see [`execute`]). From a
/// thread that runs an async runtime, it runs on a thread of its own (and
/// blocks this one until done: prefer [`execute`] there).
pub fn run(
    registry: &Registry,
    job: &JobSpec,
    config: &RunConfig,
) -> Result<Finished<AnyData>, Error> {
    let (registry, job, config) = (registry.clone(), job.clone(), config.clone());
    crate::run::blocking(move || async move {
        let pipeline = registry.build(&job)?;
        Ok(execute_pipeline(pipeline, Some(&job), &config).await?)
    })
}

/// Starts the dashboard `config` asks for (and the board it shows, unless
/// the caller gave one), announcing its address.
#[cfg(not(feature = "dashboard"))]
fn start_dashboard(config: &mut std::borrow::Cow<'_, RunConfig>) -> Result<Option<()>, RunError> {
    match config.dashboard {
        Some(_) => Err(RunError::Config(
            crate::live::DashboardError::NotBuilt.to_string(),
        )),
        None => Ok(None),
    }
}

/// Starts the dashboard `config` asks for (and the board it shows, unless
/// the caller gave one), announcing its address.
#[cfg(feature = "dashboard")]
fn start_dashboard(
    config: &mut std::borrow::Cow<'_, RunConfig>,
) -> Result<Option<crate::live::Dashboard>, RunError> {
    if config.dashboard.is_none() {
        return Ok(None);
    }
    crate::live::Dashboard::start_for(config.to_mut()).map_err(|e| RunError::Config(e.to_string()))
}

/// Runs an erased pipeline in the configured mode, on the current actix
/// `System`; `job` names it for multiprocess workers.
pub(crate) async fn execute_pipeline(
    mut pipeline: Pipeline,
    job: Option<&JobSpec>,
    config: &RunConfig,
) -> Result<Finished<AnyData>, RunError> {
    // A worker whose program forgot to dispatch must not start a run (in
    // multiprocess mode, a chain of coordinators and workers).
    crate::worker::exit_if_undispatched();
    config.validate()?;
    if config.mode == Mode::Multiprocess {
        // Before the source is detached: told through its own methods.
        pipeline
            .source
            .part
            .fit_chunks_to_frame(chunked::chunk_room(config.max_frame), config.max_frame);
    }
    let plan = plan(
        &PipelineFacts::of(&pipeline, config, job.is_some()),
        config,
        &Machine::detect(),
    );
    // Once, on one line: what runs and why (report.json keeps it too).
    tracing::info!(plan = %serde_json::to_string(&plan).unwrap_or_default(), "the run's plan");
    if pipeline.source.part.may_wait() {
        // Never wait inside a source: it gets a thread of its own.
        crate::detached::detach(&mut pipeline.source.part)
            .map_err(|e| RunError::Runtime(format!("cannot start the source's thread: {e}")))?;
    }
    let mut config = std::borrow::Cow::Borrowed(config);
    if plan.batch_size != config.batch_size {
        config.to_mut().batch_size = plan.batch_size;
    }
    let dashboard = start_dashboard(&mut config)?;
    let config = config.as_ref();
    let output = pipeline.output.clone();
    let report = match (plan.engine, job) {
        (Engine::Inline, _) => serial::execute(pipeline, config, plan.record_by_record).await,
        (Engine::StageActors | Engine::ReadingLanes, _) => {
            pipelined::execute(pipeline, config, &plan).await
        }
        (Engine::WorkerProcesses, Some(job)) => {
            multiprocess::execute(pipeline, job, config, &plan).await
        }
        (Engine::WorkerProcesses, None) => Err(RunError::Config(
            "multiprocess mode needs a registered pipeline (workers rebuild it by name): \
             register it and run it through its key (Registry::run, Registry::execute, \
             Registry::start)"
                .into(),
        )),
    }
    .map(|mut report| {
        // The mode asked for stays visible; the plan says what ran.
        report.mode = config.mode;
        report.plan = Some(plan);
        report
    });
    if let Some(board) = &config.live {
        crate::live::publisher::publish_final(board, report.as_ref().map_err(|e| e.to_string()));
    }
    #[cfg(feature = "dashboard")]
    if let Some(dash) = dashboard {
        dash.stop().await;
    }
    #[cfg(not(feature = "dashboard"))]
    let _ = dashboard;
    let report = report?;
    let result = output
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .ok_or_else(|| RunError::Runtime("the sink finished without an output".into()))?;
    Ok(Finished { result, report })
}

#[cfg(test)]
mod tests {
    use super::Mode;

    /// Reports, the wire and the CLI spell each mode the same way.
    #[test]
    fn each_mode_has_one_name_everywhere() {
        for mode in [Mode::Serial, Mode::Pipelined, Mode::Multiprocess] {
            let json = serde_json::to_string(&mode).unwrap();
            assert_eq!(json, format!("\"{}\"", mode.as_str()));
            assert_eq!(serde_json::from_str::<Mode>(&json).unwrap(), mode);
        }
    }
}
