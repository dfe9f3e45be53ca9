//! Standard input with a batch deadline: a slow stream still flows.
//!
//! A thread reads the pipe into a small bounded queue (so read-ahead stays
//! a few blocks). [`Patient::read`] hands those bytes out; while a batch is
//! being filled it waits for more only until the batch's deadline
//! ([`BatchClock`], armed when the batch got its first line), then answers
//! [`io::ErrorKind::WouldBlock`], and the reader sends the lines it has in
//! a partial batch. Without a deadline (no line in the batch yet) it waits
//! as long as the writer takes.

use std::io::{self, Read};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bytes read from the pipe at a time.
const BLOCK: usize = 64 << 10;
/// Blocks read ahead of the reader at most.
const AHEAD: usize = 4;

/// When the batch being filled must leave (shared between the line reader,
/// which arms it, and the input, which honours it).
#[derive(Clone, Default)]
pub(crate) struct BatchClock(Arc<Mutex<Clock>>);

#[derive(Default)]
struct Clock {
    deadline: Option<Instant>,
    /// Never time out (a gzip stream: its decoder reads in its own steps).
    off: bool,
}

impl BatchClock {
    fn lock(&self) -> std::sync::MutexGuard<'_, Clock> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new batch: no deadline until its first line.
    pub(crate) fn clear(&self) {
        self.lock().deadline = None;
    }

    /// The batch got its first line: it leaves `delay` from now at the latest.
    pub(crate) fn arm(&self, delay: Duration) {
        let mut c = self.lock();
        if c.deadline.is_none() {
            c.deadline = Some(Instant::now() + delay);
        }
    }

    /// Whether a deadline is set.
    pub(crate) fn is_armed(&self) -> bool {
        self.lock().deadline.is_some()
    }

    /// Takes the deadline away for a while (see [`restore`](Self::restore)).
    pub(crate) fn suspend(&self) -> Option<Instant> {
        self.lock().deadline.take()
    }

    /// Puts back what [`suspend`](Self::suspend) took.
    pub(crate) fn restore(&self, deadline: Option<Instant>) {
        self.lock().deadline = deadline;
    }

    /// Reads never time out from now on.
    pub(crate) fn turn_off(&self) {
        self.lock().off = true;
    }

    /// Whether the batch's deadline has passed (never, when it is off or
    /// not armed).
    pub(crate) fn is_due(&self) -> bool {
        self.deadline().is_some_and(|d| Instant::now() >= d)
    }

    fn deadline(&self) -> Option<Instant> {
        let c = self.lock();
        if c.off {
            None
        } else {
            c.deadline
        }
    }
}

/// Standard input (or any pipe) read on a thread, with deadlines.
pub(crate) struct Patient {
    blocks: mpsc::Receiver<io::Result<Vec<u8>>>,
    block: Vec<u8>,
    pos: usize,
    done: bool,
    clock: BatchClock,
}

impl Patient {
    /// Standard input, read by a thread of its own from now on.
    pub(crate) fn stdin(clock: BatchClock) -> io::Result<Patient> {
        Patient::spawn(io::stdin(), clock)
    }

    /// `pipe`, read by a thread of its own from now on. The thread ends at
    /// the pipe's end, at its first error, or once this reader is dropped
    /// and its next read returns.
    pub(crate) fn spawn<R: Read + Send + 'static>(
        mut pipe: R,
        clock: BatchClock,
    ) -> io::Result<Patient> {
        let (tx, blocks) = mpsc::sync_channel(AHEAD);
        std::thread::Builder::new()
            .name("parpipe-stdin".into())
            .spawn(move || loop {
                let mut block = vec![0; BLOCK];
                let got = match pipe.read(&mut block) {
                    Ok(0) => return,
                    Ok(n) => {
                        block.truncate(n);
                        Ok(block)
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => Err(e),
                };
                let failed = got.is_err();
                if tx.send(got).is_err() || failed {
                    return;
                }
            })?;
        Ok(Patient {
            blocks,
            block: Vec::new(),
            pos: 0,
            done: false,
            clock,
        })
    }
}

impl Read for Patient {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.block.len() {
                let n = out.len().min(self.block.len() - self.pos);
                out[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.done || out.is_empty() {
                return Ok(0);
            }
            let next = match self.clock.deadline() {
                None => self.blocks.recv().map_err(|_| None),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    self.blocks.recv_timeout(left).map_err(|e| match e {
                        mpsc::RecvTimeoutError::Timeout => Some(()),
                        mpsc::RecvTimeoutError::Disconnected => None,
                    })
                }
            };
            match next {
                Ok(Ok(block)) => {
                    self.block = block;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(Some(())) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        "the batch's delay is up",
                    ))
                }
                // The thread ended: the end of the pipe.
                Err(None) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
    }
}
