//! Chunks given by reference: a [`FileRange`] names bytes of a file on the
//! coordinator's machine, so that a worker started on that machine reads
//! its chunk itself instead of receiving it through the coordinator's
//! socket (which would read, copy and send every byte of the input once
//! more). [`read_ranges`] turns ranges into the chunk's bytes; the worker
//! and the coordinator (for a worker elsewhere) both call it, so both get
//! the very same bytes.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// `len` bytes of `path` from `offset`, followed by the bytes `suffix`.
/// The file must still have the size and modification time it had when
/// the range was cut, so that a file changed during the run is an error,
/// never silently different data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRange {
    /// The file, as an absolute path.
    pub path: PathBuf,
    /// Where the bytes start.
    pub offset: u64,
    /// How many bytes.
    pub len: u64,
    /// Bytes appended after the range (such as a line feed that a final
    /// line without one gets in the chunk's wire form).
    #[serde(with = "serde_bytes")]
    pub suffix: Vec<u8>,
    /// The file's size when the range was cut.
    pub file_len: u64,
    /// The file's modification time then, in nanoseconds since the epoch.
    pub modified_nanos: u128,
}

/// What identifies a file's contents cheaply: its size and modification time.
pub fn file_identity(path: &Path) -> std::io::Result<(u64, u128)> {
    let meta = std::fs::metadata(path)?;
    Ok((meta.len(), modified_nanos(&meta)))
}

fn modified_nanos(meta: &std::fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

/// Appends the bytes of `ranges` to `out`, in order. Refuses (before
/// reading) to make more than `max_len` bytes in all, and fails with a
/// message naming the file when it cannot be read or has changed.
pub fn read_ranges(ranges: &[FileRange], out: &mut Vec<u8>, max_len: usize) -> Result<(), String> {
    let total = ranges.iter().try_fold(0u64, |sum, r| {
        sum.checked_add(r.len)?.checked_add(r.suffix.len() as u64)
    });
    match total {
        Some(t) if t <= max_len as u64 => out.reserve(t as usize),
        _ => return Err(format!("file ranges of more than {max_len} bytes")),
    }
    for r in ranges {
        read_range(r, out).map_err(|e| format!("input '{}': {e}", r.path.display()))?;
        out.extend_from_slice(&r.suffix);
    }
    Ok(())
}

fn read_range(r: &FileRange, out: &mut Vec<u8>) -> Result<(), String> {
    let file = File::open(&r.path).map_err(|e| format!("cannot open: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot stat: {e}"))?;
    if meta.len() != r.file_len || modified_nanos(&meta) != r.modified_nanos {
        return Err("the file changed during the run".into());
    }
    let end = r.offset.checked_add(r.len).filter(|&e| e <= r.file_len);
    if end.is_none() {
        return Err(format!(
            "range {}+{} lies beyond the end of the file",
            r.offset, r.len
        ));
    }
    // Read into the spare capacity (reserved by the caller): `read_to_end`
    // on a File does not zero it first, which a `resize` would.
    let start = out.len();
    let mut file = &file;
    let read = file
        .seek(SeekFrom::Start(r.offset))
        .and_then(|_| file.take(r.len).read_to_end(out));
    match read {
        Ok(n) if n as u64 == r.len => Ok(()),
        Ok(n) => {
            out.truncate(start);
            Err(format!("read error: only {n} of {} bytes", r.len))
        }
        Err(e) => {
            out.truncate(start);
            Err(format!("read error: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(path: &Path, offset: u64, len: u64, suffix: &[u8]) -> FileRange {
        let (file_len, modified_nanos) = file_identity(path).unwrap();
        FileRange {
            path: path.to_path_buf(),
            offset,
            len,
            suffix: suffix.to_vec(),
            file_len,
            modified_nanos,
        }
    }

    #[test]
    fn reads_ranges_in_order_with_suffixes() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, b"hello\nworld").unwrap();
        std::fs::write(&b, b"xyz\n").unwrap();
        let mut out = b"head:".to_vec();
        let ranges = [
            range(&a, 6, 5, b"\n"),
            range(&b, 0, 4, b""),
            range(&a, 0, 0, b""),
        ];
        read_ranges(&ranges, &mut out, 100).unwrap();
        assert_eq!(out, b"head:world\nxyz\n");
    }

    #[test]
    fn refuses_too_much_changed_files_and_ranges_past_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, b"0123456789").unwrap();
        let mut out = Vec::new();
        let err = read_ranges(&[range(&a, 0, 10, b"\n")], &mut out, 10).unwrap_err();
        assert!(err.contains("more than 10 bytes"), "{err}");
        let err = read_ranges(&[range(&a, 5, 6, b"")], &mut out, 100).unwrap_err();
        assert!(err.contains("beyond the end"), "{err}");
        let stale = range(&a, 0, 4, b"");
        std::fs::write(&a, b"0123456789ab").unwrap();
        let err = read_ranges(&[stale], &mut out, 100).unwrap_err();
        assert!(err.contains("changed during the run"), "{err}");
        assert!(err.contains(&a.display().to_string()), "{err}");
        let err = read_ranges(&[range(&dir.path().join("a"), 0, 1, b"")], &mut out, 100)
            .map(|()| out.clone());
        assert_eq!(err.unwrap(), b"0");
        let mut gone = range(&a, 0, 1, b"");
        gone.path = dir.path().join("missing");
        let err = read_ranges(&[gone], &mut Vec::new(), 100).unwrap_err();
        assert!(err.contains("cannot open"), "{err}");
    }
}
