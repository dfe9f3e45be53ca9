//! A worker's processing of one chunk, apart from the socket: a chunk comes
//! in as a `Chunk` or `ChunkInFiles` message (its bytes in the frame, or in
//! local files read here) and goes out as `ChunkDone`, `ChunkFailed`, or
//! `ChunkUnreadable` when a file of a `ChunkInFiles` cannot be read here
//! (the coordinator then sends its bytes).
//! Every chunk is decoded by its source's decoder in parts of a batch
//! ([`run_streamed`]): a chunk in files block by block as it is read, as
//! serial mode reads its input; a chunk in the frame where it lies.
//!
//! A processor told to hold its partial (`Job.hold`) answers its first
//! chunk with its own partial (`ChunkDone`: the coordinator measures on
//! the first two whether the job's partials overlap), then folds every
//! later chunk into one partial and answers each with `ChunkHeld`; `Flush`
//! sends the partial as `Held`, with the chunks it holds, and `Unhold`
//! does so and ends the holding. A chunk that fails after its records
//! began to fold in takes the partial with it: the next `Held` names only
//! the chunks after it, and the coordinator runs the others again.

use crate::error::RunError;
use crate::file_range::{AllowedRoots, FileRange, RangeError, RangeReader};
use crate::mode::chunked::{run_streamed, ChunkBytes, ChunkError, ChunkRun};
use crate::pipeline::{AnyData, DynChunkDecoder, Pipeline};
use crate::protocol::{ChunkFailure, ChunkStats, Message};
use std::time::Instant;

/// What a runner is handed, in the order the coordinator sent it.
pub(crate) enum Task {
    /// A chunk to run.
    Chunk(Work),
    /// Send the partial held (`Flush`).
    Flush,
    /// Send the partial held and hold no more (`Unhold`).
    Unhold,
}

impl Task {
    /// The task a `Chunk`, `ChunkInFiles` (when `accept_files`), `Flush`
    /// or `Unhold` message carries; any other message is handed back.
    pub(crate) fn from_message(msg: Message, accept_files: bool) -> Result<Task, Message> {
        match msg {
            Message::Flush => Ok(Task::Flush),
            Message::Unhold => Ok(Task::Unhold),
            other => Work::from_message(other, accept_files).map(Task::Chunk),
        }
    }

    /// The message that carries this task (to a child process).
    pub(crate) fn into_message(self) -> Message {
        match self {
            Task::Chunk(work) => work.into_message(),
            Task::Flush => Message::Flush,
            Task::Unhold => Message::Unhold,
        }
    }
}

/// One chunk to process.
pub(crate) struct Work {
    seq: u64,
    first_line: u64,
    records: u64,
    payload: Payload,
}

/// Where a chunk's bytes are.
enum Payload {
    /// In the frame.
    Bytes(bytes::Bytes),
    /// In local files, to be read by the processing thread.
    Files(Vec<FileRange>),
}

impl Work {
    /// The work a `Chunk` message carries, or a `ChunkInFiles` one when
    /// `accept_files`; any other message is handed back.
    pub(crate) fn from_message(msg: Message, accept_files: bool) -> Result<Work, Message> {
        match msg {
            Message::Chunk {
                seq,
                first_line,
                records,
                payload,
            } => Ok(Work {
                seq,
                first_line,
                records,
                payload: Payload::Bytes(payload),
            }),
            Message::ChunkInFiles {
                seq,
                first_line,
                records,
                ranges,
            } if accept_files => Ok(Work {
                seq,
                first_line,
                records,
                payload: Payload::Files(ranges),
            }),
            other => Err(other),
        }
    }

    /// True for a chunk in files, read by whoever processes it.
    pub(crate) fn in_files(&self) -> bool {
        matches!(self.payload, Payload::Files(_))
    }

    /// The message that carries this work (to a child process).
    pub(crate) fn into_message(self) -> Message {
        let Work {
            seq,
            first_line,
            records,
            payload,
        } = self;
        match payload {
            Payload::Bytes(payload) => Message::Chunk {
                seq,
                first_line,
                records,
                payload,
            },
            Payload::Files(ranges) => Message::ChunkInFiles {
                seq,
                first_line,
                records,
                ranges,
            },
        }
    }
}

/// Runs chunks through a pipeline's stages and aggregate, one at a time.
pub(crate) struct ChunkProcessor {
    pipeline: Pipeline,
    max_frame: usize,
    batch_size: usize,
    usage: ProcessUsage,
    /// The block chunks in files are read into, one after another.
    scratch: Vec<u8>,
    /// The only directories chunks are read from.
    roots: AllowedRoots,
    /// The source's decoder of every chunk ([`run_streamed`]); `None` only
    /// for a pipeline whose source was moved elsewhere (each chunk then
    /// fails, saying so).
    decoder: Option<Box<dyn DynChunkDecoder>>,
    /// The partial held across chunks, from the second chunk of a job
    /// that says `hold`.
    held: Option<Holding>,
    /// The job says `hold`, and no `Unhold` came.
    may_hold: bool,
}

/// The partial a holding processor keeps, and the chunks in it.
#[derive(Default)]
struct Holding {
    seqs: Vec<u64>,
    partial: Option<AnyData>,
}

impl ChunkProcessor {
    /// A processor for `pipeline` (only its source's decoding, its stages
    /// and its aggregate are used), with chunks cut into batches of at
    /// most `batch_size` records, and chunks in files read only under `roots`.
    pub(crate) fn new(
        pipeline: Pipeline,
        max_frame: usize,
        batch_size: usize,
        roots: AllowedRoots,
    ) -> Self {
        ChunkProcessor {
            max_frame,
            batch_size,
            usage: ProcessUsage::new(),
            decoder: pipeline.source.part.chunk_decoder(),
            pipeline,
            scratch: Vec::new(),
            roots,
            held: None,
            may_hold: false,
        }
    }

    /// Folds its chunks, from the second on, into one partial, sent by
    /// [`flush`](Self::flush), until `Unhold`.
    pub(crate) fn holding(mut self) -> Self {
        self.may_hold = true;
        self
    }

    /// The `Held` answer to a `Flush`: the partial held and its chunks; a
    /// new one starts. A partial too large for a frame is the
    /// `ChunkFailed` of its first chunk that says so (the run cannot
    /// finish without it).
    pub(crate) fn flush(&mut self) -> Message {
        let (seqs, partial) = match self.held.as_mut() {
            Some(h) => (std::mem::take(&mut h.seqs), h.partial.take()),
            None => (Vec::new(), None),
        };
        let aggregate = &mut self.pipeline.aggregate.part;
        let mut partial = partial.unwrap_or_else(|| aggregate.empty());
        aggregate.seal(&mut partial);
        match aggregate.encode(&partial) {
            Ok(partial) => self.fitting(Message::Held { seqs, partial }),
            Err(e) => Message::ChunkFailed {
                seq: seqs.first().copied().unwrap_or(0),
                error: format!("cannot encode the partial held: {e}"),
                failure: None,
            },
        }
    }

    /// Runs `task`: a chunk ([`process`](Self::process)), a `Flush`
    /// ([`flush`](Self::flush)), or an `Unhold` (a flush, and no more
    /// holding).
    pub(crate) fn run(&mut self, task: Task) -> Message {
        match task {
            Task::Chunk(work) => {
                let answer = self.process(work);
                if self.may_hold && self.held.is_none() {
                    // After the first chunk, whose partial went back.
                    self.held = Some(Holding::default());
                }
                answer
            }
            Task::Flush => self.flush(),
            Task::Unhold => {
                let held = self.flush();
                self.may_hold = false;
                self.held = None;
                held
            }
        }
    }

    /// Processes `w` into its `ChunkDone` (`ChunkHeld` when its records
    /// went into the partial held), its `ChunkFailed`, or (a file of its
    /// ranges could not be read here) its `ChunkUnreadable`.
    pub(crate) fn process(&mut self, w: Work) -> Message {
        let started = Instant::now();
        let processed = self.decode_and_run(&w);
        match processed {
            Ok((partial, parts, records)) => {
                let (cpu, rss) = self.usage.sample();
                let stats = ChunkStats {
                    records,
                    parts,
                    busy_nanos: started.elapsed().as_nanos() as u64,
                    process_cpu_seconds: cpu,
                    process_peak_rss: rss,
                };
                let Some(partial) = partial else {
                    return Message::ChunkHeld { seq: w.seq, stats };
                };
                self.fitting(Message::ChunkDone {
                    seq: w.seq,
                    partial,
                    stats,
                })
            }
            Err(Failed {
                unreadable: Some(e),
                ..
            }) => {
                let e = *e;
                let input = e.input.as_deref().unwrap_or(std::path::Path::new(""));
                tracing::warn!(
                    pipeline = %self.pipeline.name,
                    "chunk {}: cannot read input '{}' here ({}); asking the coordinator for its bytes",
                    w.seq,
                    input.display(),
                    e.reason
                );
                Message::ChunkUnreadable {
                    seq: w.seq,
                    input: input.to_string_lossy().into_owned(),
                    reason: e.reason,
                }
            }
            Err(Failed { error, failure, .. }) => {
                tracing::warn!(pipeline = %self.pipeline.name, "chunk {} failed: {error}", w.seq);
                Message::ChunkFailed {
                    seq: w.seq,
                    error,
                    failure,
                }
            }
        }
    }
}

impl ChunkProcessor {
    /// Decodes `w`'s bytes (read from its files, or its frame's) with the
    /// source's decoder and runs them through the stages into the
    /// chunk's partial, encoded (`None`: folded into the partial held).
    fn decode_and_run(&mut self, w: &Work) -> Result<(Option<Vec<u8>>, PartTimes, u64), Failed> {
        let decoder = self.decoder.as_deref().ok_or_else(|| {
            Failed::plain("this pipeline's source cannot decode chunks here".to_string())
        })?;
        let bytes = match &w.payload {
            Payload::Bytes(b) => ChunkBytes::Frame(b),
            Payload::Files(ranges) => {
                ChunkBytes::Files(RangeReader::within(&self.roots, ranges, self.max_frame)?)
            }
        };
        let p = &mut self.pipeline;
        // Taken only now that the chunk's files are open: a chunk refused
        // before it ran leaves the partial whole.
        let held = self
            .held
            .as_mut()
            .map(|h| h.partial.take().unwrap_or_else(|| p.aggregate.part.empty()));
        let holding = held.is_some();
        let run = run_streamed(
            (&mut p.stages, &mut p.aggregate, p.fused.as_mut()),
            decoder,
            bytes,
            (w.seq, w.first_line, w.records),
            (self.batch_size, held),
            &mut self.scratch,
        );
        let Some(h) = self.held.as_mut().filter(|_| holding) else {
            let (partial, parts, records) = finish(p, run?)?;
            return Ok((Some(partial), parts, records));
        };
        match run {
            Ok(run) => {
                // The chunk's answer carries no partial: it is held.
                let (parts, records) = parts_of(&run);
                h.seqs.push(w.seq);
                h.partial = Some(run.acc);
                Ok((None, parts, records))
            }
            Err(e) => {
                // The partial went with the failed run, and the chunks in it.
                h.seqs.clear();
                Err(e.into())
            }
        }
    }

    /// `done` (a `ChunkDone`), or, if its frame would be larger than
    /// `--max-frame` allows, the `ChunkFailed` that says so: the
    /// coordinator then fails the run at once with the reason, where an
    /// unsendable frame would only cost it this worker.
    /// A `Held` too large for a frame is likewise the `ChunkFailed` of its
    /// first chunk (the run cannot finish without it).
    fn fitting(&self, done: Message) -> Message {
        let (seq, rest, whose) = match &done {
            // The stats are far below the margin.
            Message::ChunkDone { seq, partial, .. } => (*seq, partial.len(), "the chunk's"),
            // At most 10 bytes a chunk number.
            Message::Held { seqs, partial } => (
                seqs.first().copied().unwrap_or(0),
                partial.len() + 10 * seqs.len(),
                "the worker's",
            ),
            _ => return done,
        };
        if rest + 4096 <= self.max_frame {
            return done;
        }
        match crate::protocol::encode_frame(&done, self.max_frame) {
            Err(crate::protocol::ProtocolError::TooLarge { len, max }) => Message::ChunkFailed {
                seq,
                error: format!(
                    "{whose} partial result takes a frame of {len} bytes, more than \
                     --max-frame {max} allows; raise --max-frame"
                ),
                failure: None,
            },
            _ => done,
        }
    }
}

/// Why a chunk failed: the text, the stage when it reached one, and the
/// file when the chunk's bytes could not be read here (which is not the
/// data's failure).
struct Failed {
    error: String,
    failure: Option<ChunkFailure>,
    /// A file of the chunk's ranges that this worker cannot read (boxed:
    /// the error type stays small on the success path).
    unreadable: Option<Box<RangeError>>,
}

impl Failed {
    fn plain(error: String) -> Self {
        Failed {
            error,
            failure: None,
            unreadable: None,
        }
    }
}

impl From<RangeError> for Failed {
    /// One file's failure is the worker's (the coordinator may still read
    /// it); ranges too large for a frame are the chunk's.
    fn from(e: RangeError) -> Self {
        let mut failed = Failed::plain(format!("cannot read the chunk: {e}"));
        if e.input.is_some() {
            failed.unreadable = Some(Box::new(e));
        }
        failed
    }
}

impl From<ChunkError> for Failed {
    fn from(e: ChunkError) -> Self {
        match e {
            ChunkError::Chunk(text) => Failed::plain(text),
            ChunkError::Unreadable(e) => Failed::from(e),
            ChunkError::Run(e) => Failed::from(e),
        }
    }
}

impl From<String> for Failed {
    fn from(error: String) -> Self {
        Failed::plain(error)
    }
}

impl From<RunError> for Failed {
    /// A stage's failure keeps its stage and batch, so that the
    /// coordinator reports it as serial mode would; only the user error's
    /// text crosses the wire.
    fn from(e: RunError) -> Self {
        match e {
            RunError::Stage {
                stage,
                batch,
                panicked,
                error,
                ..
            } => Failed {
                error: error.to_string(),
                failure: Some(ChunkFailure {
                    stage,
                    batch,
                    panicked,
                }),
                unreadable: None,
            },
            other => Failed::plain(other.to_string()),
        }
    }
}

/// `(records_in, records_out, busy_nanos)` per stage, then the aggregate.
type PartTimes = Vec<(u64, u64, u64)>;

/// The partial of `run`, encoded, with the parts' times and the records processed.
fn finish(pipeline: &Pipeline, run: ChunkRun) -> Result<(Vec<u8>, PartTimes, u64), Failed> {
    let partial = pipeline
        .aggregate
        .part
        .encode(&run.acc)
        .map_err(|e| Failed::plain(format!("cannot encode the partial: {e}")))?;
    let (parts, records) = parts_of(&run);
    Ok((partial, parts, records))
}

/// The parts' times in `run`, and the records processed.
fn parts_of(run: &ChunkRun) -> (PartTimes, u64) {
    let parts = run
        .stats
        .iter()
        .map(|s| (s.records_in, s.records_out, s.busy.as_nanos() as u64))
        .collect();
    (parts, run.records)
}

/// This process's CPU time and peak memory (sysinfo; the kernel's `VmHWM` when available).
struct ProcessUsage {
    system: sysinfo::System,
    pid: Option<sysinfo::Pid>,
    peak: u64,
}

impl ProcessUsage {
    fn new() -> Self {
        ProcessUsage {
            system: sysinfo::System::new(),
            pid: sysinfo::get_current_pid().ok(),
            peak: 0,
        }
    }

    fn sample(&mut self) -> (f64, u64) {
        let cpu = crate::metrics::process_cpu_seconds();
        // The kernel's own high-water mark, where there is one, is exact and
        // costs one system call; sysinfo's refresh took ~0.2 ms per chunk.
        if let Some(hwm) = crate::metrics::kernel_peak_rss() {
            self.peak = self.peak.max(hwm);
            return (cpu, self.peak);
        }
        let Some(pid) = self.pid else {
            return (cpu, self.peak);
        };
        self.system.refresh_processes_specifics(
            sysinfo::ProcessesToUpdate::Some(&[pid]),
            false,
            sysinfo::ProcessRefreshKind::nothing().with_memory(),
        );
        let rss = self.system.process(pid).map_or(0, |p| p.memory());
        self.peak = self.peak.max(rss);
        (cpu, self.peak)
    }
}

#[cfg(test)]
mod tests;
