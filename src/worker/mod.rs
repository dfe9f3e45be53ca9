//! The worker entry point of multiprocess mode, public so that any program
//! can be a worker: the `parpipe worker` command and an embedding
//! application's own `main` both call [`run_worker`] with their [`Registry`].
//!
//! A worker connects to a coordinator, authenticates (the wire's
//! handshake), receives the job (a registered pipeline
//! name plus parameters), rebuilds the pipeline from its registry, and then
//! processes chunks on `threads` runners, each with its own copy of the
//! pipeline — decode the source batch, run the stages, fold it into an
//! empty partial, encode the partial — while the socket task keeps
//! exchanging heartbeats. The runners are child processes forked for the
//! job when this process never started a thread, else threads (see
//! `runners.rs` for why). Results go back in the order they finish; the
//! coordinator merges them in input order, so the output does not depend
//! on the thread count. With `keep_alive` it serves one
//! job after another. A worker allowed to read directories
//! (`--allow-read`, announced in its hello) may be sent chunks as byte
//! ranges of input files under them, which it reads itself after checking
//! each path, size, time and fingerprint (see
//! [`file_range`](crate::file_range)). [`run_worker`] here is the loop
//! around connections (reconnecting, keep-alive, a busy coordinator);
//! `config.rs` holds [`WorkerConfig`], `connect.rs` the connection
//! attempts, `serve.rs` one job on one connection, `runners.rs` where chunks
//! run, `chunk.rs` the processing of one chunk apart from the socket, and `dispatch.rs` the
//! one-line dispatch for an embedding application's `main`.

mod chunk;
mod config;
mod connect;
mod dispatch;
mod runners;
mod serve;

pub use config::WorkerConfig;
pub use dispatch::{dispatch_if_worker, run_worker_anywhere, SPAWNED_BY_ENV};
pub(crate) use dispatch::{exit_if_undispatched, UNDISPATCHED_EXIT, UNDISPATCHED_MESSAGE};

use connect::{connect, Backoff, MAX_RETRY_DELAY};
use serve::{protocol_error, serve, Served, Unserved};

use crate::error::{Error, RunError};
use crate::pipeline::Registry;
use std::time::{Duration, Instant};

/// Runs a worker until its job is done (or, with `keep_alive`, forever),
/// blocking the caller on a runtime of its own.
pub fn run_worker(registry: &Registry, config: &WorkerConfig) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Runtime(format!("cannot start the worker runtime: {e}")))?;
    let result: Result<(), RunError> = runtime.block_on(async {
        let mut timeout = config.connect_timeout;
        let mut busy = Backoff::default();
        loop {
            let started = Instant::now();
            let Some(stream) = connect(config, timeout).await? else {
                tracing::info!(
                    "coordinator {} refused the connection: its job is over",
                    config.connect
                );
                return Ok(());
            };
            let result = match serve(registry, config, stream).await {
                Ok(Served::Busy {
                    retry_after,
                    reason,
                }) => {
                    // Refused before the handshake: the first connection's
                    // time keeps running.
                    let wait = busy.next(retry_after);
                    let left = timeout.map(|t| t.saturating_sub(started.elapsed()));
                    if left.is_some_and(|left| left < wait) {
                        return Err(RunError::Runtime(format!(
                            "coordinator {} stayed busy ({reason}) for the connect timeout",
                            config.connect
                        )));
                    }
                    tracing::warn!(
                        "coordinator {} is busy ({reason}); connecting again in {} ms",
                        config.connect,
                        wait.as_millis()
                    );
                    tokio::time::sleep(wait).await;
                    timeout = left.map(|left| left - wait);
                    continue;
                }
                Ok(Served::Done) => Ok(()),
                Err(e) => Err(e),
            };
            busy = Backoff::default();
            // Between jobs the coordinator is gone by design: a keep-alive
            // worker waits for the next one as long as it takes.
            timeout = None;
            match (result, config.keep_alive) {
                (Ok(()), true) => tracing::info!("job done; waiting for the next one"),
                (Err(Unserved::NoJob(e)), true) => {
                    // The usual reconnect: right after a job, the ending
                    // coordinator still accepts, then closes.
                    tracing::info!(
                        "coordinator {} closed the connection before giving this worker \
                         any work ({e}): its run is ending; waiting for the next job",
                        config.connect
                    );
                    tokio::time::sleep(MAX_RETRY_DELAY).await;
                }
                (Err(Unserved::Failed(e)), true) => {
                    tracing::warn!("job ended with an error: {e}; reconnecting");
                    // A coordinator that keeps refusing us (a wrong token, …)
                    // is not hammered in a tight loop.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                (Ok(()), false) => return Ok(()),
                (Err(Unserved::NoJob(e)), false) => return Err(protocol_error(config, e)),
                (Err(Unserved::Failed(e)), false) => return Err(e),
            }
        }
    });
    Ok(result?)
}

#[cfg(test)]
mod tests;
