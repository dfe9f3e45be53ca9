//! Chunks given by reference: a [`FileRange`] names bytes of a file the
//! coordinator reads, so that a worker that sees the same file at the same
//! path (on this machine, or on storage every node mounts) reads its chunk
//! itself instead of receiving it through the coordinator's socket (which
//! would read, copy and send every byte of the input once more).
//! [`read_ranges`] turns ranges into the chunk's bytes, through the block
//! reader a worker reads its chunks with; the worker and the coordinator
//! (for a worker that cannot read them) thus get the very same bytes. [`AllowedRoots`] is the worker's side of the
//! trust: it reads only files that resolve to a path under a directory it
//! was allowed (`parpipe worker --allow-read DIR`).

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
    /// [`fingerprint`] of the file then: another machine's copy with the
    /// same size and time but other contents is caught before it is read.
    pub fingerprint: u64,
}

/// Bytes hashed at each end of a file by [`fingerprint`].
pub const FINGERPRINT_EDGE: u64 = 4096;

/// A short fingerprint of an open file of `len` bytes: the first 8 bytes
/// (big-endian) of SHA-256 over its length, its first and its last
/// [`FINGERPRINT_EDGE`] bytes. Cheap (8 KiB read), and it catches a file
/// replaced by one of the same size and time, or a different file at the
/// same path on another machine.
pub fn fingerprint(file: &File, len: u64) -> std::io::Result<u64> {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    hash.update(len.to_be_bytes());
    let head = len.min(FINGERPRINT_EDGE);
    let tail_from = len.saturating_sub(FINGERPRINT_EDGE).max(head);
    let mut buf = Vec::with_capacity(2 * FINGERPRINT_EDGE as usize);
    let mut f = file;
    f.seek(SeekFrom::Start(0))?;
    f.take(head).read_to_end(&mut buf)?;
    f.seek(SeekFrom::Start(tail_from))?;
    f.take(len - tail_from).read_to_end(&mut buf)?;
    if buf.len() as u64 != head + (len - tail_from) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the file shrank during the run (it is shorter than its size)",
        ));
    }
    hash.update(&buf);
    let digest = hash.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Ok(u64::from_be_bytes(first))
}

/// The directories a worker may read chunks from, canonicalized (so that
/// `..` and symbolic links are resolved once, when the worker starts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedRoots(Vec<PathBuf>);

impl AllowedRoots {
    /// Canonicalizes each directory; one that does not exist or is not a
    /// directory is an error naming it.
    pub fn new<P: AsRef<Path>>(dirs: &[P]) -> Result<Self, String> {
        let mut roots = Vec::with_capacity(dirs.len());
        for dir in dirs {
            let dir = dir.as_ref();
            let canon = std::fs::canonicalize(dir)
                .map_err(|e| format!("--allow-read '{}': {e}", dir.display()))?;
            if !canon.is_dir() {
                return Err(format!("--allow-read '{}': not a directory", dir.display()));
            }
            roots.push(canon);
        }
        Ok(AllowedRoots(roots))
    }

    /// No directory at all: the worker reads no file.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The roots as announced in the hello (a root that is not UTF-8
    /// cannot be sent: it is left out, and its files come as bytes).
    pub(crate) fn announced(&self) -> Vec<String> {
        self.0
            .iter()
            .filter_map(|p| p.to_str().map(str::to_string))
            .collect()
    }

    /// Whether `path` names a file inside one of the roots as given, with
    /// no `..` and no symbolic link on the way: the path must be absolute,
    /// lie under a root, and be its own canonical form.
    pub fn check(&self, path: &Path) -> Result<(), String> {
        use std::path::Component;
        if !path.is_absolute() {
            return Err("not an absolute path".into());
        }
        if path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        {
            return Err("the path holds '..' or '.'".into());
        }
        if !self.0.iter().any(|root| path.starts_with(root)) {
            return Err("outside the directories this worker may read (--allow-read)".into());
        }
        let canon = std::fs::canonicalize(path).map_err(|e| format!("cannot resolve: {e}"))?;
        if canon != path {
            return Err(format!(
                "resolves to '{}' through a symbolic link",
                canon.display()
            ));
        }
        Ok(())
    }

    /// Whether every range lies under some root, as the coordinator judges
    /// it from a worker's announced roots (its own path, not resolved;
    /// only absolute roots count, component by component: `/data` does
    /// not hold `/database`).
    pub(crate) fn covers(announced: &[String], ranges: &[FileRange]) -> bool {
        !ranges.is_empty()
            && ranges.iter().all(|r| {
                announced.iter().any(|root| {
                    Path::new(root).is_absolute()
                        && r.path.is_absolute()
                        && r.path.starts_with(root)
                })
            })
    }
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

/// Why ranges could not be read: the input it was about, when the
/// failure is one file's (refused by the roots, cannot be opened, changed,
/// a read error), and what went wrong. A worker that gets one naming an
/// input tells the coordinator, which then sends that input's bytes
/// itself; one naming none (the ranges are too large) is the chunk's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RangeError {
    /// The file that could not be read, when it is one file's failure.
    pub input: Option<PathBuf>,
    /// What went wrong (the operating system's error among it).
    pub reason: String,
}

impl RangeError {
    fn of(r: &FileRange, reason: String) -> Self {
        RangeError {
            input: Some(r.path.clone()),
            reason,
        }
    }
}

impl std::fmt::Display for RangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.input {
            Some(input) => write!(f, "input '{}': {}", input.display(), self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for RangeError {}

impl From<String> for RangeError {
    fn from(reason: String) -> Self {
        RangeError {
            input: None,
            reason,
        }
    }
}

/// Appends the bytes of `ranges` to `out`, in order. Refuses (before
/// reading) to make more than `max_len` bytes in all, and fails with a
/// message naming the file when it cannot be read or has changed (size,
/// modification time or [`fingerprint`]).
pub fn read_ranges(ranges: &[FileRange], out: &mut Vec<u8>, max_len: usize) -> Result<(), String> {
    let total = ranges_total(ranges, max_len)?;
    out.reserve(total);
    let mut reader = RangeReader::unchecked(ranges);
    while reader
        .read_into(out, usize::MAX)
        .map_err(|e| e.to_string())?
        > 0
    {}
    Ok(())
}

/// The bytes `ranges` make in all, if at most `max_len`.
fn ranges_total(ranges: &[FileRange], max_len: usize) -> Result<usize, String> {
    let total = ranges.iter().try_fold(0u64, |sum, r| {
        sum.checked_add(r.len)?.checked_add(r.suffix.len() as u64)
    });
    match total {
        Some(t) if t <= max_len as u64 => Ok(t as usize),
        _ => Err(format!("file ranges of more than {max_len} bytes")),
    }
}

/// Reads a chunk's file ranges in order, a block at a time, with the checks
/// of [`read_ranges`]: a worker processes a large chunk block by block, with
/// the memory (and cache) footprint of a block instead of the chunk's.
pub(crate) struct RangeReader<'a> {
    ranges: &'a [FileRange],
    /// The next range to open.
    next: usize,
    /// The range being read: its file, its index and the bytes left of it.
    open: Option<(File, usize, u64)>,
}

impl<'a> RangeReader<'a> {
    /// A reader of `ranges` for a worker: every path must first pass
    /// `roots` ([`AllowedRoots::check`]) and the ranges must make at most
    /// `max_len` bytes in all, else nothing is read.
    pub fn within(
        roots: &AllowedRoots,
        ranges: &'a [FileRange],
        max_len: usize,
    ) -> Result<Self, RangeError> {
        for r in ranges {
            roots
                .check(&r.path)
                .map_err(|e| RangeError::of(r, format!("refused: {e}")))?;
        }
        ranges_total(ranges, max_len)?;
        Ok(Self::unchecked(ranges))
    }

    /// How many ranges this reader reads.
    pub fn ranges(&self) -> usize {
        self.ranges.len()
    }

    /// A reader of ranges this process cut itself: no roots to check, and
    /// no limit but the files' own sizes.
    pub(crate) fn own(ranges: &'a [FileRange]) -> Self {
        Self::unchecked(ranges)
    }

    fn unchecked(ranges: &'a [FileRange]) -> Self {
        RangeReader {
            ranges,
            next: 0,
            open: None,
        }
    }

    /// Opens the next range, checking its file; false when none is left.
    fn open_next(&mut self) -> Result<bool, RangeError> {
        let Some(r) = self.ranges.get(self.next) else {
            return Ok(false);
        };
        let file = open_range(r).map_err(|e| RangeError::of(r, e))?;
        self.open = Some((file, self.next, r.len));
        self.next += 1;
        Ok(true)
    }

    /// Appends the next bytes, at most about `max` (a range's suffix may
    /// come on top), to `out`; returns how many, 0 only at the end. Each
    /// file is checked as it is opened; an error names the file.
    pub fn read_into(&mut self, out: &mut Vec<u8>, max: usize) -> Result<usize, RangeError> {
        let before = out.len();
        while out.len() - before < max.max(1) {
            if self.open.is_none() && !self.open_next()? {
                break;
            }
            let Some((file, i, left)) = &mut self.open else {
                break;
            };
            let r = &self.ranges[*i];
            let want = (*left).min((max.max(1) - (out.len() - before)) as u64);
            if want > 0 {
                read_exact_into(file, want, out).map_err(|e| {
                    let e = match e {
                        Short(n) => format!(
                            "the file changed during the run (or is another file): only {} of {} bytes could be read",
                            r.len - *left + n,
                            r.len
                        ),
                        Io(e) => format!("read error: {e}"),
                    };
                    RangeError::of(r, e)
                })?;
                *left -= want;
            }
            if *left == 0 {
                out.extend_from_slice(&r.suffix);
                self.open = None;
            }
        }
        Ok(out.len() - before)
    }

    /// Fills `dst` with the next bytes, as far as they go, one `read` per
    /// stretch of a file (so that a worker's or a lane's block is one
    /// system call, into a buffer it reuses); returns how many, 0 only at
    /// the end. Each file is checked as it is opened; an error names the
    /// file.
    pub fn read_to(&mut self, dst: &mut [u8]) -> Result<usize, RangeError> {
        let mut filled = 0;
        while filled < dst.len() {
            if self.open.is_none() && !self.open_next()? {
                break;
            }
            let Some((file, i, left)) = &mut self.open else {
                break;
            };
            let r = &self.ranges[*i];
            if *left > 0 {
                let want = (*left).min((dst.len() - filled) as u64) as usize;
                let n = match file.read(&mut dst[filled..filled + want]) {
                    Ok(0) => Err(format!(
                        "the file changed during the run (or is another file): only {} of {} bytes could be read",
                        r.len - *left,
                        r.len
                    )),
                    Ok(n) => Ok(n),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(0),
                    Err(e) => Err(format!("read error: {e}")),
                }
                .map_err(|e| RangeError::of(r, e))?;
                filled += n;
                *left -= n as u64;
                continue;
            }
            if dst.len() - filled < r.suffix.len() {
                break; // the suffix goes whole into the next call
            }
            dst[filled..filled + r.suffix.len()].copy_from_slice(&r.suffix);
            filled += r.suffix.len();
            self.open = None;
        }
        Ok(filled)
    }
}

/// Why a read of a range fell short.
enum ReadFailure {
    /// The file ended after this many of the bytes wanted.
    Short(u64),
    Io(std::io::Error),
}
use ReadFailure::{Io, Short};

/// Appends exactly `len` bytes of `file` (from where it stands) to `out`.
fn read_exact_into(file: &mut File, len: u64, out: &mut Vec<u8>) -> Result<(), ReadFailure> {
    let start = out.len();
    // Read into the spare capacity: `read_to_end` on a File does not zero
    // it first, which a `resize` would.
    out.reserve(usize::try_from(len).map_err(|e| Io(std::io::Error::other(e)))?);
    match file.take(len).read_to_end(out) {
        Ok(n) if n as u64 == len => Ok(()),
        Ok(n) => {
            out.truncate(start);
            Err(Short(n as u64))
        }
        Err(e) => {
            out.truncate(start);
            Err(Io(e))
        }
    }
}

/// Checks that the file of `r` is still the one the range was cut from
/// (size, modification time, [`fingerprint`]): a run that read it by
/// ranges asks again at its end, so that a file changed while it was read
/// fails the run however fast the reading went. The error names the file.
pub(crate) fn check_unchanged(r: &FileRange) -> Result<(), String> {
    open_range(r)
        .map(drop)
        .map_err(|e| format!("input '{}': {e}", r.path.display()))
}

/// Opens the file of `r`, checks that it is the file the range was cut
/// from, and seeks to the range.
fn open_range(r: &FileRange) -> Result<File, String> {
    let mut file = File::open(&r.path).map_err(|e| format!("cannot open: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot stat: {e}"))?;
    if meta.len() != r.file_len {
        return Err(format!(
            "the file changed during the run (or is another file): {} bytes, expected {}",
            meta.len(),
            r.file_len
        ));
    }
    if modified_nanos(&meta) != r.modified_nanos {
        return Err(
            "the file changed during the run (or is another file): its modification time differs"
                .into(),
        );
    }
    if fingerprint(&file, r.file_len).map_err(|e| format!("read error: {e}"))? != r.fingerprint {
        return Err(
            "the file changed during the run (or is another file): its fingerprint (first and last 4 KiB) differs"
                .into(),
        );
    }
    let end = r.offset.checked_add(r.len).filter(|&e| e <= r.file_len);
    if end.is_none() {
        return Err(format!(
            "range {}+{} lies beyond the end of the file",
            r.offset, r.len
        ));
    }
    file.seek(SeekFrom::Start(r.offset))
        .map_err(|e| format!("read error: {e}"))?;
    Ok(file)
}

#[cfg(test)]
mod tests;
