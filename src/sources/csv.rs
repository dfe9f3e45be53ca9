//! [`Csv`]: records of a CSV file, one per line, through the `csv` crate.

use super::parsed::{LineError, LineFormat, ParsedLines};
use super::split;
use crate::workloads::logs::input::InputSpec;
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::io::{Read, Seek, SeekFrom};
use std::marker::PhantomData;

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

    fn parse(&self, text: &[u8], out: &mut Vec<T>) -> Result<(), LineError> {
        // Building a reader costs as much as reading a few hundred short
        // records, and batches may be that small: each thread keeps one
        // per delimiter and feeds it batch after batch.
        READERS.with(|readers| {
            let mut readers = readers.borrow_mut();
            let reader = match readers.iter().position(|(d, _)| *d == self.delimiter) {
                Some(i) => &mut readers[i].1,
                None => {
                    let reader = csv::ReaderBuilder::new()
                        .has_headers(false)
                        .flexible(true)
                        .delimiter(self.delimiter)
                        .from_reader(Feed::default());
                    readers.push((self.delimiter, reader));
                    &mut readers.last_mut().expect("just pushed").1
                }
            };
            let feed = reader.get_mut();
            feed.text.clear();
            feed.text.extend_from_slice(text);
            reader
                .seek_raw(std::io::SeekFrom::Start(0), csv::Position::new())
                .map_err(|e| LineError {
                    index: 0,
                    message: format!("cannot start reading: {e}"),
                })?;
            let result = parse_lines(reader, text, out);
            reader.get_mut().text.clear();
            result
        })
    }
}

thread_local! {
    /// This thread's CSV readers, by delimiter (see [`CsvRows::parse`]).
    static READERS: RefCell<Vec<(u8, csv::Reader<Feed>)>> = const { RefCell::new(Vec::new()) };
}

/// The text a thread's reader reads: one batch's lines at a time.
#[derive(Default)]
struct Feed {
    text: Vec<u8>,
    pos: usize,
}

impl Read for Feed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = &self.text[self.pos.min(self.text.len())..];
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
/// into `out`; see [`Csv`] for what is refused.
fn parse_lines<T: DeserializeOwned>(
    reader: &mut csv::Reader<Feed>,
    text: &[u8],
    out: &mut Vec<T>,
) -> Result<(), LineError> {
    let mut record = csv::StringRecord::new();
    let mut line_start = 0usize;
    let mut index = 0usize;
    while line_start < text.len() {
        let line_end =
            split::first_end(&text[line_start..]).map_or(text.len(), |end| line_start + end);
        let err = |message: String| LineError { index, message };
        // The reader would skip an empty line: refuse it here, so that
        // every record is checked against its own line.
        if matches!(&text[line_start..line_end], b"\n" | b"\r\n") {
            return Err(err("empty line (a CSV record was expected)".into()));
        }
        let read = reader
            .read_record(&mut record)
            .map_err(|e| err(format!("not a CSV record: {e}")))?;
        // The reader stops after the record's terminator: the line feed,
        // or the CR of a CR LF (whose LF it skips on the next read). A
        // field holding a line feed comes from a quote left open: at the
        // end of the text, the record ends there anyway.
        let end = reader.position().byte() as usize;
        let whole = end == line_end || (end + 1 == line_end && text[end - 1] == b'\r');
        if !read || !whole || record.iter().any(|f| f.contains('\n')) {
            return Err(err(
                "the record does not end at the end of its line (a quoted field \
                 holding a line break, or a bare CR): this source reads one record per line"
                    .into(),
            ));
        }
        out.push(
            record
                .deserialize(None)
                .map_err(|e| err(format!("cannot read the record: {e}")))?,
        );
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
