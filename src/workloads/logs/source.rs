//! The `logs` source: the built-in generator or the input files, as batches
//! of raw lines.

use super::batch::LineBatch;
use super::generate::Generator;
use super::input::{InputSpec, LineReader};
use crate::stage::{decode_batch, encode_batch, BatchInfo, Source, StageError};

/// Most bytes a batch of read lines holds (besides the line-count limit),
/// so that memory stays bounded whatever the line lengths.
pub const MAX_BATCH_BYTES: usize = 8 << 20;

/// Where the `logs` lines come from.
pub enum LogSource {
    /// The deterministic generator.
    Generate {
        /// The generator (boxed: it is much larger than a reader).
        generator: Box<Generator>,
        /// Number of the next line.
        next_line: u64,
    },
    /// Files or standard input.
    Read(LineReader),
}

impl LogSource {
    /// Generated lines.
    pub fn generate(seed: u64, records: u64) -> Self {
        LogSource::Generate {
            generator: Box::new(Generator::new(seed, records)),
            next_line: 1,
        }
    }

    /// Lines read from `inputs`, in order (nothing is opened yet).
    pub fn read(inputs: Vec<InputSpec>) -> Self {
        LogSource::Read(LineReader::new(inputs))
    }
}

impl Source for LogSource {
    type Out = LineBatch;

    fn next_batch(&mut self, max_records: usize) -> Result<Option<LineBatch>, StageError> {
        match self {
            LogSource::Generate {
                generator,
                next_line,
            } => {
                let mut batch = LineBatch::new(*next_line);
                let n = generator.fill(&mut batch, max_records);
                *next_line += n as u64;
                Ok((n > 0).then_some(batch))
            }
            LogSource::Read(reader) => {
                let mut batch = LineBatch::new(0);
                let n = reader
                    .fill(&mut batch, max_records, MAX_BATCH_BYTES)
                    .map_err(|e| StageError::new(e.to_string()))?;
                Ok((n > 0).then_some(batch))
            }
        }
    }

    /// Read input ships as raw text ([`LineReader::fill_text`]): the
    /// coordinator then only finds line ends and copies bytes, and each
    /// worker cuts its own chunks into lines.
    fn next_chunk(
        &mut self,
        max_records: usize,
        out: &mut Vec<u8>,
    ) -> Result<Option<usize>, StageError> {
        match self {
            LogSource::Read(reader) => {
                let n = reader
                    .fill_text(out, max_records, MAX_BATCH_BYTES)
                    .map_err(|e| StageError::new(e.to_string()))?;
                Ok((n > 0).then_some(n))
            }
            LogSource::Generate { .. } => {
                let Some(batch) = self.next_batch(max_records)? else {
                    return Ok(None);
                };
                encode_batch(&batch, out)?;
                Ok(Some(batch.len()))
            }
        }
    }

    fn decode_chunk(&self, bytes: &[u8], info: &BatchInfo) -> Result<LineBatch, StageError> {
        match self {
            LogSource::Read(_) => {
                LineBatch::from_text(info.first_line, bytes).map_err(StageError::new)
            }
            LogSource::Generate { .. } => decode_batch(bytes),
        }
    }

    fn size_hint(&self) -> Option<u64> {
        match self {
            LogSource::Generate { generator, .. } => Some(generator.remaining()),
            LogSource::Read(_) => None,
        }
    }
}
