//! Writing a run's output files so that a failure never leaves a partial
//! result or a temporary file behind.
//!
//! - Temporary files are named `.NAME.parpipe-PID-TAG.tmp` (hidden, next
//!   to `NAME`) and locked by their writer while they exist: [`temp_path`],
//!   [`create_temp`].
//! - [`write_atomic`] writes one file under that name and renames it into
//!   place; any failure removes the temporary.
//! - [`clean_stale`] removes the temporaries of runs that were killed
//!   (nothing holds their lock) and names those of running ones; it touches
//!   no other name.
//! - [`write_snapshot`] rewrites a JSON output while a run goes on, marked
//!   `"final": false`; [`retract_snapshot`] takes it back when the run fails.
//! - [`Staging`] holds every output of a run in a hidden directory
//!   `OUT/.run.parpipe-PID-TAG.tmp/` until the run and its report are complete,
//!   then moves them into `OUT` — the report first, `summary.json` last — so
//!   that a run which fails at any point, even while writing its report,
//!   leaves no `summary.json`; dropping it unfinished removes it all.

mod snapshot;
mod temp;

pub use snapshot::{mark, retract_snapshot, retract_snapshots, write_snapshot};
pub use temp::{clean_stale, temp_path, StaleTemp};

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use temp::STAGING;

/// The summary file every workload writes; moved into place last.
const SUMMARY: &str = "summary.json";

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

/// Writes `bytes` to `path` under a temporary name and renames it into
/// place; on any failure the temporary is removed and `path` untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    write_atomic_tagged(path, bytes, "")
}

fn write_atomic_tagged(path: &Path, bytes: &[u8], tag: &str) -> Result<(), OutputError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    let tmp = temp_path(dir, &format!("{name}{tag}"));
    // Locked from its creation to its rename: no cleaner takes it meanwhile.
    let written = temp::create_locked(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.flush()).map(|()| f))
        .map_err(fail("cannot write", &tmp))
        .and_then(|f| {
            fs::rename(&tmp, path).map_err(fail("cannot rename into", path))?;
            drop(f);
            Ok(())
        });
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// A new temporary file at `path` (named by [`temp_path`]), locked as this
/// process's for as long as the returned file is open (see [`clean_stale`]).
pub fn create_temp(path: &Path) -> io::Result<fs::File> {
    temp::create_locked(path)
}

/// The outputs of one run, held back until all of them are complete.
#[derive(Debug)]
pub struct Staging {
    out: PathBuf,
    dir: PathBuf,
    /// The staging directory, open and locked while the run lives.
    dir_lock: Option<fs::File>,
    report: PathBuf,
    report_tmp: PathBuf,
    /// The report's temporary, open and locked until it is moved.
    report_file: Option<fs::File>,
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
        let dir_lock = temp::create_locked_dir(&dir)
            .map_err(fail("cannot write into output directory", out))?;
        let mut staging = Staging {
            out: out.to_path_buf(),
            dir,
            dir_lock: Some(dir_lock),
            report: report.to_path_buf(),
            report_tmp: temp_path(report_dir, &report_name),
            report_file: None,
            stale,
            done: false,
        };
        // Dropped on failure: the staging directory goes again.
        let file = temp::create_locked(&staging.report_tmp)
            .map_err(fail("cannot write the report", &staging.report_tmp))?;
        staging.report_file = Some(file);
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
        let Some(file) = self.report_file.as_mut() else {
            return Err(fail("cannot write the report", &self.report_tmp)(
                io::Error::other("already committed"),
            ));
        };
        file.set_len(0)
            .and_then(|()| file.write_all(report_json.as_bytes()))
            .and_then(|()| file.flush())
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
        self.report_file = None;
        self.dir_lock = None;
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
