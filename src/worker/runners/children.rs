//! The child processes a worker forks for a job, and the tasks that carry
//! their chunks and results (see the parent module's text for why).

use super::super::chunk::{ChunkProcessor, Task};
use super::Done;
use crate::error::RunError;
use crate::protocol::{encode_frame, FrameCodec, Message};
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use tokio::sync::mpsc;
use tokio_util::codec::{Decoder, FramedRead, FramedWrite};

/// True while this process has never started a second thread (glibc's own
/// flag, `__libc_single_threaded`), so that a child forked now has one
/// thread and its allocator takes no locks. False where the C library
/// has no such flag: threads are then the safe choice.
pub(super) fn may_fork() -> bool {
    // SAFETY: dlsym only looks a name up; the flag, when glibc has it, is a
    // `char` that lives as long as the process.
    let flag = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"__libc_single_threaded".as_ptr()) };
    // SAFETY: as above; read once, by the only thread there is.
    !flag.is_null() && unsafe { std::ptr::read_volatile(flag as *const u8) } != 0
}

/// The children of one job: their process ids, and the CPU time and peak
/// memory each last reported.
pub(super) struct Children {
    pids: Vec<libc::pid_t>,
    cpu: Vec<f64>,
    rss: Vec<u64>,
}

impl Children {
    /// Forks one child per processor; returns them with the channel that
    /// carries each one's chunks. `socket` (the coordinator's connection)
    /// is closed in every child. Each child's results go to `done`.
    pub(super) fn fork(
        processors: Vec<ChunkProcessor>,
        max_frame: usize,
        socket: RawFd,
        done: Done,
    ) -> Result<(Children, Vec<mpsc::UnboundedSender<Task>>), RunError> {
        let parent = std::process::id() as libc::pid_t;
        let mut children = Children {
            pids: Vec::new(),
            cpu: vec![0.0; processors.len()],
            rss: vec![0; processors.len()],
        };
        let mut ends = Vec::new();
        for processor in processors {
            let (mine, theirs) = match UnixStream::pair() {
                Ok(pair) => pair,
                Err(e) => {
                    children.end();
                    return Err(RunError::Runtime(format!("cannot make a socket pair: {e}")));
                }
            };
            // SAFETY: this process has one thread (`may_fork`), so the child
            // starts with every lock free and every structure consistent.
            match unsafe { libc::fork() } {
                -1 => {
                    let e = std::io::Error::last_os_error();
                    children.end();
                    return Err(RunError::Runtime(format!("cannot fork a child: {e}")));
                }
                0 => {
                    drop(mine);
                    // Only its own end stays open: the connection, and the
                    // other children's ends, are the parent's alone.
                    let close: Vec<RawFd> = ends
                        .iter()
                        .map(AsRawFd::as_raw_fd)
                        .chain([socket])
                        .collect();
                    child_main(processor, theirs, parent, &close, max_frame)
                }
                pid => {
                    drop(theirs);
                    children.pids.push(pid);
                    ends.push(mine);
                }
            }
        }
        let mut to = Vec::with_capacity(ends.len());
        for (i, end) in ends.into_iter().enumerate() {
            let pid = children.pids[i];
            let stream = end
                .set_nonblocking(true)
                .and_then(|()| tokio::net::UnixStream::from_std(end));
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    children.end();
                    return Err(RunError::Runtime(format!("cannot watch a child: {e}")));
                }
            };
            let (read, write) = stream.into_split();
            to.push(carry_chunks(write, max_frame));
            carry_results(i, pid, read, max_frame, done.clone());
        }
        Ok((children, to))
    }

    /// Makes `msg` (runner `i`'s) speak for the whole worker: a child
    /// reports its own CPU time and peak memory; the worker's are every
    /// child's last report plus this process's own (pages the children
    /// share with it are counted in each).
    pub(super) fn account(&mut self, i: usize, msg: &mut Message) {
        let (Message::ChunkDone { stats, .. } | Message::ChunkHeld { stats, .. }) = msg else {
            return;
        };
        self.cpu[i] = stats.process_cpu_seconds;
        self.rss[i] = stats.process_peak_rss;
        stats.process_cpu_seconds =
            self.cpu.iter().sum::<f64>() + crate::metrics::process_cpu_seconds();
        stats.process_peak_rss =
            self.rss.iter().sum::<u64>() + crate::metrics::kernel_peak_rss().unwrap_or_default();
    }

    /// Kills and reaps every child: the job is over (its results are in,
    /// or it failed and nothing a child still does can be sent).
    pub(super) fn end(self) {
        for &pid in &self.pids {
            // SAFETY: signals our own child, which is not reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        for &pid in &self.pids {
            let mut status = 0;
            // SAFETY: waits for our own child; EINTR retries.
            while unsafe { libc::waitpid(pid, &mut status, 0) } == -1
                && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
            {
            }
        }
    }
}

/// A task writing the tasks sent on the returned channel to a child.
fn carry_chunks(
    write: tokio::net::unix::OwnedWriteHalf,
    max_frame: usize,
) -> mpsc::UnboundedSender<Task> {
    // Unbounded, but bounded in practice: a runner is sent a task only
    // when idle.
    let (tx, mut rx) = mpsc::unbounded_channel::<Task>();
    let mut frames = FramedWrite::new(write, FrameCodec::new(max_frame));
    tokio::spawn(async move {
        while let Some(task) = rx.recv().await {
            // A child gone is reported by its reader.
            if frames.send(task.into_message()).await.is_err() {
                return;
            }
        }
    });
    tx
}

/// A task passing child `i`'s results to `done`, then its end as an error.
fn carry_results(
    i: usize,
    pid: libc::pid_t,
    read: tokio::net::unix::OwnedReadHalf,
    max_frame: usize,
    done: Done,
) {
    let mut frames = FramedRead::new(read, FrameCodec::new(max_frame));
    tokio::spawn(async move {
        loop {
            let (result, last) = match frames.next().await {
                Some(Ok(msg)) => (Ok(msg), false),
                Some(Err(e)) => (
                    Err(RunError::Runtime(format!(
                        "the child process {pid} running this worker's chunks sent a bad \
                         frame: {e}"
                    ))),
                    true,
                ),
                None => (
                    Err(RunError::Runtime(format!(
                        "the child process {pid} running this worker's chunks ended"
                    ))),
                    true,
                ),
            };
            if done.send((i, result)).is_err() || last {
                return;
            }
        }
    });
}

/// A child's whole life: it dies with its parent, keeps only `stream`
/// open, serves chunks until the stream closes, and exits without running
/// the parent's destructors (the runtime it inherited is the parent's).
fn child_main(
    mut processor: ChunkProcessor,
    stream: UnixStream,
    parent: libc::pid_t,
    close: &[RawFd],
    max_frame: usize,
) -> ! {
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: prctl, getppid and close act on this process alone; the
        // descriptors closed are copies of the parent's, unused here.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // The parent may have died before the line above.
            if libc::getppid() != parent {
                return 1;
            }
            libc::prctl(libc::PR_SET_NAME, c"parpipe-chunks".as_ptr());
            for &fd in close {
                libc::close(fd);
            }
        }
        serve_chunks(&mut processor, stream, max_frame)
    }))
    .unwrap_or(101);
    let _ = std::io::stderr().flush();
    // SAFETY: ends this process at once, as a forked child must.
    unsafe { libc::_exit(code) }
}

/// Reads chunks from `stream`, one at a time, and writes each one's
/// result back; 0 when the parent closes the stream.
fn serve_chunks(processor: &mut ChunkProcessor, mut stream: UnixStream, max_frame: usize) -> i32 {
    let mut codec = FrameCodec::new(max_frame);
    let mut buf = BytesMut::new();
    let mut block = vec![0u8; 64 << 10];
    loop {
        match codec.decode(&mut buf) {
            Ok(Some(msg)) => {
                let Ok(task) = Task::from_message(msg, true) else {
                    return 2;
                };
                let frame = match encode_frame(&processor.run(task), max_frame) {
                    Ok(frame) => frame,
                    Err(e) => {
                        tracing::error!("cannot encode a chunk's result: {e}");
                        return 3;
                    }
                };
                if stream.write_all(&frame).is_err() {
                    return 0;
                }
            }
            Ok(None) => match stream.read(&mut block) {
                Ok(0) => return 0,
                Ok(n) => buf.extend_from_slice(&block[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return 0,
            },
            Err(e) => {
                tracing::error!("bad frame from the worker: {e}");
                return 2;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// A process that has started a thread never forks its runners: the
    /// test harness has, and this test starts one more to be sure.
    #[test]
    fn a_process_with_threads_does_not_fork() {
        std::thread::spawn(|| {}).join().unwrap();
        assert!(!super::may_fork());
    }
}
