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
    let decoded = match result {
        Ok(decoded) => decoded,
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            return Err(if state.at == DECODER {
                FusedError::Decode(StageError::new(format!("panicked: {message}")))
            } else {
                failed(state.at, true, StageError::new(message))
            });
        }
    };
    if let Some((at, error)) = state.failed.take() {
        return Err(failed(at, false, error));
    }
    match decoded {
        None => Ok(None),
        Some(Err(e)) => Err(FusedError::Decode(e)),
        Some(Ok(done)) => Ok(Some(done)),
    }
}

#[cfg(test)]
mod tests {
    use crate::sources::{Csv, InputSpec};
    use crate::{Fold, Mode, Pipeline, Replicas, RunConfig, StageError};

    #[derive(Debug, serde::Deserialize)]
    struct Row {
        id: u64,
        name: String,
    }

    /// The sum of the ids and the length of the names kept; whether it
    /// says its merge commutes (it does) is the field.
    #[derive(Clone)]
    struct Sums(bool);

    impl Fold for Sums {
        type In = (u64, usize);
        type Partial = (u64, u64, u64);
        fn empty(&self) -> Self::Partial {
            (0, 0, 0)
        }
        fn add(
            &mut self,
            acc: &mut Self::Partial,
            (id, len): (u64, usize),
        ) -> Result<(), StageError> {
            if id == 666_667 {
                panic!("the fold met the devil");
            }
            acc.0 += 1;
            acc.1 += id;
            acc.2 += len as u64;
            Ok(())
        }
        fn merge(&self, acc: &mut Self::Partial, later: Self::Partial) {
            acc.0 += later.0;
            acc.1 += later.1;
            acc.2 += later.2;
        }
        fn commutes(&self) -> bool {
            self.0
        }
    }

    /// `rows` rows, ids 1, 2, …, but for `bad`: (the row, the id it gets).
    fn csv(dir: &tempfile::TempDir, rows: u64, bad: Option<(u64, u64)>) -> String {
        let path = dir.path().join("rows.csv");
        let mut text = String::from("id,name\n");
        for i in 1..=rows {
            let id = match bad {
                Some((at, id)) if at == i => id,
                _ => i,
            };
            text.push_str(&format!(
                "{id},\"name {}, {}\"\n",
                i % 7,
                "x".repeat((i % 5) as usize)
            ));
        }
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    fn pipeline(path: &str) -> Pipeline<(u64, u64, u64)> {
        pipeline_with(path, false)
    }

    fn pipeline_with(path: &str, commutes: bool) -> Pipeline<(u64, u64, u64)> {
        Pipeline::builder_files("rows", "rows", Csv::<Row>::new(InputSpec::parse(path)))
            .filter_map("odd", |r: Row| (r.id % 2 == 1).then_some(r))
            .try_filter_map("check", |r: Row| {
                if r.id == 777_777 {
                    return Err(StageError::new("id 777777 is refused"));
                }
                Ok(Some(r))
            })
            .map("measure", |r: Row| (r.id, r.name.len()))
            .fold("sums", Sums(commutes))
    }

    fn config(mode: Mode, replicas: Replicas) -> RunConfig {
        RunConfig {
            mode,
            replicas,
            ..RunConfig::default()
        }
    }

    /// Record by record (serial, reading lanes) and batch by batch (the
    /// stage actors) give the same result, and the plan says which ran.
    #[test]
    fn record_by_record_and_batches_agree_and_the_plan_says_which() {
        let dir = tempfile::tempdir().unwrap();
        let path = csv(&dir, 30_000, None);
        let expected: (u64, u64, u64) = {
            let odd = (1..=30_000u64).filter(|i| i % 2 == 1);
            let names = odd
                .clone()
                .map(|i| format!("name {}, {}", i % 7, "x".repeat((i % 5) as usize)).len() as u64);
            (15_000, odd.sum(), names.sum())
        };
        let actors = Replicas::Fixed(vec![("odd".into(), 1)]);
        for (config, by_record) in [
            (config(Mode::Serial, Replicas::None), true),
            (config(Mode::Pipelined, Replicas::None), true),
            (config(Mode::Pipelined, actors), false),
        ] {
            let done = pipeline(&path).run(&config).unwrap();
            assert_eq!(done.result, expected, "{:?}", config.mode);
            // A fold that commutes: the lanes keep a partial each.
            let commuting = pipeline_with(&path, true).run(&config).unwrap();
            assert_eq!(commuting.result, expected, "{:?}", config.mode);
            assert_eq!(commuting.report.stages[0].records_out, 30_000);
            let lanes = config.mode == Mode::Pipelined && by_record;
            let per_lane = commuting.report.plan.expect("a plan").partial_per_lane;
            assert_eq!(per_lane, lanes, "{:?}", config.mode);
            let plan = done.report.plan.expect("a plan");
            assert_eq!(plan.record_by_record, by_record, "{plan}");
            assert!(!plan.partial_per_lane, "{plan}");
            assert_eq!(plan.to_lines().contains("record by record"), by_record);
        }
    }

    /// Serial mode reads a plain file as chunks cut by bytes and a gzip
    /// file as the source's text: both record by record, with the same
    /// result, the header skipped either way.
    #[test]
    fn serial_mode_reads_files_by_ranges_and_gzip_by_text_alike() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = csv(&dir, 12_345, None);
        let gz = dir.path().join("rows.csv.gz");
        let mut encoder = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        encoder.write_all(&std::fs::read(&path).unwrap()).unwrap();
        encoder.finish().unwrap();
        let serial = RunConfig::default();
        let plain = pipeline(&path).run(&serial).unwrap();
        let zipped = pipeline(&gz.display().to_string()).run(&serial).unwrap();
        assert_eq!(plain.result, zipped.result);
        assert_eq!(plain.result.0, 6_173);
        for done in [&plain, &zipped] {
            assert!(done.report.plan.as_ref().unwrap().record_by_record);
            assert_eq!(done.report.stages[0].records_out, 12_345);
        }
    }

    /// A record stage's error and a fold's panic name the part and the
    /// record, in every mode that runs record by record.
    #[test]
    fn a_failing_record_names_its_stage_and_its_record() {
        let dir = tempfile::tempdir().unwrap();
        // (the bad record, its id, what the error says, its record number)
        let cases = [
            (
                4_243,
                777_777,
                ["stage 'check' failed", "id 777777 is refused"],
                "record 4243",
            ),
            (
                9_999,
                666_667,
                ["stage 'sums' panicked", "the fold met the devil"],
                "record 9999",
            ),
        ];
        for mode in [Mode::Serial, Mode::Pipelined] {
            for (at, id, says, record) in cases {
                let path = csv(&dir, 20_000, Some((at, id)));
                let e = pipeline(&path)
                    .run(&config(mode, Replicas::None))
                    .unwrap_err();
                let text = e.to_string();
                for part in says {
                    assert!(text.contains(part), "{text}");
                }
                if mode == Mode::Serial {
                    assert!(text.contains(record), "{text}");
                }
            }
        }
    }

    /// A line that is not a record fails the run naming the source and the
    /// record, as batch by batch does.
    #[test]
    fn a_bad_line_names_the_source_and_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.csv");
        std::fs::write(&path, "id,name\n1,a\nnot-a-number,b\n3,c\n").unwrap();
        let e = pipeline(&path.display().to_string())
            .run(&RunConfig::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("record 2"), "{e}");
        assert!(e.contains("cannot read the record"), "{e}");
    }
}
