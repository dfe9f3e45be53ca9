//! The `logs` sink: writes `summary.json` and, with `--emit-records`,
//! streams `records.jsonl` and `rejects.txt`. Every file is written under a
//! temporary name and renamed into place only when the run succeeds, with
//! `summary.json` last, so a failed or interrupted run leaves no partial result.

use super::metrics::LogsPartial;
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
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let file = File::create(&tmp)
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

    /// Flushes and renames into place.
    fn commit(mut self) -> Result<(), StageError> {
        self.out
            .flush()
            .map_err(|e| StageError::new(format!("cannot write '{}': {e}", self.tmp.display())))?;
        fs::rename(&self.tmp, &self.dest).map_err(|e| {
            StageError::new(format!(
                "cannot rename '{}' to '{}': {e}",
                self.tmp.display(),
                self.dest.display()
            ))
        })
    }

    fn discard(self) {
        let PendingFile { tmp, out, .. } = self;
        drop(out);
        let _ = fs::remove_file(tmp);
    }
}

/// Writes the `logs` outputs into a directory.
pub struct LogsSink {
    out_dir: PathBuf,
    emit_records: bool,
    streams: Option<(PendingFile, PendingFile)>,
}

impl LogsSink {
    /// A sink writing into `out_dir` (created when needed). Creates nothing yet.
    pub fn new(out_dir: PathBuf, emit_records: bool) -> Self {
        LogsSink {
            out_dir,
            emit_records,
            streams: None,
        }
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
        if !self.emit_records {
            return Ok(());
        }
        if self.streams.is_none() {
            self.ensure_dir()?;
            let records = PendingFile::create(&self.out_dir, RECORDS_FILE)?;
            let rejects = PendingFile::create(&self.out_dir, REJECTS_FILE)?;
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

    fn finish(&mut self, mut result: LogsPartial) -> Result<(), StageError> {
        self.ensure_dir()?;
        self.absorb(&mut result)?;
        let mut summary = PendingFile::create(&self.out_dir, SUMMARY_FILE)?;
        if let Err(e) = summary.write(result.summary().to_json().as_bytes()) {
            summary.discard();
            return Err(e);
        }
        if let Some((records, rejects)) = self.streams.take() {
            let done = records.commit().and_then(|()| rejects.commit());
            if let Err(e) = done {
                summary.discard();
                return Err(e);
            }
        }
        summary.commit()
    }

    fn abort(&mut self) {
        if let Some((records, rejects)) = self.streams.take() {
            records.discard();
            rejects.discard();
        }
    }
}

impl Drop for LogsSink {
    fn drop(&mut self) {
        self.abort();
    }
}
