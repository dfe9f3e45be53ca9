//! The `logs` sink: writes `summary.json` and, with `--emit-records`,
//! streams `records.jsonl` and `rejects.txt`. Every file is written under a
//! temporary name (`.NAME.parpipe-PID-TAG.tmp`, locked while written) and renamed into place only when the run
//! succeeds and every file is completely written, with `summary.json` last,
//! so a failed or interrupted run leaves no partial result and no temporary.
//! `report.html` (`report/`) is drawn from the same summary and placed
//! with it, just before it; snapshots do not write it. With a live board
//! the sink also sets the run's traffic on it (`report/traffic.rs`).
//! Snapshots of the summary while the run goes on: `snapshots.rs`.

use super::metrics::LogsPartial;
use super::report::traffic::TrafficTap;
use super::snapshots::Snapshots;
use crate::stage::{Sink, StageError};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Name of the summary file.
pub const SUMMARY_FILE: &str = "summary.json";
/// Name of the per-record file.
pub const RECORDS_FILE: &str = "records.jsonl";
/// Name of the rejected-lines file.
pub const REJECTS_FILE: &str = "rejects.txt";

/// A file being written under a temporary name.
struct PendingFile {
    tmp: PathBuf,
    dest: PathBuf,
    out: BufWriter<File>,
}

impl PendingFile {
    fn create(dir: &Path, name: &str) -> Result<Self, StageError> {
        let dest = dir.join(name);
        let tmp = crate::outputs::temp_path(dir, name);
        let file = crate::outputs::create_temp(&tmp)
            .map_err(|e| StageError::new(format!("cannot create '{}': {e}", tmp.display())))?;
        Ok(PendingFile {
            tmp,
            dest,
            out: BufWriter::with_capacity(1 << 20, file),
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), StageError> {
        self.out
            .write_all(bytes)
            .map_err(|e| StageError::new(format!("cannot write '{}': {e}", self.tmp.display())))
    }

    /// Writes out what is buffered.
    fn flush(&mut self) -> Result<(), StageError> {
        self.out
            .flush()
            .map_err(|e| StageError::new(format!("cannot write '{}': {e}", self.tmp.display())))
    }

    /// Renames the (flushed) file into place; on failure it is removed.
    fn place(self) -> Result<PathBuf, StageError> {
        let PendingFile { tmp, dest, out } = self;
        drop(out.into_parts());
        fs::rename(&tmp, &dest).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            StageError::new(format!(
                "cannot rename '{}' to '{}': {e}",
                tmp.display(),
                dest.display()
            ))
        })?;
        Ok(dest)
    }

    fn discard(self) {
        let PendingFile { tmp, out, .. } = self;
        // Without flushing: what is still buffered is thrown away anyway.
        drop(out.into_parts());
        let _ = fs::remove_file(tmp);
    }
}

/// Places `files` in order, each only once all are completely written; on
/// any failure removes every temporary and the files already placed.
fn place_all(mut files: Vec<PendingFile>) -> Result<(), StageError> {
    if let Some(e) = files.iter_mut().find_map(|f| f.flush().err()) {
        files.into_iter().for_each(PendingFile::discard);
        return Err(e);
    }
    let mut placed = Vec::new();
    let mut files = files.into_iter();
    while let Some(file) = files.next() {
        match file.place() {
            Ok(dest) => placed.push(dest),
            Err(e) => {
                files.for_each(PendingFile::discard);
                for dest in placed {
                    let _ = fs::remove_file(dest);
                }
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Writes the `logs` outputs into a directory.
pub struct LogsSink {
    out_dir: PathBuf,
    emit_records: bool,
    streams: Option<(PendingFile, PendingFile)>,
    /// Snapshots of the summary so far.
    snapshots: Option<Snapshots>,
    /// Fails a run that rejected most lines, before anything is placed.
    reject_check: Option<super::rejection::RejectCheck>,
    /// Sets the traffic so far on the run's live board.
    live: Option<TrafficTap>,
}

impl LogsSink {
    /// A sink writing into `out_dir` (created when needed). Creates nothing yet.
    pub fn new(out_dir: PathBuf, emit_records: bool) -> Self {
        LogsSink {
            out_dir,
            emit_records,
            streams: None,
            snapshots: None,
            reject_check: None,
            live: None,
        }
    }

    /// Also sets the run's traffic so far on `board` (the dashboard's
    /// traffic panels), at a batch at most every
    /// as often as [`TRAFFIC_COST_RATIO`](super::report::traffic::TRAFFIC_COST_RATIO) allows, and at the end.
    pub fn with_live(mut self, board: Option<crate::live::LiveBoard>) -> Self {
        self.live = board.map(TrafficTap::new);
        self
    }

    /// Also rewrites `plan.dir/summary.json` of everything absorbed so far,
    /// atomically, every `plan.every_ms`.
    pub fn with_snapshots(mut self, plan: Option<super::SnapshotPlan>) -> Self {
        self.snapshots = plan.map(Snapshots::new);
        self
    }

    /// Fails the run, writing nothing, when `check` finds most lines rejected.
    pub fn with_reject_check(mut self, check: super::rejection::RejectCheck) -> Self {
        self.reject_check = Some(check);
        self
    }

    fn ensure_dir(&self) -> Result<(), StageError> {
        fs::create_dir_all(&self.out_dir).map_err(|e| {
            StageError::new(format!(
                "cannot create output directory '{}': {e}",
                self.out_dir.display()
            ))
        })
    }
}

impl Sink for LogsSink {
    type Partial = LogsPartial;
    type Output = ();

    fn absorb(&mut self, acc: &mut LogsPartial) -> Result<(), StageError> {
        self.stream(acc)?;
        if let Some(s) = self.snapshots.as_mut() {
            s.offer(acc)?;
        }
        if let Some(tap) = self.live.as_mut().filter(|t| t.due()) {
            // Trailing snapshots hold the totals; `acc` is then empty.
            let held = self
                .snapshots
                .as_ref()
                .and_then(|s| s.with_totals(|p| tap.set(p)));
            if held.is_none() {
                tap.set(acc);
            }
        }
        Ok(())
    }

    fn finish(&mut self, mut result: LogsPartial) -> Result<(), StageError> {
        // The totals a trailing snapshot kept come first in input order.
        if let Some(mut totals) = self.snapshots.as_mut().and_then(Snapshots::stop) {
            if let Err(e) = totals.try_merge(result) {
                self.abort();
                return Err(StageError::new(e));
            }
            result = totals;
        }
        if let Some(tap) = self.live.as_mut() {
            tap.set(&result);
        }
        if let Some(Err(e)) = self.reject_check.as_ref().map(|c| c.verdict(&result)) {
            self.abort();
            return Err(e);
        }
        let prepared = self.ensure_dir().and_then(|()| self.stream(&mut result));
        if let Err(e) = prepared {
            self.abort();
            return Err(e);
        }
        let mut files = Vec::new();
        if let Some((records, rejects)) = self.streams.take() {
            files.extend([records, rejects]);
        }
        let text = result.summary().to_json();
        let rejected: Vec<&[u8]> = result.rejected_lines.iter().map(|l| l.as_slice()).collect();
        let report = super::report::html(&text, &rejected);
        // Last: a summary.json in place means every other output is too.
        for (name, bytes) in [
            (super::report::REPORT_FILE, report.as_bytes()),
            (SUMMARY_FILE, text.as_bytes()),
        ] {
            let written =
                PendingFile::create(&self.out_dir, name).and_then(|mut f| match f.write(bytes) {
                    Ok(()) => Ok(f),
                    Err(e) => {
                        f.discard();
                        Err(e)
                    }
                });
            match written {
                Ok(f) => files.push(f),
                Err(e) => {
                    files.into_iter().for_each(PendingFile::discard);
                    self.abort();
                    return Err(e);
                }
            }
        }
        let placed = place_all(files);
        match placed {
            // The last snapshot stays until the final result replaces it.
            Ok(()) => self.snapshots = None,
            Err(_) => self.abort(),
        }
        placed
    }

    fn abort(&mut self) {
        if let Some(s) = self.snapshots.as_mut() {
            s.retract();
        }
        if let Some((records, rejects)) = self.streams.take() {
            records.discard();
            rejects.discard();
        }
    }
}

impl LogsSink {
    /// Streams the rendered records and rejects out of `acc` (with
    /// `--emit-records`).
    fn stream(&mut self, acc: &mut LogsPartial) -> Result<(), StageError> {
        if !self.emit_records {
            return Ok(());
        }
        if self.streams.is_none() {
            self.ensure_dir()?;
            let records = PendingFile::create(&self.out_dir, RECORDS_FILE)?;
            let rejects = match PendingFile::create(&self.out_dir, REJECTS_FILE) {
                Ok(r) => r,
                Err(e) => {
                    records.discard();
                    return Err(e);
                }
            };
            self.streams = Some((records, rejects));
        }
        if let Some((records, rejects)) = self.streams.as_mut() {
            records.write(&acc.records_out)?;
            rejects.write(&acc.rejects_out)?;
        }
        acc.records_out.clear();
        acc.rejects_out.clear();
        Ok(())
    }
}

impl Drop for LogsSink {
    fn drop(&mut self) {
        self.abort();
    }
}
