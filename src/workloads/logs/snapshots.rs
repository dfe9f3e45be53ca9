//! `summary.json` rewritten while a run goes on (`--snapshot-every`), by
//! the `logs` sink.
//!
//! Cost: one summary per snapshot, never one per batch. The summary of a
//! large partial (many distinct hours, paths, clients) is the expensive
//! part, so it is only computed when a snapshot is due:
//!
//! - An input that never pauses (files, the generator): at a batch, if the
//!   interval has passed since the last snapshot, the summary so far is
//!   written, on the sink's own thread.
//! - An input that can pause (`--follow`, standard input; `trailing`): the
//!   last state before a pause must be written too, without waiting for a
//!   next batch. The sink then keeps the running totals itself: at each
//!   batch it moves what the run merged since the last batch (the running
//!   partial, left empty) into its totals, a merge the size of that batch.
//!   A thread of its own renders the totals once the interval has passed
//!   and something changed. So memory holds the totals once (not a copy per
//!   batch) and at most one rendered text, and stopping does not wait for
//!   the interval.
//!
//! Every snapshot is marked `"final": false` and is removed if the run
//! fails (see [`crate::outputs::write_snapshot`]).

use super::metrics::LogsPartial;
use super::sink::SUMMARY_FILE;
use crate::stage::StageError;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The snapshots of one sink.
pub(super) struct Snapshots {
    every: Duration,
    last: Instant,
    path: PathBuf,
    trailing: Option<Trailing>,
}

/// The running totals and the thread that renders them.
struct Trailing {
    shared: Arc<(Mutex<Totals>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Totals {
    partial: LogsPartial,
    /// Changed since the last snapshot.
    dirty: bool,
    stopped: bool,
}

fn lock(m: &Mutex<Totals>) -> std::sync::MutexGuard<'_, Totals> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Snapshots {
    pub(super) fn new(plan: super::SnapshotPlan) -> Self {
        let path = plan.dir.join(SUMMARY_FILE);
        let every = Duration::from_millis(plan.every_ms);
        let trailing = plan.trailing.then(|| {
            let shared = Arc::new((
                Mutex::new(Totals {
                    partial: LogsPartial::default(),
                    dirty: false,
                    stopped: false,
                }),
                Condvar::new(),
            ));
            let (on_thread, path) = (Arc::clone(&shared), path.clone());
            let thread = std::thread::spawn(move || write_when_due(&on_thread, every, &path));
            Trailing {
                shared,
                thread: Some(thread),
            }
        });
        Snapshots {
            every,
            last: Instant::now(),
            path,
            trailing,
        }
    }

    /// Called at every batch with the run's partial so far (trailing: what
    /// it merged since the last call, which is moved out).
    pub(super) fn offer(&mut self, acc: &mut LogsPartial) -> Result<(), StageError> {
        if let Some(t) = &self.trailing {
            let since_last = std::mem::take(acc);
            let (totals, wake) = &*t.shared;
            let mut totals = lock(totals);
            totals
                .partial
                .try_merge(since_last)
                .map_err(StageError::new)?;
            totals.dirty = true;
            wake.notify_one();
            return Ok(());
        }
        if self.last.elapsed() < self.every {
            return Ok(());
        }
        self.last = Instant::now();
        let text = acc.summary().to_json();
        crate::outputs::write_snapshot(&self.path, &text)
            .map_err(|e| StageError::new(e.to_string()))
    }

    /// Stops the thread at once (what it would still write is older than
    /// the final result) and gives back the run's totals held here, to be
    /// merged before the final result (trailing only).
    pub(super) fn stop(&mut self) -> Option<LogsPartial> {
        let t = self.trailing.as_mut()?;
        let (totals, wake) = &*t.shared;
        lock(totals).stopped = true;
        wake.notify_one();
        if let Some(thread) = t.thread.take() {
            let _ = thread.join();
        }
        Some(std::mem::take(&mut lock(totals).partial))
    }

    /// Calls `f` with the run's totals when this sink keeps them
    /// (trailing: the running partial is then empty); `None` otherwise.
    pub(super) fn with_totals<R>(&self, f: impl FnOnce(&LogsPartial) -> R) -> Option<R> {
        let t = self.trailing.as_ref()?;
        Some(f(&lock(&t.shared.0).partial))
    }

    /// Takes back the snapshot written, if it is still in place (the run
    /// failed: no summary of it may be left).
    pub(super) fn retract(&mut self) {
        self.stop();
        crate::outputs::retract_snapshot(&self.path);
    }
}

/// The trailing thread: renders and writes the totals once `every` has
/// passed since the last snapshot and they changed; ends when stopped.
fn write_when_due(shared: &(Mutex<Totals>, Condvar), every: Duration, path: &std::path::Path) {
    let (totals, wake) = shared;
    let mut last: Option<Instant> = None;
    let mut guard = lock(totals);
    loop {
        if guard.stopped {
            return;
        }
        let wait = last.and_then(|l| every.checked_sub(l.elapsed()));
        match (guard.dirty, wait) {
            (false, _) => {
                guard = wake.wait(guard).unwrap_or_else(|p| p.into_inner());
            }
            (true, Some(wait)) if !wait.is_zero() => {
                guard = wake
                    .wait_timeout(guard, wait)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            (true, _) => {
                guard.dirty = false;
                let text = guard.partial.summary().to_json();
                drop(guard);
                if let Err(e) = crate::outputs::write_snapshot(path, &text) {
                    tracing::warn!("summary snapshot: {e}");
                }
                last = Some(Instant::now());
                guard = lock(totals);
            }
        }
    }
}
