//! Where the reader delivers lines: [`LineSink`], taken by a
//! [`LineBatch`] (lines as offsets into one buffer) and by [`TextSink`]
//! (LF-terminated text for another process to cut).

use super::super::batch::LineBatch;

/// Where the reader delivers lines. `raw` is a line as read, without its LF
/// but with any CR; `len` is its length once one trailing CR is removed.
pub(super) trait LineSink {
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

/// Lines as LF-terminated text (see
/// [`LineReader::fill_text`](super::LineReader::fill_text)); the text
/// appended by this call starts at `start`.
pub(super) struct TextSink<'a> {
    pub(super) text: &'a mut Vec<u8>,
    pub(super) start: usize,
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
