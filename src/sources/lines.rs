//! [`Lines`]: the text lines of files, gzip files and standard input.

use crate::file_range::FileRange;
use crate::stage::{ChunkDecoder, ChunkSource, FileChunkSource, Source, StageError};
use crate::workloads::logs::batch::LineBatch;
use crate::workloads::logs::input::InputSpec;
use crate::workloads::logs::pool::BatchPool;
use crate::workloads::logs::source::LogSource;

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
pub struct Lines(LogSource);

impl Lines {
    /// The lines of `inputs`, in order (nothing is opened yet).
    pub fn new(inputs: Vec<InputSpec>) -> Self {
        Lines(LogSource::read(inputs, BatchPool::new()))
    }

    /// Batch buffers come from `pool`, and go back to it from the stage or
    /// aggregate that holds the same pool and [`gives`](BatchPool::give)
    /// each batch back once it has read it: the buffers then stay warm
    /// instead of being freed on one thread and faulted in again on
    /// another (the `logs` workload's `metrics` aggregate does this).
    /// Without it, every batch gets fresh buffers.
    pub fn with_pool(self, pool: BatchPool) -> Self {
        Lines(self.0.with_pool(pool))
    }

    /// How long a batch of standard input waits for more lines once it has
    /// its first one, so that a slow stream still flows (default 200 ms).
    pub fn with_batch_delay(self, delay: std::time::Duration) -> Self {
        Lines(self.0.with_batch_delay(delay))
    }
}

impl Source for Lines {
    type Out = LineBatch;

    fn next_batch(&mut self, max_records: usize) -> Result<Option<LineBatch>, StageError> {
        self.0.next_batch(max_records)
    }

    fn may_wait(&self) -> bool {
        self.0.may_wait()
    }
}

impl ChunkSource for Lines {
    /// Chunks (text or ranges) that fit a frame; a line too long for one
    /// fails the run, naming its input, its line and `--max-frame`.
    fn fit_chunks_to_frame(&mut self, max_chunk_bytes: usize, max_frame: usize) {
        self.0.fit_chunks_to_frame(max_chunk_bytes, max_frame);
    }

    fn remaining_estimate(&self) -> Option<u64> {
        self.0.remaining_estimate()
    }

    fn next_chunk(
        &mut self,
        max_records: usize,
        out: &mut Vec<u8>,
    ) -> Result<Option<usize>, StageError> {
        self.0.next_chunk(max_records, out)
    }

    fn chunk_decoder(&self) -> Box<dyn ChunkDecoder<LineBatch>> {
        self.0.chunk_decoder()
    }
}

impl FileChunkSource for Lines {
    fn chunks_in_files(&mut self) -> bool {
        self.0.chunks_in_files()
    }

    fn would_chunk_in_files(&self) -> bool {
        self.0.would_chunk_in_files()
    }

    fn range_files(&self) -> Vec<std::path::PathBuf> {
        self.0.range_files()
    }

    fn next_chunk_ranges(
        &mut self,
        max_records: usize,
        out: &mut Vec<FileRange>,
    ) -> Result<Option<usize>, StageError> {
        self.0.next_chunk_ranges(max_records, out)
    }

    fn cuts_by_bytes(&mut self) -> bool {
        self.0.cuts_by_bytes()
    }

    fn next_chunk_ranges_uncounted(
        &mut self,
        about_records: usize,
        max_bytes: usize,
        out: &mut Vec<FileRange>,
    ) -> Result<bool, StageError> {
        self.0
            .next_chunk_ranges_uncounted(about_records, max_bytes, out)
    }
}
