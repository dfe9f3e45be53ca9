//! What carries chunks to the workers that run them: the one trait every
//! transport implements, and [`pump`], the step that every driver of the
//! engine takes after each event (a result, a worker joining or leaving,
//! a chunk read, a tick of the clock).
//!
//! A transport owns its scheduler and knows two things the scheduler does
//! not: how to hand a chunk to a worker (a queue to a thread, a frame on a
//! socket), and how to ask the source for the next chunk (cut right away
//! on the caller's thread, or asked of a reading thread that answers
//! later). Results come back by the transport's own way (a channel, actor
//! messages) and go to [`Scheduler::complete`]; the driver then takes
//! them out in order with [`Scheduler::pop_ready`] and merges them.

#[cfg(test)]
mod tests;

use super::schedule::{ChunkInfo, Held, Scheduler, Sent};
use crate::error::RunError;
use std::time::Instant;

/// A worker the transport can no longer reach (its thread ended, its
/// connection closed): the scheduler forgets it and the chunks only it
/// held go back to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gone;

/// Threads of this process or worker processes over the wire, as the
/// scheduler sees them.
pub(crate) trait Transport {
    /// What the scheduler keeps of a chunk and hands to [`send`](Self::send).
    type Frame: Clone + Held;
    /// A worker's answer for a chunk, as the scheduler orders it.
    type Result;

    /// The scheduler deciding what runs where.
    fn scheduler(&mut self) -> &mut Scheduler<Self::Frame, Self::Result>;

    /// Hands `chunk` to `to.worker`, which holds it until it answers
    /// (`to.again`: another worker holds it too, overdue).
    fn send(&mut self, to: Sent, chunk: ChunkInfo<Self::Frame>) -> Result<(), Gone>;

    /// Asks the source for the next chunk (the scheduler counted the
    /// request with [`Scheduler::start_read`]). A source read on this
    /// thread answers before returning, with [`Scheduler::push_new`] or
    /// [`Scheduler::read_nothing`] (and [`Scheduler::set_exhausted`] at
    /// the end); one read elsewhere answers later the same way. An error
    /// fails the run.
    fn read(&mut self) -> Result<(), RunError>;
}

/// Sends every chunk the credits allow (overdue copies first, then the
/// lowest waiting), and asks the source for more while the scheduler
/// wants it, until neither moves. True when every chunk was read, run and
/// handed out in order: the run is done.
pub(crate) fn pump<T: Transport>(t: &mut T, now: Instant) -> Result<bool, RunError> {
    loop {
        while let Some((to, chunk)) = t.scheduler().assign(now) {
            if t.send(to, chunk) == Err(Gone) {
                let lost = t.scheduler().remove_worker(to.worker);
                tracing::debug!(
                    worker = to.worker,
                    "worker gone before it took a chunk; re-queued {lost:?}"
                );
            }
        }
        if !t.scheduler().wants_new_chunk() {
            return Ok(t.scheduler().is_finished());
        }
        t.scheduler().start_read();
        t.read()?;
    }
}
