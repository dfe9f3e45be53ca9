//! One chunk's processing, wherever it runs: its batches go through the
//! stages and are folded into one partial of the aggregate ([`ChunkRun`]).
//! Every chunk is decoded the same way, by its source's
//! [`ChunkDecoder`](crate::ChunkDecoder) ([`run_streamed`]): a chunk in
//! files block by block as it is read (as serial mode reads its input), a
//! chunk whose bytes came in a frame as one block already in memory.
//! Workers run chunks a coordinator sends them; pipeline mode's reading
//! lanes (`pipelined/lanes.rs`) run chunks cut in their own process.

use crate::error::RunError;
use crate::file_range::RangeReader;
use crate::metrics::{StageKind, StageStats};
use crate::mode::fused::{run_chain, Chain, FusedError};
use crate::mode::inline::run_batch;
use crate::pipeline::{AnyData, DynAggregate, DynChunkDecoder, DynFused, DynStage, Named};
use crate::stage::BatchInfo;

/// Bytes read from the files at a time when a chunk is decoded as it is
/// read (as serial mode reads): the buffer stays this small however large
/// the chunk, and each block is still in the cache when its records are
/// decoded.
pub(crate) const STREAM_BLOCK: usize = 256 << 10;

/// Bytes a frame of `max_frame` bytes leaves for a chunk's payload: room
/// for the chunk's header and the frame's own (a length, and whatever
/// authenticates it).
pub(crate) fn chunk_room(max_frame: usize) -> usize {
    max_frame.saturating_sub(crate::protocol::CHUNK_HEADER_ROOM + 64)
}

/// Why a chunk failed: a stage's or the aggregate's error as serial mode
/// gives it, or a problem with the chunk itself (its files, its text).
#[derive(Debug)]
pub(crate) enum ChunkError {
    /// The chunk's bytes: unreadable, cut inside a record, or not the
    /// records its header says.
    Chunk(String),
    /// A file the chunk's ranges name could not be read here (refused,
    /// cannot be opened, changed, a read error): the bytes, not the
    /// data, are at fault, and a process that can read them may still
    /// process the chunk.
    Unreadable(crate::file_range::RangeError),
    /// A stage or the aggregate failed on a batch.
    Run(RunError),
}

impl From<RunError> for ChunkError {
    fn from(e: RunError) -> Self {
        ChunkError::Run(e)
    }
}

/// What a chunk's processing builds up, part by part: the aggregate's
/// partial, the stages' counts and times, and the next part's first line.
pub(crate) struct ChunkRun {
    seq: u64,
    first_line: u64,
    /// Records run so far.
    pub(crate) records: u64,
    /// The chunk's partial.
    pub(crate) acc: AnyData,
    /// One row per stage, then the aggregate's.
    pub(crate) stats: Vec<StageStats>,
}

impl ChunkRun {
    /// A run of chunk `seq`, whose first record is `first_line`, through
    /// `stages` into a new partial of `aggregate`.
    pub(crate) fn new(
        stages: &[Named<Box<dyn DynStage>>],
        aggregate: &Named<Box<dyn DynAggregate>>,
        seq: u64,
        first_line: u64,
    ) -> Self {
        let mut stats: Vec<StageStats> = stages
            .iter()
            .map(|s| StageStats::new(&s.name, StageKind::Stage))
            .collect();
        stats.push(StageStats::new(&aggregate.name, StageKind::Aggregate));
        ChunkRun {
            seq,
            first_line,
            records: 0,
            acc: aggregate.part.empty(),
            stats,
        }
    }

    /// Where the next part of `records` records sits in the input.
    pub(crate) fn next_info(&self, records: usize) -> BatchInfo {
        BatchInfo {
            seq: self.seq,
            first_line: self.first_line,
            records: records as u64,
        }
    }

    /// The chunk is complete: lets the aggregate compact its partial
    /// ([`Aggregate::seal`](crate::Aggregate::seal)).
    pub(crate) fn seal(&mut self, aggregate: &mut Named<Box<dyn DynAggregate>>) {
        aggregate.part.seal(&mut self.acc);
    }

    /// Runs one decoded part of `n` records through `stages` into the partial.
    pub(crate) fn run_part(
        &mut self,
        stages: &mut [Named<Box<dyn DynStage>>],
        aggregate: &mut Named<Box<dyn DynAggregate>>,
        data: AnyData,
        n: usize,
    ) -> Result<(), RunError> {
        let info = self.next_info(n);
        self.first_line += n as u64;
        self.records += n as u64;
        let rows = &mut self.stats;
        run_batch(
            stages,
            aggregate,
            &mut self.acc,
            (data, n),
            &info,
            rows,
            |_| {},
        )
    }
}

/// Folds the partial of the next chunk in input order into `acc`, after
/// `merged_records` records: a chunk cut by bytes (`renumber`) numbered its
/// records from 1, so they move to their place first. `merged_records`
/// grows by the chunk's `records`. Reading lanes and the multiprocess
/// coordinator merge every partial through it; a count that overflows, a
/// partial that cannot be renumbered or merged is the error.
pub(crate) fn merge_in_order(
    aggregate: &dyn DynAggregate,
    acc: &mut AnyData,
    mut partial: AnyData,
    (records, renumber): (u64, bool),
    merged_records: &mut u64,
) -> Result<(), crate::StageError> {
    if renumber {
        aggregate
            .renumber(&mut partial, *merged_records)
            .map_err(|e| crate::StageError::with_source("its partial cannot be renumbered", e))?;
    }
    let total = merged_records.checked_add(records).ok_or_else(|| {
        crate::StageError::new(format!(
            "its count of {records} records overflows the total"
        ))
    })?;
    aggregate
        .try_merge(acc, partial)
        .map_err(|e| crate::StageError::with_source("its partial does not merge", e))?;
    *merged_records = total;
    Ok(())
}

/// Where a chunk's bytes are, for [`run_streamed`].
pub(crate) enum ChunkBytes<'a> {
    /// Byte ranges of files, read a block at a time.
    Files(RangeReader<'a>),
    /// Bytes already in memory (a frame's payload): one block, decoded
    /// where it lies.
    Frame(&'a [u8]),
}

impl<'a> From<RangeReader<'a>> for ChunkBytes<'a> {
    fn from(reader: RangeReader<'a>) -> Self {
        ChunkBytes::Files(reader)
    }
}

/// A chunk being decoded into parts and run: the part being filled, and
/// what runs it.
struct Parts<'s, 'a> {
    stages: &'s mut [Named<Box<dyn DynStage>>],
    aggregate: &'s mut Named<Box<dyn DynAggregate>>,
    decoder: &'a dyn DynChunkDecoder,
    /// The pipeline's record chain, while the decoder makes records one
    /// at a time for it: the chunk then runs record by record, in no parts.
    fused: Option<&'s mut Box<dyn DynFused>>,
    /// Most records in a part: the decoder's cap of the run's batch size.
    batch_size: usize,
    run: ChunkRun,
    /// The part being filled, and its records so far.
    part: Option<(AnyData, usize)>,
}

impl Parts<'_, '_> {
    /// Decodes the whole records at the start of `bytes` into parts,
    /// running each part once it holds `batch_size` records (and, `at_end`,
    /// the last one however small), so that each byte is scanned once.
    /// Returns the bytes used: what is left is a record cut off by the end
    /// of `bytes`.
    fn decode(&mut self, bytes: &[u8], at_end: bool) -> Result<usize, ChunkError> {
        if let Some(fused) = self.fused.as_deref_mut() {
            let chain = Chain {
                fused,
                stages: self.stages,
                aggregate: self.aggregate,
            };
            let run = &mut self.run;
            let at = (bytes, run.seq, run.first_line, usize::MAX);
            match run_chain(chain, self.decoder, at, &mut run.acc, &mut run.stats) {
                Ok(Some((used, n))) => {
                    run.first_line += n as u64;
                    run.records += n as u64;
                    return Ok(used);
                }
                // This decoder makes whole batches only.
                Ok(None) => self.fused = None,
                Err(FusedError::Decode(e)) => {
                    return Err(ChunkError::Chunk(format!("cannot decode the chunk: {e}")))
                }
                Err(FusedError::Run(e)) => return Err(ChunkError::Run(e)),
            }
        }
        let mut at = 0;
        loop {
            if self.part.is_none() && at == bytes.len() {
                // Nothing to decode: no new part. (One made only to stay
                // empty would be dropped with the run, and a source that
                // pools its batch buffers would allocate, grow and fault
                // in a new one for every chunk: 0.3 ms a chunk for logs.)
                return Ok(at);
            }
            let (batch, in_part) = self
                .part
                .get_or_insert_with(|| (self.decoder.new_batch(&self.run.next_info(0)), 0));
            let (used, added) = self
                .decoder
                .extend(batch, &bytes[at..], self.batch_size - *in_part)
                .map_err(|e| ChunkError::Chunk(format!("cannot decode the chunk: {e}")))?;
            at += used;
            *in_part += added;
            if *in_part < self.batch_size && !(at_end && *in_part > 0) {
                return Ok(at);
            }
            self.run_part()?;
        }
    }

    /// For a record longer than a block at the start of `buf`: runs the
    /// part before it, then lets the decoder take `buf` over for it in a
    /// part of its own, which it may go on filling. True when it did;
    /// `buf` then holds the bytes after the record.
    fn adopt(&mut self, buf: &mut Vec<u8>) -> Result<bool, ChunkError> {
        if self.part.as_ref().is_some_and(|(_, n)| *n > 0) {
            self.run_part()?;
        }
        let (batch, in_part) = self
            .part
            .get_or_insert_with(|| (self.decoder.new_batch(&self.run.next_info(0)), 0));
        if self.decoder.adopt(batch, buf).is_none() {
            return Ok(false);
        }
        *in_part += 1;
        if *in_part >= self.batch_size {
            self.run_part()?;
        }
        Ok(true)
    }

    /// Runs the part being filled, if any.
    fn run_part(&mut self) -> Result<(), RunError> {
        match self.part.take() {
            Some((batch, n)) => self.run.run_part(self.stages, self.aggregate, batch, n),
            None => Ok(()),
        }
    }
}

/// A pipeline's stages, aggregate and record chain (when it has one), as
/// [`run_streamed`] runs them.
pub(crate) type Parted<'p> = (
    &'p mut [Named<Box<dyn DynStage>>],
    &'p mut Named<Box<dyn DynAggregate>>,
    Option<&'p mut Box<dyn DynFused>>,
);

/// Runs a chunk through `stages` and `aggregate`, decoding it with the
/// source's `decoder` into parts of at most
/// [`batch_records`](crate::ChunkDecoder::batch_records)`(batch_size)`
/// records, each run as soon as it is full: the one way every chunk is
/// decoded, by workers and reading lanes alike. A chunk in files is read
/// a block at a time into `buf`; a frame's bytes are one block already in
/// memory. `records` is the chunk's record count when its header gives one
/// (not 0): the chunk must hold exactly that many; otherwise its records
/// are numbered from `first_line` by what the decoder makes of it.
/// `acc`, when given, is the partial the chunk folds into instead of a new
/// one (the partial of the records before it: serial mode reads its input
/// as consecutive chunks into one partial, a reading lane of a fold that
/// commutes folds all its chunks into one); it is not sealed then.
pub(crate) fn run_streamed<'a>(
    (stages, aggregate, fused): Parted<'_>,
    decoder: &dyn DynChunkDecoder,
    bytes: impl Into<ChunkBytes<'a>>,
    (seq, first_line, records): (u64, u64, u64),
    (batch_size, acc): (usize, Option<AnyData>),
    buf: &mut Vec<u8>,
) -> Result<ChunkRun, ChunkError> {
    let continuing = acc.is_some();
    let mut run = ChunkRun::new(stages, aggregate, seq, first_line);
    if let Some(acc) = acc {
        run.acc = acc;
    }
    let mut parts = Parts {
        batch_size: decoder.batch_records(batch_size.max(1)),
        run,
        stages,
        aggregate,
        decoder,
        fused,
        part: None,
    };
    let left = match bytes.into() {
        ChunkBytes::Frame(bytes) => {
            let used = parts.decode(bytes, true)?;
            tracing::debug!("chunk {seq}: decoded {} bytes of its frame", bytes.len());
            bytes.len() - used
        }
        ChunkBytes::Files(reader) => read_and_decode(&mut parts, reader, buf)?,
    };
    if left > 0 {
        return Err(ChunkError::Chunk(format!(
            "the chunk ends inside a record ({left} bytes after its last whole record)"
        )));
    }
    let Parts {
        mut run, aggregate, ..
    } = parts;
    if records != 0 && run.records != records {
        return Err(ChunkError::Chunk(format!(
            "the chunk holds {} records where its header says {records}",
            run.records
        )));
    }
    if !continuing {
        run.seal(aggregate);
    }
    Ok(run)
}

/// Reads `reader`'s ranges a block at a time into `buf` and decodes them
/// into `parts`; returns the bytes left undecoded at the end (a record
/// the ranges cut off).
fn read_and_decode(
    parts: &mut Parts<'_, '_>,
    mut reader: RangeReader<'_>,
    buf: &mut Vec<u8>,
) -> Result<usize, ChunkError> {
    let mut bytes_read = 0;
    // `buf` is all initialized, and reused from block to block: its first
    // `filled` bytes are the rest of the last block (a record cut off by
    // its end), the block is read after them.
    let mut filled = 0;
    // The buffer starts with a record longer than half a block, not yet
    // whole.
    let mut long = false;
    if buf.len() < STREAM_BLOCK {
        buf.resize(STREAM_BLOCK, 0);
    }
    loop {
        let read = if buf.len() - filled >= STREAM_BLOCK / 2 {
            reader.read_to(&mut buf[filled..])
        } else {
            // A record longer than the room left: appended to, a quarter
            // of what is held more each time (so that it is scanned a few
            // times, not once a block, and few bytes past its end are
            // read with it), into spare capacity that is not zeroed
            // first: only bytes read are touched, and the record costs
            // its length, not the double a doubled buffer would.
            long = true;
            buf.truncate(filled);
            reader.read_into(buf, (filled / 4).max(STREAM_BLOCK))
        }
        .map_err(|e| match e.input {
            Some(_) => ChunkError::Unreadable(e),
            None => ChunkError::Chunk(format!("cannot read the chunk: {e}")),
        })?;
        bytes_read += read;
        filled += read;
        let at_end = read == 0;
        if long {
            // A record longer than a block starts the buffer: the part
            // takes the buffer over rather than a copy of it.
            buf.truncate(filled);
            if parts.adopt(buf)? {
                long = false;
                filled = buf.len();
            }
        }
        let at = parts.decode(&buf[..filled], at_end)?;
        long &= at == 0;
        buf.copy_within(at..filled, 0);
        filled -= at;
        if filled < STREAM_BLOCK / 2 && buf.len() != STREAM_BLOCK {
            // No long record pending: back to a block's buffer (a long
            // record's room given back).
            buf.truncate(STREAM_BLOCK);
            buf.resize(STREAM_BLOCK, 0);
            buf.shrink_to(2 * STREAM_BLOCK);
        }
        if at_end {
            break;
        }
    }
    tracing::debug!(
        "chunk {}: read {bytes_read} bytes from {} file range(s), block by block",
        parts.run.seq,
        reader.ranges()
    );
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file_range::{file_identity, fingerprint, FileRange};
    use crate::sources::BatchPool;
    use crate::workloads::logs::{builder, generate::Generator, LogsInput};

    /// The merge counts the records merged, and a chunk whose count would
    /// overflow the total fails the merge, leaving the total as it was.
    #[test]
    fn merging_in_order_counts_records_and_refuses_an_overflow() {
        let pipeline = builder().build_collect(LogsInput::Generate {
            records: 0,
            seed: 1,
        });
        let aggregate = pipeline.aggregate.part.as_ref();
        let mut acc = aggregate.empty();
        let mut merged = 10;
        merge_in_order(
            aggregate,
            &mut acc,
            aggregate.empty(),
            (5, true),
            &mut merged,
        )
        .unwrap();
        assert_eq!(merged, 15);
        merged = u64::MAX - 2;
        let e = merge_in_order(
            aggregate,
            &mut acc,
            aggregate.empty(),
            (5, false),
            &mut merged,
        )
        .unwrap_err();
        assert!(e.to_string().contains("overflows"), "{e}");
        assert_eq!(merged, u64::MAX - 2);
    }

    /// Every batch a chunk takes from a pooling source goes back to it:
    /// none is made at the chunk's end only to be dropped (which made
    /// each chunk allocate, grow and fault in a fresh buffer).
    #[test]
    fn a_chunk_gives_back_every_batch_it_takes_from_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        Generator::new(7, 1000)
            .write_all(std::fs::File::create(&path).unwrap())
            .unwrap();
        let (file_len, modified_nanos) = file_identity(&path).unwrap();
        let ranges = [FileRange {
            path: path.clone(),
            offset: 0,
            len: file_len,
            suffix: Vec::new(),
            file_len,
            modified_nanos,
            fingerprint: fingerprint(&std::fs::File::open(&path).unwrap(), file_len).unwrap(),
        }];
        let pool = BatchPool::new();
        let mut pipeline = builder()
            .with_pool(pool.clone())
            .build_collect(LogsInput::Generate {
                records: 0,
                seed: 1,
            });
        let decoder = pipeline.source.part.chunk_decoder().unwrap();
        let mut buf = Vec::new();
        for seq in 0..3 {
            let run = run_streamed(
                (&mut pipeline.stages, &mut pipeline.aggregate, None),
                decoder.as_ref(),
                RangeReader::own(&ranges),
                (seq, 1, 1000),
                (300, None),
                &mut buf,
            )
            .unwrap();
            assert_eq!(run.records, 1000);
            // One buffer went round all four parts, and is back.
            assert_eq!(pool.len(), 1, "after chunk {seq}");
        }
    }
}
