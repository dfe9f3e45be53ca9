//! The one-line worker dispatch for an embedding application's `main`:
//! when the coordinator started this process as a worker (`PROGRAM worker
//! --connect ADDR …`, see [`WorkerCommand`](crate::WorkerCommand)), serve
//! the job and exit; otherwise return and let `main` go on. It works
//! whatever `main` looks like: plain, `#[tokio::main]`, `#[actix_web::main]`
//! (the worker then runs on a thread of its own, as no runtime may start
//! inside another).

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
