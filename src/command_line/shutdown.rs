//! How `parpipe run` ends on SIGINT, SIGTERM or SIGHUP: the three are
//! caught alike, as one future that completes with the first of them
//! ([`signal`]), and [`run_until`] races the run against it.
//!
//! - Over a finite input (files, the generator, standard input) a signal
//!   cancels the run: workers stopped, staged outputs and snapshots
//!   removed, exit code 128 + the signal's number (130, 143, 129).
//! - With `--follow` a signal is the normal end: reading stops at what was
//!   written, the outputs are written as usual, exit 0.
//!
//! Either way the run has [`GRACE`] to wind down; past it, it is dropped
//! (its outputs removed) so that the process exits within a second of the
//! signal, whatever it was doing.

use std::future::Future;
use std::time::Duration;
use tokio::signal::unix::{signal as catch, SignalKind};

/// How long a run may take to stop once signalled.
pub(crate) const GRACE: Duration = Duration::from_millis(750);

/// A signal that ends a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (`kill`, service managers).
    Terminate,
    /// SIGHUP (the terminal went away).
    Hangup,
}

impl Signal {
    /// Its conventional name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
            Signal::Hangup => "SIGHUP",
        }
    }

    /// 128 + its number, as a shell reports a process it ended.
    pub(crate) fn exit_code(self) -> u8 {
        let n = match self {
            Signal::Interrupt => libc::SIGINT,
            Signal::Terminate => libc::SIGTERM,
            Signal::Hangup => libc::SIGHUP,
        };
        128 + n as u8
    }
}

/// Catches SIGINT, SIGTERM and SIGHUP from now on (inside a Tokio
/// runtime); the future completes with the first one that arrives.
pub(crate) fn signal() -> std::io::Result<impl Future<Output = Signal>> {
    let mut int = catch(SignalKind::interrupt())?;
    let mut term = catch(SignalKind::terminate())?;
    let mut hup = catch(SignalKind::hangup())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => Signal::Interrupt,
            _ = term.recv() => Signal::Terminate,
            _ = hup.recv() => Signal::Hangup,
        }
    })
}

/// Runs `run` until it ends or `shutdown` completes. On a signal,
/// `stop(signal)` asks the run to stop and it gets [`GRACE`] to do so;
/// `None` if it did not (it is dropped). Returns the run's outcome and the
/// signal, if one came.
pub(crate) async fn run_until<R>(
    run: impl Future<Output = R>,
    shutdown: impl Future<Output = Signal>,
    stop: impl FnOnce(Signal),
) -> (Option<R>, Option<Signal>) {
    tokio::pin!(run);
    tokio::select! {
        // A run that ends on its own wins over a signal arriving together.
        biased;
        outcome = &mut run => (Some(outcome), None),
        sig = shutdown => {
            tracing::info!("{}: stopping", sig.name());
            stop(sig);
            match tokio::time::timeout(GRACE, run).await {
                Ok(outcome) => (Some(outcome), Some(sig)),
                Err(_) => {
                    tracing::warn!(
                        "{}: the run did not stop within {GRACE:?}: dropped",
                        sig.name()
                    );
                    (None, Some(sig))
                }
            }
        }
    }
}
