//! Temporary files and directories that parpipe makes next to its
//! outputs, and the cleaning of those left by runs that were killed.
//!
//! - Names: `.NAME.parpipe-PID-TAG.tmp`, where `TAG` is 8 hex digits drawn
//!   at random once per process. The `parpipe-` marker says who made it;
//!   `PID-TAG` keeps two processes apart even when they share a process id
//!   (two containers writing to one volume).
//! - Ownership is a lock, not a process id: every temporary is created and
//!   then locked (`flock`, exclusive) by its writer, which holds the lock as
//!   long as the temporary exists. The kernel drops the lock when the
//!   writer's process ends, however it ends. A temporary whose lock can be
//!   taken therefore has no live writer — in this PID namespace or another
//!   one on the same machine — and [`clean_stale`] removes it; one whose
//!   lock is held is left.
//! - Only names of that form are ever touched, and a directory only when it
//!   is a run's staging directory (`NAME` = `run`): another program's
//!   `.backup.3999999.tmp` is not parpipe's.

use super::{fail, OutputError};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// The marker in every temporary name.
const MARK: &str = "parpipe-";

/// `NAME` of a run's staging directory (the only directory temporary).
pub(super) const STAGING: &str = "run";

/// `PID-TAG`: this process's part of its temporary names.
fn owner() -> &'static str {
    static OWNER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    OWNER.get_or_init(|| {
        let mut tag = [0u8; 4];
        // Without randomness the process id alone still names it; two
        // namespaces sharing one then fail to create, never overwrite.
        let _ = getrandom::fill(&mut tag);
        format!("{}-{:08x}", std::process::id(), u32::from_be_bytes(tag))
    })
}

/// `dir/.NAME.parpipe-PID-TAG.tmp`: where this process writes `dir/NAME`
/// before renaming it into place.
pub fn temp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.{MARK}{}.tmp", owner()))
}

/// The `NAME` and process id of a parpipe temporary's file name, or `None`
/// for any other name.
pub(super) fn parse_temp(name: &str) -> Option<(&str, u32)> {
    let inner = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (stem, owner) = inner.rsplit_once(&format!(".{MARK}"))?;
    let (pid, tag) = owner.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let hex = tag.len() == 8 && tag.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if stem.is_empty() || !digits(pid) || !hex {
        return None;
    }
    Some((stem, pid.parse().ok()?))
}

/// Takes the exclusive lock on `file` without waiting: false when another
/// open file description holds it.
pub(super) fn try_lock(file: &File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock(2) on a descriptor this `File` owns.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

/// Creates `path` (a new file, or with `dir` a new directory) and locks
/// it; the lock lasts as long as the returned `File` is open. A cleaner of
/// another run may find the new entry before it is locked and remove it:
/// the entry at `path` is checked to be the locked one, and made again if
/// not.
fn create_locked_with(path: &Path, dir: bool) -> io::Result<File> {
    for _ in 0..8 {
        let file = if dir {
            fs::create_dir(path)?;
            File::open(path)?
        } else {
            File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(path)?
        };
        if !try_lock(&file)? {
            // A cleaner holds it for the instant before it removes it.
            continue;
        }
        match fs::symlink_metadata(path) {
            Ok(at_path) if same_file(&at_path, &file.metadata()?) => return Ok(file),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(
        "removed again and again by another process while being created",
    ))
}

/// A new file at `path`, locked as this process's temporary.
pub(super) fn create_locked(path: &Path) -> io::Result<File> {
    create_locked_with(path, false)
}

/// A new directory at `path`, locked as this process's staging directory.
pub(super) fn create_locked_dir(path: &Path) -> io::Result<File> {
    create_locked_with(path, true)
}

/// A temporary of another parpipe process, found in an output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleTemp {
    /// Its path.
    pub path: PathBuf,
    /// The process id in its name (of its own PID namespace).
    pub pid: u32,
    /// Removed (nothing holds its lock), or left (its run still holds it).
    pub removed: bool,
}

/// Removes from `dir` the parpipe temporaries (`.NAME.parpipe-PID-TAG.tmp`
/// files, and staging directories) whose lock no live process holds; those
/// still locked are left and named. Nothing else is touched. `only`: just
/// the temporaries of that `NAME`. Returns what it found; a missing `dir`
/// has none.
pub fn clean_stale(dir: &Path, only: Option<&str>) -> Result<Vec<StaleTemp>, OutputError> {
    let entries = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(fail("cannot list", dir)(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(fail("cannot list", dir))?;
        let name = entry.file_name();
        let Some((stem, pid)) = name.to_str().and_then(parse_temp) else {
            continue;
        };
        if only.is_some_and(|o| o != stem) {
            continue;
        }
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        // Our temporaries are files, and directories only for staging; a
        // symbolic link is never ours.
        let is_dir = kind.is_dir();
        if !(kind.is_file() || (is_dir && stem == STAGING)) {
            continue;
        }
        let file = match File::open(&path) {
            Ok(f) => f,
            // Removed meanwhile (its run ended), or not ours to read.
            Err(_) => continue,
        };
        let free = try_lock(&file).map_err(fail("cannot lock", &path))?;
        if free {
            // Still holding the lock: nobody can take it up meanwhile.
            let gone = if is_dir {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            gone.map_err(fail("cannot remove the stale temporary", &path))?;
            tracing::warn!(
                "removed '{}', a temporary of a run of process {pid} that no longer runs",
                path.display()
            );
        } else {
            tracing::warn!(
                "left '{}': a temporary of a run of process {pid} that still runs (it holds its lock)",
                path.display()
            );
        }
        drop(file);
        found.push(StaleTemp {
            path,
            pid,
            removed: free,
        });
    }
    Ok(found)
}
