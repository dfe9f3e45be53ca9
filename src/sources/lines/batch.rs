//! [`LineBatch`], the batch [`Lines`](crate::sources::Lines) gives: raw
//! lines stored contiguously, so that a batch of ten thousand lines costs a
//! handful of allocations, not ten thousand (the `logs` stages' parsed and
//! enriched batches are stored the same way).

use crate::sources::split;
use serde::{Deserialize, Serialize};

/// A batch of raw input lines, stored back to back without their terminators
/// (the LF and one trailing CR are already removed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineBatch {
    /// 1-based number of the first line of the batch in the whole input.
    pub first_line: u64,
    /// The lines' bytes, concatenated.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    /// End offset in `data` of each line: line `i` is `data[ends[i-1]..ends[i]]`
    /// (with `ends[-1]` taken as 0).
    pub ends: Vec<u32>,
}

impl LineBatch {
    /// An empty batch whose first line will be `first_line`.
    pub fn new(first_line: u64) -> Self {
        LineBatch {
            first_line,
            data: Vec::new(),
            ends: Vec::new(),
        }
    }

    /// Cuts text made by `LineReader::fill_text`
    /// back into lines: each ends with LF, and one CR before it is removed,
    /// exactly as the reader would have cut them. Text that does not end
    /// with LF, or too large for `u32` offsets, is refused.
    pub fn from_text(first_line: u64, text: &[u8]) -> Result<Self, String> {
        let mut batch = LineBatch::new(first_line);
        batch.extend_from_text(text)?;
        Ok(batch)
    }

    /// [`from_text`](Self::from_text) into this batch (its buffers reused):
    /// appends the lines of `text`.
    pub fn extend_from_text(&mut self, text: &[u8]) -> Result<(), String> {
        if !split::is_whole(text) {
            return Err("chunk text does not end with a line feed".into());
        }
        if u32::try_from(self.data.len() + text.len()).is_err() {
            return Err("chunk text over 4 GiB".into());
        }
        self.data.reserve(text.len());
        self.extend_from_lines(text, usize::MAX).map(drop)
    }

    /// Appends the first lines of `text` that end with a line feed, at
    /// most `max` of them (a CR before the LF dropped, as in
    /// [`extend_from_text`](Self::extend_from_text)); returns the bytes they
    /// took, line feeds included, and their count. The rest of `text` (a
    /// line cut off at its end, or lines past `max`) is left alone.
    pub fn extend_from_lines(&mut self, text: &[u8], max: usize) -> Result<(usize, usize), String> {
        let (mut used, mut lines) = (0, 0);
        for (line, end) in split::lines(text).take(max) {
            let at = u32::try_from(self.data.len() + line.len())
                .map_err(|_| "chunk text over 4 GiB".to_string())?;
            self.data.extend_from_slice(line);
            self.ends.push(at);
            used = end;
            lines += 1;
        }
        Ok((used, lines))
    }

    /// Number of lines in the batch.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when the batch holds no line.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Takes the first line of `text` (which must end with a line feed;
    /// one CR before it is dropped) as this batch's first line by taking
    /// `text`'s buffer over, without copying the line; `text` is left
    /// holding the bytes after it. Returns the bytes the line took, its
    /// line feed included; `None` (nothing changed) when the batch is not
    /// empty, `text` holds no whole line, or the line is too long for the
    /// batch's `u32` offsets.
    pub fn adopt_first_line(&mut self, text: &mut Vec<u8>) -> Option<usize> {
        if !self.data.is_empty() || !self.ends.is_empty() {
            return None;
        }
        let lf = split::first_lf(text)?;
        let len = split::strip_cr(&text[..lf]).len();
        let end = u32::try_from(len).ok()?;
        // The batch's own (empty) buffer takes the bytes after the line.
        let mut rest = std::mem::take(&mut self.data);
        rest.extend_from_slice(&text[lf + 1..]);
        std::mem::swap(text, &mut rest);
        rest.truncate(len);
        // The bytes read past the line are given back (a shrink in place).
        rest.shrink_to_fit();
        self.data = rest;
        self.ends.push(end);
        Some(lf + 1)
    }

    /// Appends one line (without its terminator). Fails when the batch's data
    /// would exceed 4 GiB, which the `u32` offsets cannot address.
    pub fn push_line(&mut self, line: &[u8]) -> Result<(), LineTooLong> {
        let end = self.data.len() + line.len();
        let end = u32::try_from(end).map_err(|_| LineTooLong)?;
        self.data.extend_from_slice(line);
        self.ends.push(end);
        Ok(())
    }

    /// Line `i` of the batch (0-based within the batch).
    pub fn line(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.data[start..self.ends[i] as usize]
    }

    /// Iterates over `(line_number, line)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        let mut start = 0usize;
        self.ends.iter().enumerate().map(move |(i, &end)| {
            let line = &self.data[start..end as usize];
            start = end as usize;
            (self.first_line + i as u64, line)
        })
    }
}

impl crate::stage::Records for LineBatch {
    fn record_count(&self) -> usize {
        self.len()
    }
}

/// A line too long to be addressed by a batch's `u32` offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_and_iterate() {
        let mut b = LineBatch::new(7);
        b.push_line(b"a").unwrap();
        b.push_line(b"").unwrap();
        b.push_line(b"ccc").unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(b.line(1), b"");
        let all: Vec<_> = b.iter().collect();
        assert_eq!(all, vec![(7, &b"a"[..]), (8, &b""[..]), (9, &b"ccc"[..])]);
    }

    #[test]
    fn from_text_cuts_lines_and_one_cr() {
        let b = LineBatch::from_text(3, b"a\r\n\nz\r\r\n\r\n").unwrap();
        let all: Vec<_> = b.iter().collect();
        assert_eq!(
            all,
            vec![
                (3, &b"a"[..]),
                (4, &b""[..]),
                (5, &b"z\r"[..]),
                (6, &b""[..])
            ]
        );
        assert!(LineBatch::from_text(1, b"").unwrap().is_empty());
        assert!(LineBatch::from_text(1, b"a\nb").is_err());
    }

    #[test]
    fn extend_from_lines_takes_whole_lines_up_to_the_max() {
        let mut b = LineBatch::new(1);
        assert_eq!(b.extend_from_lines(b"a\r\nbb\ncut", 5), Ok((6, 2)));
        assert_eq!(b.extend_from_lines(b"c\nd\ne\n", 2), Ok((4, 2)));
        assert_eq!(b.extend_from_lines(b"e\n", 0), Ok((0, 0)));
        assert_eq!(b.extend_from_lines(b"no line feed", 3), Ok((0, 0)));
        let all: Vec<_> = b.iter().map(|(_, l)| l).collect();
        assert_eq!(all, vec![&b"a"[..], b"bb", b"c", b"d"]);
    }

    /// The first line is taken (with the buffer it is in), cut as
    /// `extend_from_lines` cuts it; the rest is left, and an empty batch
    /// or a whole line are required.
    #[test]
    fn adopt_first_line_takes_the_buffer_over() {
        let mut text = b"long\r\nnext\ncut".to_vec();
        let mut b = LineBatch::new(5);
        assert_eq!(b.adopt_first_line(&mut text), Some(6));
        assert_eq!(text, b"next\ncut");
        assert_eq!(b.extend_from_lines(&text, 9), Ok((5, 1)));
        let all: Vec<_> = b.iter().collect();
        assert_eq!(all, vec![(5, &b"long"[..]), (6, &b"next"[..])]);
        // Not into a batch that holds a line, nor without a line feed.
        let mut more = b"x\n".to_vec();
        assert_eq!(b.adopt_first_line(&mut more), None);
        assert_eq!(more, b"x\n");
        let mut open = b"no line feed".to_vec();
        assert_eq!(LineBatch::new(1).adopt_first_line(&mut open), None);
        assert_eq!(open, b"no line feed");
    }

    proptest::proptest! {
        /// Text fed in pieces cut anywhere, with the unused rest carried
        /// over (as a worker reads blocks), gives the batches that
        /// `from_text` gives on parts of `max` lines.
        #[test]
        fn lines_fed_in_pieces_make_the_same_batches(
            lines in proptest::collection::vec("[a-c\r]{0,12}", 0..30),
            cuts in proptest::collection::vec(0usize..400, 0..8),
            max in 1usize..7,
        ) {
            let text: Vec<u8> = lines.iter().flat_map(|l| l.bytes().chain([b'\n'])).collect();
            let mut expected = Vec::new();
            for part in lines.chunks(max) {
                let t: Vec<u8> = part.iter().flat_map(|l| l.bytes().chain([b'\n'])).collect();
                expected.push(LineBatch::from_text(0, &t).unwrap().iter().map(|(_, l)| l.to_vec()).collect::<Vec<_>>());
            }
            let mut ends: Vec<usize> = cuts.into_iter().map(|c| c.min(text.len())).collect();
            ends.push(text.len());
            ends.sort();
            let (mut got, mut batch, mut carry, mut from) = (Vec::new(), LineBatch::new(0), Vec::new(), 0);
            for end in ends {
                carry.extend_from_slice(&text[from..end]);
                from = end;
                loop {
                    let (used, _) = batch.extend_from_lines(&carry, max - batch.len()).unwrap();
                    carry.drain(..used);
                    if batch.len() < max {
                        break;
                    }
                    got.push(batch.iter().map(|(_, l)| l.to_vec()).collect::<Vec<_>>());
                    batch = LineBatch::new(0);
                }
            }
            if !batch.is_empty() {
                got.push(batch.iter().map(|(_, l)| l.to_vec()).collect());
            }
            proptest::prop_assert!(carry.is_empty());
            proptest::prop_assert_eq!(got, expected);
        }
    }
}
