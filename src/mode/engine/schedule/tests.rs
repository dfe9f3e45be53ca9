//! The scheduler alone, on a simulated clock: grants, deadlines, copies,
//! first-answer-wins, re-queues and the read-ahead bounds (with the
//! policy of worker processes; the transports' tests drive it through
//! `pump`).

use super::deadline::DEADLINE_FLOOR;
use super::*;

/// The policy of worker processes: copies of overdue chunks, a window of
/// twice the credits.
fn wire(inflight: usize) -> Policy {
    Policy {
        inflight,
        window_per_credit: 2,
        copies: true,
    }
}

fn chunk(seq: u64) -> ChunkInfo<()> {
    ChunkInfo {
        seq,
        first_line: seq * 10 + 1,
        records: 10,
        frame: (),
    }
}

/// Feeds new chunks while the scheduler wants them, up to `total`, at `now`.
fn feed_at(s: &mut Scheduler<(), u64>, total: u64, now: Instant) -> Vec<(u64, u64)> {
    let mut sent = Vec::new();
    loop {
        if let Some((to, c)) = s.assign(now) {
            sent.push((to.worker, c.seq));
            continue;
        }
        if s.wants_new_chunk() {
            s.start_read();
            if s.next_seq() == total {
                s.read_nothing();
                s.set_exhausted();
                continue;
            }
            s.push_new(chunk(s.next_seq()));
            continue;
        }
        return sent;
    }
}

fn feed(s: &mut Scheduler<(), u64>, total: u64) -> Vec<(u64, u64)> {
    feed_at(s, total, Instant::now())
}

fn done(s: &mut Scheduler<(), u64>, w: u64, seq: u64) -> Completion {
    s.complete(w, seq, seq, Instant::now())
}

#[test]
fn credits_bound_what_each_worker_holds() {
    let mut s = Scheduler::new(wire(2));
    s.add_worker(1, 1);
    s.add_worker(2, 1);
    let sent = feed(&mut s, 100);
    assert_eq!(sent.len(), 4);
    assert_eq!(sent.iter().filter(|(w, _)| *w == 1).count(), 2);
    assert_eq!(s.in_flight_count(), 4);
    assert!(s.free_worker(&[], true).is_none());
}

#[test]
fn a_worker_is_granted_its_threads_only_as_it_answers() {
    let mut s = Scheduler::new(wire(2));
    // Announces 256 threads: granted one thread's worth at first.
    s.add_worker(1, 256);
    s.add_worker(2, 1);
    let sent = feed(&mut s, 10_000);
    assert_eq!(sent.len(), 4, "2 × 1 granted thread each");
    assert_eq!(s.held_by(1), 2);
    assert_eq!(s.window(), 8);
    // Each first answer grants one more thread, up to the announced ones.
    let mine: Vec<u64> = sent.iter().filter(|(w, _)| *w == 1).map(|x| x.1).collect();
    for seq in mine {
        assert_eq!(done(&mut s, 1, seq), Completion::Accepted);
    }
    let sent = feed(&mut s, 10_000);
    assert_eq!(
        sent.iter().filter(|(w, _)| *w == 1).count(),
        6,
        "granted 3 threads"
    );
    assert_eq!(s.held_by(1), 6);
    s.remove_worker(1);
    assert_eq!(s.window(), 4);
}

#[test]
fn a_worker_that_never_answers_holds_only_its_grant_and_its_chunks_go_elsewhere() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(wire(2));
    s.add_worker(1, 256); // never answers
    s.add_worker(2, 1);
    let sent = feed_at(&mut s, 20, t0);
    let held: Vec<u64> = sent.iter().filter(|(w, _)| *w == 1).map(|x| x.1).collect();
    assert_eq!(held, vec![0, 2]);
    // Worker 2 answers its chunks quickly: the deadline is the floor.
    let mut now = t0 + Duration::from_millis(20);
    for (w, seq) in sent {
        if w == 2 {
            assert_eq!(s.complete(2, seq, seq, now), Completion::Accepted);
        }
    }
    let mut merged = Vec::new();
    let mut again = 0;
    for _ in 0..200 {
        now += Duration::from_millis(50);
        while let Some((to, c)) = s.assign(now) {
            assert_ne!(to.worker, 1, "the silent worker gets nothing more");
            again += usize::from(to.again);
            assert_eq!(
                s.complete(to.worker, c.seq, c.seq, now),
                Completion::Accepted
            );
        }
        for (w, seq) in feed_at(&mut s, 20, now) {
            if w == 2 {
                assert_eq!(s.complete(2, seq, seq, now), Completion::Accepted);
            }
        }
        while let Some((seq, _)) = s.pop_ready() {
            merged.push(seq);
        }
        if s.is_finished() {
            break;
        }
    }
    assert!(s.is_finished(), "the run ends without the silent worker");
    assert_eq!(
        merged,
        (0..20).collect::<Vec<_>>(),
        "each chunk once, in order"
    );
    assert_eq!(again, 2, "its two chunks were sent again");
    assert_eq!(s.held_by(1), 2, "still counted against its grant");
    // Its answer, were it to come, is late: dropped, credit released.
    assert_eq!(done(&mut s, 1, 0), Completion::Late);
    assert_eq!(s.held_by(1), 1);
    assert_eq!(done(&mut s, 1, 0), Completion::Unknown);
}

#[test]
fn no_chunk_is_overdue_before_the_first_answer_nor_before_the_deadline() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(wire(1));
    s.add_worker(1, 1);
    s.add_worker(2, 1);
    s.add_worker(3, 1);
    feed_at(&mut s, 10, t0);
    assert_eq!(s.deadline(), None);
    // Worker 3 holds chunk 2 and answers it after 100 ms.
    let later = t0 + Duration::from_secs(60);
    assert!(s.assign(later).is_none(), "nothing to measure against yet");
    assert_eq!(
        s.complete(3, 2, 2, t0 + Duration::from_millis(100)),
        Completion::Accepted
    );
    assert_eq!(
        s.deadline(),
        Some(DEADLINE_FLOOR.max(Duration::from_millis(400)))
    );
    // Worker 3 is free; chunk 3 goes to it, then chunks 0 and 1 are overdue.
    let now = t0 + Duration::from_millis(300);
    let (to, c) = s.assign(now).unwrap();
    assert_eq!((to.worker, c.seq, to.again), (3, 3, false));
    assert!(s.assign(now).is_none(), "held 300 ms: not overdue yet");
    assert_eq!(done(&mut s, 3, 3), Completion::Accepted);
    let now = t0 + Duration::from_millis(500);
    let (to, c) = s.assign(now).unwrap();
    assert_eq!((to.worker, c.seq, to.again), (3, 0, true));
}

#[test]
fn the_first_answer_wins_and_a_copy_is_merged_once() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(wire(1));
    s.add_worker(1, 1);
    s.add_worker(2, 1);
    feed_at(&mut s, 2, t0);
    assert_eq!(
        s.complete(2, 1, 1, t0 + Duration::from_millis(10)),
        Completion::Accepted
    );
    let now = t0 + Duration::from_secs(1);
    let (to, c) = s.assign(now).unwrap();
    assert_eq!((to.worker, c.seq, to.again), (2, 0, true));
    assert!(matches!(s.answer(1, 0), Answer::First(_)));
    assert!(matches!(s.answer(2, 0), Answer::First(_)));
    // The slow one answers first after all: it wins, the copy is late.
    assert_eq!(s.complete(1, 0, 100, now), Completion::Accepted);
    assert!(matches!(s.answer(2, 0), Answer::Late));
    assert_eq!(s.complete(2, 0, 200, now), Completion::Late);
    assert_eq!(s.pop_ready(), Some((0, 100)));
    assert_eq!(s.pop_ready(), Some((1, 1)));
    assert_eq!(s.pop_ready(), None);
    feed_at(&mut s, 2, now);
    assert!(s.is_finished());
}

#[test]
fn a_holding_workers_chunks_are_not_copied_nor_is_it_sent_copies() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(wire(1));
    s.add_worker(1, 1);
    s.add_worker(2, 1);
    s.set_holds(1, true);
    feed_at(&mut s, 2, t0);
    assert_eq!(
        s.complete(2, 1, 1, t0 + Duration::from_millis(10)),
        Completion::Accepted
    );
    // Chunk 0, at holding worker 1, is long overdue: no copy of it.
    let late = t0 + Duration::from_secs(60);
    assert!(s.assign(late).is_none());
    // Worker 1 stops holding: its chunk may be copied to worker 2 now.
    s.set_holds(1, false);
    let (to, c) = s.assign(late).unwrap();
    assert_eq!((to.worker, c.seq, to.again), (2, 0, true));
    // And a holding worker is sent no copy of another's chunk.
    let mut s = Scheduler::new(wire(1));
    s.add_worker(1, 1);
    s.add_worker(2, 1);
    feed_at(&mut s, 2, t0);
    s.set_holds(2, true);
    assert_eq!(s.complete(2, 1, 1, t0), Completion::Accepted);
    assert!(s.assign(late).is_none());
}

#[test]
fn a_lost_worker_requeues_only_the_chunks_nobody_else_holds() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(wire(1));
    s.add_worker(1, 1);
    s.add_worker(2, 1);
    s.add_worker(3, 1);
    feed_at(&mut s, 3, t0);
    assert_eq!(s.complete(3, 2, 2, t0), Completion::Accepted);
    let now = t0 + Duration::from_secs(1);
    let (to, c) = s.assign(now).unwrap();
    assert_eq!((to.worker, c.seq), (3, 0));
    assert_eq!(
        s.remove_worker(1),
        Vec::<u64>::new(),
        "worker 3 holds chunk 0 too"
    );
    assert_eq!(s.remove_worker(2), vec![1]);
    assert_eq!(s.complete(3, 0, 0, now), Completion::Accepted);
    let sent = feed_at(&mut s, 3, now);
    assert_eq!(sent, vec![(3, 1)]);
}

#[test]
fn results_come_out_in_order_exactly_once() {
    let mut s = Scheduler::new(wire(2));
    s.add_worker(1, 1);
    s.add_worker(2, 1);
    let sent = feed(&mut s, 4);
    assert_eq!(sent, vec![(1, 0), (2, 1), (1, 2), (2, 3)]);
    assert_eq!(done(&mut s, 2, 1), Completion::Accepted);
    assert_eq!(s.pop_ready(), None, "chunk 0 is not back yet");
    assert_eq!(done(&mut s, 1, 0), Completion::Accepted);
    assert_eq!(s.pop_ready(), Some((0, 0)));
    assert_eq!(s.pop_ready(), Some((1, 1)));
    // A second answer for a merged chunk is not one this worker holds.
    assert_eq!(done(&mut s, 2, 1), Completion::Unknown);
    assert_eq!(done(&mut s, 2, 3), Completion::Accepted);
    assert_eq!(done(&mut s, 1, 2), Completion::Accepted);
    assert_eq!(s.pop_ready(), Some((2, 2)));
    assert_eq!(s.pop_ready(), Some((3, 3)));
    assert!(feed(&mut s, 4).is_empty());
    assert!(s.is_finished());
}

#[test]
fn a_lost_worker_has_its_chunks_requeued_to_others() {
    let mut s = Scheduler::new(wire(2));
    s.add_worker(1, 1);
    s.add_worker(2, 1);
    feed(&mut s, 6);
    assert_eq!(s.remove_worker(1), vec![0, 2]);
    assert_eq!(done(&mut s, 2, 1), Completion::Accepted);
    assert_eq!(done(&mut s, 2, 3), Completion::Accepted);
    // Worker 1's late answer for a re-queued chunk is ignored.
    assert_eq!(done(&mut s, 1, 0), Completion::Unknown);
    let sent = feed(&mut s, 6);
    assert_eq!(sent, vec![(2, 0), (2, 2)], "re-queued chunks, lowest first");
    assert_eq!(s.complete(2, 0, 100, Instant::now()), Completion::Accepted);
    assert_eq!(done(&mut s, 2, 2), Completion::Accepted);
    assert_eq!(s.pop_ready(), Some((0, 100)));
    assert_eq!(s.pop_ready(), Some((1, 1)));
    let mut order = Vec::new();
    while !s.is_finished() {
        for (w, seq) in feed(&mut s, 6) {
            assert_eq!(done(&mut s, w, seq), Completion::Accepted);
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
    let mut s = Scheduler::new(wire(1));
    s.add_worker(1, 1);
    s.add_worker(2, 1);
    // Chunk 0 is slow: results 1.. pile up, but at most the window is read.
    let t0 = Instant::now();
    for _ in 0..100 {
        for (w, seq) in feed_at(&mut s, 1000, t0) {
            if seq != 0 {
                s.complete(w, seq, seq, t0);
            }
        }
    }
    assert_eq!(s.next_seq(), 4, "window = 2 × inflight × workers");
    assert!(s.pop_ready().is_none());
}

#[test]
fn read_ahead_does_not_grow_with_the_number_of_workers() {
    let mut s = Scheduler::new(wire(2));
    for w in 0..500 {
        s.add_worker(w, 1);
    }
    let sent = feed(&mut s, 1_000_000);
    assert_eq!(sent.len(), MAX_WINDOW);
    assert_eq!(s.next_seq() as usize, MAX_WINDOW);
}

/// A frame of a given size.
#[derive(Clone, Debug)]
struct Sized(usize);

impl Held for Sized {
    fn held_bytes(&self) -> usize {
        self.0
    }
}

#[test]
fn read_ahead_stops_at_the_byte_budget() {
    let mut s: Scheduler<Sized, ()> = Scheduler::new(wire(2));
    for w in 0..100 {
        s.add_worker(w, 1);
    }
    let now = Instant::now();
    let mut sent = 0;
    loop {
        if s.assign(now).is_some() {
            sent += 1;
            continue;
        }
        if !s.wants_new_chunk() {
            break;
        }
        s.start_read();
        let seq = s.next_seq();
        s.push_new(chunk(seq).with_frame(Sized(8 << 20)));
    }
    assert_eq!(sent, MAX_HELD_BYTES / (8 << 20));
    // One answer frees room for one more chunk.
    assert_eq!(s.complete(0, 0, (), now), Completion::Accepted);
    assert!(s.wants_new_chunk());
}

#[test]
fn no_worker_means_no_assignment() {
    let mut s: Scheduler<(), u64> = Scheduler::new(wire(2));
    assert!(!s.wants_new_chunk());
    s.push_new(chunk(0));
    assert!(s.assign(Instant::now()).is_none());
    s.add_worker(7, 1);
    let (to, c) = s.assign(Instant::now()).unwrap();
    assert_eq!((to.worker, c.seq), (7, 0));
}

#[test]
fn without_copies_a_slow_chunk_is_never_sent_again_and_the_window_holds_the_rest() {
    let t0 = Instant::now();
    let mut s: Scheduler<(), u64> = Scheduler::new(Policy {
        inflight: 2,
        window_per_credit: 8,
        copies: false,
    });
    s.add_worker(0, 1);
    s.add_worker(1, 1);
    // Chunk 0 never comes back; every other answer is quick.
    let mut now = t0;
    for _ in 0..100 {
        now += Duration::from_secs(1);
        for (w, seq) in feed_at(&mut s, 1000, now) {
            if seq != 0 {
                assert_eq!(s.complete(w, seq, seq, now), Completion::Accepted);
            }
        }
    }
    assert_eq!(s.deadline(), None, "no deadline without copies");
    assert_eq!(s.in_flight_count(), 1);
    assert_eq!(s.next_seq(), 32, "window = 8 × 2 credits × 2 workers");
    assert!(s.pop_ready().is_none());
    assert_eq!(s.complete(0, 0, 0, now), Completion::Accepted);
    let merged: Vec<u64> = std::iter::from_fn(|| s.pop_ready().map(|(seq, _)| seq)).collect();
    assert_eq!(merged, (0..32).collect::<Vec<_>>());
}
