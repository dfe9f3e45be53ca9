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

/// Bytes counted at a time by [`whole_lines`]: small enough that only one
/// such block is searched LF by LF for the exact end, large enough that
/// the per-block call costs nothing.
pub(crate) const COUNT_BLOCK: usize = 16 << 10;

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
/// LF: each byte is touched once, however many lines are taken.
pub(crate) fn whole_lines(text: &[u8], max: usize) -> (usize, usize) {
    if max == 0 {
        return (0, 0);
    }
    let mut taken = 0;
    // The end of the last block whose LFs were all taken.
    let mut end = 0;
    for (i, block) in text.chunks(COUNT_BLOCK).enumerate() {
        let lfs = count(block);
        if lfs == 0 {
            continue;
        }
        let start = i * COUNT_BLOCK;
        if taken + lfs < max {
            taken += lfs;
            end = start + last_end(block).unwrap_or(0);
            continue;
        }
        let nth = memchr::memchr_iter(LF, block).nth(max - taken - 1);
        return (nth.map_or(end, |p| start + p + 1), max);
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
}
