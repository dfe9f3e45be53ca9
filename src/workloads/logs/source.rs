//! The `logs` source: the built-in generator or the input files, as batches
//! of raw lines.

use super::batch::LineBatch;
use super::generate::Generator;
use super::input::{InputSpec, LineReader};
use super::pool::BatchPool;
use super::ranges::RangeCutter;
use crate::file_range::FileRange;
use crate::stage::{BatchInfo, ChunkDecoder, ChunkSource, FileChunkSource, Source, StageError};

/// Most bytes a batch of read lines holds (besides the line-count limit),
/// so that memory stays bounded whatever the line lengths.
pub const MAX_BATCH_BYTES: usize = 8 << 20;

/// The `logs` source: where lines come from, and the pool its batch
/// buffers are taken from.
pub struct LogSource {
    origin: Origin,
    pool: BatchPool,
    /// Multiprocess chunks' limits: at most `.0` bytes each, for frames of
    /// `.1` bytes (see [`ChunkSource::fit_chunks_to_frame`]).
    frame: Option<(usize, usize)>,
}

/// Where the `logs` lines come from.
enum Origin {
    /// The deterministic generator.
    Generate {
        /// The generator (boxed: it is much larger than a reader).
        generator: Box<Generator>,
        /// Number of the next line.
        next_line: u64,
    },
    /// Files or standard input.
    Read(LineReader),
    /// Plain files cut into byte ranges (multiprocess mode, see
    /// [`FileChunkSource::chunks_in_files`]).
    Ranges(RangeCutter),
    /// An input changed while it was inspected for cutting: the error the
    /// next pull reports.
    Failed(Option<super::input::InputError>),
}

impl LogSource {
    /// Generated lines; batch buffers come from `pool`.
    pub fn generate(seed: u64, records: u64, pool: BatchPool) -> Self {
        LogSource {
            origin: Origin::Generate {
                generator: Box::new(Generator::new(seed, records)),
                next_line: 1,
            },
            pool,
            frame: None,
        }
    }

    /// Lines read from `inputs`, in order (nothing is opened yet); batch
    /// buffers come from `pool`.
    pub fn read(inputs: Vec<InputSpec>, pool: BatchPool) -> Self {
        LogSource {
            origin: Origin::Read(LineReader::new(inputs)),
            pool,
            frame: None,
        }
    }

    /// Batch buffers from `pool` instead of the one it was made with.
    pub(crate) fn with_pool(mut self, pool: BatchPool) -> Self {
        self.pool = pool;
        self
    }

    /// How long a batch of standard input or of a followed file waits for
    /// more lines once it has its first one (see [`LineReader::set_batch_delay`]).
    pub fn with_batch_delay(mut self, delay: std::time::Duration) -> Self {
        if let Origin::Read(reader) = &mut self.origin {
            reader.set_batch_delay(delay);
        }
        self
    }
}

impl LogSource {
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

impl Source for LogSource {
    type Out = LineBatch;

    fn next_batch(&mut self, max_records: usize) -> Result<Option<LineBatch>, StageError> {
        match &mut self.origin {
            Origin::Generate {
                generator,
                next_line,
            } => {
                let mut batch = self.pool.batch(*next_line);
                let n = generator.fill(&mut batch, max_records);
                *next_line += n as u64;
                Ok(self.pool.unless_empty(batch))
            }
            Origin::Read(reader) => {
                let mut batch = self.pool.batch(0);
                let n = reader
                    .fill(&mut batch, max_records, MAX_BATCH_BYTES)
                    .map_err(|e| StageError::new(e.to_string()))?;
                debug_assert_eq!(n, batch.len());
                Ok(self.pool.unless_empty(batch))
            }
            Origin::Ranges(_) => Err(StageError::new(
                "the logs source gives file ranges now, not batches",
            )),
            Origin::Failed(e) => Err(failed(e)),
        }
    }

    fn size_hint(&self) -> Option<u64> {
        match &self.origin {
            Origin::Generate { generator, .. } => Some(generator.remaining()),
            Origin::Read(_) | Origin::Ranges(_) | Origin::Failed(_) => None,
        }
    }

    /// Standard input and followed files wait for their writer; the
    /// generator and plain files never wait.
    fn may_wait(&self) -> bool {
        match &self.origin {
            Origin::Read(reader) => reader
                .inputs()
                .iter()
                .any(|i| matches!(i, InputSpec::Stdin | InputSpec::Follow(_))),
            Origin::Generate { .. } | Origin::Ranges(_) | Origin::Failed(_) => false,
        }
    }
}

impl LogSource {
    /// Most bytes of text in a chunk: a batch's, or less to fit a frame.
    fn chunk_bytes(&self) -> usize {
        self.frame
            .map_or(MAX_BATCH_BYTES, |(most, _)| MAX_BATCH_BYTES.min(most))
    }
}

impl ChunkSource for LogSource {
    /// Chunks (text or ranges) of at most `max_chunk_bytes`; a line too
    /// long for one fails the run, naming its input, its line and
    /// `--max-frame` ([`InputError::LineOverFrame`](super::input::InputError::LineOverFrame)).
    fn fit_chunks_to_frame(&mut self, max_chunk_bytes: usize, max_frame: usize) {
        self.frame = Some((max_chunk_bytes, max_frame));
        match &mut self.origin {
            Origin::Read(reader) => reader.limit_text_lines(max_chunk_bytes, max_frame),
            Origin::Ranges(cutter) => cutter.limit_chunks(max_chunk_bytes, max_frame),
            Origin::Generate { .. } | Origin::Failed(_) => {}
        }
    }

    /// Chunks ship as raw LF-terminated text ([`LineReader::fill_text`]
    /// for read input): the coordinator then only finds line ends and
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
            Origin::Generate {
                generator,
                next_line,
            } => {
                // The same text form as files (generated lines never hold
                // a CR or LF), so that workers can split it into batches.
                let n = match self.frame {
                    None => generator.fill_text(out, max_records),
                    // For a small frame: line by line, stopping at half
                    // of it (a generated line is a few hundred bytes).
                    Some((most, _)) => {
                        let (start, mut n) = (out.len(), 0);
                        while n < max_records.max(1)
                            && out.len() - start < most / 2
                            && generator.fill_text(out, 1) == 1
                        {
                            n += 1;
                        }
                        n
                    }
                };
                *next_line += n as u64;
                Ok((n > 0).then_some(n))
            }
            Origin::Ranges(_) => Err(StageError::new(
                "the logs source gives file ranges now, not text",
            )),
            Origin::Failed(e) => Err(failed(e)),
        }
    }

    /// Lines into pooled batches: the aggregate gives each back after
    /// use, so that a worker does not fault in fresh buffers for every
    /// chunk. A long line is taken over as read, not copied.
    fn chunk_decoder(&self) -> Box<dyn ChunkDecoder<LineBatch>> {
        Box::new(LinesDecoder(self.pool.clone()))
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
            _ => self.size_hint(),
        }
    }
}

impl FileChunkSource for LogSource {
    /// Yes, when every input is a plain regular file (not gzip, not
    /// standard input) and nothing was read yet: workers on this machine
    /// then read their own chunks ([`RangeCutter`]).
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
                    "the logs source was not cut into file ranges",
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
                "the logs source was not cut into file ranges",
            )),
        }
    }
}

/// The error of a failed source (reported once; later pulls say less).
/// Decodes chunk text into pooled line batches, on any thread.
struct LinesDecoder(BatchPool);

impl ChunkDecoder<LineBatch> for LinesDecoder {
    fn new_batch(&self, info: &BatchInfo) -> LineBatch {
        self.0.batch(info.first_line)
    }

    /// The first lines that end with a line feed.
    fn extend(
        &self,
        batch: &mut LineBatch,
        bytes: &[u8],
        max_records: usize,
    ) -> Result<(usize, usize), StageError> {
        batch
            .extend_from_lines(bytes, max_records)
            .map_err(StageError::new)
    }

    /// A long first line becomes the batch's data as it was read.
    fn adopt(&self, batch: &mut LineBatch, bytes: &mut Vec<u8>) -> Option<usize> {
        batch.adopt_first_line(bytes)
    }
}

fn failed(e: &mut Option<super::input::InputError>) -> StageError {
    StageError::new(e.take().map_or_else(
        || "an input changed during the run".to_string(),
        |e| e.to_string(),
    ))
}
