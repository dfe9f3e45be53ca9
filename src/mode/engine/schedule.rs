//! The chunk engine's scheduler, without I/O: chunks waiting to be
//! (re-)sent, what each worker is granted and holds, chunks in flight and
//! every copy of them, stragglers sent again, and the bounded reorder
//! buffer that hands results out in sequence order, each sequence number
//! exactly once. Every transport runs on it (see [`super::transport`]):
//! pipeline mode's reading lanes (threads of this process) and
//! multiprocess mode's workers (processes over the wire); a [`Policy`]
//! holds what differs between them.
//!
//! - **Credits.** A worker announces how many chunks it processes at once
//!   (a worker process: `Hello.threads`; a lane: one), but holds only what
//!   it is granted: [`Policy::inflight`] chunks per granted thread. The
//!   grant starts at one thread, grows by one with each chunk the worker
//!   answers first (up to what it announced) and halves when one of its
//!   chunks goes overdue. A peer that announces 256 threads and never
//!   answers holds `inflight` chunks. A new chunk goes to the worker with
//!   the smallest share of its credit in use.
//! - **Read-ahead.** Chunks read and not yet merged are at most
//!   [`Policy::window_per_credit`] times the credits of the connected
//!   workers, at most [`MAX_WINDOW`] chunks, and stop growing once their
//!   frames hold [`MAX_HELD_BYTES`]: memory is bounded by what is in
//!   flight, not by how many workers joined. The reorder buffer takes
//!   [`MAX_WINDOW`] results, so one within the read-ahead is never
//!   refused for lack of room.
//! - **Re-queue.** A worker that leaves (a lost connection, a thread that
//!   ended) gives back the chunks only it held: they are sent again,
//!   lowest first, before any new chunk.
//! - **Deadlines** (only where [`Policy::copies`] is set: a process over
//!   the wire may go silent, a thread of this process always answers). A
//!   copy held longer than the run's own deadline (`deadline.rs`: a
//!   multiple of the median turnaround, with a floor; a smaller multiple
//!   when the free worker has nothing else to do) is overdue: a free
//!   worker that does not hold it gets the chunk as well, before any new
//!   chunk, up to [`MAX_COPIES`] copies. The first answer is merged; the
//!   others release their worker's credit and are dropped.

mod deadline;
#[cfg(test)]
mod tests;

use crate::mode::reorder::ReorderBuffer;
use deadline::Deadline;
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

/// Most chunks read from the source and not yet merged, whatever the
/// number of workers (the reorder window's largest size).
pub(crate) const MAX_WINDOW: usize = 256;
/// Past this many bytes of chunk frames held (waiting or in flight), no
/// new chunk is read (unless fewer than [`MIN_WINDOW`] are unmerged).
pub(crate) const MAX_HELD_BYTES: usize = 64 << 20;
/// Chunks that may always be read ahead, whatever their size.
const MIN_WINDOW: usize = 2;
/// Most workers holding one chunk at the same time.
pub(crate) const MAX_COPIES: usize = 3;
/// Chunks asked of the source ahead of the workers' demand.
const LOOKAHEAD: usize = 2;

/// What a transport's scheduler allows: the numbers that differ between
/// threads of this process and worker processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    /// Chunks a worker may hold per granted thread: one running, the
    /// others waiting, so that it never idles while the next is sent.
    pub(crate) inflight: usize,
    /// Chunks read and not yet merged, per chunk of credit of the
    /// connected workers (within [`MAX_WINDOW`]): how far the others may
    /// run ahead of a slow chunk before they wait for it.
    pub(crate) window_per_credit: usize,
    /// Overdue chunks are sent to a second worker (see the module docs).
    pub(crate) copies: bool,
}

/// The size of what the scheduler keeps of a chunk (its frame).
pub(crate) trait Held {
    /// Bytes it holds.
    fn held_bytes(&self) -> usize;
}

impl Held for () {
    fn held_bytes(&self) -> usize {
        0
    }
}

/// A chunk as the scheduler tracks it; `F` is the encoded frame (cheap to clone).
#[derive(Debug, Clone)]
pub(crate) struct ChunkInfo<F> {
    pub(crate) seq: u64,
    pub(crate) first_line: u64,
    pub(crate) records: u64,
    pub(crate) frame: F,
}

impl<F> ChunkInfo<F> {
    /// The last line of the chunk (1-based, inclusive).
    pub(crate) fn last_line(&self) -> u64 {
        self.first_line
            .saturating_add(self.records.saturating_sub(1))
    }

    /// Where the chunk sits, without its frame.
    pub(crate) fn info(&self) -> ChunkInfo<()> {
        ChunkInfo {
            seq: self.seq,
            first_line: self.first_line,
            records: self.records,
            frame: (),
        }
    }
}

impl ChunkInfo<()> {
    /// The same chunk with its frame.
    pub(crate) fn with_frame<F>(self, frame: F) -> ChunkInfo<F> {
        ChunkInfo {
            seq: self.seq,
            first_line: self.first_line,
            records: self.records,
            frame,
        }
    }
}

/// What became of a result handed to [`Scheduler::complete`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Completion {
    /// Taken: it will come out of [`Scheduler::pop_ready`] in order.
    Accepted,
    /// The chunk was answered by another worker first: this copy's
    /// credit is released and the result dropped.
    Late,
    /// Not a chunk this worker holds: ignored.
    Unknown,
}

/// How a worker's answer for a chunk stands, before it is taken.
#[derive(Debug)]
pub(crate) enum Answer<'a, F> {
    /// The chunk's first answer.
    First(&'a ChunkInfo<F>),
    /// Another worker answered it first.
    Late,
    /// Not a chunk this worker holds.
    Unknown,
}

/// A chunk sent to a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sent {
    /// The worker.
    pub(crate) worker: u64,
    /// Other workers held the chunk already (overdue).
    pub(crate) again: bool,
}

/// A connected worker's standing.
#[derive(Debug)]
struct Worker {
    /// Threads it announced (1..=256).
    announced: usize,
    /// Threads it is granted now (1..=announced).
    granted: usize,
    /// Copies it holds, answered by it or not.
    used: usize,
    /// It folds its chunks into one partial of its own: its chunks are not
    /// copied to others, nor others' to it (an answer from each would put
    /// the chunk's records in two partials, one of which is then lost).
    holds: bool,
}

/// A chunk sent and not answered yet, and every copy of it.
#[derive(Debug)]
struct Flight<F> {
    chunk: ChunkInfo<F>,
    /// (worker, when it was sent the chunk).
    copies: Vec<(u64, Instant)>,
}

/// Chunk queue, grants, in-flight copies, deadlines and ordered merge.
pub(crate) struct Scheduler<F, R> {
    policy: Policy,
    /// Chunks waiting to be sent (new or taken back), lowest sequence first.
    pending: BTreeMap<u64, ChunkInfo<F>>,
    /// Chunks sent and not answered.
    open: BTreeMap<u64, Flight<F>>,
    /// Copies of chunks another worker answered first: (seq, worker).
    /// They count against their worker's grant until it answers or leaves.
    stale: HashSet<(u64, u64)>,
    workers: BTreeMap<u64, Worker>,
    /// Bytes of the frames in `pending` and `open`.
    held_bytes: usize,
    deadline: Deadline,
    /// Results waiting for their predecessors. Its window is
    /// [`MAX_WINDOW`]: no chunk is read that far past the next to merge.
    ready: ReorderBuffer<R>,
    /// The next sequence number to create.
    next_seq: u64,
    /// Chunks asked of the source and not received yet.
    reading: usize,
    /// The source has no more batches.
    exhausted: bool,
}

impl<F: Clone + Held, R> Scheduler<F, R> {
    /// A scheduler under `policy` (its numbers at least 1).
    pub(crate) fn new(policy: Policy) -> Self {
        let policy = Policy {
            inflight: policy.inflight.max(1),
            window_per_credit: policy.window_per_credit.max(1),
            copies: policy.copies,
        };
        Scheduler {
            policy,
            pending: BTreeMap::new(),
            open: BTreeMap::new(),
            stale: HashSet::new(),
            workers: BTreeMap::new(),
            held_bytes: 0,
            deadline: Deadline::default(),
            ready: ReorderBuffer::new(0, 1, MAX_WINDOW),
            next_seq: 0,
            reading: 0,
            exhausted: false,
        }
    }

    /// A worker joined that says it processes `threads` chunks at once.
    /// It is granted one thread's worth to start with.
    pub(crate) fn add_worker(&mut self, worker: u64, threads: usize) {
        self.workers.entry(worker).or_insert(Worker {
            announced: threads.max(1),
            granted: 1,
            used: 0,
            holds: false,
        });
    }

    /// Whether `worker` folds its chunks into one partial of its own (see
    /// [`Worker::holds`]): no copies of its chunks are made, and it is
    /// sent none of others'.
    pub(crate) fn set_holds(&mut self, worker: u64, holds: bool) {
        if let Some(w) = self.workers.get_mut(&worker) {
            w.holds = holds;
        }
    }

    fn holds(&self, worker: u64) -> bool {
        self.workers.get(&worker).is_some_and(|w| w.holds)
    }

    /// The most chunks `worker` may hold at once now.
    fn credit(&self, w: &Worker) -> usize {
        self.policy.inflight * w.granted
    }

    /// A worker left: the chunks only it held go back to the queue.
    /// Returns their sequence numbers.
    pub(crate) fn remove_worker(&mut self, worker: u64) -> Vec<u64> {
        self.workers.remove(&worker);
        self.stale.retain(|&(_, w)| w != worker);
        let mut lost = Vec::new();
        for (&seq, flight) in &mut self.open {
            flight.copies.retain(|&(w, _)| w != worker);
            if flight.copies.is_empty() {
                lost.push(seq);
            }
        }
        for seq in &lost {
            if let Some(flight) = self.open.remove(seq) {
                self.pending.insert(*seq, flight.chunk);
            }
        }
        lost
    }

    /// Connected workers.
    pub(crate) fn workers(&self) -> usize {
        self.workers.len()
    }

    /// The connected worker with a free credit and the smallest share of
    /// its credit in use (ties: the lowest id), leaving out `except`, and
    /// the workers that hold their partial unless `holders`.
    fn free_worker(&self, except: &[(u64, Instant)], holders: bool) -> Option<u64> {
        self.workers
            .iter()
            .filter(|(id, w)| !except.iter().any(|(x, _)| x == *id) && (holders || !w.holds))
            .map(|(&id, w)| (id, w.used, self.credit(w)))
            .filter(|&(_, used, credit)| used < credit)
            // used_a / credit_a against used_b / credit_b, without division.
            .min_by(|a, b| (a.1 * b.2).cmp(&(b.1 * a.2)).then(a.0.cmp(&b.0)))
            .map(|(id, _, _)| id)
    }

    /// Most chunks read from the source and not yet merged: the policy's
    /// multiple of the credits, within [`MAX_WINDOW`].
    fn window(&self) -> usize {
        let credits: usize = self.workers.values().map(|w| self.credit(w)).sum();
        let credits = credits.max(self.policy.inflight);
        (self.policy.window_per_credit.saturating_mul(credits)).min(MAX_WINDOW)
    }

    /// True when one more chunk should be asked of the source: a worker is
    /// connected, the source is not exhausted, fewer than a few chunks are
    /// waiting or being read, and the read-ahead window has room (in
    /// chunks and in bytes).
    pub(crate) fn wants_new_chunk(&self) -> bool {
        let unmerged = (self.next_seq - self.ready.next_seq()) as usize + self.reading;
        !self.exhausted
            && !self.workers.is_empty()
            && self.pending.len() + self.reading < LOOKAHEAD
            && unmerged < self.window()
            && (self.held_bytes < MAX_HELD_BYTES || unmerged < MIN_WINDOW)
    }

    /// One more chunk was asked of the source.
    pub(crate) fn start_read(&mut self) {
        self.reading += 1;
    }

    /// The source answered a read without a chunk (a snapshot request,
    /// the end of the input).
    pub(crate) fn read_nothing(&mut self) {
        self.reading = self.reading.saturating_sub(1);
    }

    /// The sequence number the next new chunk gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Queues a freshly read chunk (it must carry [`next_seq`](Self::next_seq)).
    pub(crate) fn push_new(&mut self, chunk: ChunkInfo<F>) {
        debug_assert_eq!(chunk.seq, self.next_seq);
        self.reading = self.reading.saturating_sub(1);
        self.next_seq += 1;
        self.held_bytes += chunk.frame.held_bytes();
        self.pending.insert(chunk.seq, chunk);
    }

    /// The source is exhausted and no read is outstanding: every sequence
    /// number from here on is free for [`push_again`](Self::push_again).
    pub(crate) fn source_done(&self) -> bool {
        self.exhausted && self.reading == 0
    }

    /// Queues again, under a new sequence number ([`next_seq`](Self::next_seq),
    /// once the source is done), a chunk whose result was handed out and
    /// then lost (a worker's held partial that never came back): it runs
    /// and is handed out once more.
    pub(crate) fn push_again(&mut self, chunk: ChunkInfo<F>) {
        debug_assert!(self.source_done());
        debug_assert_eq!(chunk.seq, self.next_seq);
        self.next_seq += 1;
        self.held_bytes += chunk.frame.held_bytes();
        self.pending.insert(chunk.seq, chunk);
    }

    /// The source is exhausted.
    pub(crate) fn set_exhausted(&mut self) {
        self.exhausted = true;
    }

    /// How long a copy may be held before the chunk goes to another
    /// worker as well (`None`: no chunk was answered yet, or the policy
    /// makes no copies).
    pub(crate) fn deadline(&self) -> Option<Duration> {
        self.deadline.get().filter(|_| self.policy.copies)
    }

    /// The lowest overdue chunk that a free worker not holding it can
    /// take: every copy older than the deadline, fewer than
    /// [`MAX_COPIES`]. Marks the holders' grants down.
    fn overdue(&mut self, now: Instant) -> Option<(u64, u64)> {
        if !self.policy.copies {
            return None;
        }
        // A free worker with nothing else to do copies sooner.
        let idle = self.pending.is_empty() && self.reading == 0 && !self.wants_new_chunk();
        let deadline = if idle {
            self.deadline.idle()?
        } else {
            self.deadline.get()?
        };
        let (seq, worker, holders) = self.open.iter().find_map(|(&seq, f)| {
            let late = f.copies.len() < MAX_COPIES
                && f.copies.iter().all(|&(w, sent)| {
                    now.saturating_duration_since(sent) > deadline && !self.holds(w)
                });
            if !late {
                return None;
            }
            let worker = self.free_worker(&f.copies, false)?;
            Some((
                seq,
                worker,
                f.copies.iter().map(|&(w, _)| w).collect::<Vec<_>>(),
            ))
        })?;
        for w in holders {
            if let Some(w) = self.workers.get_mut(&w) {
                w.granted = (w.granted / 2).max(1);
            }
        }
        Some((seq, worker))
    }

    /// The next chunk to send and to whom, marking it in flight: an
    /// overdue chunk first (to a worker that does not hold it yet), then
    /// the lowest waiting one.
    pub(crate) fn assign(&mut self, now: Instant) -> Option<(Sent, ChunkInfo<F>)> {
        if let Some((seq, worker)) = self.overdue(now) {
            let flight = self.open.get_mut(&seq)?;
            flight.copies.push((worker, now));
            let chunk = flight.chunk.clone();
            if let Some(w) = self.workers.get_mut(&worker) {
                w.used += 1;
            }
            let sent = Sent {
                worker,
                again: true,
            };
            return Some((sent, chunk));
        }
        let worker = self.free_worker(&[], true)?;
        let (&seq, _) = self.pending.iter().next()?;
        let chunk = self.pending.remove(&seq)?;
        if let Some(w) = self.workers.get_mut(&worker) {
            w.used += 1;
        }
        self.open.insert(
            seq,
            Flight {
                chunk: chunk.clone(),
                copies: vec![(worker, now)],
            },
        );
        let sent = Sent {
            worker,
            again: false,
        };
        Some((sent, chunk))
    }

    /// The chunk `seq` if it is in flight (sent, and answered by nobody).
    pub(crate) fn in_flight(&self, seq: u64) -> Option<&ChunkInfo<F>> {
        self.open.get(&seq).map(|f| &f.chunk)
    }

    /// How `worker`'s answer for chunk `seq` stands.
    pub(crate) fn answer(&self, worker: u64, seq: u64) -> Answer<'_, F> {
        match self.open.get(&seq) {
            Some(f) if f.copies.iter().any(|&(w, _)| w == worker) => Answer::First(&f.chunk),
            _ if self.stale.contains(&(seq, worker)) => Answer::Late,
            _ => Answer::Unknown,
        }
    }

    /// A worker answered chunk `seq` with `result` at `now`: the first
    /// answer is taken for the ordered merge; a later one only releases
    /// the worker's credit.
    pub(crate) fn complete(
        &mut self,
        worker: u64,
        seq: u64,
        result: R,
        now: Instant,
    ) -> Completion {
        let sent = match self.open.get(&seq) {
            Some(f) => f
                .copies
                .iter()
                .find(|&&(w, _)| w == worker)
                .map(|&(_, t)| t),
            None => None,
        };
        let Some(sent) = sent else {
            return self.release(worker, seq);
        };
        let Some(flight) = self.open.remove(&seq) else {
            return Completion::Unknown;
        };
        self.held_bytes = self
            .held_bytes
            .saturating_sub(flight.chunk.frame.held_bytes());
        for &(w, _) in &flight.copies {
            if w != worker {
                self.stale.insert((seq, w));
            }
        }
        if let Some(w) = self.workers.get_mut(&worker) {
            w.used = w.used.saturating_sub(1);
            w.granted = (w.granted + 1).min(w.announced);
        }
        if self.policy.copies {
            self.deadline.record(now.saturating_duration_since(sent));
        }
        // Merged already, or answered already: the first answer wins. (A
        // chunk open here lies in the window: none is read past it.)
        match self.ready.insert(seq, result) {
            Ok(()) => Completion::Accepted,
            Err(_) => Completion::Late,
        }
    }

    /// A copy of a chunk another worker answered first came back: its
    /// worker's credit is free again.
    pub(crate) fn release(&mut self, worker: u64, seq: u64) -> Completion {
        if !self.stale.remove(&(seq, worker)) {
            return Completion::Unknown;
        }
        if let Some(w) = self.workers.get_mut(&worker) {
            w.used = w.used.saturating_sub(1);
        }
        Completion::Late
    }

    /// The next result in sequence order, when it has arrived.
    pub(crate) fn pop_ready(&mut self) -> Option<(u64, R)> {
        let seq = self.ready.next_seq();
        self.ready.pop().map(|result| (seq, result))
    }

    /// Every chunk was read, sent, answered and handed out.
    pub(crate) fn is_finished(&self) -> bool {
        self.exhausted
            && self.reading == 0
            && self.pending.is_empty()
            && self.open.is_empty()
            && self.ready.is_empty()
            && self.ready.next_seq() == self.next_seq
    }

    /// Chunks sent and not answered yet (copies not counted).
    #[cfg(test)]
    pub(crate) fn in_flight_count(&self) -> usize {
        self.open.len()
    }

    /// Copies `worker` holds.
    #[cfg(test)]
    pub(crate) fn held_by(&self, worker: u64) -> usize {
        self.workers.get(&worker).map_or(0, |w| w.used)
    }
}
