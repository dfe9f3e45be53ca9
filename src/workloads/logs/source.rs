//! The built-in generator as a source of line batches (`parpipe run`
//! without `--input`), on the public source traits alone: batches from a
//! [`BatchPool`], and chunks shipped to workers as LF-terminated text that
//! the pool decodes (as [`Lines`](crate::sources::Lines) ships a gzip
//! file's). It is no file, so it is built with
//! [`Pipeline::builder_chunked`](crate::Pipeline::builder_chunked).

use super::generate::Generator;
use crate::sources::{BatchPool, LineBatch};
use crate::stage::{ChunkDecoder, ChunkSource, Source, StageError};

/// Generated access-log lines, numbered from 1.
pub struct Generated {
    /// The generator (boxed: it is much larger than the rest).
    generator: Box<Generator>,
    /// Number of the next line.
    next_line: u64,
    pool: BatchPool,
    /// Multiprocess chunks' byte limit (see [`ChunkSource::fit_chunks_to_frame`]).
    most_bytes: Option<usize>,
}

impl Generated {
    /// `records` lines from the generator seeded with `seed`; batch
    /// buffers come from `pool`.
    pub fn new(seed: u64, records: u64, pool: BatchPool) -> Self {
        Generated {
            generator: Box::new(Generator::new(seed, records)),
            next_line: 1,
            pool,
            most_bytes: None,
        }
    }
}

impl Source for Generated {
    type Out = LineBatch;

    fn next_batch(&mut self, max_records: usize) -> Result<Option<LineBatch>, StageError> {
        let mut batch = self.pool.batch(self.next_line);
        let n = self.generator.fill(&mut batch, max_records);
        self.next_line += n as u64;
        Ok(self.pool.unless_empty(batch))
    }

    fn size_hint(&self) -> Option<u64> {
        Some(self.generator.remaining())
    }

    /// It only computes.
    fn may_wait(&self) -> bool {
        false
    }
}

impl ChunkSource for Generated {
    fn fit_chunks_to_frame(&mut self, max_chunk_bytes: usize, _max_frame: usize) {
        self.most_bytes = Some(max_chunk_bytes);
    }

    /// The same text form as files (generated lines never hold a CR or
    /// LF), so that workers split it into batches with the pool.
    fn next_chunk(
        &mut self,
        max_records: usize,
        out: &mut Vec<u8>,
    ) -> Result<Option<usize>, StageError> {
        let n = match self.most_bytes {
            None => self.generator.fill_text(out, max_records),
            // For a small frame: line by line, stopping at half of it (a
            // generated line is a few hundred bytes).
            Some(most) => {
                let (start, mut n) = (out.len(), 0);
                while n < max_records.max(1)
                    && out.len() - start < most / 2
                    && self.generator.fill_text(out, 1) == 1
                {
                    n += 1;
                }
                n
            }
        };
        self.next_line += n as u64;
        Ok((n > 0).then_some(n))
    }

    fn chunk_decoder(&self) -> Box<dyn ChunkDecoder<LineBatch>> {
        Box::new(self.pool.clone())
    }
}
