//! [`Csv`]: records of a CSV file, one per line, through the `csv` crate.

use super::parsed::{LineError, LineFormat, ParsedLines};
use crate::sources::lines::input::InputSpec;
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::io::{Read, Seek, SeekFrom};
use std::marker::PhantomData;
use std::ops::ControlFlow;

/// Records of one CSV input (a file, a gzip file or standard input): the
/// first line is the header and is skipped; every other line is one
/// record, deserialized into `T` by column position (the order of `T`'s
/// fields), with `csv`'s quoting rules. Build it with [`Csv::new`].
///
/// A line that is not exactly one record is an error naming the record,
/// in every mode: a quoted field holding a line break (the record would
/// span lines, and a cut at that line feed would split it), a bare CR
/// inside an unquoted field, an empty line. See the [module](crate::sources)
/// text.
pub type Csv<T> = ParsedLines<CsvRows<T>>;

/// The [`LineFormat`] of [`Csv`]: one CSV record per line into `T`.
pub struct CsvRows<T> {
    delimiter: u8,
    _record: PhantomData<fn() -> T>,
}

impl<T> Clone for CsvRows<T> {
    fn clone(&self) -> Self {
        CsvRows {
            delimiter: self.delimiter,
            _record: PhantomData,
        }
    }
}

impl<T: DeserializeOwned + Send + 'static> Csv<T> {
    /// Records of `input`, comma-separated, after its header line (nothing
    /// is opened yet).
    pub fn new(input: InputSpec) -> Self {
        Self::with_delimiter(input, b',')
    }

    /// Records of `input` separated by `delimiter` (`b'\t'` for TSV).
    pub fn with_delimiter(input: InputSpec, delimiter: u8) -> Self {
        ParsedLines::with_format(
            vec![input],
            CsvRows {
                delimiter,
                _record: PhantomData,
            },
        )
    }
}

impl<T: DeserializeOwned + Send + 'static> LineFormat for CsvRows<T> {
    type Record = T;

    fn has_header(&self) -> bool {
        true
    }

    fn parse_each(
        &self,
        text: &[u8],
        each: &mut dyn FnMut(T) -> ControlFlow<()>,
    ) -> Result<(), LineError> {
        // Building a reader costs as much as reading a few hundred short
        // records, and batches may be that small: each thread keeps one
        // per delimiter, with its record buffer, and feeds it batch after
        // batch.
        PARSERS.with(|parsers| {
            let mut parsers = parsers.borrow_mut();
            let parser = match parsers.iter().position(|p| p.delimiter == self.delimiter) {
                Some(i) => &mut parsers[i],
                None => {
                    parsers.push(Parser::new(self.delimiter));
                    parsers.last_mut().expect("just pushed")
                }
            };
            parser.reader.get_mut().lend(text);
            parser
                .reader
                .seek_raw(std::io::SeekFrom::Start(0), csv::Position::new())
                .map_err(|e| LineError {
                    index: 0,
                    message: format!("cannot start reading: {e}"),
                })?;
            let result = parse_lines(&mut parser.reader, &mut parser.record, text, each);
            parser.reader.get_mut().lend(&[]);
            result
        })
    }
}

thread_local! {
    /// This thread's CSV parsers, by delimiter (see [`CsvRows::parse`]).
    static PARSERS: RefCell<Vec<Parser>> = const { RefCell::new(Vec::new()) };
}

/// A thread's CSV reader for one delimiter, and the record it reads into
/// (kept, so that its buffers are not grown again for every batch).
struct Parser {
    delimiter: u8,
    reader: csv::Reader<Feed>,
    record: csv::StringRecord,
}

impl Parser {
    fn new(delimiter: u8) -> Self {
        Parser {
            delimiter,
            reader: csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .delimiter(delimiter)
                .from_reader(Feed::default()),
            record: csv::StringRecord::new(),
        }
    }
}

/// The text a thread's reader reads: one batch's lines at a time, read
/// where they lie (the reader copies them into its own buffer once, as it
/// would from a file).
struct Feed {
    text: *const u8,
    len: usize,
    pos: usize,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            text: std::ptr::NonNull::<u8>::dangling().as_ptr(),
            len: 0,
            pos: 0,
        }
    }
}

impl Feed {
    /// Reads `text` from now on; `&[]` before `text` goes out of scope.
    fn lend(&mut self, text: &[u8]) {
        self.text = text.as_ptr();
        self.len = text.len();
        self.pos = 0;
    }
}

impl Read for Feed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // SAFETY: `text..text+len` is the slice last lent, which outlives
        // every read: only `parse_each` reads, after it lent its own
        // text, and it lends `&[]` before it returns. An error or a panic
        // in between leaves a slice lent that may be gone, but nothing
        // reads it: the next `parse_each` lends its own first.
        let text = unsafe { std::slice::from_raw_parts(self.text, self.len) };
        let rest = &text[self.pos.min(text.len())..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

impl Seek for Feed {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        match to {
            SeekFrom::Start(p) => self.pos = p as usize,
            _ => {
                return Err(std::io::Error::other(
                    "the batch reader seeks to the start only",
                ))
            }
        }
        Ok(self.pos as u64)
    }
}

/// One record per line of `text` (which `reader` reads from its start)
/// to `each`; see [`Csv`] for what is refused.
///
/// The lines are not searched for here: `text` is whole lines (its line
/// feeds were counted when it was read), and the reader counts the line
/// feeds it consumes. A record is its line exactly when the reader stops
/// right after the line's LF having consumed one LF per record so far, or
/// on the CR of a CR LF (whose LF it consumes at the next record) having
/// consumed one fewer. A record that took a line feed into a quoted field,
/// or that ended at a bare CR, or a skipped empty line, breaks that count
/// at the record it happens in.
fn parse_lines<T: DeserializeOwned>(
    reader: &mut csv::Reader<Feed>,
    record: &mut csv::StringRecord,
    text: &[u8],
    each: &mut dyn FnMut(T) -> ControlFlow<()>,
) -> Result<(), LineError> {
    let mut line_start = 0usize;
    let mut index = 0usize;
    while line_start < text.len() {
        let err = |message: String| LineError { index, message };
        // The reader would skip an empty line: refuse it here, so that
        // every record is checked against its own line.
        let rest = &text[line_start..];
        if rest.starts_with(b"\n") || rest.starts_with(b"\r\n") {
            return Err(err("empty line (a CSV record was expected)".into()));
        }
        let read = reader
            .read_record(record)
            .map_err(|e| err(format!("not a CSV record: {e}")))?;
        let position = reader.position();
        let end = position.byte() as usize;
        let lfs = position.line().saturating_sub(1);
        let records = index as u64 + 1;
        let line_end = match (end.checked_sub(1).map(|i| text[i]), text.get(end)) {
            (Some(b'\n'), _) if lfs == records => Some(end),
            (Some(b'\r'), Some(b'\n')) if lfs + 1 == records => Some(end + 1),
            _ => None,
        };
        // A quote left open on the text's last line runs to the text's
        // end, which is a line end: only there are the fields searched.
        let whole = match line_end {
            Some(e) if e == text.len() => !record.iter().any(|f| f.contains('\n')),
            Some(_) => true,
            None => false,
        };
        let Some(line_end) = line_end.filter(|_| read && whole) else {
            return Err(err(
                "the record does not end at the end of its line (a quoted field \
                 holding a line break, or a bare CR): this source reads one record per line"
                    .into(),
            ));
        };
        let parsed = record
            .deserialize(None)
            .map_err(|e| err(format!("cannot read the record: {e}")))?;
        if each(parsed).is_break() {
            return Ok(());
        }
        line_start = line_end;
        index += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Row {
        id: u32,
        name: String,
    }

    fn rows() -> CsvRows<Row> {
        CsvRows {
            delimiter: b',',
            _record: PhantomData,
        }
    }

    #[test]
    fn one_record_per_line_quotes_and_crlf_included() {
        let mut out = Vec::new();
        rows()
            .parse(
                b"1,plain\r\n2,\"with, comma\"\n3,\"say \"\"hi\"\"\"\n",
                &mut out,
            )
            .unwrap();
        let names: Vec<_> = out.iter().map(|r| (r.id, r.name.as_str())).collect();
        assert_eq!(names, [(1, "plain"), (2, "with, comma"), (3, "say \"hi\"")]);
    }

    #[test]
    fn a_record_spanning_lines_is_refused_naming_it() {
        let mut out = Vec::new();
        let e = rows()
            .parse(b"1,a\n2,\"two\nlines\"\n3,c\n", &mut out)
            .unwrap_err();
        assert_eq!(e.index, 1, "{e:?}");
        assert!(e.message.contains("line break"), "{e:?}");
    }

    /// A thread's reader starts afresh on every batch, also after an error
    /// left it inside a quoted field.
    #[test]
    fn batches_after_a_failed_one_read_from_their_own_start() {
        assert!(rows().parse(b"1,\"open\n", &mut Vec::new()).is_err());
        let mut out = Vec::new();
        rows().parse(b"7,x\n8,y\n", &mut out).unwrap();
        assert_eq!(
            out,
            [
                Row {
                    id: 7,
                    name: "x".into()
                },
                Row {
                    id: 8,
                    name: "y".into()
                }
            ]
        );
    }

    /// Good lines with either terminator, and one bad line at every
    /// place: the error names the bad line, whatever came before it.
    #[test]
    fn every_kind_of_bad_line_is_named_at_every_place() {
        let good: [&[u8]; 4] = [b"1,a\n", b"2,\"b, c\"\r\n", b"3,\"d\"\"e\"\n", b"4,\r\n"];
        let bad: [(&[u8], &str); 6] = [
            (b"\n", "empty line"),
            (b"\r\n", "empty line"),
            (b"5,\"x\ny\"\n", "line break"),
            (b"6,\"x\r\ny\"\r\n", "line break"),
            (b"7,a\rb\n", "bare CR"),
            (b"8,\"open\n", "line break"),
        ];
        for (line, what) in bad {
            for at in 0..6 {
                let mut text = Vec::new();
                for i in 0..6 {
                    if i == at {
                        text.extend_from_slice(line);
                    }
                    text.extend_from_slice(good[i % good.len()]);
                }
                let e = rows().parse(&text, &mut Vec::new()).unwrap_err();
                assert_eq!(
                    e.index,
                    at,
                    "{:?} at {at}: {e:?}",
                    String::from_utf8_lossy(line)
                );
                assert!(e.message.contains(what), "{e:?}");
            }
        }
        // And without a bad line, every record, in order.
        let text: Vec<u8> = (0..9).flat_map(|i| good[i % good.len()].to_vec()).collect();
        let mut out = Vec::new();
        rows().parse(&text, &mut out).unwrap();
        let ids: Vec<u32> = out.iter().map(|r| r.id).collect();
        assert_eq!(ids, [1, 2, 3, 4, 1, 2, 3, 4, 1]);
        assert_eq!(out[3].name, "");
    }

    #[test]
    fn empty_lines_and_bad_fields_are_refused_naming_them() {
        let mut out = Vec::new();
        let e = rows().parse(b"1,a\n\n3,c\n", &mut out).unwrap_err();
        assert_eq!(
            (e.index, e.message.contains("empty line")),
            (1, true),
            "{e:?}"
        );
        let e = rows().parse(b"1,a\nx,b\n", &mut Vec::new()).unwrap_err();
        assert_eq!(e.index, 1, "{e:?}");
        assert!(e.message.contains("cannot read the record"), "{e:?}");
    }
}
