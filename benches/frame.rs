//! Frame body encode/decode in GB/s. The wire protocol module (src/protocol/)
//! comes with multiprocess mode; until it lands this benches what a frame
//! body is: the bincode (2.x, serde, standard config) encoding of a
//! `LineBatch` chunk, plus the 4-byte big-endian length prefix.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use parpipe::sources::lines::batch::LineBatch;
use parpipe::workloads::logs::generate::Generator;

fn frame(c: &mut Criterion) {
    let mut batch = LineBatch::new(1);
    Generator::new(42, 8192).fill(&mut batch, 8192);
    let config = bincode::config::standard();
    let encode = |b: &LineBatch| {
        let body = bincode::serde::encode_to_vec(b, config).unwrap();
        let mut frame = Vec::with_capacity(4 + body.len());
        frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
        frame.extend_from_slice(&body);
        frame
    };
    let bytes = encode(&batch);
    let mut group = c.benchmark_group("frame_line_batch_8192");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode", |b| b.iter(|| encode(black_box(&batch))));
    group.bench_function("decode", |b| {
        b.iter(|| {
            let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
            // Bounded decoding, as every body from a peer is decoded.
            let batch: LineBatch =
                parpipe::protocol::decode_whole(black_box(&bytes[4..4 + len]), "batch").unwrap();
            batch
        })
    });
    group.finish();
}

criterion_group!(benches, frame);
criterion_main!(benches);
