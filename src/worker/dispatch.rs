//! The one-line worker dispatch for an embedding application's `main`:
//! when the coordinator started this process as a worker (`PROGRAM worker
//! --connect ADDR …`, see [`WorkerCommand`](crate::WorkerCommand)), serve
//! the job and exit; otherwise return and let `main` go on. It works
//! whatever `main` looks like: plain, `#[tokio::main]`, `#[actix_web::main]`
//! (the worker then runs on a thread of its own, as no runtime may start
//! inside another).
//!
//! A program that forgets the call would run its own `main` in every
//! worker, start a coordinator there and spawn workers of its own, a chain
//! of processes. So the coordinator marks the workers it spawns
//! ([`SPAWNED_BY_ENV`]), and a run started in such a process fails it at
//! once ([`exit_if_undispatched`]), naming the missing call; the
//! coordinator reports that child's exit as soon as it sees it.

use super::{run_worker, WorkerConfig};
use crate::error::{Error, RunError};
use crate::pipeline::Registry;

/// If this process was started as a worker (its first argument is
/// `worker`), runs it with `registry` and exits the process: status 0 when
/// the job is done, 1 (the error on stderr) when it failed, 2 for bad worker
/// arguments. Otherwise returns at once. Call it first thing in `main`.
///
/// ```no_run
/// # fn registry() -> parpipe::Registry { parpipe::Registry::new() }
/// fn main() {
///     parpipe::worker::dispatch_if_worker(&registry());
///     // … the application itself …
/// }
/// ```
pub fn dispatch_if_worker(registry: &Registry) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("worker") {
        return;
    }
    let code = match WorkerConfig::from_args(&args[1..]) {
        Err(e) => {
            eprintln!("worker: {e}");
            2
        }
        Ok(config) => match run_worker_anywhere(registry, &config) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("worker: {e}");
                1
            }
        },
    };
    std::process::exit(code);
}

/// [`run_worker`], on a thread of its own when this one already drives an
/// async runtime (where starting the worker's would panic).
pub fn run_worker_anywhere(registry: &Registry, config: &WorkerConfig) -> Result<(), Error> {
    if tokio::runtime::Handle::try_current().is_err() {
        return run_worker(registry, config);
    }
    let (registry, config) = (registry.clone(), config.clone());
    std::thread::Builder::new()
        .name("parpipe-worker".into())
        .spawn(move || run_worker(&registry, &config))
        .map_err(|e| RunError::Runtime(format!("cannot start the worker thread: {e}")))?
        .join()
        .map_err(|_| Error::from(RunError::Runtime("the worker thread panicked".into())))?
}

/// Environment variable a coordinator sets on each local worker it
/// spawns: the coordinator's process id. A process whose parent has that
/// id was started to be a worker, and must not run a job of its own.
pub const SPAWNED_BY_ENV: &str = "PARPIPE_SPAWNED_BY";

/// Exit status of a spawned worker whose program never dispatched.
pub(crate) const UNDISPATCHED_EXIT: i32 = 3;

/// What such a worker prints before it exits (and what the coordinator
/// looks for in its stderr).
pub(crate) const UNDISPATCHED_MESSAGE: &str = "this process was started by a parpipe coordinator to be \
     one of its workers, but its main never called \
     parpipe::worker::dispatch_if_worker(&registry) and went on to start a run of its own \
     (which would spawn workers of its own, and so on): call dispatch_if_worker first thing in main";

/// Whether this process is a worker a coordinator spawned (the mark of
/// [`SPAWNED_BY_ENV`] names its parent): inherited by a process the worker
/// starts in turn, the mark names another process than that one's parent.
fn spawned_as_worker() -> bool {
    let Some(by) = std::env::var_os(SPAWNED_BY_ENV) else {
        return false;
    };
    #[cfg(unix)]
    {
        let parent = std::os::unix::process::parent_id();
        by.to_str().and_then(|v| v.parse::<u32>().ok()) == Some(parent)
    }
    #[cfg(not(unix))]
    {
        !by.is_empty()
    }
}

/// Called by every run before it starts: in a process a coordinator
/// spawned as a worker, prints [`UNDISPATCHED_MESSAGE`] and exits with
/// [`UNDISPATCHED_EXIT`] (a worker runs its job through
/// [`dispatch_if_worker`] or [`run_worker`], never through a run).
pub(crate) fn exit_if_undispatched() {
    if spawned_as_worker() {
        eprintln!("parpipe: error: {UNDISPATCHED_MESSAGE}");
        std::process::exit(UNDISPATCHED_EXIT);
    }
}
