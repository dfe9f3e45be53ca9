//! The source traits: [`Source`] (the one a source must implement), the
//! optional powers [`ChunkSource`] and [`FileChunkSource`] that let
//! multiprocess mode ship cheaper chunks (and let pipeline mode's reading
//! lanes and multiprocess workers read byte ranges of files themselves),
//! the [`ChunkDecoder`] that cuts chunk text into batches on any thread,
//! and the default wire form of a batch.
//!
//! `examples/byte_ranges.rs` is a complete source of its own cut by byte
//! ranges, with an aggregate that renumbers, run in every mode.

use super::{BatchInfo, Records, StageError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Produces the input, batch by batch. The one trait a source must
/// implement; everything else has a default.
///
/// Construction must do no I/O: in multiprocess mode, workers build the same
/// pipeline (to get its stages) but never pull from its source.
///
/// In multiprocess mode the coordinator ships each chunk to a worker. A
/// plain `Source` (given to [`Pipeline::builder`](crate::Pipeline::builder))
/// ships its batches in bincode; a source that can hand out cheaper bytes
/// (raw text the workers cut themselves, byte ranges of shared files)
/// implements [`ChunkSource`] (and [`FileChunkSource`]) and is given to
/// [`Pipeline::builder_chunked`](crate::Pipeline::builder_chunked) (or
/// [`builder_files`](crate::Pipeline::builder_files)).
///
/// ```
/// use parpipe::{Source, StageError};
///
/// /// The numbers 1 to `end`.
/// struct Count { next: u64, end: u64 }
///
/// impl Source for Count {
///     type Out = Vec<u64>;
///     fn next_batch(&mut self, max: usize) -> Result<Option<Vec<u64>>, StageError> {
///         if self.next > self.end {
///             return Ok(None);
///         }
///         let last = (self.next + max as u64 - 1).min(self.end);
///         let batch = (self.next..=last).collect();
///         self.next = last + 1;
///         Ok(Some(batch))
///     }
/// }
/// let mut c = Count { next: 1, end: 5 };
/// assert_eq!(c.next_batch(3).unwrap(), Some(vec![1, 2, 3]));
/// assert_eq!(c.next_batch(3).unwrap(), Some(vec![4, 5]));
/// assert_eq!(c.next_batch(3).unwrap(), None);
/// ```
pub trait Source: Send + 'static {
    /// The batch type.
    type Out: Records;

    /// The next batch of at most `max_records` records (at least one), or
    /// `None` when the input is exhausted.
    fn next_batch(&mut self, max_records: usize) -> Result<Option<Self::Out>, StageError>;

    /// How many records remain, when known (drives progress bars and ETAs).
    fn size_hint(&self) -> Option<u64> {
        None
    }

    /// Whether [`next_batch`](Self::next_batch) may wait for input that
    /// comes from outside (a socket, a channel, standard input) or block in
    /// any other way. Such a source is pulled on a thread of its own, so
    /// that the engine never waits inside it: a coordinator keeps answering
    /// its workers, a [`Cancel`](crate::Cancel) takes effect at once, and
    /// blocking calls (`blocking_recv`, `block_on`) are allowed. The default
    /// is yes; a source that only computes or reads local files may say no
    /// and save a hand-off between threads per batch.
    fn may_wait(&self) -> bool {
        true
    }
}

/// A [`Source`] that chooses its own wire form for multiprocess mode (an
/// optional power: plain sources get bincode of their batches), and
/// decodes it anywhere with its [`ChunkDecoder`].
///
/// Every chunk a worker (or a pipeline-mode reading lane) processes is
/// decoded by the source's [`chunk_decoder`](Self::chunk_decoder), whether
/// its bytes were read from file ranges or came in a frame. A frame's bytes
/// come from an authenticated coordinator and their length was checked
/// against the frame limit; their content is otherwise unchecked, so
/// malformed bytes must give the decoder's error, not a panic. The worker
/// checks the records decoded against the chunk's header.
pub trait ChunkSource: Source {
    /// How many records remain, roughly (multiprocess mode sizes its
    /// chunks by it: large ones first, smaller ones towards the end, so
    /// that the workers finish together). Defaults to
    /// [`size_hint`](Source::size_hint).
    fn remaining_estimate(&self) -> Option<u64> {
        self.size_hint()
    }

    /// Appends the next chunk of at most `max_records` records to `out` in
    /// wire form and returns its record count, or `None` when the input is
    /// exhausted. The coordinator does this for every chunk while all
    /// workers wait on it, so it should be cheap (the `logs` file reader
    /// ships the raw text and lets workers cut the lines).
    fn next_chunk(
        &mut self,
        max_records: usize,
        out: &mut Vec<u8>,
    ) -> Result<Option<usize>, StageError>;

    /// Multiprocess mode's frame limit, told before the first chunk: each
    /// chunk this source cuts ([`next_chunk`](Self::next_chunk), or
    /// as file ranges) should hold at most `max_chunk_bytes` bytes so that
    /// it fits a frame of `max_frame` bytes (`--max-frame`), and a single
    /// record too long for that should fail the run naming where it is and
    /// `--max-frame`. The default does nothing (such a chunk then fails
    /// when it is sent). A source remembers the limit and honours it in
    /// [`next_chunk`](Self::next_chunk) and
    /// [`FileChunkSource::next_chunk_ranges_uncounted`].
    fn fit_chunks_to_frame(&mut self, max_chunk_bytes: usize, max_frame: usize) {
        let _ = (max_chunk_bytes, max_frame);
    }

    /// A decoder of the chunks [`next_chunk`](Self::next_chunk) (and
    /// [`FileChunkSource`]'s ranges) make, that works apart from the
    /// source, on any thread, block by block (see [`ChunkDecoder`], with an
    /// example). Every chunk is decoded by one: a worker's or a reading
    /// lane's, from the bytes of file ranges as it reads them, or from a
    /// frame's bytes (one block). Asked once per worker or lane, before its
    /// first chunk.
    fn chunk_decoder(&self) -> Box<dyn ChunkDecoder<Self::Out>>;
}

/// Decodes a chunk's bytes into batches block by block, as they are read,
/// on any thread (a worker's, or a pipeline-mode reading lane's): what
/// [`ChunkSource::chunk_decoder`] gives. It must make of a chunk's bytes the
/// same records however they are split into blocks (a chunk that came in a
/// frame is one block), and the same records as the source's own batches.
///
/// The engine calls [`batch_records`](Self::batch_records) once for the
/// run's batch size, then, for each part of a chunk, [`new_batch`](Self::new_batch)
/// and [`extend`](Self::extend) until the part holds that many records or
/// the chunk ends. The decoder counts the chunk: a chunk whose header gives
/// its record count must hold exactly that many records, one cut by bytes
/// holds what the decoder makes of it, numbered from 1. Bytes left after
/// the last whole record fail the chunk.
///
/// A decoder of newline-ended text lines, one `String` per line:
///
/// ```
/// use parpipe::{BatchInfo, ChunkDecoder, StageError};
///
/// struct LineDecoder;
/// impl ChunkDecoder<Vec<String>> for LineDecoder {
///     fn new_batch(&self, _: &BatchInfo) -> Vec<String> {
///         Vec::new()
///     }
///     fn extend(
///         &self,
///         batch: &mut Vec<String>,
///         bytes: &[u8],
///         max_records: usize,
///     ) -> Result<(usize, usize), StageError> {
///         let (mut used, mut n) = (0, 0);
///         // Whole lines only: a line cut off at the end waits for the next call.
///         while n < max_records {
///             let Some(end) = bytes[used..].iter().position(|&b| b == b'\n') else { break };
///             let line = std::str::from_utf8(&bytes[used..used + end])
///                 .map_err(|e| StageError::new(format!("not UTF-8: {e}")))?;
///             batch.push(line.to_owned());
///             used += end + 1;
///             n += 1;
///         }
///         Ok((used, n))
///     }
/// }
///
/// let d = LineDecoder;
/// let mut batch = d.new_batch(&BatchInfo { seq: 0, first_line: 1, records: 0 });
/// // Two whole lines and the start of a third.
/// assert_eq!(d.extend(&mut batch, b"one\ntwo\nthr", 10)?, (8, 2));
/// assert_eq!(batch, ["one", "two"]);
/// # Ok::<(), StageError>(())
/// ```
pub trait ChunkDecoder<Out>: Send + 'static {
    /// An empty batch whose first record is `info.first_line`.
    fn new_batch(&self, info: &BatchInfo) -> Out;

    /// Appends to `batch` the first whole records of `bytes` (part of a
    /// chunk's bytes), at most `max_records` of them, and returns the bytes
    /// they took and their count; a record cut off at the end of `bytes` is
    /// left for the next call, which gets it whole (or, at the end of the
    /// chunk, fails it). Malformed bytes are an error, never a panic: a
    /// frame's bytes come from another process.
    fn extend(
        &self,
        batch: &mut Out,
        bytes: &[u8],
        max_records: usize,
    ) -> Result<(usize, usize), StageError>;

    /// Like [`extend`](Self::extend) for the first record of `bytes`
    /// only, into a `batch` that holds no record yet, taking `bytes`'
    /// buffer over for it instead of copying it: a record of many MiB then
    /// costs its length once, not twice. `bytes` is left holding the bytes
    /// after the record. Returns the bytes the record took, or `None`
    /// (the default) when the decoder does not take buffers over or
    /// `bytes` does not start with a whole record; the caller then calls
    /// `extend`. Asked only for a record longer than a read block.
    fn adopt(&self, batch: &mut Out, bytes: &mut Vec<u8>) -> Option<usize> {
        let _ = (batch, bytes);
        None
    }

    /// The most records one batch of this decoder holds when the run's
    /// batch size is `batch_size` (at least one): the size of the parts
    /// every chunk is decoded in, wherever its bytes came from. The default
    /// is `batch_size`; a decoder of records that each take many bytes caps
    /// it by bytes, as [`ParsedLines::with_batch_bytes`](crate::sources::ParsedLines::with_batch_bytes)
    /// does, so that a chunk's batches are as small as the source's own.
    fn batch_records(&self, batch_size: usize) -> usize {
        batch_size
    }

    /// Decodes the first whole records of `bytes`, at most `max_records`,
    /// one at a time, handing each to `each` before the next is made, and
    /// returns the bytes they took and their count, as
    /// [`extend`](Self::extend) does; `first` is the number of the first
    /// (errors name records by it). When `each` returns
    /// [`ControlFlow::Break`](std::ops::ControlFlow::Break), decoding stops
    /// there (the run is failing; what is returned then does not matter).
    ///
    /// Optional: `None` (the default) says this decoder makes whole
    /// batches only. A decoder that can, lets a pipeline whose stages all
    /// work record by record ([`PipelineBuilder::map`](crate::PipelineBuilder::map),
    /// [`filter_map`](crate::PipelineBuilder::filter_map),
    /// [`fold`](crate::PipelineBuilder::fold)) run each record from its
    /// bytes to the aggregate before the next is decoded, with no batch
    /// in between: the allocator then reuses one record's memory for the
    /// next, as in a plain loop. [`ParsedLines`](crate::sources::ParsedLines)'s
    /// decoder (so [`Csv`](crate::sources::Csv)'s and [`JsonLines`](crate::sources::JsonLines)')
    /// does.
    fn decode_each(
        &self,
        bytes: &[u8],
        first: u64,
        max_records: usize,
        each: &mut dyn FnMut(<Out as IntoIterator>::Item) -> std::ops::ControlFlow<()>,
    ) -> Option<Result<(usize, usize), StageError>>
    where
        Out: IntoIterator,
    {
        let _ = (bytes, first, max_records, each);
        None
    }
}

/// A [`ChunkSource`] that can also describe its chunks as byte ranges of
/// files, so that workers on the coordinator's machine read them themselves
/// (an optional power, for [`Pipeline::builder_files`](crate::Pipeline::builder_files)).
pub trait FileChunkSource: ChunkSource {
    /// Whether this source can describe its chunks as file ranges (asked
    /// once, before the first chunk; the answer holds for the run). The
    /// default is yes.
    fn chunks_in_files(&mut self) -> bool {
        true
    }

    /// Whether [`chunks_in_files`](Self::chunks_in_files) would say yes,
    /// asked without committing to it (the modes decide from it how small
    /// an input is worth worker processes: workers that read their own
    /// ranges pay for themselves sooner, and pipeline mode runs reading lanes
    /// only for a source that says yes). The default is no: a source that
    /// can give file ranges says yes here too. It must not change the
    /// source's state.
    fn would_chunk_in_files(&self) -> bool {
        false
    }
    /// The files this source's ranges would name, asked (without
    /// committing) before the run starts worker processes of its own. The
    /// local workers a multiprocess run starts with the default worker
    /// command are allowed to read these files' directories
    /// (`--allow-read`), so that they read their chunks themselves instead
    /// of being sent the bytes. The default is none (the coordinator then
    /// reads every range and ships its bytes). Workers that join from
    /// elsewhere decide for themselves what they may read.
    fn range_files(&self) -> Vec<std::path::PathBuf> {
        Vec::new()
    }

    /// When [`chunks_in_files`](Self::chunks_in_files) said yes: the next
    /// chunk of at most `max_records` records as byte ranges of files,
    /// appended to `out`, such that reading them gives the bytes
    /// [`next_chunk`](ChunkSource::next_chunk) would have written. Returns
    /// the record count, or `None` when the input is exhausted.
    fn next_chunk_ranges(
        &mut self,
        max_records: usize,
        out: &mut Vec<crate::file_range::FileRange>,
    ) -> Result<Option<usize>, StageError>;

    /// Whether this source can cut its chunks by bytes without counting
    /// their records ([`next_chunk_ranges_uncounted`](Self::next_chunk_ranges_uncounted)),
    /// asked once after [`chunks_in_files`](Self::chunks_in_files) said yes.
    /// Each worker then counts its own chunk's records as its
    /// [`ChunkDecoder`] decodes them and numbers them from 1, so the
    /// coordinator never reads the input. It is used only when the
    /// aggregate [`renumbers`](crate::Aggregate::renumbers) and no stage
    /// [`uses_record_numbers`](crate::Stage::uses_record_numbers); otherwise
    /// [`next_chunk_ranges`](Self::next_chunk_ranges) is. The default is no.
    fn cuts_by_bytes(&mut self) -> bool {
        false
    }

    /// When [`cuts_by_bytes`](Self::cuts_by_bytes) said yes: appends to
    /// `out` the ranges of the next chunk of whole records, about
    /// `about_records` records' worth of bytes but at most about
    /// `max_bytes` (one record more may end it), and returns true; false
    /// when the input is exhausted. A chunk must start at the start of a
    /// record and end at the end of one (after its newline, for text
    /// lines): the source reads around the cut to find it, never the whole
    /// chunk. The default fails: a source that
    /// says yes to [`cuts_by_bytes`](Self::cuts_by_bytes) implements it.
    fn next_chunk_ranges_uncounted(
        &mut self,
        about_records: usize,
        max_bytes: usize,
        out: &mut Vec<crate::file_range::FileRange>,
    ) -> Result<bool, StageError> {
        let _ = (about_records, max_bytes, out);
        Err(no_byte_cuts())
    }
}

/// The error of a source asked for chunks cut by bytes that it cannot cut.
pub(crate) fn no_byte_cuts() -> StageError {
    StageError::new("this source does not cut chunks by bytes")
}

/// The default wire form of a batch (what a plain [`Source`] ships):
/// bincode, appended to `out`. The size is measured first and reserved, so
/// `out` grows at most once and the batch is written once, in place.
pub fn encode_batch<T: Serialize>(batch: &T, out: &mut Vec<u8>) -> Result<(), StageError> {
    let config = crate::pipeline::bincode_config();
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(batch, &mut size, config)
        .map_err(|e| StageError::new(format!("cannot encode the batch: {e}")))?;
    out.reserve(size.bytes_written);
    bincode::serde::encode_into_std_write(batch, out, config)
        .map(drop)
        .map_err(|e| StageError::new(format!("cannot encode the batch: {e}")))
}

/// Reads what [`encode_batch`] wrote: exactly one batch, no trailing bytes.
/// No length the bytes declare is allocated before it is checked against
/// `bytes` (the wire's bounded decoding).
pub fn decode_batch<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StageError> {
    // Bytes from the network: bounded decoding (see `protocol`).
    crate::protocol::decode_whole(bytes, "batch").map_err(StageError::new)
}
