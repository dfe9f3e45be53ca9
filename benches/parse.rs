//! Parser throughput: `parse_line` over generated access-log lines, in
//! lines/s (Throughput::Elements) and bytes/s (Throughput::Bytes).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use parpipe::sources::lines::batch::LineBatch;
use parpipe::workloads::logs::generate::Generator;
use parpipe::workloads::logs::parse::parse_line;

fn lines(n: usize) -> LineBatch {
    let mut batch = LineBatch::new(1);
    Generator::new(42, n as u64).fill(&mut batch, n);
    batch
}

fn parse(c: &mut Criterion) {
    let batch = lines(10_000);
    let mut group = c.benchmark_group("parse_line");
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.bench_function("lines", |b| {
        b.iter(|| {
            batch
                .iter()
                .filter(|(_, l)| parse_line(black_box(l)).is_some())
                .count()
        })
    });
    group.throughput(Throughput::Bytes(batch.data.len() as u64));
    group.bench_function("bytes", |b| {
        b.iter(|| {
            batch
                .iter()
                .filter(|(_, l)| parse_line(black_box(l)).is_some())
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
