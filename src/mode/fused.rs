//! Running a pipeline's record chain (record stages and a fold, see
//! `pipeline/records.rs`) on bytes, record by record: the one call serial
//! mode, reading lanes and workers make for it, with the timing, counts,
//! panic capture and error naming that [`inline`](super::inline) gives a
//! batch.

use crate::error::{panic_message, RunError};
use crate::metrics::StageStats;
use crate::pipeline::{
    AnyData, ChainState, DynAggregate, DynChunkDecoder, DynFused, DynStage, Named, DECODER,
};
use crate::stage::{BatchInfo, StageError};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// Why a chain run failed.
#[derive(Debug)]
pub(crate) enum FusedError {
    /// The source's decoder refused the bytes.
    Decode(StageError),
    /// A stage or the fold failed on a record (named in the error).
    Run(RunError),
}

/// A pipeline's parts as a chain run needs them: the chain itself, and the
/// stages' and the aggregate's names (errors name the part).
pub(crate) struct Chain<'a> {
    pub(crate) fused: &'a mut Box<dyn DynFused>,
    pub(crate) stages: &'a [Named<Box<dyn DynStage>>],
    pub(crate) aggregate: &'a Named<Box<dyn DynAggregate>>,
}

/// Whether `decoder` makes records one at a time for the chain (asked
/// once, before a run picks it): a run on no bytes.
pub(crate) fn decodes_each(chain: Chain<'_>, decoder: &dyn DynChunkDecoder) -> bool {
    let mut probe = ChainState::new(chain.stages.len());
    let mut acc = chain.aggregate.part.empty();
    chain
        .fused
        .run(decoder.typed(), (&[], 1, 0), &mut acc, &mut probe)
        .is_some()
}

/// Decodes the whole records at the start of `bytes` (at most `max`, the
/// first numbered `first`, of chunk or batch `seq`) and folds each into
/// `acc` through the chain. `rows` holds one row per stage, then the
/// aggregate's: each stage's row counts its records in and out, and the
/// aggregate's row takes the time of the whole run (decoding, stages and
/// fold run interleaved, record by record). Returns the bytes used and the
/// records decoded, or `None` when the decoder cannot make records one at
/// a time.
pub(crate) fn run_chain(
    chain: Chain<'_>,
    decoder: &dyn DynChunkDecoder,
    (bytes, seq, first, max): (&[u8], u64, u64, usize),
    acc: &mut AnyData,
    rows: &mut [StageStats],
) -> Result<Option<(usize, usize)>, FusedError> {
    let n_stages = chain.stages.len();
    let mut state = ChainState::new(n_stages);
    let started = Instant::now();
    let fused = chain.fused;
    let result = catch_unwind(AssertUnwindSafe(|| {
        fused.run(decoder.typed(), (bytes, first, max), acc, &mut state)
    }));
    let busy = started.elapsed();
    for (row, (records_in, records_out)) in rows.iter_mut().zip(&state.counts) {
        row.record_batch(*records_in, *records_out, std::time::Duration::ZERO);
    }
    if let Some(row) = rows.get_mut(n_stages) {
        let into_fold = state.counts.last().map_or(state.decoded, |c| c.1);
        row.record_batch(into_fold, 0, busy);
    }
    // The record a stage failed on: the last one decoded.
    let record = BatchInfo {
        seq,
        first_line: first + state.decoded.saturating_sub(1),
        records: 1,
    };
    let name = |at: usize| match chain.stages.get(at) {
        Some(stage) => stage.name.clone(),
        None => chain.aggregate.name.clone(),
    };
    let failed = |at: usize, panicked: bool, error: StageError| {
        FusedError::Run(RunError::Stage {
            stage: name(at),
            batch: record,
            panicked,
            worker: None,
            error,
        })
    };
    match result {
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            Err(if state.at == DECODER {
                FusedError::Decode(StageError::new(format!("panicked: {message}")))
            } else {
                failed(state.at, true, StageError::new(message))
            })
        }
        Ok(_) if state.failed.is_some() => {
            let (at, error) = state.failed.take().expect("checked");
            Err(failed(at, false, error))
        }
        Ok(None) => Ok(None),
        Ok(Some(Err(e))) => Err(FusedError::Decode(e)),
        Ok(Some(Ok(done))) => Ok(Some(done)),
    }
}
