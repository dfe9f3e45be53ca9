//! Reading the `logs` workload's input (shared/WORKLOAD.md §1, "Input"):
//! files or standard input, plain or gzip (detected by its magic bytes), cut
//! into lines and packed into [`LineBatch`]es with line numbers that run on
//! across inputs. Every failure becomes an [`InputError`] naming the input,
//! never a panic.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::PathBuf;

use memchr::memchr;
use serde::{Deserialize, Serialize};

use super::batch::LineBatch;
use super::follow::{self, FollowReader};
use super::watch::Watch;

/// Size of the read buffer (and of the gzip decoder's input buffer): large
/// enough that the per-read cost vanishes next to the per-line work.
const BUF_SIZE: usize = 256 * 1024;

/// A batch's offsets are `u32`, so no line may be longer than this.
const MAX_LINE: usize = u32::MAX as usize;

/// Where lines come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputSpec {
    /// Standard input (`-` on the command line).
    Stdin,
    /// A file, plain or gzip-compressed.
    File(PathBuf),
    /// A plain-text file read as it grows, as `tail -F` does (see
    /// [`super::follow`]): it ends only when
    /// [`super::follow::stop_following`] is called.
    Follow(PathBuf),
}

impl InputSpec {
    /// Reads a command-line argument: `-` is standard input, anything else a path.
    pub fn parse(arg: &str) -> InputSpec {
        if arg == "-" {
            InputSpec::Stdin
        } else {
            InputSpec::File(PathBuf::from(arg))
        }
    }

    /// How messages name the input: `<stdin>` or the path as given.
    pub fn display_name(&self) -> String {
        match self {
            InputSpec::Stdin => "<stdin>".to_string(),
            InputSpec::File(p) | InputSpec::Follow(p) => p.display().to_string(),
        }
    }
}

/// An input that could not be read. The message names the input and, once
/// reading has started, the line reached, counted within that input (1-based)
/// so that the user can find it in the file.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The input could not be opened (missing, no permission, ...).
    #[error("input '{input}': cannot open: {source}")]
    Open {
        /// The input's display name.
        input: String,
        /// What the operating system said.
        source: io::Error,
    },
    /// The path names a directory.
    #[error("input '{input}': is a directory, expected a file of log lines")]
    IsDirectory {
        /// The input's display name.
        input: String,
    },
    /// Reading (or decompressing) failed part-way.
    #[error("input '{input}' line {line}: {what}: {source}")]
    Read {
        /// The input's display name.
        input: String,
        /// The line being read when it failed, counted within this input.
        line: u64,
        /// `corrupt gzip data` or `read error`.
        what: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// A line too long for a batch's `u32` offsets.
    #[error("input '{input}' line {line}: line longer than 4 GiB")]
    LineTooLong {
        /// The input's display name.
        input: String,
        /// The line, counted within this input.
        line: u64,
    },
}

/// Reads lines from several inputs in order, into LineBatches; line numbers
/// run on across inputs.
///
/// Each input is cut separately: a last line without LF ends at the end of its
/// input and never joins the next input's first line.
pub struct LineReader {
    inputs: Vec<InputSpec>,
    /// Index in `inputs` of the next input to open.
    next_input: usize,
    /// The input being read, if any.
    current: Option<OpenInput>,
    /// Read buffer; `buf[start..end]` holds bytes not yet cut into lines.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The beginning of a line that spans reads.
    partial: Vec<u8>,
    /// Number (1-based, across inputs) of the next line to deliver.
    next_line: u64,
    /// An error met after some lines were already put in the caller's batch:
    /// reported by the next call, so those lines are not lost with it.
    deferred: Option<Box<InputError>>,
    /// Data bytes of the last batch filled (a capacity hint for the next).
    last_batch_bytes: usize,
}

/// An opened input.
struct OpenInput {
    name: String,
    source: Box<dyn Read + Send>,
    gzip: bool,
    /// Lines of this input delivered so far.
    lines: u64,
    /// The source has reported its end.
    eof: bool,
    /// A regular file: what it looked like at open, checked at its end.
    watch: Option<Watch>,
    /// A followed file: "nothing new yet" is not an error.
    follow: bool,
}

impl OpenInput {
    /// The error for a file that shrank, changed or was replaced while it
    /// was read; checked when its end is reached (and on a read error,
    /// which a truncated gzip file gives: the truncation is the cause).
    fn changed(&self) -> Option<InputError> {
        let source = self.watch.as_ref()?.changed()?;
        Some(InputError::Read {
            input: self.name.clone(),
            line: self.lines + 1,
            what: "read error",
            source,
        })
    }
}

/// Outcome of trying to deliver one line.
enum Step {
    Pushed,
    Full,
    Exhausted,
    /// A followed file has nothing new for now: the lines already in the
    /// batch leave without waiting for more.
    Paused,
}

/// Where the reader delivers lines. `raw` is a line as read, without its LF
/// but with any CR; `len` is its length once one trailing CR is removed.
trait LineSink {
    /// No line delivered yet.
    fn is_empty(&self) -> bool;
    /// The size the sink would reach with this line: never above
    /// `MAX_LINE`, so that a batch's `u32` offsets can address it.
    fn size_after(&self, raw_len: usize, len: usize) -> usize;
    /// Takes the line (the size was checked with `size_after`).
    fn push(&mut self, raw: &[u8], len: usize);
    /// True for a sink that keeps lines as LF-terminated text, which can
    /// take many lines at once with [`push_block`](Self::push_block).
    const TEXT: bool = false;
    /// Takes whole LF-terminated lines at once (only called when `TEXT`).
    fn push_block(&mut self, _block: &[u8]) {
        unreachable!("push_block on a sink that is not TEXT")
    }
    /// Bytes held (only called when `TEXT`), as `size_after` counts them.
    fn size(&self) -> usize {
        0
    }
}

impl LineSink for LineBatch {
    fn is_empty(&self) -> bool {
        LineBatch::is_empty(self)
    }

    fn size_after(&self, _raw_len: usize, len: usize) -> usize {
        self.data.len() + len
    }

    fn push(&mut self, raw: &[u8], len: usize) {
        let pushed = self.push_line(&raw[..len]);
        // Cannot fail: the size was checked against the batch.
        debug_assert!(pushed.is_ok());
    }
}

/// Lines as LF-terminated text (see [`LineReader::fill_text`]); the text
/// appended by this call starts at `start`.
struct TextSink<'a> {
    text: &'a mut Vec<u8>,
    start: usize,
}

impl LineSink for TextSink<'_> {
    fn is_empty(&self) -> bool {
        self.text.len() == self.start
    }

    fn size_after(&self, raw_len: usize, _len: usize) -> usize {
        self.text.len() - self.start + raw_len + 1
    }

    fn push(&mut self, raw: &[u8], _len: usize) {
        self.text.extend_from_slice(raw);
        self.text.push(b'\n');
    }

    const TEXT: bool = true;

    fn push_block(&mut self, block: &[u8]) {
        self.text.extend_from_slice(block);
    }

    fn size(&self) -> usize {
        self.text.len() - self.start
    }
}

impl LineReader {
    /// Does NOT open anything yet (opening is lazy, on the first fill).
    pub fn new(inputs: Vec<InputSpec>) -> Self {
        LineReader {
            inputs,
            next_input: 0,
            current: None,
            buf: Vec::new(),
            start: 0,
            end: 0,
            partial: Vec::new(),
            next_line: 1,
            deferred: None,
            last_batch_bytes: 0,
        }
    }

    /// Fills `batch` with up to `max_lines` lines and at most about `max_bytes`
    /// bytes (at least one line if any remain). Ok(0) = all inputs exhausted.
    ///
    /// Lines are appended. When `batch` is empty, its `first_line` is set to
    /// the number of the next line; a non-empty batch is only extended
    /// correctly if it holds this reader's previous lines (pass a new or
    /// cleared batch). A line is added while the batch stays within
    /// `max_bytes`, except that each call adds at least one line; `max_lines`
    /// of 0 is taken as 1.
    ///
    /// On an error, the lines already read stay delivered: if some were put
    /// in `batch` during this call, the call returns them and the error comes
    /// from the next call. The failed input is then abandoned and a further
    /// call goes on with the next input.
    pub fn fill(
        &mut self,
        batch: &mut LineBatch,
        max_lines: usize,
        max_bytes: usize,
    ) -> Result<usize, InputError> {
        if self.deferred.is_none() && batch.is_empty() {
            batch.first_line = self.next_line;
        }
        if batch.data.capacity() == 0 {
            // A new batch: size it like the last one, so that it is not
            // grown (and copied) step by step.
            batch
                .data
                .reserve(self.last_batch_bytes + self.last_batch_bytes / 8);
            batch.ends.reserve(max_lines.clamp(1, 1 << 16));
        }
        let n = self.fill_into(batch, max_lines, max_bytes)?;
        self.last_batch_bytes = batch.data.len();
        Ok(n)
    }

    /// Like [`fill`](Self::fill), but appends the lines to `text` as text for
    /// another process to cut with [`LineBatch::from_text`]: each line as
    /// read, its CRs kept, followed by one LF (also after a final line that
    /// had none). `max_bytes` bounds the text appended (LFs included) with
    /// the same at-least-one-line rule. Returns the number of lines; their
    /// numbers continue those of previous calls.
    pub fn fill_text(
        &mut self,
        text: &mut Vec<u8>,
        max_lines: usize,
        max_bytes: usize,
    ) -> Result<usize, InputError> {
        let mut sink = TextSink {
            start: text.len(),
            text,
        };
        self.fill_into(&mut sink, max_lines, max_bytes)
    }

    /// The inputs, as given.
    pub fn inputs(&self) -> &[InputSpec] {
        &self.inputs
    }

    /// The number (1-based, across inputs) of the next line to be delivered.
    pub fn next_line(&self) -> u64 {
        self.next_line
    }

    /// [`fill`](Self::fill) for any sink.
    fn fill_into<S: LineSink>(
        &mut self,
        sink: &mut S,
        max_lines: usize,
        max_bytes: usize,
    ) -> Result<usize, InputError> {
        if let Some(e) = self.deferred.take() {
            return Err(*e);
        }
        let max_lines = max_lines.max(1);
        let mut n = 0;
        while n < max_lines {
            // The common case first: whole lines already in the buffer.
            let (k, full) = self.take_buffered(sink, max_lines - n, n > 0, max_bytes);
            n += k;
            if full || n == max_lines {
                break;
            }
            match self.step(sink, n > 0, max_bytes) {
                Ok(Step::Pushed) => n += 1,
                Ok(Step::Full) | Ok(Step::Exhausted) | Ok(Step::Paused) => break,
                Err(e) => {
                    self.abandon_current();
                    if n == 0 {
                        return Err(e);
                    }
                    self.deferred = Some(Box::new(e));
                    break;
                }
            }
        }
        Ok(n)
    }

    /// Fast path: delivers up to `room` lines that lie whole in the buffer
    /// (LF included) while no partial line is pending, without `step`'s
    /// per-line bookkeeping. Stops at the first line not complete in the
    /// buffer, which `step` then handles (refill, partial lines, end of
    /// input). Returns the lines delivered and whether the sink is full.
    fn take_buffered<S: LineSink>(
        &mut self,
        sink: &mut S,
        room: usize,
        mut limit_bytes: bool,
        max_bytes: usize,
    ) -> (usize, bool) {
        let Some(cur) = self.current.as_mut() else {
            return (0, false);
        };
        if !self.partial.is_empty() {
            return (0, false);
        }
        let buf = &self.buf[..self.end];
        let mut start = self.start;
        let mut pushed = 0;
        let mut full = false;
        while pushed < room {
            if S::TEXT && !sink.is_empty() {
                // Text keeps lines as they are: take every further whole
                // line that fits the limits in one copy, counting LFs with a
                // vectorized count instead of visiting each line. (The first
                // line of a call is exempt from `max_bytes`: it goes through
                // the per-line code below, as does the line at the limit.)
                let cap = if limit_bytes {
                    MAX_LINE.min(max_bytes)
                } else {
                    MAX_LINE
                };
                let fits = cap.saturating_sub(sink.size()).min(buf.len() - start);
                let region = &buf[start..start + fits];
                let left = room - pushed;
                let lfs = memchr::memchr_iter(b'\n', region).count();
                let last = if lfs <= left {
                    memchr::memrchr(b'\n', region)
                } else {
                    memchr::memchr_iter(b'\n', region).nth(left - 1)
                };
                if let Some(last) = last {
                    sink.push_block(&region[..=last]);
                    pushed += lfs.min(left);
                    start += last + 1;
                    if pushed == room {
                        break;
                    }
                }
            }
            let Some(p) = memchr(b'\n', &buf[start..]) else {
                break;
            };
            let raw = &buf[start..start + p];
            // A line inside the buffer is far below MAX_LINE; only the
            // sink's total needs checking.
            let len = p - usize::from(raw.last() == Some(&b'\r'));
            if !sink.is_empty() {
                let total = sink.size_after(raw.len(), len);
                if total > MAX_LINE || (limit_bytes && total > max_bytes) {
                    full = true;
                    break;
                }
            }
            sink.push(raw, len);
            limit_bytes = true;
            pushed += 1;
            start += p + 1;
        }
        self.start = start;
        cur.lines += pushed as u64;
        self.next_line += pushed as u64;
        (pushed, full)
    }

    /// Delivers the next line into `sink`, opening and reading as needed.
    /// `limit_bytes`: whether `max_bytes` may refuse the line (not for the
    /// first line of a call).
    fn step<S: LineSink>(
        &mut self,
        sink: &mut S,
        limit_bytes: bool,
        max_bytes: usize,
    ) -> Result<Step, InputError> {
        loop {
            let Some(cur) = self.current.as_mut() else {
                let Some(spec) = self.inputs.get(self.next_input) else {
                    return Ok(Step::Exhausted);
                };
                self.next_input += 1;
                let spec = spec.clone();
                self.open(&spec)?;
                continue;
            };

            let pending = &self.buf[self.start..self.end];
            let (seg_len, at_end) = match memchr(b'\n', pending) {
                Some(p) => (p, false),
                // A final line without LF, or nothing left at all.
                None if cur.eof => (pending.len(), true),
                None => {
                    // Keep the start of the line aside and read on; lines of
                    // any length are fine, up to what a batch can address.
                    self.partial.extend_from_slice(pending);
                    self.start = 0;
                    self.end = 0;
                    if self.partial.len() > MAX_LINE {
                        return Err(InputError::LineTooLong {
                            input: cur.name.clone(),
                            line: cur.lines + 1,
                        });
                    }
                    if !self.refill()? && !sink.is_empty() {
                        return Ok(Step::Paused);
                    }
                    continue;
                }
            };
            if at_end && seg_len == 0 && self.partial.is_empty() {
                // The empty string after a final LF (or an empty input) is
                // not a line.
                self.current = None;
                continue;
            }

            // The line is partial + buf[start..start+seg_len], minus one CR.
            let seg = self.start..self.start + seg_len;
            let last = if seg_len > 0 {
                Some(self.buf[seg.end - 1])
            } else {
                self.partial.last().copied()
            };
            let raw_len = self.partial.len() + seg_len;
            let len = raw_len - usize::from(last == Some(b'\r'));
            if len > MAX_LINE {
                return Err(InputError::LineTooLong {
                    input: cur.name.clone(),
                    line: cur.lines + 1,
                });
            }
            if !sink.is_empty() {
                let total = sink.size_after(raw_len, len);
                if total > MAX_LINE || (limit_bytes && total > max_bytes) {
                    return Ok(Step::Full);
                }
            }
            if self.partial.is_empty() {
                sink.push(&self.buf[seg.clone()], len);
            } else {
                self.partial.extend_from_slice(&self.buf[seg]);
                sink.push(&self.partial, len);
            }
            self.partial.clear();
            self.start += seg_len + usize::from(!at_end);
            cur.lines += 1;
            self.next_line += 1;
            return Ok(Step::Pushed);
        }
    }

    /// Reads the next chunk of the current input into the (empty) buffer.
    /// False when a followed file had nothing new within its idle interval
    /// (the buffer stays empty; the caller may try again).
    fn refill(&mut self) -> Result<bool, InputError> {
        let Some(cur) = self.current.as_mut() else {
            return Ok(true);
        };
        loop {
            match cur.source.read(&mut self.buf) {
                Ok(0) => {
                    if let Some(e) = cur.changed() {
                        return Err(e);
                    }
                    cur.eof = true;
                    return Ok(true);
                }
                Ok(k) => {
                    self.end = k;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && cur.follow => return Ok(false),
                Err(e) => {
                    if let Some(changed) = cur.changed() {
                        return Err(changed);
                    }
                    // flate2 reports bad headers, bad deflate data and
                    // truncation with these kinds; anything else comes from
                    // the file itself.
                    let corrupt = matches!(
                        e.kind(),
                        io::ErrorKind::InvalidInput
                            | io::ErrorKind::InvalidData
                            | io::ErrorKind::UnexpectedEof
                    );
                    return Err(InputError::Read {
                        input: cur.name.clone(),
                        line: cur.lines + 1,
                        what: if cur.gzip && corrupt {
                            "corrupt gzip data"
                        } else {
                            "read error"
                        },
                        source: e,
                    });
                }
            }
        }
    }

    /// Makes `source` the current input, with an empty buffer.
    fn start_input(
        &mut self,
        name: String,
        source: Box<dyn Read + Send>,
        watch: Option<Watch>,
        follow: bool,
    ) {
        if self.buf.len() != BUF_SIZE {
            self.buf = vec![0; BUF_SIZE];
        }
        self.start = 0;
        self.end = 0;
        self.partial.clear();
        self.current = Some(OpenInput {
            name,
            source,
            gzip: false,
            lines: 0,
            eof: false,
            watch,
            follow,
        });
    }

    /// Opens `spec`, sniffs the gzip magic bytes and makes it current.
    fn open(&mut self, spec: &InputSpec) -> Result<(), InputError> {
        let name = spec.display_name();
        let (watch, raw): (Option<Watch>, Box<dyn Read + Send>) = match spec {
            InputSpec::Stdin => (None, Box::new(io::stdin())),
            InputSpec::Follow(path) => {
                let reader = FollowReader::open(path, follow::global_stop(), follow::IDLE)
                    .map_err(|source| InputError::Open {
                        input: name.clone(),
                        source,
                    })?;
                // A growing file is read as it is: no watch (it is meant to
                // change) and no gzip sniffing (it is text, possibly empty yet).
                self.start_input(name, Box::new(reader), None, true);
                return Ok(());
            }
            InputSpec::File(path) => {
                // Checked first: on Unix a directory opens fine and fails
                // only on read, with a less helpful message.
                if path.is_dir() {
                    return Err(InputError::IsDirectory { input: name });
                }
                let opened = File::open(path).and_then(|f| Watch::open(path.clone(), f));
                match opened {
                    Ok(opened) => opened,
                    Err(source) => {
                        return Err(InputError::Open {
                            input: name,
                            source,
                        })
                    }
                }
            }
        };
        self.start_input(name, raw, watch, false);
        // Sniff the first two bytes (a read may return fewer than asked).
        while self.end < 2 {
            let before = self.end;
            let Some(cur) = self.current.as_mut() else {
                break;
            };
            let got = loop {
                match cur.source.read(&mut self.buf[before..]) {
                    Ok(k) => break k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(source) => {
                        return Err(InputError::Read {
                            input: cur.name.clone(),
                            line: 1,
                            what: "read error",
                            source,
                        })
                    }
                }
            };
            if got == 0 {
                if let Some(e) = cur.changed() {
                    return Err(e);
                }
                cur.eof = true;
                break;
            }
            self.end += got;
        }
        if self.buf[..self.end].starts_with(&[0x1f, 0x8b]) {
            if let Some(cur) = self.current.as_mut() {
                // Gzip: the bytes already read go back in front of the rest,
                // and the decoder's output is what gets cut into lines.
                // MultiGzDecoder, because `cat a.gz b.gz` is a valid gzip file.
                let head = io::Cursor::new(self.buf[..self.end].to_vec());
                let raw = std::mem::replace(&mut cur.source, Box::new(io::empty()));
                let decoder = flate2::bufread::MultiGzDecoder::new(BufReader::with_capacity(
                    BUF_SIZE,
                    head.chain(raw),
                ));
                cur.source = Box::new(decoder);
                cur.gzip = true;
                if let Some(watch) = cur.watch.as_mut() {
                    watch.plain = false;
                }
                cur.eof = false;
                self.end = 0;
            }
        }
        Ok(())
    }

    /// Drops the current input after an error; reading goes on with the next.
    fn abandon_current(&mut self) {
        self.current = None;
        self.start = 0;
        self.end = 0;
        self.partial.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;
    use std::path::Path;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> InputSpec {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        InputSpec::File(p)
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// All `(number, line)` pairs, checking batch limits and numbering.
    fn read_all(
        inputs: Vec<InputSpec>,
        max_lines: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, InputError> {
        let mut r = LineReader::new(inputs);
        let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
        loop {
            let mut b = LineBatch::new(0);
            let n = r.fill(&mut b, max_lines, max_bytes)?;
            if n == 0 {
                assert!(b.is_empty());
                return Ok(out);
            }
            assert_eq!(n, b.len());
            assert!(n <= max_lines.max(1));
            assert!(n == 1 || b.data.len() <= max_bytes, "batch over max_bytes");
            assert_eq!(b.first_line, out.len() as u64 + 1);
            out.extend(b.iter().map(|(i, l)| (i, l.to_vec())));
        }
    }

    /// The same through `fill_text` and `LineBatch::from_text`, checking
    /// the limits on the text.
    fn read_all_text(
        inputs: Vec<InputSpec>,
        max_lines: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, InputError> {
        let mut r = LineReader::new(inputs);
        let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut text = b"kept".to_vec();
        loop {
            text.truncate(4);
            let first = r.next_line();
            let n = r.fill_text(&mut text, max_lines, max_bytes)?;
            assert_eq!(&text[..4], b"kept", "appends");
            if n == 0 {
                assert_eq!(text.len(), 4);
                return Ok(out);
            }
            assert!(n <= max_lines.max(1));
            assert!(n == 1 || text.len() - 4 <= max_bytes, "text over max_bytes");
            assert_eq!(first, out.len() as u64 + 1);
            let b = LineBatch::from_text(first, &text[4..]).unwrap();
            assert_eq!(b.len(), n);
            out.extend(b.iter().map(|(i, l)| (i, l.to_vec())));
        }
    }

    /// `fill` and `fill_text` agree on every line of `inputs`.
    fn assert_text_agrees(inputs: Vec<InputSpec>, max_lines: usize, max_bytes: usize) {
        let lines = read_all(inputs.clone(), max_lines, max_bytes).unwrap();
        let text = read_all_text(inputs, max_lines, max_bytes).unwrap();
        assert_eq!(lines, text, "max_lines {max_lines} max_bytes {max_bytes}");
    }

    fn lines_of(inputs: Vec<InputSpec>) -> Vec<Vec<u8>> {
        read_all(inputs, 1000, 1 << 20)
            .unwrap()
            .into_iter()
            .map(|(_, l)| l)
            .collect()
    }

    fn v(lines: &[&[u8]]) -> Vec<Vec<u8>> {
        lines.iter().map(|l| l.to_vec()).collect()
    }

    #[test]
    fn parse_and_names() {
        assert_eq!(InputSpec::parse("-"), InputSpec::Stdin);
        assert_eq!(InputSpec::parse("a.log"), InputSpec::File("a.log".into()));
        assert_eq!(InputSpec::Stdin.display_name(), "<stdin>");
        assert_eq!(InputSpec::parse("logs/a.log").display_name(), "logs/a.log");
    }

    #[test]
    fn line_endings_and_files_in_sequence() {
        let d = tempfile::tempdir().unwrap();
        let inputs = vec![
            write(d.path(), "a", b"a1\na2\n"),
            write(d.path(), "b", b"b1\r\nb2"), // CRLF, last line without LF
            write(d.path(), "c", b""),         // empty file: no line
            write(d.path(), "d", b"\n"),       // one empty line
            write(d.path(), "e", b"x\ry\n\r\n"), // CR in mid-line kept
            write(d.path(), "f", b"z\r\r\n\r"), // only one CR removed
        ];
        let got = read_all(inputs.clone(), 2, 1 << 20).unwrap();
        let expected = v(&[b"a1", b"a2", b"b1", b"b2", b"", b"x\ry", b"", b"z\r", b""]);
        assert_eq!(
            got.iter().map(|(_, l)| l.clone()).collect::<Vec<_>>(),
            expected
        );
        let numbers: Vec<u64> = got.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, (1..=9).collect::<Vec<_>>());
        for (max_lines, max_bytes) in [(2, 1 << 20), (1, 1), (100, 3)] {
            assert_text_agrees(inputs.clone(), max_lines, max_bytes);
        }
    }

    #[test]
    fn empty_inputs() {
        let d = tempfile::tempdir().unwrap();
        assert!(lines_of(vec![]).is_empty());
        assert!(lines_of(vec![write(d.path(), "e", b"")]).is_empty());
        assert_eq!(lines_of(vec![write(d.path(), "n", b"\n")]), v(&[b""]));
        assert_eq!(lines_of(vec![write(d.path(), "x", b"x\n")]), v(&[b"x"]));
        // Exhaustion is sticky.
        let mut r = LineReader::new(vec![write(d.path(), "y", b"y")]);
        let mut b = LineBatch::new(0);
        assert_eq!(r.fill(&mut b, 10, 100).unwrap(), 1);
        assert_eq!(r.fill(&mut LineBatch::new(0), 10, 100).unwrap(), 0);
        assert_eq!(r.fill(&mut LineBatch::new(0), 10, 100).unwrap(), 0);
    }

    #[test]
    fn binary_bytes_are_lines() {
        let d = tempfile::tempdir().unwrap();
        let data = b"a\0b\n\xff\xfe\xc3(\n\x1f\n\x8b";
        assert_text_agrees(vec![write(d.path(), "bin", data)], 3, 100);
        let got = lines_of(vec![write(d.path(), "bin", data)]);
        assert_eq!(got, v(&[b"a\0b", b"\xff\xfe\xc3(", b"\x1f", b"\x8b"]));
        // One byte that looks like the start of the gzip magic is plain data.
        assert_eq!(
            lines_of(vec![write(d.path(), "one", b"\x1f")]),
            v(&[b"\x1f"])
        );
    }

    #[test]
    fn gzip_detected_by_magic_and_multi_member() {
        let d = tempfile::tempdir().unwrap();
        let mut two = gzip(b"m1\nm2");
        two.extend(gzip(b"\nm3\r\n"));
        let inputs = vec![
            write(d.path(), "plain.log", b"p1\n"),
            // No .gz extension: detected by the magic bytes.
            write(d.path(), "packed", &gzip(b"g1\ng2\n")),
            write(d.path(), "two.gz", &two),
            // A .gz name on plain text is read as plain text.
            write(d.path(), "fake.gz", b"f1\n"),
            write(d.path(), "empty.gz", &gzip(b"")),
        ];
        assert_text_agrees(inputs.clone(), 2, 1 << 20);
        assert_eq!(
            lines_of(inputs),
            v(&[b"p1", b"g1", b"g2", b"m1", b"m2", b"m3", b"f1"])
        );
    }

    #[test]
    fn truncated_gzip_is_an_error_after_the_good_lines() {
        let d = tempfile::tempdir().unwrap();
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("line {} {}\n", i, i.wrapping_mul(2_654_435_761)).into_bytes())
            .collect();
        let gz = gzip(&text);
        let spec = write(d.path(), "cut.gz", &gz[..gz.len() / 2]);
        let after = write(d.path(), "after.log", b"next\n");
        let mut r = LineReader::new(vec![spec, after]);
        let mut got = Vec::new();
        let err = loop {
            let mut b = LineBatch::new(0);
            match r.fill(&mut b, 1000, 1 << 20) {
                Ok(0) => panic!("truncation not reported"),
                Ok(_) => got.extend(b.iter().map(|(_, l)| l.to_vec())),
                Err(e) => break e,
            }
        };
        assert!(got.len() > 1000);
        for (i, l) in got.iter().enumerate() {
            assert!(l.starts_with(format!("line {i} ").as_bytes()));
        }
        let msg = err.to_string();
        let want = format!(
            "input '{}' line {}: corrupt gzip data",
            d.path().join("cut.gz").display(),
            got.len() + 1
        );
        assert!(msg.starts_with(&want), "{msg}");
        // As text: the same lines, then the same error.
        let mut t = LineReader::new(vec![InputSpec::File(d.path().join("cut.gz"))]);
        let mut text = Vec::new();
        let text_err = loop {
            match t.fill_text(&mut text, 1000, 1 << 20) {
                Ok(0) => panic!("truncation not reported"),
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert_eq!(text_err.to_string(), msg);
        let cut: Vec<Vec<u8>> = LineBatch::from_text(1, &text)
            .unwrap()
            .iter()
            .map(|(_, l)| l.to_vec())
            .collect();
        assert_eq!(cut, got);
        // The reader goes on with the next input.
        let mut b = LineBatch::new(0);
        assert_eq!(r.fill(&mut b, 10, 100).unwrap(), 1);
        assert_eq!(b.line(0), b"next");

        // Garbage after the magic bytes: an error on the first line.
        let bad = write(d.path(), "bad.gz", b"\x1f\x8bnot gzip at all\n");
        let msg = read_all(vec![bad], 10, 100).unwrap_err().to_string();
        assert!(msg.contains("bad.gz' line 1: corrupt gzip data"), "{msg}");
    }

    #[test]
    fn open_errors_name_the_input() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("nope.log");
        // Lazy: nothing is opened before the first fill.
        let mut r = LineReader::new(vec![
            write(d.path(), "ok", b"1\n2\n"),
            InputSpec::File(missing.clone()),
        ]);
        let mut b = LineBatch::new(0);
        assert_eq!(r.fill(&mut b, 100, 1000).unwrap(), 2);
        let err = r.fill(&mut LineBatch::new(0), 100, 1000).unwrap_err();
        assert!(matches!(err, InputError::Open { .. }));
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("input '{}': cannot open: ", missing.display())),
            "{msg}"
        );
        assert_eq!(r.fill(&mut LineBatch::new(0), 100, 1000).unwrap(), 0);

        let dir = InputSpec::File(d.path().to_path_buf());
        let msg = read_all(vec![dir], 10, 100).unwrap_err().to_string();
        assert_eq!(
            msg,
            format!(
                "input '{}': is a directory, expected a file of log lines",
                d.path().display()
            )
        );
    }

    #[test]
    fn error_after_lines_in_the_same_call_is_deferred() {
        let d = tempfile::tempdir().unwrap();
        let mut r = LineReader::new(vec![
            write(d.path(), "ok", b"1\n2\n"),
            InputSpec::File(d.path().join("missing")),
            write(d.path(), "last", b"3"),
        ]);
        let mut b = LineBatch::new(0);
        // The two lines come back; the error waits for the next call.
        assert_eq!(r.fill(&mut b, 100, 1000).unwrap(), 2);
        assert!(r.fill(&mut LineBatch::new(0), 100, 1000).is_err());
        let mut b = LineBatch::new(0);
        assert_eq!(r.fill(&mut b, 100, 1000).unwrap(), 1);
        assert_eq!((b.first_line, b.line(0)), (3, &b"3"[..]));
    }

    #[test]
    fn batches_respect_limits_and_cover_every_line() {
        let d = tempfile::tempdir().unwrap();
        let mut text = Vec::new();
        let mut expected = Vec::new();
        for i in 0..3000usize {
            let line = vec![b'a' + (i % 26) as u8; i % 97];
            text.extend_from_slice(&line);
            text.push(b'\n');
            expected.push(line);
        }
        let spec = write(d.path(), "many", &text);
        for (max_lines, max_bytes) in [
            (7, 100),
            (1, 1),
            (1000, 50),
            (10_000, 1 << 20),
            (0, 0),
            (7, 1 << 20),
            (100, 1000),
        ] {
            assert_text_agrees(vec![spec.clone()], max_lines, max_bytes);
            let got = read_all(vec![spec.clone()], max_lines, max_bytes).unwrap();
            let lines: Vec<_> = got.into_iter().map(|(_, l)| l).collect();
            assert_eq!(
                lines, expected,
                "max_lines {max_lines} max_bytes {max_bytes}"
            );
        }
    }

    #[test]
    fn long_lines_across_buffer_boundaries() {
        let d = tempfile::tempdir().unwrap();
        let mut text = Vec::new();
        // The CR of this CRLF is the last byte of the first buffer, its LF
        // the first byte of the second.
        let first = vec![b'a'; BUF_SIZE - 1];
        text.extend_from_slice(&first);
        text.extend_from_slice(b"\r\n");
        // A line spanning three buffers, then short ones.
        let long: Vec<u8> = (0..BUF_SIZE * 2 + 123)
            .map(|i| b'0' + (i % 10) as u8)
            .collect();
        text.extend_from_slice(&long);
        text.extend_from_slice(b"\nshort\r\n");
        // A binary tail without LF, longer than a buffer.
        let tail = vec![0u8; BUF_SIZE + 5];
        text.extend_from_slice(&tail);
        let expected = vec![first, long, b"short".to_vec(), tail];
        let plain = write(d.path(), "long", &text);
        assert_eq!(lines_of(vec![plain.clone()]), expected);
        let gz = write(d.path(), "long.gz", &gzip(&text));
        assert_eq!(lines_of(vec![gz.clone()]), expected);
        for (max_lines, max_bytes) in [(100, 1 << 30), (100, 10), (2, 1 << 20)] {
            assert_text_agrees(vec![plain.clone(), gz.clone()], max_lines, max_bytes);
        }
        // One line per batch when lines exceed max_bytes.
        let got = read_all(vec![plain], 100, 10).unwrap();
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn reader_is_send() {
        fn send<T: Send>() {}
        send::<LineReader>();
    }
}
