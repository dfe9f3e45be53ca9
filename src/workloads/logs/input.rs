//! Reading the `logs` workload's input (docs/logs-workload.md §1):
//! files or standard input, plain or gzip (detected by its magic bytes), cut
//! into lines and packed into [`LineBatch`]es with line numbers that run on
//! across inputs. Every failure becomes an [`InputError`] naming the input,
//! never a panic.

use std::io::{self, Read};
use std::path::PathBuf;

use crate::sources::split;
use serde::{Deserialize, Serialize};

use super::batch::LineBatch;
use super::watch::Watch;
pub(super) use stdin::BatchClock;

mod open;
mod stdin;

/// How long a batch of standard input or of a followed file waits for more
/// lines once it has its first one, unless [`LineReader::set_batch_delay`]
/// says otherwise.
pub const DEFAULT_BATCH_DELAY: std::time::Duration = std::time::Duration::from_millis(200);

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
    /// A plain-text file read as it grows, as `tail -F` does: it ends only
    /// when [`stop_following`](super::stop_following) is called.
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
    /// Reading at a byte offset failed (multiprocess mode, while cutting
    /// a file into chunks without counting its lines).
    #[error("input '{input}' at byte {offset}: read error: {source}")]
    ReadAt {
        /// The input's display name.
        input: String,
        /// Where the read was.
        offset: u64,
        /// The underlying error.
        source: io::Error,
    },
    /// A line too long for a chunk's frame (multiprocess mode).
    #[error(
        "input '{input}' line {line}: the line is longer than a chunk's frame can carry \
         (--max-frame {max_frame} bytes); raise --max-frame, or run in serial or pipeline mode"
    )]
    LineOverFrame {
        /// The input's display name.
        input: String,
        /// The line, counted within this input.
        line: u64,
        /// The frame limit.
        max_frame: usize,
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
    /// The deadline of the batch being filled, when an input can pause
    /// (standard input, a followed file); `None` for files, which never make
    /// a batch wait.
    clock: Option<BatchClock>,
    /// How long a batch waits for more once it has a line (see `clock`).
    delay: std::time::Duration,
    /// Text ([`fill_text`](Self::fill_text)) for chunks of a frame of
    /// at most `.1` bytes: no line may take more than `.0` bytes.
    text_line_limit: Option<(usize, usize)>,
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
    /// A followed file or standard input: "nothing new yet" is not an
    /// error, the lines already read leave in a partial batch.
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
    /// Takes the line held in `raw`, whose buffer it may take over instead
    /// of copying it (a line that spanned reads can be any length up to
    /// 4 GiB: a copy would double what it costs). `raw` is left holding
    /// some buffer, to be cleared.
    fn push_owned(&mut self, raw: &mut Vec<u8>, len: usize) {
        self.push(raw, len);
    }
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

    fn push_owned(&mut self, raw: &mut Vec<u8>, len: usize) {
        if !self.data.is_empty() || !self.ends.is_empty() {
            return self.push(raw, len);
        }
        // The batch's first line: it becomes the batch's data as it is.
        std::mem::swap(&mut self.data, raw);
        self.data.truncate(len);
        // Cannot fail: the size was checked against the batch.
        self.ends.push(u32::try_from(len).unwrap_or(u32::MAX));
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
            next_input: 0,
            current: None,
            buf: Vec::new(),
            start: 0,
            end: 0,
            partial: Vec::new(),
            next_line: 1,
            deferred: None,
            last_batch_bytes: 0,
            clock: inputs_pause(&inputs).then(BatchClock::default),
            delay: DEFAULT_BATCH_DELAY,
            text_line_limit: None,
            inputs,
        }
    }

    /// How long a batch of standard input or of a followed file waits for
    /// more lines once it has its first one: then it leaves partial, so a
    /// slow stream still flows (even one that never pauses long).
    pub fn set_batch_delay(&mut self, delay: std::time::Duration) {
        self.delay = delay;
    }

    /// Text for multiprocess chunks must fit frames of `max_frame` bytes:
    /// a line that takes more than `limit` bytes as text (its LF
    /// included) fails [`fill_text`](Self::fill_text) with
    /// [`InputError::LineOverFrame`], as soon as that many bytes of it are
    /// read. Batches ([`fill`](Self::fill)) take any line.
    pub fn limit_text_lines(&mut self, limit: usize, max_frame: usize) {
        self.text_line_limit = Some((limit, max_frame));
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
        if let Some(clock) = &self.clock {
            clock.clear();
        }
        let mut n = 0;
        while n < max_lines {
            // The common case first: whole lines already in the buffer.
            let (k, full) = self.take_buffered(sink, max_lines - n, n > 0, max_bytes);
            n += k;
            if full || n == max_lines {
                break;
            }
            if n > 0 {
                self.arm_clock();
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

    /// The batch has a line: from now on it waits for more only until its
    /// deadline.
    fn arm_clock(&self) {
        if let Some(clock) = &self.clock {
            if !clock.is_armed() {
                clock.arm(self.delay);
            }
        }
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
        // A line too long for a frame is left to `step`, which says so.
        let line_limit = match self.text_line_limit {
            Some((limit, _)) if S::TEXT => limit,
            _ => usize::MAX,
        };
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
                }
                // No line in a region this long is too long for a frame.
                .min(line_limit);
                let fits = cap.saturating_sub(sink.size()).min(buf.len() - start);
                let region = &buf[start..start + fits];
                let (bytes, lines) = split::whole_lines(region, room - pushed);
                if lines > 0 {
                    sink.push_block(&region[..bytes]);
                    pushed += lines;
                    start += bytes;
                    if pushed == room {
                        break;
                    }
                }
            }
            let Some(p) = split::first_lf(&buf[start..]) else {
                break;
            };
            if p >= line_limit {
                break;
            }
            let raw = &buf[start..start + p];
            // A line inside the buffer is far below MAX_LINE; only the
            // sink's total needs checking.
            let len = split::strip_cr(raw).len();
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
            let (seg_len, at_end) = match split::first_lf(pending) {
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
                    if S::TEXT {
                        let len = self.partial.len() + 1;
                        if let Some(e) = over_frame(self.text_line_limit, len, cur) {
                            return Err(e);
                        }
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
            let len = split::content_len(raw_len, last);
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
            if S::TEXT {
                if let Some(e) = over_frame(self.text_line_limit, raw_len + 1, cur) {
                    return Err(e);
                }
            }
            if self.partial.is_empty() {
                sink.push(&self.buf[seg.clone()], len);
            } else {
                self.partial.extend_from_slice(&self.buf[seg]);
                sink.push_owned(&mut self.partial, len);
            }
            self.partial.clear();
            self.start += seg_len + usize::from(!at_end);
            cur.lines += 1;
            self.next_line += 1;
            return Ok(Step::Pushed);
        }
    }
}

/// The error for the next line of `cur`, `len` bytes as text, if that is
/// more than `limit` (see [`LineReader::limit_text_lines`]) allows.
fn over_frame(limit: Option<(usize, usize)>, len: usize, cur: &OpenInput) -> Option<InputError> {
    let (limit, max_frame) = limit?;
    (len > limit).then(|| InputError::LineOverFrame {
        input: cur.name.clone(),
        line: cur.lines + 1,
        max_frame,
    })
}

/// Whether any of `inputs` can pause (standard input).
fn inputs_pause(inputs: &[InputSpec]) -> bool {
    inputs
        .iter()
        .any(|i| matches!(i, InputSpec::Stdin | InputSpec::Follow(_)))
}

#[cfg(test)]
mod tests;
