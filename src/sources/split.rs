//! The one place that says where a line ends. Every reader, cutter and
//! decoder of line-based input — the stream reader, the range cutter, the
//! text and block decoders of lanes and workers, the formats of
//! [`ParsedLines`](super::ParsedLines) — finds its line boundaries here, so
//! that a file cut anywhere, in any mode, splits into the same lines.
//!
//! The rule: a line ends with a line feed (LF); one CR right before the LF
//! is part of the terminator, not of the line; a last line without LF is a
//! line (the readers that see the end of the input add the LF it lacks).
//! Buffers are searched with `memchr`'s vectorised search and count.

/// The most bytes [`whole_lines`] counts at a time: small enough that
/// the block holding the last line wanted costs little to count in vain,
/// large enough that the per-block call costs nothing.
pub(crate) const COUNT_BLOCK: usize = 16 << 10;

/// The first block [`whole_lines`] counts, before it knows how long the
/// lines are: a batch of a few short lines is not charged a whole
/// [`COUNT_BLOCK`].
const FIRST_BLOCK: usize = 1 << 10;

/// The line feed that ends every line.
pub(crate) const LF: u8 = b'\n';

/// `line` (its bytes before the LF) without the CR of a CR LF.
pub(crate) fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The length of a line whose `raw_len` bytes before its LF end with
/// `last`: one CR before the LF is part of the terminator. For a line
/// gathered across read blocks, whose bytes are not in one slice.
pub(crate) fn content_len(raw_len: usize, last: Option<u8>) -> usize {
    raw_len - usize::from(raw_len > 0 && last == Some(b'\r'))
}

/// Whether `text` is whole lines: empty, or ending with a LF (the text of
/// a chunk always is).
pub(crate) fn is_whole(text: &[u8]) -> bool {
    text.last().is_none_or(|&b| b == LF)
}

/// The offset just after the first LF of `text`: the end of its first
/// whole line, terminator included.
pub(crate) fn first_end(text: &[u8]) -> Option<usize> {
    memchr::memchr(LF, text).map(|p| p + 1)
}

/// The offset of the first LF of `text`.
pub(crate) fn first_lf(text: &[u8]) -> Option<usize> {
    memchr::memchr(LF, text)
}

/// The offset just after the last LF of `text`: the end of its last whole
/// line.
pub(crate) fn last_end(text: &[u8]) -> Option<usize> {
    memchr::memrchr(LF, text).map(|p| p + 1)
}

/// The number of whole lines (LFs) in `text`.
pub(crate) fn count(text: &[u8]) -> usize {
    memchr::memchr_iter(LF, text).count()
}

/// The whole lines at the start of `text`, at most `max` of them: returns
/// the bytes they take (LFs included) and their number. A line cut off at
/// the end of `text` is not taken.
///
/// LFs are counted block by block (memchr's vectorised count) until the
/// block that holds the `max`-th one, and only that block is searched LF by
/// LF, from its nearer end: each byte is touched once, however many lines
/// are taken. Each block is sized to the lines still wanted at the mean
/// length of those counted so far (at most [`COUNT_BLOCK`]), so that
/// little is counted past the last line taken, however few are wanted.
pub(crate) fn whole_lines(text: &[u8], max: usize) -> (usize, usize) {
    if max == 0 {
        return (0, 0);
    }
    let mut taken = 0;
    // The end of the last block whose LFs were all taken.
    let mut end = 0;
    let mut start = 0;
    let mut size = FIRST_BLOCK;
    while start < text.len() {
        let stop = text.len().min(start + size);
        let block = &text[start..stop];
        let lfs = count(block);
        if lfs > 0 && taken + lfs >= max {
            // The block's `need`-th LF, searched for from the nearer end.
            let need = max - taken;
            let nth = if need <= lfs / 2 {
                memchr::memchr_iter(LF, block).nth(need - 1)
            } else {
                memchr::memrchr_iter(LF, block).nth(lfs - need)
            };
            return (nth.map_or(end, |p| start + p + 1), max);
        }
        if lfs > 0 {
            taken += lfs;
            end = start + last_end(block).unwrap_or(0);
        }
        start = stop;
        size = if taken == 0 {
            (size * 2).min(COUNT_BLOCK)
        } else {
            // The lines still wanted at the mean length so far, and an
            // eighth more, so that a slightly longer run of lines is not
            // left to a block of its own.
            let wanted = (max - taken).saturating_mul(end / taken);
            wanted.saturating_add(wanted / 8).clamp(64, COUNT_BLOCK)
        };
    }
    (end, taken)
}

/// The whole lines of `text`, in order, each as `(line, end)`: the line
/// without its terminator (LF, and one CR before it) and the offset just
/// after its LF. Bytes after the last LF are not a line here: see
/// [`Split::rest`].
pub(crate) fn lines(text: &[u8]) -> Split<'_> {
    Split {
        text,
        start: 0,
        lfs: memchr::memchr_iter(LF, text),
    }
}

/// The iterator [`lines`] returns.
pub(crate) struct Split<'a> {
    text: &'a [u8],
    start: usize,
    lfs: memchr::Memchr<'a>,
}

impl<'a> Split<'a> {
    /// The bytes after the last line yielded so far.
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.text[self.start..]
    }
}

impl<'a> Iterator for Split<'a> {
    type Item = (&'a [u8], usize);

    fn next(&mut self) -> Option<Self::Item> {
        let lf = self.lfs.next()?;
        let line = strip_cr(&self.text[self.start..lf]);
        self.start = lf + 1;
        Some((line, self.start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of `text` by the simplest reading of the rule.
    fn reference(text: &[u8]) -> Vec<&[u8]> {
        let mut out: Vec<&[u8]> = text.split(|&b| b == LF).collect();
        out.pop();
        out.into_iter().map(strip_cr).collect()
    }

    #[test]
    fn lines_end_at_lf_and_drop_one_cr() {
        let text = b"a\r\nb\n\r\r\n\nno end";
        let mut split = lines(text);
        let got: Vec<_> = split.by_ref().collect();
        assert_eq!(
            got,
            [
                (&b"a"[..], 3),
                (&b"b"[..], 5),
                (&b"\r"[..], 8),
                (&b""[..], 9)
            ]
        );
        assert_eq!(split.rest(), b"no end");
        assert_eq!(count(text), 4);
        assert_eq!((first_end(text), last_end(text)), (Some(3), Some(9)));
        assert_eq!((first_end(b"x"), last_end(b"")), (None, None));
    }

    #[test]
    fn whole_lines_agree_with_the_reference_across_blocks() {
        // Lines of every length around the counting block, short and long.
        let mut text = Vec::new();
        for len in [
            0,
            1,
            5,
            COUNT_BLOCK - 1,
            COUNT_BLOCK,
            3,
            2 * COUNT_BLOCK + 7,
            0,
            9,
        ] {
            text.extend(std::iter::repeat_n(b'x', len));
            text.extend_from_slice(if len % 2 == 0 { b"\r\n" } else { b"\n" });
        }
        text.extend_from_slice(b"tail");
        let all = reference(&text);
        for max in 0..=all.len() + 2 {
            let (bytes, n) = whole_lines(&text, max);
            assert_eq!(n, max.min(all.len()), "max {max}");
            let expected: usize = lines(&text).take(n).last().map_or(0, |(_, end)| end);
            assert_eq!(bytes, expected, "max {max}");
        }
        assert_eq!(whole_lines(b"no lf", 3), (0, 0));
        let got: Vec<_> = lines(&text).map(|(l, _)| l).collect();
        assert_eq!(got, all);
    }

    /// Many lines of uneven lengths: the blocks sized by the mean length
    /// so far end anywhere, and every count still agrees.
    #[test]
    fn whole_lines_agree_with_the_reference_for_every_count() {
        let mut text = Vec::new();
        for i in 0..3000usize {
            text.extend(std::iter::repeat_n(
                b'y',
                (i * 37) % 300 + (i % 97) * (i % 5),
            ));
            text.push(LF);
        }
        let ends: Vec<usize> = lines(&text).map(|(_, end)| end).collect();
        for max in (0..=ends.len() + 1).step_by(7).chain([1, 2, 3, ends.len()]) {
            let (bytes, n) = whole_lines(&text, max);
            assert_eq!(n, max.min(ends.len()), "max {max}");
            assert_eq!(bytes, if n == 0 { 0 } else { ends[n - 1] }, "max {max}");
        }
    }
}
