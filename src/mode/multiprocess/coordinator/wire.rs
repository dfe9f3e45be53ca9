//! The workers' connections as the chunk engine's transport: a chunk goes
//! to its worker as a frame on that worker's connection (its bytes, or
//! its file ranges for a worker that reads them: `chunks.rs`), a new
//! chunk is asked of the coordinator's reading thread, which answers
//! later (`ReadReply`), and a worker whose connection is gone gives its
//! chunks back to the queue.

use super::reader::ReadRequest;
use super::{ChunkFrame, Coordinator, Done};
use crate::error::RunError;
use crate::mode::engine::schedule::{ChunkInfo, Scheduler, Sent};
use crate::mode::engine::transport::{Gone, Transport};
use actix::prelude::*;

/// The coordinator, for the length of one [`pump`](crate::mode::engine::transport::pump).
pub(super) struct Wire<'a> {
    pub(super) coord: &'a mut Coordinator,
    pub(super) ctx: &'a mut Context<Coordinator>,
}

impl Transport for Wire<'_> {
    type Frame = ChunkFrame;
    type Result = Done;

    fn scheduler(&mut self) -> &mut Scheduler<ChunkFrame, Done> {
        &mut self.coord.sched
    }

    /// Sends the chunk's frame on the worker's connection: bounded by the
    /// worker's credit, so a connection holds at most its credit.
    fn send(&mut self, to: Sent, chunk: ChunkInfo<ChunkFrame>) -> Result<(), Gone> {
        let conn = self.coord.conns.get(&to.worker).cloned().ok_or(Gone)?;
        if to.again {
            tracing::info!(
                seq = chunk.seq,
                worker = to.worker,
                deadline = ?self.coord.sched.deadline(),
                "chunk {} is overdue: sent to worker {} as well",
                chunk.seq,
                self.coord.worker_label(to.worker)
            );
        }
        self.coord.send_chunk(self.ctx, to.worker, conn, chunk);
        Ok(())
    }

    /// Asks the reading thread for the next chunk, sized for the workers
    /// connected now.
    fn read(&mut self) -> Result<(), RunError> {
        let req = ReadRequest {
            workers: self.coord.sched.workers(),
            readers: !self.coord.roots.is_empty(),
        };
        match self.coord.reader.as_ref().is_some_and(|r| r.ask(req)) {
            true => Ok(()),
            false => Err(RunError::Runtime(
                "the coordinator's input thread stopped".into(),
            )),
        }
    }
}
