//! Cutting plain input files into chunks of whole lines given as byte
//! ranges ([`FileRange`]), for multiprocess workers on this machine: the
//! coordinator only finds line ends, and each worker reads its own bytes.
//!
//! The bytes of a chunk's ranges are exactly what
//! [`LineReader::fill_text`](super::input::LineReader::fill_text) writes for
//! the same lines (a final line without LF gets one, as a range suffix), and
//! chunks follow the same limits, so workers cut the same lines either way.

use super::input::{InputError, InputSpec};
use crate::file_range::FileRange;
use std::fs::File;
use std::io;
use std::path::PathBuf;

// This file holds the cutter's state and what its parts share.
mod counted; // `RangeCutter::fill`: every line counted
mod files; // what is known of a file before it is cut; `estimate_lines`
mod uncounted; // `RangeCutter::fill_uncounted`: only the line end at each cut

pub use files::estimate_lines;
use files::{inspect, sample};

/// Bytes read at a time while looking for line ends.
const WINDOW: usize = 1 << 20;
/// A batch's offsets are `u32`, so no line may be longer than this.
const MAX_LINE: u64 = u32::MAX as u64;

/// The mean line length [`estimate_lines`] assumes for larger inputs: the
/// generator's lines average 205 bytes, combined-format logs 150–300.
const ASSUMED_MEAN_LINE: u64 = 200;

/// One input file, as it was when the run started.
struct InputFile {
    name: String,
    path: PathBuf,
    len: u64,
    modified_nanos: u128,
    /// Its [`fingerprint`](crate::file_range::fingerprint).
    fingerprint: u64,
    /// The file's last byte is not a line feed (so its last line gets one).
    unterminated: bool,
}

/// The file being cut.
struct Current {
    index: usize,
    file: File,
    /// Offset of the next line.
    pos: u64,
    /// Lines of this file delivered so far.
    lines: u64,
    /// `window[..window_len]` holds the bytes from `window_off`.
    window_off: u64,
    window_len: usize,
}

/// Cuts plain files into chunks of byte ranges.
pub struct RangeCutter {
    files: Vec<InputFile>,
    next_file: usize,
    current: Option<Current>,
    window: Vec<u8>,
    /// Lines and bytes cut so far (for [`remaining_estimate`](Self::remaining_estimate)),
    /// seeded with a sample of the first file.
    seen_lines: u64,
    seen_bytes: u64,
    /// Chunks for frames of at most `.1` bytes: no chunk may take more
    /// than `.0` bytes (see [`limit_chunks`](Self::limit_chunks)).
    frame: Option<(u64, usize)>,
}

impl RangeCutter {
    /// Chunks must fit frames of `max_frame` bytes: a chunk is never cut
    /// longer than `limit` bytes, and a line longer than that fails the
    /// cut with [`InputError::LineOverFrame`], naming its file and line.
    pub fn limit_chunks(&mut self, limit: usize, max_frame: usize) {
        self.frame = Some((limit as u64, max_frame));
    }

    /// The files it cuts.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.files.iter().map(|f| f.path.clone()).collect()
    }

    /// Whether [`for_inputs`](Self::for_inputs) would give a cutter for
    /// `inputs`: every one a plain regular file, not gzip, whose size can
    /// be trusted (asked before a run commits to ranges; no sample is read).
    pub fn can_cut(inputs: &[InputSpec]) -> bool {
        inputs.iter().all(|spec| match spec {
            InputSpec::File(path) => matches!(inspect(path), Ok(Some(_))),
            InputSpec::Stdin | InputSpec::Follow(_) => false,
        })
    }

    /// A cutter for `inputs` if every one is a plain (not gzip) regular
    /// file that can be opened now and holds the bytes its size says (not
    /// a `/proc` or `/sys` file, see `size_is_trustworthy`); `None`
    /// otherwise (the caller then reads
    /// the inputs as a stream, which reports any error in the usual way).
    ///
    /// An error when a file that opened changed while it was looked at
    /// (it shrank between its size and its fingerprint, say): the stream
    /// reader would open it afresh and count whatever is left, so the run
    /// must fail instead, naming the file.
    pub fn for_inputs(inputs: &[InputSpec]) -> Result<Option<RangeCutter>, InputError> {
        let mut files = Vec::with_capacity(inputs.len());
        for spec in inputs {
            let found = match spec {
                InputSpec::File(path) => inspect(path)?,
                InputSpec::Stdin | InputSpec::Follow(_) => None,
            };
            match found {
                Some(file) => files.push(file),
                None => return Ok(None),
            }
        }
        let (seen_lines, seen_bytes) = files.first().map_or((0, 0), sample);
        Ok(Some(RangeCutter {
            files,
            next_file: 0,
            current: None,
            window: Vec::new(),
            seen_lines,
            seen_bytes,
            frame: None,
        }))
    }

    /// Lines left, estimated from the bytes left and the mean line length
    /// seen so far; `None` before any line was seen.
    pub fn remaining_estimate(&self) -> Option<u64> {
        if self.seen_lines == 0 {
            return None;
        }
        let mut left: u64 = self.files[self.next_file..].iter().map(|f| f.len).sum();
        if let Some(cur) = &self.current {
            left += self.files[cur.index].len - cur.pos;
        }
        let mean = (self.seen_bytes / self.seen_lines).max(1);
        Some(left.div_ceil(mean))
    }

    fn open(&self, index: usize) -> Result<Current, InputError> {
        let f = &self.files[index];
        let file = File::open(&f.path).map_err(|source| InputError::Open {
            input: f.name.clone(),
            source,
        })?;
        Ok(Current {
            index,
            file,
            pos: 0,
            lines: 0,
            window_off: 0,
            window_len: 0,
        })
    }
}

/// Appends the range `start..end` of `f` (if not empty); a range that ends
/// the file's unterminated last line gets the LF the text form adds.
fn push_range(out: &mut Vec<FileRange>, f: &InputFile, start: u64, end: u64) {
    if end == start {
        return;
    }
    let suffix = if end == f.len && f.unterminated {
        b"\n".to_vec()
    } else {
        Vec::new()
    };
    out.push(FileRange {
        path: f.path.clone(),
        offset: start,
        len: end - start,
        suffix,
        file_len: f.len,
        modified_nanos: f.modified_nanos,
        fingerprint: f.fingerprint,
    });
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        match std::os::unix::fs::FileExt::read_at(file, buf, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(not(unix))]
fn read_at(mut file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.read(buf)
}

#[cfg(test)]
mod tests;
