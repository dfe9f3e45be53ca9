//! The coordinator's bookkeeping, without sockets: chunks waiting to be
//! (re-)sent, credits per worker, chunks in flight and who holds them, and
//! the bounded reorder buffer that hands results out in sequence order,
//! each sequence number exactly once.

use std::collections::{BTreeMap, HashMap};

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
    /// Not in flight with that worker (late duplicate of a re-queued chunk,
    /// or a chunk never sent): ignored.
    Ignored,
}

/// Chunk queue, credits, in-flight tracking, re-queue and ordered merge.
pub(crate) struct Scheduler<F, R> {
    inflight_per_worker: usize,
    /// Chunks waiting to be sent (new or taken back), lowest sequence first.
    pending: BTreeMap<u64, ChunkInfo<F>>,
    /// Chunks sent and not answered: seq → (worker, chunk).
    in_flight: HashMap<u64, (u64, ChunkInfo<F>)>,
    /// Outstanding chunks per connected worker.
    credits_used: BTreeMap<u64, usize>,
    /// Chunks each connected worker processes at once (its `--threads`):
    /// its credit is that many times `inflight_per_worker`.
    threads: HashMap<u64, usize>,
    /// Results waiting for their predecessors.
    ready: BTreeMap<u64, R>,
    /// The next sequence number to hand out of the reorder buffer.
    next_merge: u64,
    /// The next sequence number to create.
    next_seq: u64,
    /// The source has no more batches.
    exhausted: bool,
}

impl<F: Clone, R> Scheduler<F, R> {
    /// A scheduler giving each worker at most `inflight` chunks at a time.
    pub(crate) fn new(inflight: usize) -> Self {
        Scheduler {
            inflight_per_worker: inflight.max(1),
            pending: BTreeMap::new(),
            in_flight: HashMap::new(),
            credits_used: BTreeMap::new(),
            threads: HashMap::new(),
            ready: BTreeMap::new(),
            next_merge: 0,
            next_seq: 0,
            exhausted: false,
        }
    }

    /// A worker joined that processes `threads` chunks at once (at least 1).
    pub(crate) fn add_worker(&mut self, worker: u64, threads: usize) {
        self.credits_used.entry(worker).or_insert(0);
        self.threads.insert(worker, threads.max(1));
    }

    /// The most chunks `worker` may hold at once.
    fn credit(&self, worker: u64) -> usize {
        self.inflight_per_worker * self.threads.get(&worker).copied().unwrap_or(1)
    }

    /// A worker left: its in-flight chunks go back to the queue. Returns
    /// their sequence numbers.
    pub(crate) fn remove_worker(&mut self, worker: u64) -> Vec<u64> {
        self.credits_used.remove(&worker);
        self.threads.remove(&worker);
        let lost: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, (w, _))| *w == worker)
            .map(|(&seq, _)| seq)
            .collect();
        for seq in &lost {
            if let Some((_, chunk)) = self.in_flight.remove(seq) {
                self.pending.insert(*seq, chunk);
            }
        }
        let mut lost = lost;
        lost.sort_unstable();
        lost
    }

    /// Connected workers.
    pub(crate) fn workers(&self) -> usize {
        self.credits_used.len()
    }

    /// The connected worker with a free credit and the smallest share of
    /// its credit in use (ties: the lowest id), so that a worker with N
    /// threads gets N times the chunks of a single-thread one.
    pub(crate) fn free_worker(&self) -> Option<u64> {
        self.credits_used
            .iter()
            .map(|(&id, &used)| (id, used, self.credit(id)))
            .filter(|&(_, used, credit)| used < credit)
            // used_a / credit_a against used_b / credit_b, without division.
            .min_by(|a, b| (a.1 * b.2).cmp(&(b.1 * a.2)).then(a.0.cmp(&b.0)))
            .map(|(id, _, _)| id)
    }

    /// Most chunks read from the source and not yet merged: bounds memory
    /// (read-ahead plus the reorder buffer) while keeping every worker fed.
    fn window(&self) -> u64 {
        let credits: usize = self.credits_used.keys().map(|&w| self.credit(w)).sum();
        (2 * credits.max(self.inflight_per_worker)) as u64
    }

    /// True when a new chunk should be read from the source now: a worker
    /// has credit, nothing is waiting, the source is not exhausted, and the
    /// read-ahead window has room.
    pub(crate) fn wants_new_chunk(&self) -> bool {
        !self.exhausted
            && self.pending.is_empty()
            && self.free_worker().is_some()
            && self.next_seq - self.next_merge < self.window()
    }

    /// The sequence number the next new chunk gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Queues a freshly read chunk (it must carry [`next_seq`](Self::next_seq)).
    pub(crate) fn push_new(&mut self, chunk: ChunkInfo<F>) {
        debug_assert_eq!(chunk.seq, self.next_seq);
        self.next_seq += 1;
        self.pending.insert(chunk.seq, chunk);
    }

    /// The source is exhausted.
    pub(crate) fn set_exhausted(&mut self) {
        self.exhausted = true;
    }

    /// Takes the next waiting chunk for a worker with credit, marking it in flight.
    pub(crate) fn assign(&mut self) -> Option<(u64, ChunkInfo<F>)> {
        let worker = self.free_worker()?;
        let (&seq, _) = self.pending.iter().next()?;
        let chunk = self.pending.remove(&seq)?;
        if let Some(used) = self.credits_used.get_mut(&worker) {
            *used += 1;
        }
        self.in_flight.insert(seq, (worker, chunk.clone()));
        Some((worker, chunk))
    }

    /// The chunk `seq` if it is in flight.
    pub(crate) fn in_flight(&self, seq: u64) -> Option<&ChunkInfo<F>> {
        self.in_flight.get(&seq).map(|(_, c)| c)
    }

    /// A worker answered chunk `seq` with `result`.
    pub(crate) fn complete(&mut self, worker: u64, seq: u64, result: R) -> Completion {
        match self.in_flight.get(&seq) {
            Some((w, _)) if *w == worker => {}
            _ => return Completion::Ignored,
        }
        self.in_flight.remove(&seq);
        if let Some(used) = self.credits_used.get_mut(&worker) {
            *used = used.saturating_sub(1);
        }
        if seq < self.next_merge || self.ready.contains_key(&seq) {
            return Completion::Ignored;
        }
        self.ready.insert(seq, result);
        Completion::Accepted
    }

    /// The next result in sequence order, when it has arrived.
    pub(crate) fn pop_ready(&mut self) -> Option<(u64, R)> {
        let result = self.ready.remove(&self.next_merge)?;
        let seq = self.next_merge;
        self.next_merge += 1;
        Some((seq, result))
    }

    /// Every chunk was read, sent, answered and handed out.
    pub(crate) fn is_finished(&self) -> bool {
        self.exhausted
            && self.pending.is_empty()
            && self.in_flight.is_empty()
            && self.ready.is_empty()
            && self.next_merge == self.next_seq
    }

    /// Chunks currently in flight.
    #[cfg(test)]
    pub(crate) fn in_flight_count(&self) -> usize {
        self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(seq: u64) -> ChunkInfo<()> {
        ChunkInfo {
            seq,
            first_line: seq * 10 + 1,
            records: 10,
            frame: (),
        }
    }

    /// Feeds new chunks while the scheduler wants them, up to `total`.
    fn feed(s: &mut Scheduler<(), u64>, total: u64) -> Vec<(u64, u64)> {
        let mut sent = Vec::new();
        loop {
            if let Some((w, c)) = s.assign() {
                sent.push((w, c.seq));
                continue;
            }
            if s.wants_new_chunk() {
                if s.next_seq() == total {
                    s.set_exhausted();
                    continue;
                }
                s.push_new(chunk(s.next_seq()));
                continue;
            }
            return sent;
        }
    }

    #[test]
    fn credits_bound_what_each_worker_holds() {
        let mut s = Scheduler::new(2);
        s.add_worker(1, 1);
        s.add_worker(2, 1);
        let sent = feed(&mut s, 100);
        assert_eq!(sent.len(), 4);
        assert_eq!(sent.iter().filter(|(w, _)| *w == 1).count(), 2);
        assert_eq!(s.in_flight_count(), 4);
        assert!(s.free_worker().is_none());
    }

    #[test]
    fn a_worker_with_threads_gets_that_many_times_the_credit() {
        let mut s = Scheduler::new(2);
        s.add_worker(1, 3);
        s.add_worker(2, 1);
        let sent = feed(&mut s, 100);
        assert_eq!(sent.len(), 8, "credit 2 × 3 plus 2 × 1");
        assert_eq!(sent.iter().filter(|(w, _)| *w == 1).count(), 6);
        assert!(s.free_worker().is_none());
        // The window grows with the credits: 2 × 8 chunks read ahead at most.
        assert_eq!(s.window(), 16);
        // Freed credit goes to the worker using the smallest share of its own.
        assert_eq!(s.complete(1, sent[0].1, 0), Completion::Accepted);
        assert_eq!(s.free_worker(), Some(1));
        s.remove_worker(1);
        assert_eq!(s.window(), 4);
    }

    #[test]
    fn results_come_out_in_order_exactly_once() {
        let mut s = Scheduler::new(2);
        s.add_worker(1, 1);
        s.add_worker(2, 1);
        let sent = feed(&mut s, 4);
        assert_eq!(sent, vec![(1, 0), (2, 1), (1, 2), (2, 3)]);
        assert_eq!(s.complete(2, 1, 1), Completion::Accepted);
        assert_eq!(s.pop_ready(), None, "chunk 0 is not back yet");
        assert_eq!(s.complete(1, 0, 0), Completion::Accepted);
        assert_eq!(s.pop_ready(), Some((0, 0)));
        assert_eq!(s.pop_ready(), Some((1, 1)));
        // A duplicate of a merged chunk is ignored.
        assert_eq!(s.complete(2, 1, 1), Completion::Ignored);
        assert_eq!(s.complete(2, 3, 3), Completion::Accepted);
        assert_eq!(s.complete(1, 2, 2), Completion::Accepted);
        assert_eq!(s.pop_ready(), Some((2, 2)));
        assert_eq!(s.pop_ready(), Some((3, 3)));
        assert!(feed(&mut s, 4).is_empty());
        assert!(s.is_finished());
    }

    #[test]
    fn a_lost_worker_has_its_chunks_requeued_to_others() {
        let mut s = Scheduler::new(2);
        s.add_worker(1, 1);
        s.add_worker(2, 1);
        feed(&mut s, 6);
        assert_eq!(s.remove_worker(1), vec![0, 2]);
        assert_eq!(s.complete(2, 1, 1), Completion::Accepted);
        assert_eq!(s.complete(2, 3, 3), Completion::Accepted);
        // Worker 1's late answer for a re-queued chunk is ignored.
        assert_eq!(s.complete(1, 0, 0), Completion::Ignored);
        let sent = feed(&mut s, 6);
        assert_eq!(sent, vec![(2, 0), (2, 2)], "re-queued chunks, lowest first");
        assert_eq!(s.complete(2, 0, 100), Completion::Accepted);
        assert_eq!(s.complete(2, 2, 2), Completion::Accepted);
        assert_eq!(s.pop_ready(), Some((0, 100)));
        assert_eq!(s.pop_ready(), Some((1, 1)));
        let mut order = Vec::new();
        while !s.is_finished() {
            for (w, seq) in feed(&mut s, 6) {
                assert_eq!(s.complete(w, seq, seq), Completion::Accepted);
            }
            while let Some((seq, _)) = s.pop_ready() {
                order.push(seq);
            }
        }
        assert_eq!(order, vec![2, 3, 4, 5]);
        assert_eq!(s.pop_ready(), None);
    }

    #[test]
    fn read_ahead_is_bounded_by_the_window() {
        let mut s = Scheduler::new(1);
        s.add_worker(1, 1);
        s.add_worker(2, 1);
        // Chunk 0 is slow: results 1.. pile up, but at most the window is read.
        let mut created = 0;
        for _ in 0..100 {
            for (w, seq) in feed(&mut s, 1000) {
                if seq != 0 {
                    s.complete(w, seq, seq);
                }
            }
            created = s.next_seq();
        }
        assert_eq!(created, 4, "window = 2 × inflight × workers");
        assert!(s.pop_ready().is_none());
    }

    #[test]
    fn no_worker_means_no_assignment() {
        let mut s: Scheduler<(), u64> = Scheduler::new(2);
        assert!(!s.wants_new_chunk());
        s.push_new(chunk(0));
        assert!(s.assign().is_none());
        s.add_worker(7, 1);
        assert_eq!(s.assign().map(|(w, c)| (w, c.seq)), Some((7, 0)));
    }
}
