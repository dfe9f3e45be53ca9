//! Writing a run's output files so that a failure never leaves a partial
//! result or a temporary file behind.
//!
//! - Temporary files are named `.NAME.PID.tmp` (hidden, next to `NAME`,
//!   tagged with the writing process): [`temp_path`].
//! - [`write_atomic`] writes one file under that name and renames it into
//!   place; any failure removes the temporary.
//! - [`clean_stale`] removes the temporaries of runs that were killed (their
//!   process no longer exists) and names those of running processes.
//! - [`Staging`] holds every output of a run in a hidden directory
//!   `OUT/.parpipe-run.PID.tmp/` until the run and its report are complete,
//!   then moves them into `OUT` — the report first, `summary.json` last — so
//!   that a run which fails at any point, even while writing its report,
//!   leaves no `summary.json`; dropping it unfinished removes it all.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The summary file every workload writes; moved into place last.
const SUMMARY: &str = "summary.json";
/// Name of the staging directory (as `.NAME.PID.tmp`).
const STAGING: &str = "parpipe-run";

/// An output that could not be written: what was being done, to which path.
#[derive(Debug, thiserror::Error)]
#[error("{what} '{}': {source}", path.display())]
pub struct OutputError {
    /// What failed, e.g. "cannot write".
    pub what: &'static str,
    /// The file or directory.
    pub path: PathBuf,
    /// What the operating system said.
    pub source: io::Error,
}

fn fail(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> OutputError {
    let path = path.to_path_buf();
    move |source| OutputError { what, path, source }
}

/// `dir/.NAME.PID.tmp`: where this process writes `dir/NAME` before
/// renaming it into place.
pub fn temp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes `bytes` to `path` under a temporary name and renames it into
/// place; on any failure the temporary is removed and `path` untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    write_atomic_tagged(path, bytes, "")
}

/// [`write_atomic`] for a snapshot of a file that a run rewrites while it
/// goes on (`--snapshot-every`): its temporary, `.NAME.snapshot.PID.tmp`,
/// never meets the one the run's final output is written through, and a
/// killed run's is cleaned like any other.
pub fn write_snapshot(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    write_atomic_tagged(path, bytes, ".snapshot")
}

fn write_atomic_tagged(path: &Path, bytes: &[u8], tag: &str) -> Result<(), OutputError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    let tmp = temp_path(dir, &format!("{name}{tag}"));
    let written = fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.flush()))
        .map_err(fail("cannot write", &tmp))
        .and_then(|()| fs::rename(&tmp, path).map_err(fail("cannot rename into", path)));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// A temporary file (or staging directory) of another process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleTemp {
    /// Its path.
    pub path: PathBuf,
    /// The process that made it.
    pub pid: u32,
    /// Removed (its process is gone), or left (its process still runs).
    pub removed: bool,
}

/// The process id in a `.NAME.PID.tmp` file name.
fn temp_pid(name: &str) -> Option<(&str, u32)> {
    let inner = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (stem, pid) = inner.rsplit_once('.')?;
    if stem.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem, pid.parse().ok()?))
}

/// Whether process `pid` exists (a process of another user counts).
fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        // Not yet anything of ours: a leftover of a killed run whose pid
        // this process happens to reuse.
        return false;
    }
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Removes from `dir` the temporaries `.NAME.PID.tmp` (files, or staging
/// directories) whose process is gone; those of a live process are left.
/// `only`: just the temporaries of that `NAME`. Returns what it found; a
/// missing `dir` has none.
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
        let Some((stem, pid)) = name.to_str().and_then(temp_pid) else {
            continue;
        };
        if only.is_some_and(|o| o != stem) {
            continue;
        }
        let path = entry.path();
        let removed = !alive(pid);
        if removed {
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let gone = if is_dir {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            gone.map_err(fail("cannot remove the stale temporary", &path))?;
            tracing::warn!(
                "removed '{}', a temporary of process {pid}, which is no longer running",
                path.display()
            );
        } else {
            tracing::warn!(
                "left '{}': a temporary of process {pid}, which is still running",
                path.display()
            );
        }
        found.push(StaleTemp { path, pid, removed });
    }
    Ok(found)
}

/// The outputs of one run, held back until all of them are complete.
#[derive(Debug)]
pub struct Staging {
    out: PathBuf,
    dir: PathBuf,
    report: PathBuf,
    report_tmp: PathBuf,
    stale: Vec<StaleTemp>,
    done: bool,
}

impl Staging {
    /// Before any work: creates `out`, cleans the stale temporaries of
    /// killed runs there (and those of the report's name next to
    /// `report`), and proves both places writable by creating the staging
    /// directory and the report's temporary file.
    pub fn prepare(out: &Path, report: &Path) -> Result<Staging, OutputError> {
        fs::create_dir_all(out).map_err(fail("cannot create output directory", out))?;
        let mut stale = clean_stale(out, None)?;
        let report_dir = report
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(report_dir).map_err(fail("cannot create directory", report_dir))?;
        let report_name = report.file_name().map_or_else(
            || "report.json".into(),
            |n| n.to_string_lossy().into_owned(),
        );
        if report_dir != out {
            stale.extend(clean_stale(report_dir, Some(&report_name))?);
        }
        let dir = temp_path(out, STAGING);
        fs::create_dir(&dir).map_err(fail("cannot write into output directory", out))?;
        let staging = Staging {
            out: out.to_path_buf(),
            dir,
            report: report.to_path_buf(),
            report_tmp: temp_path(report_dir, &report_name),
            stale,
            done: false,
        };
        // Dropped on failure: the staging directory goes again.
        fs::File::create(&staging.report_tmp)
            .map_err(fail("cannot write the report", &staging.report_tmp))?;
        Ok(staging)
    }

    /// Where the run writes its files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The stale temporaries found by [`prepare`](Self::prepare).
    pub fn stale(&self) -> &[StaleTemp] {
        &self.stale
    }

    /// The run succeeded: writes the report, then moves it and every staged
    /// file into place, `summary.json` last. On failure nothing of this run
    /// is left in place (the files already moved are removed again).
    pub fn commit(mut self, report_json: &str) -> Result<(), OutputError> {
        fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&self.report_tmp)
            .and_then(|mut f| f.write_all(report_json.as_bytes()).and_then(|()| f.flush()))
            .map_err(fail("cannot write the report", &self.report_tmp))?;
        let mut names: Vec<String> = fs::read_dir(&self.dir)
            .and_then(|rd| {
                rd.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                    .collect()
            })
            .map_err(fail("cannot list", &self.dir))?;
        // Hidden names are the workload's own unfinished temporaries.
        names.retain(|n| !n.starts_with('.'));
        names.sort_by_key(|n| (n == SUMMARY, n.clone()));
        let mut placed = Vec::new();
        let mut moves = vec![(self.report_tmp.clone(), self.report.clone())];
        moves.extend(names.iter().map(|n| (self.dir.join(n), self.out.join(n))));
        for (from, to) in moves {
            if let Err(e) = fs::rename(&from, &to) {
                for p in &placed {
                    let _ = fs::remove_file(p);
                }
                return Err(fail("cannot move an output into place at", &to)(e));
            }
            placed.push(to);
        }
        self.done = true;
        let _ = fs::remove_dir_all(&self.dir);
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_dir_all(&self.dir);
            let _ = fs::remove_file(&self.report_tmp);
        }
    }
}

#[cfg(test)]
mod tests;
