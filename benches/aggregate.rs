//! Aggregate merge: the cost of `LogsPartial::merge`, the step that joins
//! per-chunk partials (multiprocess mode, the rayon baseline), and of
//! decoding a worker's partial and merging it, which is what the
//! multiprocess coordinator does with each chunk's answer.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use parpipe::sources::lines::batch::LineBatch;
use parpipe::stage::{Aggregate, BatchInfo, Stage};
use parpipe::workloads::logs::generate::Generator;
use parpipe::workloads::logs::metrics::{LogsMetrics, LogsPartial};
use parpipe::workloads::logs::stages::{Enrich, Parse};

/// The partials of two consecutive batches of `n` generated lines each, as
/// two chunks of one input give: they share most of their keys.
fn partials(seed: u64, n: usize) -> (LogsPartial, LogsPartial) {
    let mut generator = Generator::new(seed, 2 * n as u64);
    let mut one = || {
        let mut batch = LineBatch::new(1);
        generator.fill(&mut batch, n);
        let info = BatchInfo {
            seq: 0,
            first_line: 1,
            records: n as u64,
        };
        let parsed = Parse::default().process(batch, &info).unwrap();
        let enriched = Enrich::default().process(parsed, &info).unwrap();
        let mut acc = LogsPartial::default();
        LogsMetrics::default()
            .add(&mut acc, enriched, &info)
            .unwrap();
        acc
    };
    (one(), one())
}

fn merge(c: &mut Criterion) {
    let mut group = c.benchmark_group("logs_partial_merge");
    for n in [8192usize, 65536] {
        let (a, b) = partials(1, n);
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("two_partials_of_{n}_lines"), |bench| {
            bench.iter_batched(
                || (a.clone(), b.clone()),
                |(mut a, b)| {
                    a.merge(b);
                    a
                },
                BatchSize::LargeInput,
            )
        });
        let config = bincode::config::standard();
        let encoded = bincode::serde::encode_to_vec(&b, config).unwrap();
        group.bench_function(format!("decode_and_merge_of_{n}_lines"), |bench| {
            bench.iter_batched(
                || a.clone(),
                |mut a| {
                    // As the coordinator does it: bounded decoding, checked merge.
                    let later: LogsPartial =
                        parpipe::protocol::decode_whole(&encoded, "partial").unwrap();
                    a.try_merge(later).unwrap();
                    a
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, merge);
criterion_main!(benches);
