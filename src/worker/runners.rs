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

use super::chunk::{ChunkProcessor, Task};
use crate::error::RunError;
use crate::protocol::Message;
use std::collections::VecDeque;
use tokio::sync::mpsc;

/// Results from the runners, by runner index.
type Done = mpsc::UnboundedSender<(usize, Result<Message, RunError>)>;

/// The runners of one job, and the chunks waiting for one to be idle.
pub(super) struct Runners {
    /// What starts the runners, until the first chunk does.
    unstarted: Option<Unstarted>,
    /// Each runner's tasks.
    to: Vec<mpsc::UnboundedSender<Task>>,
    idle: Vec<usize>,
    waiting: VecDeque<Task>,
    results: mpsc::UnboundedReceiver<(usize, Result<Message, RunError>)>,
    #[cfg(target_os = "linux")]
    children: Option<children::Children>,
}

/// The runners' copies of the pipeline, and what children need.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
struct Unstarted {
    processors: Vec<ChunkProcessor>,
    max_frame: usize,
    /// The coordinator's connection, which children close at once (so
    /// that only this process holds it).
    socket: i32,
    done: Done,
}

impl Runners {
    /// One runner per processor, started with the first chunk: child
    /// processes when it comes as file ranges and this process may fork
    /// them (see the module text), else threads. Until then no result
    /// comes ([`next`](Self::next) waits).
    pub(super) fn new(processors: Vec<ChunkProcessor>, max_frame: usize, socket: i32) -> Self {
        let (done, results) = mpsc::unbounded_channel();
        Runners {
            unstarted: Some(Unstarted {
                processors,
                max_frame,
                socket,
                done,
            }),
            to: Vec::new(),
            idle: Vec::new(),
            waiting: VecDeque::new(),
            results,
            #[cfg(target_os = "linux")]
            children: None,
        }
    }

    fn start(
        &mut self,
        u: Unstarted,
        #[cfg_attr(not(target_os = "linux"), allow(unused_variables))] files: bool,
    ) -> Result<(), RunError> {
        self.idle = (0..u.processors.len()).rev().collect();
        #[cfg(target_os = "linux")]
        if files && children::may_fork() {
            let (children, to) =
                children::Children::fork(u.processors, u.max_frame, u.socket, u.done)?;
            tracing::info!(
                children = to.len(),
                "chunks run in child processes of this worker"
            );
            self.to = to;
            self.children = Some(children);
            return Ok(());
        }
        for (i, mut processor) in u.processors.into_iter().enumerate() {
            let (work_tx, mut work_rx) = mpsc::unbounded_channel::<Task>();
            let done = u.done.clone();
            std::thread::Builder::new()
                .name(format!("parpipe-worker-{i}"))
                .spawn(move || {
                    while let Some(task) = work_rx.blocking_recv() {
                        if done.send((i, Ok(processor.run(task)))).is_err() {
                            return;
                        }
                    }
                })
                .map_err(|e| RunError::Runtime(format!("cannot start a worker thread: {e}")))?;
            self.to.push(work_tx);
        }
        Ok(())
    }

    /// Gives `task` to an idle runner, or keeps it until one is (a
    /// `Flush` runs after every chunk before it: it is sent only to a
    /// worker of one runner).
    pub(super) fn submit(&mut self, task: Task) -> Result<(), RunError> {
        if let Some(u) = self.unstarted.take() {
            let files = matches!(&task, Task::Chunk(work) if work.in_files());
            self.start(u, files)?;
        }
        self.waiting.push_back(task);
        self.dispatch()
    }

    fn dispatch(&mut self) -> Result<(), RunError> {
        while let Some(&i) = self.idle.last() {
            let Some(task) = self.waiting.pop_front() else {
                return Ok(());
            };
            self.idle.pop();
            if self.to[i].send(task).is_err() {
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
