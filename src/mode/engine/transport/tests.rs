//! The engine driven through [`pump`]: a fake transport that records what
//! it was sent (credits, order of results, re-queue of a gone worker's
//! chunks), and the thread transport on real threads.

use super::*;
use crate::mode::engine::schedule::{Completion, Policy};
use crate::mode::engine::threads::Threads;
use std::collections::HashSet;
use std::sync::mpsc;
use std::time::Duration;

/// Chunks `0..total` read on the caller's thread; workers that may be gone.
/// A source of `total` empty chunks: the next one, or the end.
fn read_next(sched: &mut Scheduler<(), u64>, total: u64) {
    let seq = sched.next_seq();
    if seq == total {
        sched.read_nothing();
        sched.set_exhausted();
    } else {
        sched.push_new(ChunkInfo {
            seq,
            first_line: 1,
            records: 0,
            frame: (),
        });
    }
}

struct Fake {
    sched: Scheduler<(), u64>,
    total: u64,
    /// (worker, seq) in the order they were sent.
    sent: Vec<(u64, u64)>,
    gone: HashSet<u64>,
    reads: usize,
}

impl Fake {
    fn new(workers: &[u64], total: u64) -> Self {
        let mut sched = Scheduler::new(Policy {
            inflight: 2,
            window_per_credit: 8,
            copies: false,
        });
        for &w in workers {
            sched.add_worker(w, 1);
        }
        Fake {
            sched,
            total,
            sent: Vec::new(),
            gone: HashSet::new(),
            reads: 0,
        }
    }

    /// Answers the chunk `seq` from `worker` with `seq * 10`.
    fn answer(&mut self, worker: u64, seq: u64) -> Completion {
        self.sched.complete(worker, seq, seq * 10, Instant::now())
    }

    fn merged(&mut self) -> Vec<(u64, u64)> {
        std::iter::from_fn(|| self.sched.pop_ready()).collect()
    }
}

impl Transport for Fake {
    type Frame = ();
    type Result = u64;

    fn scheduler(&mut self) -> &mut Scheduler<(), u64> {
        &mut self.sched
    }

    fn send(&mut self, to: Sent, chunk: ChunkInfo<()>) -> Result<(), Gone> {
        if self.gone.contains(&to.worker) {
            return Err(Gone);
        }
        self.sent.push((to.worker, chunk.seq));
        Ok(())
    }

    fn read(&mut self) -> Result<(), RunError> {
        self.reads += 1;
        read_next(&mut self.sched, self.total);
        Ok(())
    }
}

#[test]
fn pump_sends_up_to_each_workers_credit_and_no_more() {
    let mut t = Fake::new(&[0, 1], 100);
    assert!(!pump(&mut t, Instant::now()).unwrap());
    assert_eq!(t.sent, vec![(0, 0), (1, 1), (0, 2), (1, 3)]);
    // Two more are read ahead, waiting for a credit.
    assert_eq!(t.sched.next_seq(), 6);
    assert!(!pump(&mut t, Instant::now()).unwrap());
    assert_eq!(t.sent.len(), 4, "nothing moved: no credit is free");
    assert_eq!(t.answer(1, 1), Completion::Accepted);
    pump(&mut t, Instant::now()).unwrap();
    assert_eq!(
        &t.sent[4..],
        &[(1, 4)],
        "the freed credit takes the lowest waiting chunk"
    );
}

#[test]
fn results_answered_out_of_order_are_merged_in_order_once() {
    let mut t = Fake::new(&[0, 1, 2], 12);
    let mut merged = Vec::new();
    let mut round = 0;
    while !pump(&mut t, Instant::now()).unwrap() {
        // Answer the newest chunk sent first: the most disordered arrival.
        let open: Vec<(u64, u64)> = t
            .sent
            .iter()
            .copied()
            .filter(|&(_, seq)| !merged.iter().any(|&(m, _)| m == seq))
            .collect();
        for &(w, seq) in open.iter().rev() {
            // A chunk answered already in an earlier round is unknown now.
            let _ = t.answer(w, seq);
        }
        merged.extend(t.merged());
        round += 1;
        assert!(round < 100, "the run ends");
    }
    assert_eq!(
        merged,
        (0..12).map(|s| (s, s * 10)).collect::<Vec<_>>(),
        "every chunk once, in order"
    );
    assert_eq!(t.reads, 13, "12 chunks and the end");
}

#[test]
fn a_gone_workers_chunks_run_elsewhere() {
    let mut t = Fake::new(&[0, 1], 6);
    pump(&mut t, Instant::now()).unwrap();
    assert_eq!(t.sent, vec![(0, 0), (1, 1), (0, 2), (1, 3)]);
    // Worker 0 goes: its chunks 0 and 2 go back to the queue, lowest first.
    assert_eq!(t.sched.remove_worker(0), vec![0, 2]);
    t.gone.insert(0);
    assert_eq!(t.answer(1, 1), Completion::Accepted);
    assert_eq!(t.answer(1, 3), Completion::Accepted);
    pump(&mut t, Instant::now()).unwrap();
    assert_eq!(&t.sent[4..], &[(1, 0), (1, 2)]);
    // A late answer from the gone worker is not one it holds.
    assert_eq!(t.answer(0, 0), Completion::Unknown);
    assert_eq!(t.answer(1, 0), Completion::Accepted);
    assert_eq!(t.answer(1, 2), Completion::Accepted);
    let mut merged: Vec<u64> = t.merged().into_iter().map(|(s, _)| s).collect();
    while !pump(&mut t, Instant::now()).unwrap() {
        let last: Vec<(u64, u64)> = t.sent.iter().rev().take(2).copied().collect();
        for (w, seq) in last {
            let _ = t.answer(w, seq);
        }
        merged.extend(t.merged().into_iter().map(|(s, _)| s));
    }
    assert_eq!(merged, (0..6).collect::<Vec<_>>());
}

#[test]
fn a_worker_found_gone_when_sent_a_chunk_loses_it_to_another() {
    let mut t = Fake::new(&[0, 1], 3);
    t.gone.insert(0);
    pump(&mut t, Instant::now()).unwrap();
    assert_eq!(t.sched.workers(), 1, "the gone worker is forgotten");
    assert_eq!(t.sent, vec![(1, 0), (1, 1)], "chunk 0 went to worker 1");
}

/// A transport of real threads, each answering `seq * 10` after a pause
/// that makes the later chunks of the first thread come back last.
struct Lanes {
    sched: Scheduler<(), u64>,
    threads: Threads<()>,
    total: u64,
}

impl Transport for Lanes {
    type Frame = ();
    type Result = u64;

    fn scheduler(&mut self) -> &mut Scheduler<(), u64> {
        &mut self.sched
    }

    fn send(&mut self, to: Sent, chunk: ChunkInfo<()>) -> Result<(), Gone> {
        self.threads.send(to.worker, chunk)
    }

    fn read(&mut self) -> Result<(), RunError> {
        read_next(&mut self.sched, self.total);
        Ok(())
    }
}

#[test]
fn threads_run_every_chunk_once_and_results_leave_in_order() {
    let merged = std::thread::scope(|scope| {
        let runners: Vec<_> = (0..3u64)
            .map(|lane| {
                move |chunk: ChunkInfo<()>| {
                    if lane == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    chunk.seq * 10
                }
            })
            .collect();
        let (threads, answers) = Threads::start(scope, "test-lane", runners).unwrap();
        assert_eq!(threads.len(), 3);
        let mut sched = Scheduler::new(Policy {
            inflight: 2,
            window_per_credit: 2,
            copies: false,
        });
        for w in 0..3 {
            sched.add_worker(w, 1);
        }
        let mut t = Lanes {
            sched,
            threads,
            total: 200,
        };
        let mut merged = Vec::new();
        while !pump(&mut t, Instant::now()).unwrap() {
            let a = answers.recv().unwrap();
            assert_eq!(a.answer, a.seq * 10);
            let done = t.sched.complete(a.worker, a.seq, a.answer, Instant::now());
            assert_eq!(done, Completion::Accepted);
            merged.extend(std::iter::from_fn(|| t.sched.pop_ready()));
        }
        merged
    });
    assert_eq!(merged, (0..200).map(|s| (s, s * 10)).collect::<Vec<_>>());
}

#[test]
fn a_thread_that_ended_is_gone() {
    std::thread::scope(|scope| {
        let (ran, ran_rx) = mpsc::channel();
        let runner = move |c: ChunkInfo<()>| {
            let _ = ran.send(());
            c.seq
        };
        let (threads, answers) = Threads::<()>::start(scope, "test-lane", vec![runner]).unwrap();
        drop(answers);
        let chunk = |seq| ChunkInfo {
            seq,
            first_line: 1,
            records: 0,
            frame: (),
        };
        // Its answer finds no receiver: the thread ends, its queue closes.
        threads.send(0, chunk(0)).unwrap();
        ran_rx.recv().unwrap();
        let started = Instant::now();
        let mut seq = 1;
        while threads.send(0, chunk(seq)).is_ok() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "a send to an ended thread fails"
            );
            seq += 1;
            std::thread::yield_now();
        }
        assert_eq!(threads.send(5, chunk(0)), Err(Gone), "no such thread");
    });
}
