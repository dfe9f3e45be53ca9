//! The thread transport: each worker is a thread of this process with a
//! queue of the chunks it was sent (never more than its credit: the
//! scheduler sees to that), running each with its own runner and
//! answering on one channel shared by all. A thread that ended (its
//! queue closed) is [`Gone`]; closing the queues, by dropping the
//! [`Threads`], ends every thread after the chunk it is running.

use super::schedule::ChunkInfo;
use super::transport::Gone;
use std::sync::mpsc;
use std::thread::Scope;

/// A thread's answer for one chunk.
pub(crate) struct Answered<A> {
    /// The thread (its index, the scheduler's worker id).
    pub(crate) worker: u64,
    /// The chunk.
    pub(crate) seq: u64,
    /// What its runner returned.
    pub(crate) answer: A,
}

/// The queues to the threads.
pub(crate) struct Threads<F> {
    queues: Vec<mpsc::Sender<ChunkInfo<F>>>,
}

impl<F: Send> Threads<F> {
    /// Starts a thread in `scope` for each of `runners` (thread `i`, named
    /// `{name}-{i}`, is worker `i`); each answers on the returned channel.
    /// A runner must answer every chunk (catch what it can fail on): the
    /// driver waits for each answer.
    pub(crate) fn start<'scope, A, W>(
        scope: &'scope Scope<'scope, '_>,
        name: &str,
        runners: Vec<W>,
    ) -> std::io::Result<(Self, mpsc::Receiver<Answered<A>>)>
    where
        F: 'scope,
        A: Send + 'scope,
        W: FnMut(ChunkInfo<F>) -> A + Send + 'scope,
    {
        let (done, answers) = mpsc::channel();
        let mut queues = Vec::with_capacity(runners.len());
        for (i, mut runner) in runners.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel::<ChunkInfo<F>>();
            let done = done.clone();
            let worker = i as u64;
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn_scoped(scope, move || {
                    while let Ok(chunk) = rx.recv() {
                        let seq = chunk.seq;
                        let answered = Answered {
                            worker,
                            seq,
                            answer: runner(chunk),
                        };
                        if done.send(answered).is_err() {
                            return;
                        }
                    }
                })?;
            queues.push(tx);
        }
        Ok((Threads { queues }, answers))
    }

    /// Threads started.
    pub(crate) fn len(&self) -> usize {
        self.queues.len()
    }

    /// Queues `chunk` for thread `worker`.
    pub(crate) fn send(&self, worker: u64, chunk: ChunkInfo<F>) -> Result<(), Gone> {
        let queue = usize::try_from(worker)
            .ok()
            .and_then(|w| self.queues.get(w))
            .ok_or(Gone)?;
        queue.send(chunk).map_err(|_| Gone)
    }
}
