//! Where a worker's chunks run while its socket task keeps the heartbeats
//! going: child processes forked for the job, or threads of this process.
//!
//! Children are used when the job's chunks come as file ranges that the
//! worker reads itself, and this process has never started a thread (a
//! worker started as its own program: `parpipe worker`, or an embedding
//! application's `dispatch_if_worker`). The reason is glibc's
//! allocator: once a process has had a second thread, every `malloc` its
//! per-thread cache cannot serve takes an arena lock and every free into
//! the fast bins is atomic, for the rest of the process's life (a forked
//! child of such a process keeps paying). A user's per-record code that
//! allocates (owned strings, maps) then runs measurably slower on a thread
//! beside the socket's than in a process of one thread; a child forked
//! from a process of one thread has one thread, and pays nothing. A
//! process that already has threads (a worker run inside a test harness,
//! or on a thread of an application's runtime) runs its chunks on threads.
//! So does a job whose first chunk comes as bytes (gzip, standard input,
//! generated input, a worker that may read no file): every chunk's bytes
//! would cross one more socket, from this process to the child, and that
//! cost a run of shipped text 13 % of its time, more than the locks save.
//!
//! Either way each runner has its own copy of the pipeline and takes one
//! chunk at a time; the socket task hands the next chunk to whichever is
//! idle, so the results are the same whatever runs them. A child reads
//! its chunks from, and writes its results to, a socket pair in the
//! wire's untagged frames; it exits when the pair closes, and is killed
//! with its parent (`PR_SET_PDEATHSIG`) or at the job's end.

use super::chunk::{ChunkProcessor, Work};
use crate::error::RunError;
use crate::protocol::Message;
use std::collections::VecDeque;
use tokio::sync::mpsc;

/// The runners of one job, and the chunks waiting for one to be idle.
pub(super) struct Runners {
    to: Vec<To>,
    idle: Vec<usize>,
    waiting: VecDeque<Work>,
    results: mpsc::UnboundedReceiver<(usize, Result<Message, RunError>)>,
    #[cfg(target_os = "linux")]
    children: Option<children::Children>,
}

/// How a chunk reaches runner `i`.
enum To {
    Thread(std::sync::mpsc::Sender<Work>),
    #[cfg(target_os = "linux")]
    Child(mpsc::UnboundedSender<Work>),
}

impl Runners {
    /// One runner per processor: child processes when chunks come as
    /// file ranges (`files`, the job's first chunk) and this process may
    /// fork them (see the module text), else threads. `socket` is the
    /// coordinator's connection, which children close at once (so that
    /// only this process holds it).
    pub(super) fn start(
        processors: Vec<ChunkProcessor>,
        #[cfg_attr(not(target_os = "linux"), allow(unused_variables))] max_frame: usize,
        #[cfg_attr(not(target_os = "linux"), allow(unused_variables))] socket: i32,
        #[cfg_attr(not(target_os = "linux"), allow(unused_variables))] files: bool,
    ) -> Result<Self, RunError> {
        let (done_tx, results) = mpsc::unbounded_channel();
        let idle = (0..processors.len()).rev().collect();
        #[cfg(target_os = "linux")]
        if files && children::may_fork() {
            let (children, to) = children::Children::fork(processors, max_frame, socket, done_tx)?;
            tracing::info!(
                children = to.len(),
                "chunks run in child processes of this worker"
            );
            return Ok(Runners {
                to: to.into_iter().map(To::Child).collect(),
                idle,
                waiting: VecDeque::new(),
                results,
                children: Some(children),
            });
        }
        let mut to = Vec::with_capacity(processors.len());
        for (i, mut processor) in processors.into_iter().enumerate() {
            let (work_tx, work_rx) = std::sync::mpsc::channel::<Work>();
            let done_tx = done_tx.clone();
            std::thread::Builder::new()
                .name(format!("parpipe-worker-{i}"))
                .spawn(move || {
                    while let Ok(work) = work_rx.recv() {
                        if done_tx.send((i, Ok(processor.process(work)))).is_err() {
                            return;
                        }
                    }
                })
                .map_err(|e| RunError::Runtime(format!("cannot start a worker thread: {e}")))?;
            to.push(To::Thread(work_tx));
        }
        Ok(Runners {
            to,
            idle,
            waiting: VecDeque::new(),
            results,
            #[cfg(target_os = "linux")]
            children: None,
        })
    }

    /// Gives `work` to an idle runner, or keeps it until one is.
    pub(super) fn submit(&mut self, work: Work) -> Result<(), RunError> {
        self.waiting.push_back(work);
        self.dispatch()
    }

    fn dispatch(&mut self) -> Result<(), RunError> {
        while let Some(&i) = self.idle.last() {
            let Some(work) = self.waiting.pop_front() else {
                return Ok(());
            };
            self.idle.pop();
            let sent = match &self.to[i] {
                To::Thread(tx) => tx.send(work).is_ok(),
                #[cfg(target_os = "linux")]
                To::Child(tx) => tx.send(work).is_ok(),
            };
            if !sent {
                return Err(RunError::Runtime(format!(
                    "the runner of this worker's chunks number {i} stopped"
                )));
            }
        }
        Ok(())
    }

    /// The next chunk's result, from whichever runner finishes first; an
    /// error when a runner is gone (a child that died, say).
    pub(super) async fn next(&mut self) -> Result<Message, RunError> {
        let Some((i, result)) = self.results.recv().await else {
            return Err(RunError::Runtime(
                "every runner of this worker stopped".into(),
            ));
        };
        #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
        let mut msg = result?;
        #[cfg(target_os = "linux")]
        if let Some(children) = self.children.as_mut() {
            children.account(i, &mut msg);
        }
        self.idle.push(i);
        self.dispatch()?;
        Ok(msg)
    }
}

#[cfg(target_os = "linux")]
impl Drop for Runners {
    fn drop(&mut self) {
        if let Some(children) = self.children.take() {
            children.end();
        }
    }
}

#[cfg(target_os = "linux")]
#[path = "runners/children.rs"]
mod children;
