//! [`RangeCutter::fill_uncounted`]: chunks cut by bytes, each moved to
//! the end of the line it falls in by reading a few KiB there, without
//! counting lines; and [`RangeCutter::skip_first_line`] (a header line).

use super::super::input::InputError;
use super::{push_range, read_at, InputFile, RangeCutter, ASSUMED_MEAN_LINE, WINDOW};
use crate::file_range::FileRange;
use crate::sources::split;
use std::fs::File;
use std::io;

impl RangeCutter {
    /// Appends to `out` the ranges of the next chunk of whole lines, about
    /// `about_lines` lines' worth of bytes (at the mean line length of the
    /// sample) and at most about `max_bytes`, without counting its lines:
    /// the cut is moved to the end of the line it falls in by reading a
    /// few KiB there. Returns false when every input is exhausted.
    ///
    /// So the coordinator reads a few KiB per chunk instead of every byte;
    /// each worker counts its chunk's lines.
    pub fn fill_uncounted(
        &mut self,
        out: &mut Vec<FileRange>,
        about_lines: usize,
        max_bytes: usize,
    ) -> Result<bool, InputError> {
        let mean = self
            .seen_bytes
            .checked_div(self.seen_lines)
            .map_or(ASSUMED_MEAN_LINE, |m| m.max(1));
        let target = (about_lines.max(1) as u64)
            .saturating_mul(mean)
            .min(max_bytes as u64)
            .max(1);
        let mut taken = 0u64;
        while taken < target {
            let Some(cur) = self.current.as_mut() else {
                if self.next_file == self.files.len() {
                    break;
                }
                self.current = Some(self.open(self.next_file)?);
                self.next_file += 1;
                continue;
            };
            let f = &self.files[cur.index];
            let start = cur.pos;
            let want = target - taken;
            let end = if f.len - start <= want {
                f.len
            } else {
                let at = start + want - 1;
                let read_error = |source| InputError::ReadAt {
                    input: f.name.clone(),
                    offset: at,
                    source,
                };
                // With a limit, no further than a chunk may reach: a line
                // of GiBs is not read through to learn that it is too long.
                let until = self
                    .frame
                    .map_or(f.len, |(limit, _)| start + limit.saturating_sub(taken));
                let end = line_end_after(&cur.file, f, at, until).map_err(read_error)?;
                match (end, self.frame) {
                    (Some(end), _) => end,
                    (None, None) => f.len,
                    (None, Some((_, max_frame))) => {
                        // The line at the cut runs past what a chunk may
                        // take: the chunk ends before it, and a line that
                        // would be alone in its chunk is the error.
                        match last_lf_before(&cur.file, start, at).map_err(read_error)? {
                            Some(lf) => lf + 1,
                            None if taken > 0 => start,
                            None => {
                                let before = lines_before(&cur.file, start).map_err(read_error)?;
                                return Err(InputError::LineOverFrame {
                                    input: f.name.clone(),
                                    line: before + 1,
                                    max_frame,
                                });
                            }
                        }
                    }
                }
            };
            if end == start && start < f.len {
                // Ended before a line too long to share a chunk.
                break;
            }
            push_range(out, f, start, end);
            taken += end - start;
            cur.pos = end;
            if end == f.len {
                self.current = None;
            }
        }
        Ok(taken > 0)
    }

    /// Moves past the first line of the first file (a header that is not
    /// a record, as a CSV file's): the chunks then start at the second
    /// line, numbered 1. Call it before the first chunk is cut.
    pub(crate) fn skip_first_line(&mut self) -> Result<(), InputError> {
        if self.current.is_some() || self.next_file != 0 || self.files.is_empty() {
            return Ok(());
        }
        let mut cur = self.open(0)?;
        self.next_file = 1;
        let f = &self.files[0];
        let end = line_end_after(&cur.file, f, 0, f.len).map_err(|source| InputError::ReadAt {
            input: f.name.clone(),
            offset: 0,
            source,
        })?;
        // Searched to the file's end, which ends the header when no LF does.
        cur.pos = end.unwrap_or(f.len);
        cur.lines = 1;
        self.current = Some(cur);
        Ok(())
    }
}

/// Bytes read at a time by [`line_end_after`]: most lines are shorter.
const PROBE: usize = 4 << 10;

/// The offset just after the first LF at or after `at` in `f` and
/// before `until`, reading [`PROBE`] bytes at a time: `Some(f.len)` when
/// none follows up to the file's end (which `until` reaches), `None` when
/// none comes before `until`.
fn line_end_after(file: &File, f: &InputFile, mut at: u64, until: u64) -> io::Result<Option<u64>> {
    let mut probe = [0u8; PROBE];
    let stop = until.min(f.len);
    while at < stop {
        let want = (stop - at).min(PROBE as u64) as usize;
        let got = read_at(file, &mut probe[..want], at)?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank during the run",
            ));
        }
        if let Some(end) = split::first_end(&probe[..got]) {
            return Ok(Some(at + end as u64));
        }
        at += got as u64;
    }
    Ok((stop == f.len).then_some(f.len))
}

/// The offset of the last LF in `from..to` of `file`, reading [`PROBE`]
/// bytes at a time backwards from `to`.
fn last_lf_before(file: &File, from: u64, mut to: u64) -> io::Result<Option<u64>> {
    let mut probe = [0u8; PROBE];
    while to > from {
        let want = (to - from).min(PROBE as u64) as usize;
        let at = to - want as u64;
        let mut got = 0;
        while got < want {
            match read_at(file, &mut probe[got..want], at + got as u64)? {
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file shrank during the run",
                    ))
                }
                k => got += k,
            }
        }
        if let Some(end) = split::last_end(&probe[..want]) {
            return Ok(Some(at + end as u64 - 1));
        }
        to = at;
    }
    Ok(None)
}

/// The lines (LFs) in the first `end` bytes of `file`: the number of the
/// line at `end`, less one, for an error that names it (the cutter by
/// bytes does not count lines as it goes).
fn lines_before(file: &File, end: u64) -> io::Result<u64> {
    let mut window = vec![0u8; WINDOW];
    let (mut at, mut lines) = (0u64, 0u64);
    while at < end {
        let want = (end - at).min(WINDOW as u64) as usize;
        let got = read_at(file, &mut window[..want], at)?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank during the run",
            ));
        }
        lines += split::count(&window[..got]) as u64;
        at += got as u64;
    }
    Ok(lines)
}
