//! [`RangeCutter::fill`]: chunks of counted lines, cut the way
//! [`LineReader::fill_text`](super::super::input::LineReader::fill_text)
//! cuts them, every byte read through a window of the file.

use super::super::input::InputError;
use super::{push_range, read_at, Current, InputFile, RangeCutter, MAX_LINE, WINDOW};
use crate::file_range::FileRange;
use crate::sources::split;
use std::io;

impl RangeCutter {
    /// Appends to `out` the ranges of up to `max_lines` lines (at least one,
    /// if any remain) of at most about `max_bytes` bytes of text, with the
    /// limits of [`LineReader::fill_text`](super::super::input::LineReader::fill_text).
    /// Returns the number of lines; Ok(0) when every input is exhausted.
    pub fn fill(
        &mut self,
        out: &mut Vec<FileRange>,
        max_lines: usize,
        max_bytes: usize,
    ) -> Result<usize, InputError> {
        let max_lines = max_lines.max(1);
        let cap = (max_bytes as u64).min(MAX_LINE);
        let mut n = 0;
        let mut text = 0u64;
        let mut seg_start = self.current.as_ref().map_or(0, |c| c.pos);
        while n < max_lines {
            let Some(cur) = self.current.as_mut() else {
                if self.next_file == self.files.len() {
                    break;
                }
                self.current = Some(self.open(self.next_file)?);
                self.next_file += 1;
                seg_start = 0;
                continue;
            };
            let f = &self.files[cur.index];
            if cur.pos == f.len {
                push_range(out, f, seg_start, cur.pos);
                self.current = None;
                continue;
            }
            if n > 0 {
                // Whole lines in the window, counted at once.
                let got = take_whole_lines(cur, &self.window, max_lines - n, cap - text.min(cap));
                if got.0 > 0 {
                    n += got.0;
                    text += got.1;
                    continue;
                }
            }
            // One line, which may span windows or lack its LF.
            let lf = find_lf(cur, f, &mut self.window).map_err(|e| read_error(f, cur, e))?;
            let (end, next) = match lf {
                Some(p) => (p, p + 1),
                None => (f.len, f.len),
            };
            let raw_len = end - cur.pos;
            let last = match raw_len {
                0 => None,
                _ => Some(byte_at(cur, f, &mut self.window, end - 1)?),
            };
            let len = split::content_len(usize::try_from(raw_len).unwrap_or(usize::MAX), last);
            if len as u64 > MAX_LINE {
                return Err(InputError::LineTooLong {
                    input: f.name.clone(),
                    line: cur.lines + 1,
                });
            }
            if n > 0 && text + raw_len + 1 > cap {
                break;
            }
            // As text, a line takes its bytes and a LF.
            over_frame(self.frame, f, cur.lines + 1, raw_len + 1)?;
            cur.pos = next;
            cur.lines += 1;
            n += 1;
            text += raw_len + 1;
        }
        if let Some(cur) = &self.current {
            push_range(out, &self.files[cur.index], seg_start, cur.pos);
        }
        self.seen_lines += n as u64;
        self.seen_bytes += text;
        Ok(n)
    }
}

/// The error for line `line` of `f`, if `len` bytes are more than a chunk
/// may take (see [`RangeCutter::limit_chunks`]).
fn over_frame(
    frame: Option<(u64, usize)>,
    f: &InputFile,
    line: u64,
    len: u64,
) -> Result<(), InputError> {
    match frame {
        Some((limit, max_frame)) if len > limit => Err(InputError::LineOverFrame {
            input: f.name.clone(),
            line,
            max_frame,
        }),
        _ => Ok(()),
    }
}

/// Takes up to `room` whole lines (LF included) that lie in the window from
/// `cur.pos`, within `cap` bytes; returns the lines and bytes taken. The
/// coordinator touches every byte of a file once
/// ([`split::whole_lines`] counts LFs block by block), instead of counting
/// the rest of its window again for every chunk.
fn take_whole_lines(cur: &mut Current, window: &[u8], room: usize, cap: u64) -> (usize, u64) {
    let Some(from) = cur.pos.checked_sub(cur.window_off) else {
        return (0, 0);
    };
    let from = from as usize;
    if from >= cur.window_len || room == 0 {
        return (0, 0);
    }
    let fits = (cur.window_len - from).min(cap.min(usize::MAX as u64) as usize);
    let (bytes, taken) = split::whole_lines(&window[from..from + fits], room);
    let bytes = bytes as u64;
    cur.pos += bytes;
    cur.lines += taken as u64;
    (taken, bytes)
}

/// Offset of the first LF at or after `cur.pos`, reading windows as needed.
fn find_lf(cur: &mut Current, f: &InputFile, window: &mut Vec<u8>) -> io::Result<Option<u64>> {
    let mut at = cur.pos;
    while at < f.len {
        load(cur, f, window, at)?;
        let from = (at - cur.window_off) as usize;
        if let Some(p) = split::first_lf(&window[from..cur.window_len]) {
            return Ok(Some(at + p as u64));
        }
        at = cur.window_off + cur.window_len as u64;
    }
    Ok(None)
}

/// The byte at `offset`.
fn byte_at(
    cur: &mut Current,
    f: &InputFile,
    window: &mut Vec<u8>,
    offset: u64,
) -> Result<u8, InputError> {
    load(cur, f, window, offset).map_err(|e| read_error(f, cur, e))?;
    Ok(window[(offset - cur.window_off) as usize])
}

/// Makes the window hold `offset` (which is below the file's length).
fn load(cur: &mut Current, f: &InputFile, window: &mut Vec<u8>, offset: u64) -> io::Result<()> {
    let end = cur.window_off + cur.window_len as u64;
    if offset >= cur.window_off && offset < end {
        return Ok(());
    }
    if window.len() != WINDOW {
        window.resize(WINDOW, 0);
    }
    let want = (f.len - offset).min(WINDOW as u64) as usize;
    let mut got = 0;
    while got < want {
        match read_at(&cur.file, &mut window[got..want], offset + got as u64)? {
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file shrank during the run",
                ))
            }
            k => got += k,
        }
    }
    cur.window_off = offset;
    cur.window_len = want;
    Ok(())
}

fn read_error(f: &InputFile, cur: &Current, source: io::Error) -> InputError {
    InputError::Read {
        input: f.name.clone(),
        line: cur.lines + 1,
        what: "read error",
        source,
    }
}
