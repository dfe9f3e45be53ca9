//! Cutting plain input files into chunks of whole lines given as byte
//! ranges ([`FileRange`]), for multiprocess workers on this machine: the
//! coordinator only finds line ends, and each worker reads its own bytes.
//!
//! The bytes of a chunk's ranges are exactly what
//! [`LineReader::fill_text`](super::input::LineReader::fill_text) writes for
//! the same lines (a final line without LF gets one, as a range suffix), and
//! chunks follow the same limits, so workers cut the same lines either way.

use super::input::{InputError, InputSpec};
use crate::file_range::{file_identity, FileRange};
use crate::sources::split;
use std::fs::File;
use std::io;
use std::path::PathBuf;

/// Bytes read at a time while looking for line ends.
const WINDOW: usize = 1 << 20;
/// A batch's offsets are `u32`, so no line may be longer than this.
const MAX_LINE: u64 = u32::MAX as u64;

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

    /// Appends to `out` the ranges of up to `max_lines` lines (at least one,
    /// if any remain) of at most about `max_bytes` bytes of text, with the
    /// limits of [`LineReader::fill_text`](super::input::LineReader::fill_text).
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

/// Inputs up to this many bytes in all are sampled by [`estimate_lines`].
const SAMPLE_UP_TO: u64 = 4 << 20;

/// The mean line length [`estimate_lines`] assumes for larger inputs: the
/// generator's lines average 205 bytes, combined-format logs 150–300.
const ASSUMED_MEAN_LINE: u64 = 200;

/// Lines in `inputs`, estimated before the run reads them: their bytes
/// over a mean line length. `None` unless every input is a regular file
/// (not standard input) that exists now.
///
/// Up to 4 MiB in all (`SAMPLE_UP_TO`), the mean is that of the first
/// 64 KiB of the first file, and a file starting with the gzip magic gives
/// `None` (its lines cannot be told from its size). Larger inputs are not
/// opened at all: a `stat` each, 200 bytes a line (`ASSUMED_MEAN_LINE`),
/// and a name ending in `.gz` gives `None`. A file that says 0 bytes but
/// reads some (a `/proc` file) gives `None` too. The only use of the estimate is to tell a
/// small input from a large one, and a large input is then read only by
/// the run itself, from its start, as it would be without the estimate.
pub fn estimate_lines(inputs: &[InputSpec]) -> Option<u64> {
    let mut total = 0u64;
    let mut paths = Vec::with_capacity(inputs.len());
    for spec in inputs {
        let InputSpec::File(path) = spec else {
            return None;
        };
        let meta = std::fs::metadata(path).ok()?;
        if !meta.is_file() {
            return None;
        }
        if meta.len() == 0 {
            // Empty, or a pseudo-file (`/proc`) that says 0 bytes and has
            // lines: its lines cannot be told from its size.
            let file = File::open(path).ok()?;
            if !size_is_trustworthy(&file, 0).ok()? {
                return None;
            }
        }
        total = total.saturating_add(meta.len());
        paths.push(path);
    }
    if total > SAMPLE_UP_TO {
        let gz = |p: &&PathBuf| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
        return (!paths.iter().any(gz)).then(|| total.div_ceil(ASSUMED_MEAN_LINE));
    }
    let mut sample = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let file = File::open(path).ok()?;
        let mut head = vec![0; if i == 0 { 64 << 10 } else { 2 }];
        let got = read_at(&file, &mut head, 0).ok()?;
        if got >= 2 && head[..2] == [0x1f, 0x8b] {
            return None;
        }
        if i == 0 {
            head.truncate(got);
            sample = head;
        }
    }
    let lines = split::count(&sample) as u64;
    let last = split::last_end(&sample)? as u64;
    Some(total.div_ceil((last / lines.max(1)).max(1)))
}

/// The file at `path` if it is a regular file whose first bytes are not
/// the gzip magic; `Ok(None)` if it is something else or cannot be opened
/// (the stream reader then reports that, in its usual words). A file that
/// opened but changed while it was inspected is an error.
fn inspect(path: &std::path::Path) -> Result<Option<InputFile>, InputError> {
    let Ok(canonical) = std::fs::canonicalize(path) else {
        return Ok(None);
    };
    // Asked before opening: opening a FIFO waits for its writer, and
    // closing it again would cost the stream reader the bytes (or the
    // writer itself, by SIGPIPE).
    if !std::fs::metadata(&canonical).is_ok_and(|m| m.is_file()) {
        return Ok(None);
    }
    let Ok(file) = File::open(&canonical) else {
        return Ok(None);
    };
    let name = canonical.display().to_string();
    let changed = |source: io::Error| InputError::Read {
        input: name.clone(),
        line: 1,
        what: "read error",
        source: io::Error::new(
            source.kind(),
            format!("the file changed during the run (while it was inspected: {source})"),
        ),
    };
    let meta = file.metadata().map_err(changed)?;
    if !meta.is_file() {
        return Ok(None);
    }
    let (len, modified_nanos) = file_identity(&canonical).map_err(changed)?;
    if len != meta.len() {
        return Err(changed(io::Error::other(format!(
            "{} bytes, then {len}",
            meta.len()
        ))));
    }
    if !size_is_trustworthy(&file, len).map_err(changed)? {
        return Ok(None);
    }
    let mut head = [0u8; 2];
    let got = read_at(&file, &mut head, 0).map_err(changed)?;
    if got == 2 && head == [0x1f, 0x8b] {
        return Ok(None);
    }
    let mut last = [0u8; 1];
    let unterminated =
        len > 0 && read_at(&file, &mut last, len - 1).map_err(changed)? == 1 && last[0] != b'\n';
    let fingerprint = crate::file_range::fingerprint(&file, len).map_err(changed)?;
    let path = canonical;
    Ok(Some(InputFile {
        name: path.display().to_string(),
        path,
        len,
        modified_nanos,
        fingerprint,
        unterminated,
    }))
}

/// Whether a regular file of `len` bytes (as `stat` says) holds exactly
/// that many: its last byte reads, and nothing reads past it. Files of
/// the kernel's pseudo-filesystems do not (`/proc` ones say 0 bytes and
/// have lines; `/sys` ones say 4096 and have fewer), nor does a file being
/// appended to: byte ranges cut from such a size would read other lines
/// than the stream reader, so they are read as a stream.
fn size_is_trustworthy(file: &File, len: u64) -> io::Result<bool> {
    let mut probe = [0u8; 1];
    if len > 0 && read_at(file, &mut probe, len - 1)? != 1 {
        return Ok(false);
    }
    Ok(read_at(file, &mut probe, len)? == 0)
}

/// Lines and bytes in the first 64 KiB of `f` (a sample of its line length).
fn sample(f: &InputFile) -> (u64, u64) {
    let mut head = vec![0; (64 << 10).min(f.len as usize)];
    let got = File::open(&f.path).and_then(|file| read_at(&file, &mut head, 0));
    let head = &head[..got.unwrap_or(0)];
    let lines = split::count(head) as u64;
    match split::last_end(head) {
        Some(end) if lines > 0 => (lines, end as u64),
        _ => (0, 0),
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
