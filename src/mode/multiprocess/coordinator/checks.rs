//! What the coordinator checks in a worker's answer before it takes it:
//! that the partial accounts for exactly the records of its chunk.
//!
//! For a chunk the coordinator counted (bytes it read and cut by records,
//! or file ranges cut by records), it knows the records and where they
//! start: the worker's count must equal it, and the aggregate checks its
//! partial against it ([`Aggregate::check_chunk`](crate::Aggregate::check_chunk)).
//! For a chunk cut by bytes (the worker counts its lines), the coordinator
//! knows only the bytes: the worker's count must be at least 1 and at most
//! the chunk's bytes (every line ends with a line feed), and the partial
//! must agree with that count, its lines numbered from 1.

use super::chunks::ChunkFrame;
use super::Coordinator;
use crate::pipeline::AnyData;
use crate::protocol::ChunkStats;

impl Coordinator {
    /// The records of the chunk `seq` that `stats` and `partial` answer,
    /// or why they cannot be its answer.
    pub(super) fn check_answer(
        &self,
        seq: u64,
        stats: &ChunkStats,
        partial: &AnyData,
    ) -> Result<u64, String> {
        let chunk = self
            .sched
            .in_flight(seq)
            .ok_or_else(|| format!("chunk {seq} is not in flight"))?;
        let records = if self.uncounted {
            let bytes = match &chunk.frame {
                ChunkFrame::InFiles { ranges, .. } => ranges
                    .iter()
                    .map(|r| r.len.saturating_add(r.suffix.len() as u64))
                    .fold(0u64, u64::saturating_add),
                ChunkFrame::Bytes(frame) => frame.len() as u64,
            };
            if stats.records == 0 && bytes > 0 || stats.records > bytes {
                return Err(format!(
                    "it counts {} records in a chunk of {bytes} bytes",
                    stats.records
                ));
            }
            stats.records
        } else {
            if stats.records != chunk.records {
                return Err(format!(
                    "it counts {} records, the chunk holds {}",
                    stats.records, chunk.records
                ));
            }
            chunk.records
        };
        self.pipeline
            .aggregate
            .part
            .check_chunk(partial, chunk.first_line, records)
            .map_err(|e| format!("its partial does not match the chunk: {e}"))?;
        Ok(records)
    }
}
