//! [`ParsedLines`]: a source of records, one per input line, decoded by a
//! [`LineFormat`] wherever the lines are read (the source's thread, a
//! reading lane, a worker process).

use super::split;
use crate::file_range::FileRange;
use crate::sources::{InputSpec, Lines};
use crate::stage::{BatchInfo, ChunkDecoder, ChunkSource, FileChunkSource, Source, StageError};
use std::ops::ControlFlow;

/// How the text of a line becomes a record. [`ParsedLines`] hands it whole
/// lines only, so any mode and any cut of the input give the same records.
pub trait LineFormat: Clone + Send + Sync + 'static {
    /// The record a line becomes.
    type Record: Send + 'static;

    /// Whether the first line of the input is a header, not a record (it is
    /// then skipped; record numbers start at the line after it).
    fn has_header(&self) -> bool {
        false
    }

    /// Hands `each` exactly one record per line of `text` (whole lines,
    /// each ending with a line feed; a CR before it is part of the line),
    /// in order, one at a time: a record is made only once `each` has
    /// taken the one before, so that a pipeline of record stages
    /// ([`PipelineBuilder::map`](crate::PipelineBuilder::map)) runs each
    /// record to the aggregate before the next is decoded. When `each`
    /// returns [`ControlFlow::Break`] the parse stops there and returns
    /// `Ok`. A line that is not one record is an error naming it.
    fn parse_each(
        &self,
        text: &[u8],
        each: &mut dyn FnMut(Self::Record) -> ControlFlow<()>,
    ) -> Result<(), LineError>;

    /// Appends to `out` one record per line of `text`
    /// ([`parse_each`](Self::parse_each) into a `Vec`).
    fn parse(&self, text: &[u8], out: &mut Vec<Self::Record>) -> Result<(), LineError> {
        self.parse_each(text, &mut |record| {
            out.push(record);
            ControlFlow::Continue(())
        })
    }
}

/// A line that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// The line, 0-based within the text given to [`LineFormat::parse`].
    pub index: usize,
    /// What was wrong and what was expected.
    pub message: String,
}

impl LineError {
    /// The error as a [`StageError`], naming the line by its record
    /// number, the text's first line being record `first` (numbered as
    /// [`BatchInfo::first_line`] numbers it).
    fn into_stage_error(self, what: &str, first: u64) -> StageError {
        StageError::new(format!(
            "{what}: record {}: {}",
            first + self.index as u64,
            self.message
        ))
    }
}

/// The default of [`ParsedLines::with_batch_bytes`]: a quarter of this
/// machine's first-level data cache, read once per process (Linux:
/// `/sys/devices/system/cpu/cpu0/cache`); 12 KiB where it cannot be read.
///
/// Why the data cache: a batch's records are written by the decoder, then
/// read and rewritten by each stage in turn, then folded into the
/// aggregate. While the batch's `Vec`, the strings its records own and the
/// next stage's `Vec` fit in the first-level cache (about four times the
/// `Vec`'s bytes), each pass finds them there; a batch of several times
/// that misses the cache on every pass, and the aggregate's own lookups
/// compete with it. Measured on a 48 KiB cache (docs/performance.md,
/// "Batch size"), 12 KiB batches cost a CSV job 3 % and a JSON-lines job
/// 4 % fewer estimated cycles than 48 KiB ones, with glibc's allocator and
/// with mimalloc; much smaller ones pay more per batch than they save.
pub fn default_batch_bytes() -> usize {
    static BYTES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BYTES.get_or_init(|| l1_data_cache_bytes().map_or(12 << 10, |b| (b / 4).max(4 << 10)))
}

/// The size of the first-level data cache of the first CPU, when the
/// system says.
fn l1_data_cache_bytes() -> Option<usize> {
    let dir = std::path::Path::new("/sys/devices/system/cpu/cpu0/cache");
    std::fs::read_dir(dir).ok()?.flatten().find_map(|entry| {
        let read = |name: &str| std::fs::read_to_string(entry.path().join(name)).ok();
        let level = read("level")?;
        let kind = read("type")?;
        (level.trim() == "1" && kind.trim() == "Data")
            .then(|| parse_cache_size(read("size")?.trim()))
            .flatten()
    })
}

/// `"48K"` as 49,152 bytes (the kernel's form: a number, then `K` or `M`).
fn parse_cache_size(text: &str) -> Option<usize> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let n: usize = digits.parse().ok()?;
    let scale = match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        _ => return None,
    };
    n.checked_mul(scale).filter(|&b| b > 0)
}

/// Records decoded from lines by `F`; see the [module](crate::sources)
/// text. [`Csv`](super::Csv) and [`JsonLines`](super::JsonLines) are this
/// with their formats.
pub struct ParsedLines<F: LineFormat> {
    lines: Lines,
    format: F,
    /// The name errors give the input.
    what: String,
    /// The header line is still to be skipped.
    header_pending: bool,
    /// Text of the lines of the batch being decoded (reused).
    text: Vec<u8>,
    /// The next batch's `Vec`, allocated as the last one was filled (see
    /// [`Spare`]).
    spare: Spare<F::Record>,
    /// Number of the next batch's first record, when read as a stream.
    next_record: u64,
    /// Most bytes of records (`size_of::<F::Record>()` each) in a batch.
    batch_bytes: usize,
    /// Skipping the header of a file cut into ranges failed: the error the
    /// next pull of ranges reports.
    failed: Option<StageError>,
}

impl<F: LineFormat> ParsedLines<F> {
    /// Records of `format` read from `inputs`, in order (nothing is opened
    /// yet). A format with a header reads one input only: the header is
    /// the first line of the first input.
    pub fn with_format(inputs: Vec<InputSpec>, format: F) -> Self {
        let what = match inputs.as_slice() {
            [one] => format!("input '{}'", one.display_name()),
            _ => "input".to_string(),
        };
        ParsedLines {
            lines: Lines::new(inputs),
            header_pending: format.has_header(),
            format,
            what,
            text: Vec::new(),
            spare: Spare::default(),
            next_record: 1,
            failed: None,
            batch_bytes: default_batch_bytes(),
        }
    }

    /// Batches of at most `bytes` of records (counted as
    /// `size_of::<F::Record>()` each, the size of the batch's `Vec`), as
    /// well as at most the run's batch size in records; at least one
    /// record. Default [`default_batch_bytes`]. Results do not depend on
    /// it; speed does (see the constant's docs).
    ///
    /// It sizes every batch of this source's records: serial mode's,
    /// pipeline mode's stage actors', and the parts its
    /// [`ChunkDecoder`] decodes a chunk into, in a reading lane or a
    /// worker, whether the chunk was read from file ranges or shipped as
    /// text.
    pub fn with_batch_bytes(mut self, bytes: usize) -> Self {
        self.batch_bytes = bytes;
        self
    }

    /// `max_records`, capped by the byte budget.
    fn cap(&self, max_records: usize) -> usize {
        cap(
            max_records,
            self.batch_bytes,
            std::mem::size_of::<F::Record>(),
        )
    }

    /// Reads and drops the header line of a stream, once.
    fn skip_header(&mut self) -> Result<(), StageError> {
        if self.header_pending {
            self.header_pending = false;
            let mut header = Vec::new();
            self.lines.next_chunk(1, &mut header)?;
        }
        Ok(())
    }

    fn check_failed(&mut self) -> Result<(), StageError> {
        match self.failed.take() {
            Some(e) => Err(StageError::new(format!("{}: {e}", self.what))),
            None => Ok(()),
        }
    }

    fn parse(&self, text: &[u8], first: u64, out: &mut Vec<F::Record>) -> Result<(), StageError> {
        self.format
            .parse(text, out)
            .map_err(|e| e.into_stage_error(&self.what, first))
    }
}

impl<F: LineFormat> Source for ParsedLines<F> {
    type Out = Vec<F::Record>;

    fn next_batch(&mut self, max_records: usize) -> Result<Option<Self::Out>, StageError> {
        self.skip_header()?;
        let mut text = std::mem::take(&mut self.text);
        text.clear();
        let got = self.lines.next_chunk(self.cap(max_records), &mut text);
        let result = match got {
            Ok(Some(n)) => {
                let mut out = self.spare.take(n);
                let first = self.next_record;
                self.next_record += n as u64;
                let parsed = self.parse(&text, first, &mut out);
                self.spare.refill(self.cap(max_records));
                parsed.map(|()| Some(out))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        self.text = text;
        result
    }

    fn may_wait(&self) -> bool {
        self.lines.may_wait()
    }
}

impl<F: LineFormat> ChunkSource for ParsedLines<F> {
    /// Chunks (text or ranges) that fit a frame; a line too long for one
    /// fails the run, naming its input, its line and `--max-frame`.
    fn fit_chunks_to_frame(&mut self, max_chunk_bytes: usize, max_frame: usize) {
        self.lines.fit_chunks_to_frame(max_chunk_bytes, max_frame);
    }

    fn remaining_estimate(&self) -> Option<u64> {
        self.lines.remaining_estimate()
    }

    /// The lines' text, as read (the workers parse it).
    fn next_chunk(
        &mut self,
        max_records: usize,
        out: &mut Vec<u8>,
    ) -> Result<Option<usize>, StageError> {
        self.skip_header()?;
        self.lines.next_chunk(max_records, out)
    }

    /// Whole lines, parsed by the format, in batches capped as
    /// [`with_batch_bytes`](ParsedLines::with_batch_bytes) says.
    fn chunk_decoder(&self) -> Box<dyn ChunkDecoder<Self::Out>> {
        Box::new(Decoder {
            format: self.format.clone(),
            what: self.what.clone(),
            batch_bytes: self.batch_bytes,
            spare: std::cell::RefCell::new(Spare::default()),
            batch_size: std::cell::Cell::new(usize::MAX),
            first: std::cell::Cell::new(1),
        })
    }
}

impl<F: LineFormat> FileChunkSource for ParsedLines<F> {
    /// Yes when every input is a plain regular file not read yet; a header
    /// line is then skipped by starting the first range after it.
    fn chunks_in_files(&mut self) -> bool {
        if !self.lines.chunks_in_files() {
            return false;
        }
        if self.header_pending {
            self.header_pending = false;
            if let Err(e) = self.lines.skip_first_range_line() {
                // Committed to ranges: the first pull of ranges reports it.
                self.failed = Some(e);
            }
        }
        true
    }

    fn would_chunk_in_files(&self) -> bool {
        self.lines.would_chunk_in_files()
    }

    fn range_files(&self) -> Vec<std::path::PathBuf> {
        self.lines.range_files()
    }

    fn next_chunk_ranges(
        &mut self,
        max_records: usize,
        out: &mut Vec<FileRange>,
    ) -> Result<Option<usize>, StageError> {
        self.check_failed()?;
        self.lines.next_chunk_ranges(max_records, out)
    }

    fn cuts_by_bytes(&mut self) -> bool {
        self.lines.cuts_by_bytes()
    }

    fn next_chunk_ranges_uncounted(
        &mut self,
        about_records: usize,
        max_bytes: usize,
        out: &mut Vec<FileRange>,
    ) -> Result<bool, StageError> {
        self.check_failed()?;
        self.lines
            .next_chunk_ranges_uncounted(about_records, max_bytes, out)
    }
}

/// Decodes chunk text into records on any thread.
struct Decoder<F: LineFormat> {
    format: F,
    what: String,
    /// As [`ParsedLines::with_batch_bytes`].
    batch_bytes: usize,
    /// The next batch's `Vec` (see [`Spare`]).
    spare: std::cell::RefCell<Spare<F::Record>>,
    /// The run's batch size, as last told to [`ChunkDecoder::batch_records`].
    batch_size: std::cell::Cell<usize>,
    /// The number of the first record of the batch being filled (errors
    /// name records by it).
    first: std::cell::Cell<u64>,
}

impl<F: LineFormat> Decoder<F> {
    /// Records in a full batch.
    fn per_batch(&self) -> usize {
        self.batch_records(self.batch_size.get())
    }
}

impl<F: LineFormat> ChunkDecoder<Vec<F::Record>> for Decoder<F> {
    fn new_batch(&self, info: &BatchInfo) -> Vec<F::Record> {
        self.first.set(info.first_line);
        self.spare.borrow_mut().take(self.per_batch())
    }

    fn batch_records(&self, batch_size: usize) -> usize {
        self.batch_size.set(batch_size);
        cap(
            batch_size,
            self.batch_bytes,
            std::mem::size_of::<F::Record>(),
        )
    }

    /// The first whole lines of `bytes`, at most `max_records`.
    fn extend(
        &self,
        batch: &mut Vec<F::Record>,
        bytes: &[u8],
        max_records: usize,
    ) -> Result<(usize, usize), StageError> {
        let (end, n) = split::whole_lines(bytes, max_records);
        let first = self.first.get() + batch.len() as u64;
        let parsed = self
            .format
            .parse(&bytes[..end], batch)
            .map_err(|e| e.into_stage_error(&self.what, first));
        self.spare.borrow_mut().refill(self.per_batch());
        parsed?;
        Ok((end, n))
    }

    /// The first whole lines of `bytes`, at most `max_records`, one record
    /// at a time.
    fn decode_each(
        &self,
        bytes: &[u8],
        first: u64,
        max_records: usize,
        each: &mut dyn FnMut(<Vec<F::Record> as IntoIterator>::Item) -> ControlFlow<()>,
    ) -> Option<Result<(usize, usize), StageError>> {
        let (end, n) = split::whole_lines(bytes, max_records);
        let parsed = self
            .format
            .parse_each(&bytes[..end], each)
            .map_err(|e| e.into_stage_error(&self.what, first));
        Some(parsed.map(|()| (end, n)))
    }
}

/// `max_records`, capped so that the records take at most about `bytes`
/// (`size` each); at least one record.
fn cap(max_records: usize, bytes: usize, size: usize) -> usize {
    max_records.min((bytes / size.max(1)).max(1))
}

/// A batch `Vec` allocated ahead: right after the records of the last
/// batch were made, not right before the next batch's are.
///
/// Why: a stage that turns a batch of records with owned strings into
/// another frees thousands of small strings per batch. glibc keeps them
/// in its fast bins, and the next batch's strings reuse them cheaply —
/// unless a request of 1 KiB or more comes first: glibc then consolidates
/// every fast-bin chunk into large free blocks (`malloc_consolidate`),
/// and each of the next batch's strings is split off those again
/// (measured: the larger part of serial mode's cost over a plain loop on
/// a CSV job). The batch `Vec` is such a request; allocated just after
/// the records were decoded, the fast bins hold little to consolidate
/// (the decoding took its chunks from them). With other allocators it
/// changes nothing but when the `Vec` is allocated.
struct Spare<T>(Vec<T>);

impl<T> Default for Spare<T> {
    fn default() -> Self {
        Spare(Vec::new())
    }
}

impl<T> Spare<T> {
    /// The spare `Vec` if it has room for `records`, else a new one.
    fn take(&mut self, records: usize) -> Vec<T> {
        let spare = std::mem::take(&mut self.0);
        if spare.capacity() >= records {
            spare
        } else {
            Vec::with_capacity(records)
        }
    }

    /// Allocates the next batch's `Vec` of `records`, if not done yet.
    fn refill(&mut self, records: usize) {
        if self.0.capacity() == 0 {
            self.0 = Vec::with_capacity(records);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_sizes_read_as_the_kernel_writes_them() {
        assert_eq!(parse_cache_size("48K"), Some(48 << 10));
        assert_eq!(parse_cache_size("2048K"), Some(2 << 20));
        assert_eq!(parse_cache_size("1M"), Some(1 << 20));
        assert_eq!(parse_cache_size("32768"), Some(32 << 10));
        for bad in ["", "K", "0K", "12G", "-4K", "4 K", "99999999999999999999K"] {
            assert_eq!(parse_cache_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_default_budget_is_a_quarter_of_the_data_cache() {
        let budget = default_batch_bytes();
        match l1_data_cache_bytes() {
            Some(cache) => assert_eq!(budget, (cache / 4).max(4 << 10)),
            None => assert_eq!(budget, 12 << 10),
        }
        let csv = crate::sources::Csv::<String>::new(InputSpec::File("never-opened.csv".into()));
        assert_eq!(csv.batch_bytes, budget);
    }
}
