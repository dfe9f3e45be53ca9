//! The coordinator's chunk frames: what the reading thread cuts (as file
//! ranges when some worker can read them, else as bytes), and the frame
//! each worker is sent — the bytes of a chunk cut as ranges are read for
//! a worker that cannot read them itself, off the coordinator's thread —
//! and a worker's `ChunkUnreadable`: that chunk's bytes are sent to it
//! instead, and so are those of every later chunk of that file.

use super::reader::{Got, ReadReply};
use super::Coordinator;
use crate::error::RunError;
use crate::file_range::{read_ranges, AllowedRoots, FileRange};
use crate::metrics::UnreadableInput;
use crate::mode::engine::schedule::{Answer, ChunkInfo, Held};
use crate::mode::multiprocess::connection::{Close, Connection, SendFrame};
use crate::protocol::{seal_chunk_frame, CHUNK_HEADER_ROOM};
use actix::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;

/// A chunk ready to send.
#[derive(Clone)]
pub(crate) enum ChunkFrame {
    /// The frame of a `Chunk`, payload included.
    Bytes(bytes::Bytes),
    /// The frame of a `ChunkInFiles`, for workers allowed to read its
    /// files, and its ranges, for the others.
    InFiles {
        frame: bytes::Bytes,
        ranges: Arc<Vec<FileRange>>,
    },
}

impl Held for ChunkFrame {
    fn held_bytes(&self) -> usize {
        match self {
            ChunkFrame::Bytes(b) => b.len(),
            ChunkFrame::InFiles { frame, .. } => frame.len(),
        }
    }
}

impl Coordinator {
    /// Sends `chunk` to `worker` on `conn`: a chunk cut as file ranges
    /// goes as ranges to a worker that announced a root holding every one
    /// of its files (the same path on both sides); for any other, its
    /// bytes are read on a blocking thread (the coordinator's thread
    /// never waits on a file) and sent once read.
    ///
    /// `do_send` is safe here: the scheduler hands a worker a chunk only
    /// within its grant, so a connection's mailbox never holds more chunk
    /// frames than the chunks that worker may have in flight.
    pub(super) fn send_chunk(
        &mut self,
        ctx: &mut Context<Self>,
        worker: u64,
        conn: Addr<Connection>,
        chunk: ChunkInfo<ChunkFrame>,
    ) {
        let info = chunk.info();
        let ranges = match chunk.frame {
            ChunkFrame::Bytes(frame) => return conn.do_send(SendFrame(frame)),
            ChunkFrame::InFiles { frame, ranges } if self.can_read(worker, &ranges) => {
                self.sent_in_files.insert((worker, info.seq));
                return conn.do_send(SendFrame(frame));
            }
            ChunkFrame::InFiles { ranges, .. } => ranges,
        };
        let max_frame = self.config.max_frame;
        let read = tokio::task::spawn_blocking(move || resolve(&info, &ranges, max_frame));
        ctx.spawn(read.into_actor(self).map(move |read, act, ctx| match read {
            // Bounded by the grant, as above.
            Ok(Ok(frame)) => conn.do_send(SendFrame(frame)),
            Ok(Err(e)) => {
                let e = act.placed(e);
                act.fail(ctx, e)
            }
            Err(e) => act.fail(
                ctx,
                RunError::Runtime(format!("reading a chunk failed: {e}")),
            ),
        }));
    }

    /// `e`, the coordinator's failure on a chunk cut by bytes (its lines
    /// not counted), with where its lines start when every chunk before
    /// it is merged.
    fn placed(&self, e: RunError) -> RunError {
        match e {
            RunError::Chunk {
                seq,
                first_line: 0,
                last_line: 0,
                worker,
                failure,
                error,
            } if self.uncounted && self.merged == seq => RunError::Chunk {
                seq,
                first_line: self.merged_records.saturating_add(1),
                last_line: 0,
                worker,
                failure,
                error,
            },
            other => other,
        }
    }

    /// Whether `worker` announced roots that hold every file of `ranges`,
    /// none of which it said it cannot read.
    fn can_read(&self, worker: u64, ranges: &[FileRange]) -> bool {
        let unreadable = self.unreadable.get(&worker);
        self.roots
            .get(&worker)
            .is_some_and(|roots| AllowedRoots::covers(roots, ranges))
            && !ranges
                .iter()
                .any(|r| unreadable.is_some_and(|u| u.contains(&r.path)))
    }
}

/// A worker could not read a file of a chunk it was sent as ranges.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ChunkUnreadableMsg {
    pub(crate) id: u64,
    pub(crate) seq: u64,
    /// The file, as the worker named it.
    pub(crate) input: String,
    pub(crate) reason: String,
}

impl Handler<ChunkUnreadableMsg> for Coordinator {
    type Result = ();

    /// Marks the file unreadable for that worker and sends it the chunk's
    /// bytes (the chunk stays that worker's, within its credit). A worker
    /// that says so of a chunk it was sent as bytes is dropped: it cannot
    /// have tried to read a file.
    fn handle(&mut self, msg: ChunkUnreadableMsg, ctx: &mut Context<Self>) {
        let chunk = match self.sched.answer(msg.id, msg.seq) {
            Answer::First(c) => c.clone(),
            Answer::Late => {
                // Another worker answered it first; that result stands.
                self.sent_in_files.remove(&(msg.id, msg.seq));
                self.sched.release(msg.id, msg.seq);
                return self.pump(ctx);
            }
            Answer::Unknown => return,
        };
        let sent_as_ranges = self.sent_in_files.remove(&(msg.id, msg.seq));
        let (ChunkFrame::InFiles { ranges, .. }, true) = (&chunk.frame, sent_as_ranges) else {
            tracing::warn!(
                "worker {}: says it cannot read chunk {}, which it was sent as bytes; dropping the worker",
                self.worker_label(msg.id),
                msg.seq
            );
            if let Some(conn) = self.conns.get(&msg.id) {
                conn.do_send(Close);
            }
            return;
        };
        let input = PathBuf::from(&msg.input);
        // A file the chunk does not name (a confused worker): all of its
        // files go as bytes to that worker from now on.
        let marked: Vec<PathBuf> = match ranges.iter().any(|r| r.path == input) {
            true => vec![input],
            false => ranges.iter().map(|r| r.path.clone()).collect(),
        };
        let label = self.worker_label(msg.id);
        let set = self.unreadable.entry(msg.id).or_default();
        let mut new_inputs = Vec::new();
        for path in marked {
            if set.insert(path.clone()) {
                new_inputs.push(path);
            }
        }
        tracing::warn!(
            "worker {label} cannot read input '{}' ({}): the coordinator sends the bytes of chunk {} \
             and of every later chunk of that input to it",
            msg.input,
            msg.reason,
            msg.seq
        );
        if let Some(row) = self.rows.get_mut(&msg.id) {
            row.report.shipped_unreadable += 1;
            row.report
                .unreadable_inputs
                .extend(new_inputs.iter().map(|p| UnreadableInput {
                    input: p.display().to_string(),
                    reason: msg.reason.clone(),
                }));
        }
        let Some(conn) = self.conns.get(&msg.id).cloned() else {
            return;
        };
        self.send_chunk(ctx, msg.id, conn, chunk);
    }
}

impl Handler<ReadReply> for Coordinator {
    type Result = ();

    fn handle(&mut self, msg: ReadReply, ctx: &mut Context<Self>) {
        self.stats[0].absorb(&msg.stats);
        match msg.got {
            Got::Chunk { chunk, uncounted } => {
                if chunk.seq != self.sched.next_seq() {
                    let e = format!(
                        "the input thread cut chunk {} where {} was next",
                        chunk.seq,
                        self.sched.next_seq()
                    );
                    return self.fail(ctx, RunError::Runtime(e));
                }
                self.uncounted = uncounted;
                self.sched.push_new(chunk);
            }
            Got::Snapshot(req) => {
                self.sched.read_nothing();
                self.snapshots.push_back((self.sched.next_seq(), req));
                self.answer_snapshots();
            }
            Got::End => {
                self.sched.read_nothing();
                self.sched.set_exhausted();
            }
            Got::Failed(e) => return self.fail(ctx, e),
        }
        self.pump(ctx);
    }
}

/// The `Chunk` frame of a chunk cut as file ranges: its bytes, read here.
fn resolve(
    chunk: &ChunkInfo<()>,
    ranges: &[FileRange],
    max_frame: usize,
) -> Result<bytes::Bytes, RunError> {
    let mut buf = vec![0; CHUNK_HEADER_ROOM];
    read_ranges(ranges, &mut buf, max_frame)
        .map_err(|e| chunk_error(chunk, format!("cannot read the chunk: {e}")))?;
    seal_chunk_frame(buf, chunk.seq, chunk.first_line, chunk.records, max_frame)
        .map_err(|e| chunk_error(chunk, format!("cannot send the chunk: {e}")))
}

/// A failure of the coordinator itself on a chunk.
pub(super) fn chunk_error(chunk: &ChunkInfo<()>, error: String) -> RunError {
    // An uncounted chunk (0 records): where its lines are is not known here.
    let (first_line, last_line) = match chunk.records {
        0 => (0, 0),
        _ => (chunk.first_line, chunk.last_line()),
    };
    RunError::Chunk {
        seq: chunk.seq,
        first_line,
        last_line,
        worker: "coordinator".into(),
        failure: None,
        error: crate::StageError::new(error),
    }
}
