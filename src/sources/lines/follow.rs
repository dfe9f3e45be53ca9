//! Reading a log file that keeps growing, as `tail -F` does: [`FollowReader`]
//! is a [`Read`] over the successive generations of one path.
//!
//! - At the end of the file it waits for more bytes (polling; a file on a
//!   network mount gives no change notifications that could be trusted).
//! - Rotation by rename (logrotate's default): once the old file has been
//!   read to its end and the path names another file, the new one is
//!   opened and read from its start. Bytes are a stream: the old file's
//!   last bytes are followed by the new file's first ones.
//! - Truncation in place (copytruncate): when the file becomes shorter than
//!   what was read, reading restarts at its start, with a warning.
//! - The path disappearing: the open file is read to its end, then the
//!   reader waits for the path to come back.
//! - A rotation that skipped a file (rotated more than once between two
//!   looks) is warned about when it can be told (`follow/skipped.rs`).
//! - Stopping: once [`FollowStop::stop`] is called, the next read that
//!   finds no new bytes returns end of file, so that the caller finishes
//!   normally with everything written before.
//!
//! While no new bytes come, `read` returns an [`io::ErrorKind::WouldBlock`]
//! error after the idle interval, or as soon as the batch being filled is
//! due (its `BatchClock`, armed at its first line, when one is given), so
//! that a caller holding a partial batch can send it on instead of waiting
//! for more: a file that gets a line every 100 ms never idles 200 ms, yet
//! its lines must not wait for a whole batch.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::input::BatchClock;

/// Asks a [`FollowReader`] to finish at the end of what has been written.
#[derive(Debug, Clone, Default)]
pub struct FollowStop(Arc<AtomicBool>);

impl FollowStop {
    /// A flag that is not raised.
    pub fn new() -> Self {
        FollowStop::default()
    }

    /// Ends the follow once the reader has caught up.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// True once [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How often the path is looked at while there is nothing new.
const POLL: Duration = Duration::from_millis(50);

/// How long a read of a followed input waits for new bytes before the
/// lines already read leave in a partial batch.
pub const IDLE: Duration = Duration::from_millis(200);

/// The stop flag of every [`InputSpec::Follow`](super::input::InputSpec::Follow)
/// input of this process: sources are built from serialized parameters, so
/// the flag cannot travel with them.
pub fn global_stop() -> FollowStop {
    static STOP: std::sync::OnceLock<FollowStop> = std::sync::OnceLock::new();
    STOP.get_or_init(FollowStop::new).clone()
}

/// Ends every follow of this process once it has read what was written
/// (what `parpipe run --follow` does on SIGINT or SIGTERM).
pub fn stop_following() {
    global_stop().stop();
}

/// The identity of a file: device and inode on Unix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

fn file_id(meta: &std::fs::Metadata) -> FileId {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
    #[cfg(not(unix))]
    {
        // Without inodes, a rename is seen as a truncation or not at all.
        let _ = meta;
        FileId { dev: 0, ino: 0 }
    }
}

/// The file being read.
struct Current {
    file: File,
    id: FileId,
    /// Bytes of this file read so far.
    offset: u64,
}

/// A [`Read`] that follows a growing, rotating file (see the module docs).
pub struct FollowReader {
    path: PathBuf,
    current: Option<Current>,
    stop: FollowStop,
    idle: Duration,
    /// The deadline of the batch being filled (see the module docs).
    clock: Option<BatchClock>,
    /// Rotations and truncations seen, for the report and tests.
    rotations: u64,
    truncations: u64,
    /// Files that rotations skipped, as far as they can be told.
    skipped: u64,
}

impl std::fmt::Debug for FollowReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FollowReader")
            .field("path", &self.path)
            .field("rotations", &self.rotations)
            .field("truncations", &self.truncations)
            .finish()
    }
}

impl FollowReader {
    /// Follows `path` from its start. The file must exist now (a typo is
    /// an error, not an endless wait); later it may disappear and come back.
    /// A read with nothing new gives `WouldBlock` after `idle`.
    pub fn open(path: &Path, stop: FollowStop, idle: Duration) -> io::Result<Self> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "is a directory, expected a file of log lines",
            ));
        }
        Ok(FollowReader {
            path: path.to_path_buf(),
            current: Some(Current {
                file,
                id: file_id(&meta),
                offset: 0,
            }),
            stop,
            idle,
            clock: None,
            rotations: 0,
            truncations: 0,
            skipped: 0,
        })
    }

    /// While nothing new comes, a read also gives `WouldBlock` once the
    /// batch that `clock` times is due.
    pub(crate) fn with_batch_clock(mut self, clock: BatchClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Rotations by rename (or replacement) seen so far.
    #[cfg(any(test, feature = "internals"))]
    pub fn rotations(&self) -> u64 {
        self.rotations
    }

    /// Truncations seen so far.
    #[cfg(any(test, feature = "internals"))]
    pub fn truncations(&self) -> u64 {
        self.truncations
    }

    /// Files that a rotation skipped (rotated more than once between two
    /// looks) and that could be told apart, so far: see `follow/skipped.rs`
    /// for what can and cannot be told.
    #[cfg(any(test, feature = "internals"))]
    pub fn skipped_files(&self) -> u64 {
        self.skipped
    }

    /// Warns about the files rotated away between the file read until now
    /// and `new`, the one now at the path.
    fn check_skipped(&mut self, new: &File) {
        let (Some(cur), Ok(new)) = (&self.current, new.metadata()) else {
            return;
        };
        let Ok(old) = cur.file.metadata() else {
            return;
        };
        for (file, len) in skipped::skipped(&self.path, &old, &new) {
            self.skipped += 1;
            tracing::warn!(
                path = %self.path.display(),
                "the file was rotated more than once since it was last looked at: \
                 '{}' ({len} bytes) was written and rotated away unread; its lines are not counted",
                file.display()
            );
        }
    }

    /// At the end of the current file: switches to a new file at the path,
    /// or rewinds after a truncation. True if there may be bytes to read now.
    fn look_around(&mut self) -> io::Result<bool> {
        let at_path = std::fs::metadata(&self.path).ok();
        match (&mut self.current, at_path) {
            (Some(cur), Some(meta)) if file_id(&meta) == cur.id => {
                // Same file: shorter than what we read means truncated.
                let len = cur.file.metadata()?.len();
                if len < cur.offset {
                    tracing::warn!(
                        path = %self.path.display(),
                        "file truncated (from {} to {len} bytes): reading again from its start",
                        cur.offset
                    );
                    cur.file.seek(SeekFrom::Start(0))?;
                    cur.offset = 0;
                    self.truncations += 1;
                    return Ok(true);
                }
                Ok(len > cur.offset)
            }
            (_, Some(_)) => {
                // Another file at the path (rotated, or back after going away).
                // Bytes may have reached the old file between our last read
                // and the rename: read it to its end before switching.
                if let Some(cur) = &self.current {
                    if cur.file.metadata()?.len() > cur.offset {
                        return Ok(true);
                    }
                }
                match File::open(&self.path) {
                    Ok(file) => {
                        let id = file_id(&file.metadata()?);
                        if self.current.is_some() {
                            self.check_skipped(&file);
                            self.rotations += 1;
                            tracing::info!(path = %self.path.display(), "file rotated: following the new one");
                        }
                        self.current = Some(Current {
                            file,
                            id,
                            offset: 0,
                        });
                        Ok(true)
                    }
                    // Gone again between the two calls: wait.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                    Err(e) => Err(e),
                }
            }
            // The path is gone: keep the open file (it may still grow) and wait.
            (Some(cur), None) => Ok(cur.file.metadata()?.len() > cur.offset),
            (None, None) => Ok(false),
        }
    }
}

impl Read for FollowReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let started = Instant::now();
        loop {
            if let Some(cur) = self.current.as_mut() {
                let n = cur.file.read(buf)?;
                if n > 0 {
                    cur.offset += n as u64;
                    return Ok(n);
                }
            }
            // Nothing new in the open file: has it been rotated or truncated?
            if self.look_around()? {
                continue;
            }
            // Checked after the last look, so that bytes written before the
            // stop are all read.
            if self.stop.is_stopped() {
                return Ok(0);
            }
            if started.elapsed() >= self.idle || self.clock.as_ref().is_some_and(BatchClock::is_due)
            {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "no new bytes yet",
                ));
            }
            std::thread::sleep(POLL.min(self.idle));
        }
    }
}

mod skipped;

#[cfg(test)]
mod tests;
