//! The detached source: blocking pulls answered without blocking the
//! caller, wake-ups, hints, chunks that keep their buffer, and the thread
//! ending with the adapter.

use super::*;
use crate::file_range::FileRange;
use crate::pipeline::pulled;
use std::time::Duration;

/// A source whose batches come from a channel: `recv` blocks.
struct FromChannel(mpsc::Receiver<Option<u64>>);

impl DynSource for FromChannel {
    fn next_batch(&mut self, _max: usize) -> Result<Pulled<AnyData>, StageError> {
        match self.0.recv() {
            Ok(Some(n)) => Ok(pulled(Some((Box::new(n) as AnyData, 1)))),
            Ok(None) | Err(_) => Ok(Pulled::End),
        }
    }
    fn size_hint(&self) -> Option<u64> {
        Some(7)
    }
    fn remaining_estimate(&self) -> Option<u64> {
        Some(7)
    }
    fn next_chunk(&mut self, _max: usize, out: &mut Vec<u8>) -> Result<Pulled<()>, StageError> {
        match self.0.recv() {
            Ok(Some(n)) => {
                out.extend_from_slice(&n.to_le_bytes());
                Ok(Pulled::Data((), 1))
            }
            Ok(None) | Err(_) => Ok(Pulled::End),
        }
    }
    fn chunks_in_files(&mut self) -> bool {
        true
    }
    fn next_chunk_ranges(
        &mut self,
        _: usize,
        _: &mut Vec<FileRange>,
    ) -> Result<Option<usize>, StageError> {
        Ok(None)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

#[test]
fn a_blocking_pull_answers_pending_and_wakes_when_the_batch_is_there() {
    let (tx, rx) = mpsc::channel();
    let mut source: Box<dyn DynSource> = Box::new(FromChannel(rx));
    detach(&mut source).unwrap();
    assert_eq!(source.size_hint(), Some(7));
    assert!(!source.chunks_in_files(), "a waiting source is not files");
    // Nothing sent yet: the pull does not block, it says Pending.
    let Pulled::Pending(wake) = source.next_batch(10).unwrap() else {
        panic!("expected Pending");
    };
    tx.send(Some(42)).unwrap();
    runtime().block_on(async {
        tokio::time::timeout(Duration::from_secs(10), wake)
            .await
            .expect("woken")
    });
    match source.next_batch(10).unwrap() {
        Pulled::Data(b, 1) => assert_eq!(*b.downcast::<u64>().unwrap(), 42),
        _ => panic!("expected the batch"),
    }
    tx.send(None).unwrap();
    let end = loop {
        match source.next_batch(10).unwrap() {
            Pulled::Pending(w) => runtime().block_on(w),
            other => break other,
        }
    };
    assert!(matches!(end, Pulled::End));
}

#[test]
fn a_chunk_is_written_after_the_header_the_engine_reserved() {
    let (tx, rx) = mpsc::channel();
    let mut source: Box<dyn DynSource> = Box::new(FromChannel(rx));
    detach(&mut source).unwrap();
    tx.send(Some(5)).unwrap();
    let mut out = vec![0xAA; 3];
    let got = loop {
        match source.next_chunk(1, &mut out).unwrap() {
            Pulled::Pending(w) => {
                runtime().block_on(w);
                // The engine starts each try with a fresh buffer.
                out = vec![0xAA; 3];
            }
            other => break other,
        }
    };
    assert!(matches!(got, Pulled::Data((), 1)));
    let mut want = vec![0xAA; 3];
    want.extend_from_slice(&5u64.to_le_bytes());
    assert_eq!(out, want);
}

/// Says when it is dropped.
struct Tell(mpsc::Sender<()>);

impl Drop for Tell {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// A source that blocks on its channel and tells when it is dropped.
struct Watched(FromChannel, #[allow(dead_code)] Tell);

impl DynSource for Watched {
    fn next_batch(&mut self, max: usize) -> Result<Pulled<AnyData>, StageError> {
        self.0.next_batch(max)
    }
    fn size_hint(&self) -> Option<u64> {
        None
    }
    fn remaining_estimate(&self) -> Option<u64> {
        None
    }
    fn next_chunk(&mut self, max: usize, out: &mut Vec<u8>) -> Result<Pulled<()>, StageError> {
        self.0.next_chunk(max, out)
    }
}

#[test]
fn dropping_the_adapter_ends_its_thread_once_the_pull_returns() {
    let (tx, rx) = mpsc::channel::<Option<u64>>();
    let (told, dropped) = mpsc::channel();
    let mut source: Box<dyn DynSource> = Box::new(Watched(FromChannel(rx), Tell(told)));
    detach(&mut source).unwrap();
    // The thread is in a pull, blocked on the channel.
    assert!(matches!(source.next_batch(1).unwrap(), Pulled::Pending(_)));
    drop(source);
    assert!(
        dropped.recv_timeout(Duration::from_millis(100)).is_err(),
        "the source is in use until its pull returns"
    );
    tx.send(Some(1)).unwrap();
    dropped
        .recv_timeout(Duration::from_secs(10))
        .expect("the thread ended and dropped the source");
}

/// Sleeps, or spins for `spin` of CPU time, per pull.
struct Timed {
    sleep: Duration,
    spin: Duration,
}

impl DynSource for Timed {
    fn next_batch(&mut self, _max: usize) -> Result<Pulled<AnyData>, StageError> {
        std::thread::sleep(self.sleep);
        let start = thread_cpu();
        while thread_cpu().saturating_sub(start) < self.spin {
            std::hint::black_box(0u64);
        }
        Ok(pulled(Some((Box::new(0u64) as AnyData, 1))))
    }
    fn size_hint(&self) -> Option<u64> {
        None
    }
    fn remaining_estimate(&self) -> Option<u64> {
        None
    }
    fn next_chunk(&mut self, _: usize, _: &mut Vec<u8>) -> Result<Pulled<()>, StageError> {
        Ok(Pulled::End)
    }
}

/// The busy time the engine is told for one pulled batch.
fn busy_of_one_pull(source: Timed) -> Duration {
    let mut source: Box<dyn DynSource> = Box::new(source);
    detach(&mut source).unwrap();
    loop {
        match source.next_batch(1).unwrap() {
            Pulled::Pending(w) => runtime().block_on(w),
            Pulled::Data(..) => return source.took().expect("measured"),
            _ => panic!("expected a batch"),
        }
    }
}

#[test]
fn time_a_source_waits_is_not_counted_as_work_but_its_cpu_time_is() {
    let waiting = busy_of_one_pull(Timed {
        sleep: Duration::from_millis(300),
        spin: Duration::ZERO,
    });
    assert!(waiting < Duration::from_millis(150), "{waiting:?}");
    let working = busy_of_one_pull(Timed {
        sleep: Duration::ZERO,
        spin: Duration::from_millis(40),
    });
    assert!(working >= Duration::from_millis(40), "{working:?}");
}
