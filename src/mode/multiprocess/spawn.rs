//! Local worker processes: the same program started with `worker --connect
//! ADDR` (or an embedding application's own command), the token passed in
//! the environment (never in argv), and reaped at the end of the run.

use crate::error::RunError;
use crate::protocol::{Token, TOKEN_ENV};
use crate::worker::{SPAWNED_BY_ENV, UNDISPATCHED_EXIT, UNDISPATCHED_MESSAGE};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to start a local worker: `program args… --connect ADDR --max-frame N
/// --threads 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCommand {
    /// The executable.
    pub program: PathBuf,
    /// Arguments placed before `--connect ADDR`.
    pub args: Vec<OsString>,
}

impl WorkerCommand {
    /// The same command, allowed to read chunks from files under each of
    /// `dirs` (`--allow-read DIR` each): for local workers, the input
    /// files' directories.
    pub fn allow_read<P: AsRef<std::path::Path>>(mut self, dirs: &[P]) -> Self {
        for dir in dirs {
            self.args.push("--allow-read".into());
            self.args.push(dir.as_ref().as_os_str().to_owned());
        }
        self
    }

    /// The same command, allowed to read the directories of `files` (their
    /// canonical form, as ranges name them): what the local workers a run
    /// starts with the default command get for its source's
    /// [`range_files`](crate::FileChunkSource::range_files). A file that
    /// cannot be resolved adds nothing (the run names it when it fails).
    pub fn allow_reading(self, files: &[PathBuf]) -> Self {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for file in files {
            let dir = std::fs::canonicalize(file)
                .ok()
                .and_then(|p| p.parent().map(std::path::Path::to_path_buf));
            if let Some(dir) = dir {
                if !dirs.contains(&dir) {
                    dirs.push(dir);
                }
            }
        }
        self.allow_read(&dirs)
    }

    /// This executable with the `worker` argument: right for the `parpipe`
    /// binary and for any program whose `main` dispatches `worker` to
    /// [`run_worker`](crate::worker::run_worker).
    pub fn current_exe() -> Result<Self, crate::Error> {
        let program = std::env::current_exe()
            .map_err(|e| RunError::Runtime(format!("cannot find this executable: {e}")))?;
        Ok(WorkerCommand {
            program,
            args: vec!["worker".into()],
        })
    }
}

/// The children of one run; killed if still running when dropped.
pub(crate) struct Children {
    children: Vec<Child>,
    /// Per child: the end of its stderr (which is also copied to ours), and
    /// the thread copying it.
    stderr: Vec<(StderrTail, Option<std::thread::JoinHandle<()>>)>,
}

/// The last bytes a child wrote to its stderr.
type StderrTail = std::sync::Arc<std::sync::Mutex<Vec<u8>>>;

/// How much of a child's stderr is kept for the error of a run it failed.
const STDERR_TAIL: usize = 2048;

/// Copies `from` (a child's stderr) to this process's stderr, keeping its
/// last [`STDERR_TAIL`] bytes in `tail`.
fn copy_stderr(
    mut from: std::process::ChildStderr,
    tail: StderrTail,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    use std::io::{Read, Write};
    std::thread::Builder::new()
        .name("parpipe-worker-stderr".into())
        .spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let _ = std::io::stderr().write_all(&buf[..n]);
                let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                t.extend_from_slice(&buf[..n]);
                let excess = t.len().saturating_sub(STDERR_TAIL);
                t.drain(..excess);
            }
        })
}

impl Children {
    /// Starts `n` workers that connect to `addr`.
    pub(crate) fn spawn(
        command: &WorkerCommand,
        n: usize,
        addr: &str,
        token: &Token,
        max_frame: usize,
    ) -> Result<Self, RunError> {
        let mut children = Children {
            children: Vec::with_capacity(n),
            stderr: Vec::with_capacity(n),
        };
        let token = String::from_utf8_lossy(token.expose()).into_owned();
        let start_one = || {
            Command::new(&command.program)
                .args(&command.args)
                .arg("--connect")
                .arg(addr)
                .arg("--max-frame")
                .arg(max_frame.to_string())
                // `--workers` already counts local processes: one chunk at a
                // time each, as before workers had threads.
                .arg("--threads")
                .arg("1")
                .env(TOKEN_ENV, &token)
                // Marks the child as this coordinator's worker: a program
                // that does not dispatch it fails at once (worker/dispatch.rs).
                .env(SPAWNED_BY_ENV, std::process::id().to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
        };
        // All at once, a thread each: a start returns only once its child
        // has exec'd, and on a busy machine that child may first wait for a
        // core, so one after another the last would start milliseconds late.
        let started: Vec<std::io::Result<Child>> = std::thread::scope(|scope| {
            let starts: Vec<_> = (0..n).map(|_| scope.spawn(start_one)).collect();
            starts
                .into_iter()
                .map(|s| {
                    s.join().unwrap_or_else(|_| {
                        Err(std::io::Error::other("the starting thread panicked"))
                    })
                })
                .collect()
        });
        let mut failed = None;
        for child in started {
            match child {
                Ok(mut child) => {
                    tracing::debug!(pid = child.id(), "started worker process");
                    let tail = StderrTail::default();
                    let copier = child
                        .stderr
                        .take()
                        .and_then(|e| copy_stderr(e, tail.clone()).ok());
                    children.children.push(child);
                    children.stderr.push((tail, copier));
                }
                // The ones started are killed when `children` drops.
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        if let Some(e) = failed {
            return Err(RunError::Runtime(format!(
                "cannot start worker '{}': {e}",
                command.program.display()
            )));
        }
        Ok(children)
    }

    /// The children that have exited, each with its exit status and the
    /// end of its stderr (for the error of a run no worker could join).
    pub(crate) fn exited(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for (child, (tail, copier)) in self.children.iter_mut().zip(&mut self.stderr) {
            let Ok(Some(status)) = child.try_wait() else {
                continue;
            };
            // Its stderr is closed: the copy ends (unless a grandchild holds it).
            if let Some(copier) = copier.take() {
                let _ = copier.join();
            }
            let tail = tail.lock().unwrap_or_else(|p| p.into_inner());
            let text = String::from_utf8_lossy(&tail);
            let text = text.trim();
            out.push(if text.is_empty() {
                format!(
                    "worker process {} exited with {status} (no stderr)",
                    child.id()
                )
            } else {
                format!(
                    "worker process {} exited with {status}; its stderr ended with: {text}",
                    child.id()
                )
            });
        }
        out
    }

    /// The first child that exited because its program never dispatched
    /// it (exit status [`UNDISPATCHED_EXIT`], the message in its stderr),
    /// described for the run's error; `None` while there is none.
    pub(crate) fn undispatched(&mut self) -> Option<String> {
        for (child, (tail, copier)) in self.children.iter_mut().zip(&mut self.stderr) {
            let Ok(Some(status)) = child.try_wait() else {
                continue;
            };
            if status.code() != Some(UNDISPATCHED_EXIT) {
                continue;
            }
            if let Some(copier) = copier.take() {
                let _ = copier.join();
            }
            let tail = tail.lock().unwrap_or_else(|p| p.into_inner());
            if String::from_utf8_lossy(&tail).contains("dispatch_if_worker") {
                return Some(format!(
                    "worker process {} exited at once with {status}: {UNDISPATCHED_MESSAGE}",
                    child.id()
                ));
            }
        }
        None
    }

    /// Waits up to `grace` for the children whose process id is in
    /// `closed` (they were told to shut down) to exit, then kills the rest;
    /// the others are killed at once.
    pub(crate) fn reap(mut self, grace: Duration, closed: &[u64]) {
        let deadline = Instant::now() + grace;
        for child in &mut self.children {
            let patient = closed.contains(&u64::from(child.id()));
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if !patient || Instant::now() >= deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    // Short naps: the run ends as soon as its workers have.
                    Ok(None) => std::thread::sleep(Duration::from_micros(100)),
                }
            }
        }
        self.children.clear();
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.children {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::WorkerCommand;
    use std::path::PathBuf;

    /// Each directory once, in canonical form (as ranges name files);
    /// a file that cannot be resolved adds nothing.
    #[test]
    fn workers_may_read_the_canonical_directories_of_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        for name in ["a.log", "b.log", "sub/c.log"] {
            std::fs::write(dir.path().join(name), "x\n").unwrap();
        }
        let files: Vec<PathBuf> = ["a.log", "sub/../b.log", "sub/c.log", "missing.log"]
            .iter()
            .map(|f| dir.path().join(f))
            .collect();
        let command = WorkerCommand {
            program: "w".into(),
            args: vec!["worker".into()],
        }
        .allow_reading(&files);
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let sub = std::fs::canonicalize(&sub).unwrap();
        assert_eq!(
            command.args,
            [
                "worker".into(),
                "--allow-read".into(),
                root.into_os_string(),
                "--allow-read".into(),
                sub.into_os_string()
            ]
        );
    }
}
