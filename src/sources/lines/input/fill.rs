//! Cutting the read buffer into lines and delivering them to a sink, for
//! [`LineReader::fill`] (a batch) and [`LineReader::fill_text`] (text for
//! another process): whole buffered lines at once where possible, one line
//! at a time across reads and inputs otherwise, within the batch's limits.

use super::super::batch::LineBatch;
use super::sink::{LineSink, TextSink};
use super::{InputError, LineReader, OpenInput, MAX_LINE};
use crate::sources::split;

/// Outcome of trying to deliver one line.
enum Step {
    Pushed,
    Full,
    Exhausted,
    /// A followed file has nothing new for now: the lines already in the
    /// batch leave without waiting for more.
    Paused,
}

impl LineReader {
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
