//! Pulling a source that may wait (standard input, a socket, a channel,
//! user code that blocks) on a thread of its own, so that no engine ever
//! waits inside a source.
//!
//! [`Detached`] owns the thread. The engine asks it for a batch (or a chunk)
//! as it asks any source; the first ask hands the request to the thread and
//! answers `Pending`, with a wake-up that fires when the thread has the
//! answer. Meanwhile the engine's actor stays free: heartbeats, results,
//! snapshots and cancellation go on (a coordinator used to stop answering
//! its workers while its source waited on a pipe). The thread has no async
//! runtime of its own, so a source may block in any way it likes
//! (`blocking_recv`, `block_on`, a read).
//!
//! When the run ends, dropping the adapter closes the request channel: the
//! thread ends after the pull it is in, if any, returns. A pull that never
//! returns leaves its thread parked; the run itself is not held up.

use crate::metrics::thread_cpu;
use crate::pipeline::{AnyData, DynChunkDecoder, DynSource, Pulled, Wake};
use crate::stage::StageError;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Puts `source` behind a thread of its own (see the module docs).
pub(crate) fn detach(source: &mut Box<dyn DynSource>) -> std::io::Result<()> {
    let own = std::mem::replace(source, Box::new(Moved));
    *source = Box::new(Detached::new(own)?);
    Ok(())
}

/// What the engine asked for.
enum Request {
    Batch(usize),
    /// A chunk in wire form, written after what `Vec` already holds.
    Chunk(usize, Vec<u8>),
}

/// The thread's answer to a [`Request`], and the CPU time the pull took.
struct Reply {
    got: Got,
    cpu: Duration,
}

enum Got {
    Batch(Result<Pulled<AnyData>, StageError>),
    Chunk(Result<Pulled<()>, StageError>, Vec<u8>),
}

/// Size estimates, refreshed by the thread after each pull (the engine
/// asks for them between pulls, when the source may be busy).
#[derive(Clone, Copy, Default)]
struct Hints {
    size: Option<u64>,
    remaining: Option<u64>,
}

/// A source pulled on its own thread (see the module docs). It never
/// gives chunks as file ranges (the default): a source that waits for its
/// input is not a set of files.
pub(crate) struct Detached {
    requests: Option<mpsc::Sender<Request>>,
    replies: mpsc::Receiver<Reply>,
    ready: Arc<Notify>,
    /// A request the thread has not answered yet.
    in_flight: bool,
    /// The CPU time of the pull last answered, for [`DynSource::took`].
    took: Option<Duration>,
    /// The CPU time of every pull answered so far, for [`DynSource::own_cpu`].
    cpu_total: Duration,
    /// An answer [`DynSource::wait_briefly`] received, not yet handed out.
    stashed: Option<Reply>,
    hints: Arc<Mutex<Hints>>,
    /// The source itself, for the calls that need no pull (decoding a
    /// chunk); locked by the thread only while it pulls.
    source: Arc<Mutex<Box<dyn DynSource>>>,
}

impl Detached {
    /// Moves `source` behind a thread of its own.
    fn new(source: Box<dyn DynSource>) -> std::io::Result<Self> {
        let hints = Arc::new(Mutex::new(Hints {
            size: source.size_hint(),
            remaining: source.remaining_estimate(),
        }));
        let source = Arc::new(Mutex::new(source));
        let (requests, inbox) = mpsc::channel::<Request>();
        let (outbox, replies) = mpsc::channel::<Reply>();
        let ready = Arc::new(Notify::new());
        let (thread_source, thread_hints, thread_ready) =
            (Arc::clone(&source), Arc::clone(&hints), Arc::clone(&ready));
        std::thread::Builder::new()
            .name("parpipe-source".into())
            .spawn(move || {
                for request in inbox {
                    let mut source = lock(&thread_source);
                    let before = thread_cpu();
                    let got = match request {
                        Request::Batch(max) => Got::Batch(source.next_batch(max)),
                        Request::Chunk(max, mut out) => {
                            let got = source.next_chunk(max, &mut out);
                            Got::Chunk(got, out)
                        }
                    };
                    let reply = Reply {
                        got,
                        cpu: thread_cpu().saturating_sub(before),
                    };
                    *lock(&thread_hints) = Hints {
                        size: source.size_hint(),
                        remaining: source.remaining_estimate(),
                    };
                    drop(source);
                    if outbox.send(reply).is_err() {
                        return;
                    }
                    // A permit is kept if the engine is not waiting yet.
                    thread_ready.notify_one();
                }
            })?;
        Ok(Detached {
            requests: Some(requests),
            replies,
            ready,
            in_flight: false,
            took: None,
            cpu_total: Duration::ZERO,
            stashed: None,
            hints,
            source,
        })
    }

    fn wake(&self) -> Wake {
        let ready = Arc::clone(&self.ready);
        Box::pin(async move { ready.notified().await })
    }

    /// The thread's answer if it has one; else sends `request` (unless one
    /// is already out) and gives `None`.
    fn answer(&mut self, request: impl FnOnce() -> Request) -> Result<Option<Got>, StageError> {
        self.took = None;
        if self.in_flight {
            let received = match self.stashed.take() {
                Some(reply) => Ok(reply),
                None => self.replies.try_recv(),
            };
            return match received {
                Ok(reply) => {
                    self.in_flight = false;
                    self.took = Some(reply.cpu);
                    self.cpu_total += reply.cpu;
                    Ok(Some(reply.got))
                }
                Err(mpsc::TryRecvError::Empty) => Ok(None),
                Err(mpsc::TryRecvError::Disconnected) => Err(gone()),
            };
        }
        let sent = self
            .requests
            .as_ref()
            .is_some_and(|r| r.send(request()).is_ok());
        if !sent {
            return Err(gone());
        }
        self.in_flight = true;
        Ok(None)
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        // Ends the thread's loop once its current pull (if any) returns.
        self.requests = None;
    }
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn gone() -> StageError {
    StageError::new("the source's thread ended (it panicked)")
}

fn mixed() -> StageError {
    StageError::new("parpipe internal error: batches and chunks pulled from one source")
}

impl DynSource for Detached {
    fn next_batch(&mut self, max: usize) -> Result<Pulled<AnyData>, StageError> {
        match self.answer(|| Request::Batch(max))? {
            Some(Got::Batch(got)) => got,
            Some(Got::Chunk(..)) => Err(mixed()),
            None => Ok(Pulled::Pending(self.wake())),
        }
    }

    fn size_hint(&self) -> Option<u64> {
        lock(&self.hints).size
    }

    fn remaining_estimate(&self) -> Option<u64> {
        lock(&self.hints).remaining
    }

    fn next_chunk(&mut self, max: usize, out: &mut Vec<u8>) -> Result<Pulled<()>, StageError> {
        // The buffer travels to the thread and back: a chunk is written
        // once, straight into the frame the engine sends.
        match self.answer(|| Request::Chunk(max, std::mem::take(out)))? {
            Some(Got::Chunk(got, buf)) => {
                *out = buf;
                got
            }
            Some(Got::Batch(_)) => Err(mixed()),
            None => Ok(Pulled::Pending(self.wake())),
        }
    }

    /// The CPU time the thread spent in the pull just answered (time it
    /// waited for input is not work); the call itself takes microseconds.
    fn took(&mut self) -> Option<Duration> {
        self.took.take()
    }

    fn own_cpu(&self) -> Duration {
        self.cpu_total
    }

    /// It is a source that waits (what it was detached for).
    fn may_wait(&self) -> bool {
        true
    }

    /// Blocks the caller for at most `timeout` until the pull in flight
    /// is answered (for the `auto` probe, which measures a few batches
    /// before the actors start).
    fn wait_briefly(&mut self, timeout: Duration) -> bool {
        if !self.in_flight || self.stashed.is_some() {
            return self.stashed.is_some();
        }
        match self.replies.recv_timeout(timeout) {
            Ok(reply) => {
                self.stashed = Some(reply);
                true
            }
            Err(_) => false,
        }
    }

    fn chunk_decoder(&self) -> Option<Box<dyn DynChunkDecoder>> {
        lock(&self.source).chunk_decoder()
    }
}

/// The place a source was moved out of, for the instant before its
/// adapter takes it (never pulled).
struct Moved;

impl DynSource for Moved {
    fn next_batch(&mut self, _max: usize) -> Result<Pulled<AnyData>, StageError> {
        Ok(Pulled::End)
    }

    fn size_hint(&self) -> Option<u64> {
        None
    }

    fn remaining_estimate(&self) -> Option<u64> {
        None
    }

    fn next_chunk(&mut self, _max: usize, _out: &mut Vec<u8>) -> Result<Pulled<()>, StageError> {
        Ok(Pulled::End)
    }
}

#[cfg(test)]
mod tests;
