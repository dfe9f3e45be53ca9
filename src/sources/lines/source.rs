//! [`Lines`]: input files, gzip
//! files or standard input, as batches of raw lines, or plain files cut
//! into byte ranges.

use super::batch::LineBatch;
use super::input::{InputSpec, LineReader};
use super::pool::BatchPool;
use super::ranges::RangeCutter;
use crate::file_range::FileRange;
use crate::stage::{ChunkDecoder, ChunkSource, FileChunkSource, Source, StageError};

/// Most bytes a batch of read lines holds (besides the line-count limit),
/// so that memory stays bounded whatever the line lengths.
pub const MAX_BATCH_BYTES: usize = 8 << 20;

/// The lines of its inputs, in order, as [`LineBatch`]es: each line
/// without its LF (and one CR before it), numbered from 1 across the
/// inputs ([`LineBatch::iter`]). A file starting with the gzip magic is
/// decompressed; `-` ([`InputSpec::Stdin`]) is standard input. Plain files
/// are cut by byte ranges (see the [module](crate::sources) text). It is
/// the reader of parpipe's own `logs` workload: `parpipe run` reads its
/// files through it.
///
/// Line numbers: a stage that reads [`LineBatch::first_line`] or
/// [`BatchInfo::first_line`](crate::BatchInfo::first_line) gets the
/// line's number in the whole input in every mode, as long as it does not
/// declare that it ignores them (the default): pipeline mode's reading
/// lanes and multiprocess workers that cut their own ranges number lines
/// from their chunk's start, and run only for stages that do not read the
/// numbers.
pub struct Lines {
    origin: Origin,
    pool: BatchPool,
    /// Multiprocess chunks' limits: at most `.0` bytes each, for frames of
    /// `.1` bytes (see [`ChunkSource::fit_chunks_to_frame`]).
    frame: Option<(usize, usize)>,
}

/// Where the lines come from.
enum Origin {
    /// Files or standard input.
    Read(LineReader),
    /// Plain files cut into byte ranges (multiprocess mode, see
    /// [`FileChunkSource::chunks_in_files`]).
    Ranges(RangeCutter),
    /// An input changed while it was inspected for cutting: the error the
    /// next pull reports.
    Failed(Option<super::input::InputError>),
}

impl Lines {
    /// How long a batch of standard input or of a followed file waits for
    /// more lines once it has its first one, unless
    /// [`with_batch_delay`](Self::with_batch_delay) says otherwise.
    pub const DEFAULT_BATCH_DELAY: std::time::Duration = super::input::DEFAULT_BATCH_DELAY;

    /// The lines of `inputs`, in order (nothing is opened yet).
    pub fn new(inputs: Vec<InputSpec>) -> Self {
        Lines {
            origin: Origin::Read(LineReader::new(inputs)),
            pool: BatchPool::new(),
            frame: None,
        }
    }

    /// Batch buffers come from `pool`, and go back to it from the stage or
    /// aggregate that holds the same pool and [`gives`](BatchPool::give)
    /// each batch back once it has read it: the buffers then stay warm
    /// instead of being freed on one thread and faulted in again on
    /// another (the `logs` workload's `metrics` aggregate does this).
    /// Without it, every batch gets fresh buffers.
    pub fn with_pool(mut self, pool: BatchPool) -> Self {
        self.pool = pool;
        self
    }

    /// How long a batch of standard input waits for more lines once it has
    /// its first one, so that a slow stream still flows (default
    /// [`DEFAULT_BATCH_DELAY`](Self::DEFAULT_BATCH_DELAY), 200 ms).
    pub fn with_batch_delay(mut self, delay: std::time::Duration) -> Self {
        if let Origin::Read(reader) = &mut self.origin {
            reader.set_batch_delay(delay);
        }
        self
    }
}

impl Lines {
    /// For a source already cut into file ranges: skips the first line of
    /// the first file (a header), so that the chunks start at the second.
    pub(crate) fn skip_first_range_line(&mut self) -> Result<(), StageError> {
        match &mut self.origin {
            Origin::Ranges(cutter) => cutter
                .skip_first_line()
                .map_err(|e| StageError::new(e.to_string())),
            _ => Ok(()),
        }
    }
}

impl Source for Lines {
    type Out = LineBatch;

    fn next_batch(&mut self, max_records: usize) -> Result<Option<LineBatch>, StageError> {
        match &mut self.origin {
            Origin::Read(reader) => {
                let mut batch = self.pool.batch(0);
                let n = reader
                    .fill(&mut batch, max_records, MAX_BATCH_BYTES)
                    .map_err(|e| StageError::new(e.to_string()))?;
                debug_assert_eq!(n, batch.len());
                Ok(self.pool.unless_empty(batch))
            }
            Origin::Ranges(_) => Err(StageError::new(
                "the lines source gives file ranges now, not batches",
            )),
            Origin::Failed(e) => Err(failed(e)),
        }
    }

    /// Standard input and followed files wait for their writer; plain
    /// files never wait.
    fn may_wait(&self) -> bool {
        match &self.origin {
            Origin::Read(reader) => reader
                .inputs()
                .iter()
                .any(|i| matches!(i, InputSpec::Stdin | InputSpec::Follow(_))),
            Origin::Ranges(_) | Origin::Failed(_) => false,
        }
    }
}

impl Lines {
    /// Most bytes of text in a chunk: a batch's, or less to fit a frame.
    fn chunk_bytes(&self) -> usize {
        self.frame
            .map_or(MAX_BATCH_BYTES, |(most, _)| MAX_BATCH_BYTES.min(most))
    }
}

impl ChunkSource for Lines {
    /// Chunks (text or ranges) of at most `max_chunk_bytes`; a line too
    /// long for one fails the run, naming its input, its line and
    /// `--max-frame`.
    fn fit_chunks_to_frame(&mut self, max_chunk_bytes: usize, max_frame: usize) {
        self.frame = Some((max_chunk_bytes, max_frame));
        match &mut self.origin {
            Origin::Read(reader) => reader.limit_text_lines(max_chunk_bytes, max_frame),
            Origin::Ranges(cutter) => cutter.limit_chunks(max_chunk_bytes, max_frame),
            Origin::Failed(_) => {}
        }
    }

    /// Chunks ship as raw LF-terminated text (for read input): the coordinator then only finds line ends and
    /// copies bytes, and each worker cuts its own chunks into lines.
    fn next_chunk(
        &mut self,
        max_records: usize,
        out: &mut Vec<u8>,
    ) -> Result<Option<usize>, StageError> {
        let most = self.chunk_bytes();
        match &mut self.origin {
            Origin::Read(reader) => {
                let n = reader
                    .fill_text(out, max_records, most)
                    .map_err(|e| StageError::new(e.to_string()))?;
                Ok((n > 0).then_some(n))
            }
            Origin::Ranges(_) => Err(StageError::new(
                "the lines source gives file ranges now, not text",
            )),
            Origin::Failed(e) => Err(failed(e)),
        }
    }

    /// Lines into pooled batches: the aggregate gives each back after
    /// use, so that a worker does not fault in fresh buffers for every
    /// chunk. A long line is taken over as read, not copied.
    fn chunk_decoder(&self) -> Box<dyn ChunkDecoder<LineBatch>> {
        Box::new(self.pool.clone())
    }

    /// For plain files cut into ranges: the bytes left over the mean line
    /// length seen so far; for plain files not read yet, their sizes over
    /// the mean line length of a sample.
    fn remaining_estimate(&self) -> Option<u64> {
        match &self.origin {
            Origin::Ranges(cutter) => cutter.remaining_estimate(),
            // Plain files not read yet: from their sizes (the modes decide
            // from it whether a parallel engine can pay, see `crate::plan`).
            Origin::Read(reader) if reader.next_line() == 1 => {
                super::ranges::estimate_lines(reader.inputs())
            }
            _ => None,
        }
    }
}

impl FileChunkSource for Lines {
    /// Yes, when every input is a plain regular file (not gzip, not
    /// standard input) and nothing was read yet: workers on this machine
    /// then read their own chunks.
    fn chunks_in_files(&mut self) -> bool {
        let Origin::Read(reader) = &self.origin else {
            return matches!(self.origin, Origin::Ranges(_));
        };
        if reader.next_line() != 1 {
            return false;
        }
        match RangeCutter::for_inputs(reader.inputs()) {
            Ok(Some(mut cutter)) => {
                if let Some((most, max_frame)) = self.frame {
                    cutter.limit_chunks(most, max_frame);
                }
                self.origin = Origin::Ranges(cutter);
                true
            }
            Ok(None) => false,
            Err(e) => {
                // Reported by the first pull of ranges, which fails the run.
                self.origin = Origin::Failed(Some(e));
                true
            }
        }
    }

    /// The input files, when they are plain files that ranges can name.
    fn range_files(&self) -> Vec<std::path::PathBuf> {
        match &self.origin {
            Origin::Read(reader) => reader
                .inputs()
                .iter()
                .filter_map(|spec| match spec {
                    InputSpec::File(path) => Some(path.clone()),
                    _ => None,
                })
                .collect(),
            Origin::Ranges(cutter) => cutter.paths(),
            _ => Vec::new(),
        }
    }

    /// Plain regular files not read yet (or cut already).
    fn would_chunk_in_files(&self) -> bool {
        match &self.origin {
            Origin::Ranges(_) => true,
            Origin::Read(reader) if reader.next_line() == 1 => {
                RangeCutter::can_cut(reader.inputs())
            }
            _ => false,
        }
    }

    fn next_chunk_ranges(
        &mut self,
        max_records: usize,
        out: &mut Vec<FileRange>,
    ) -> Result<Option<usize>, StageError> {
        let most = self.chunk_bytes();
        let cutter = match &mut self.origin {
            Origin::Ranges(cutter) => cutter,
            Origin::Failed(e) => return Err(failed(e)),
            _ => {
                return Err(StageError::new(
                    "the lines source was not cut into file ranges",
                ))
            }
        };
        let n = cutter
            .fill(out, max_records, most)
            .map_err(|e| StageError::new(e.to_string()))?;
        Ok((n > 0).then_some(n))
    }

    /// Yes, for plain files cut into ranges: a chunk's lines are its line
    /// feeds (a final line without one gets it as a range suffix).
    fn cuts_by_bytes(&mut self) -> bool {
        matches!(self.origin, Origin::Ranges(_))
    }

    fn next_chunk_ranges_uncounted(
        &mut self,
        about_records: usize,
        max_bytes: usize,
        out: &mut Vec<FileRange>,
    ) -> Result<bool, StageError> {
        match &mut self.origin {
            Origin::Ranges(cutter) => cutter
                .fill_uncounted(out, about_records, max_bytes)
                .map_err(|e| StageError::new(e.to_string())),
            Origin::Failed(e) => Err(failed(e)),
            _ => Err(StageError::new(
                "the lines source was not cut into file ranges",
            )),
        }
    }
}

/// The error of a failed source (reported once; later pulls say less).
fn failed(e: &mut Option<super::input::InputError>) -> StageError {
    StageError::new(e.take().map_or_else(
        || "an input changed during the run".to_string(),
        |e| e.to_string(),
    ))
}
