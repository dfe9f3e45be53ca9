//! A worker's decoding of chunks shipped in frames, through the source's
//! decoder as for chunks it reads from files: parts as large as the
//! source's own batches, and a clear `ChunkFailed` (never a panic) for
//! bytes that are not what the chunk's header says.

use super::{ChunkProcessor, Work};
use crate::file_range::AllowedRoots;
use crate::protocol::Message;
use crate::sources::lines::input::InputSpec;
use crate::sources::Csv;
use crate::stage::{Aggregate, BatchInfo, Source};
use crate::{Pipeline, StageError};

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct Row {
    id: u32,
    name: String,
}

/// One entry per part a chunk was decoded in: its first record's number
/// and its rows' ids.
type Parts = Vec<(u64, Vec<u32>)>;

#[derive(Clone)]
struct Record;

impl Aggregate for Record {
    type In = Vec<Row>;
    type Partial = Parts;

    fn empty(&self) -> Parts {
        Vec::new()
    }

    fn add(
        &mut self,
        acc: &mut Parts,
        batch: Vec<Row>,
        info: &BatchInfo,
    ) -> Result<(), StageError> {
        acc.push((info.first_line, batch.iter().map(|r| r.id).collect()));
        Ok(())
    }

    fn merge(&self, acc: &mut Parts, later: Parts) {
        acc.extend(later);
    }
}

const BATCH_SIZE: usize = 8192;

/// A worker's processor for a CSV pipeline whose batches hold at most
/// `per_batch` rows by their byte budget. The source is never read.
fn csv_processor(per_batch: usize) -> ChunkProcessor {
    let csv = Csv::<Row>::new(InputSpec::File("never-read.csv".into()))
        .with_batch_bytes(per_batch * std::mem::size_of::<Row>());
    let pipeline = Pipeline::builder_files("csv", "rows", csv)
        .collect("record", Record)
        .erase();
    let roots = AllowedRoots::new::<&str>(&[]).unwrap();
    ChunkProcessor::new(pipeline, 1 << 20, BATCH_SIZE, roots)
}

/// CSV text of rows `from..=to`, CR LF on every third line.
fn rows(from: u32, to: u32) -> Vec<u8> {
    let mut text = Vec::new();
    for i in from..=to {
        let eol = if i % 3 == 0 { "\r\n" } else { "\n" };
        text.extend_from_slice(format!("{i},\"n, {i}\"{eol}").as_bytes());
    }
    text
}

/// What the processor answers to a `Chunk` of `payload`.
fn ship(p: &mut ChunkProcessor, first_line: u64, records: u64, payload: &[u8]) -> Message {
    let msg = Message::Chunk {
        seq: 7,
        first_line,
        records,
        payload: bytes::Bytes::copy_from_slice(payload),
    };
    let Ok(work) = Work::from_message(msg, false) else {
        panic!("a Chunk is work");
    };
    p.process(work)
}

/// The parts of a `ChunkDone`, and its record count.
fn done(answer: Message) -> (Parts, u64) {
    match answer {
        Message::ChunkDone {
            seq: 7,
            partial,
            stats,
        } => (
            crate::protocol::decode_whole(&partial, "partial").unwrap(),
            stats.records,
        ),
        other => panic!("expected ChunkDone for chunk 7, got {other:?}"),
    }
}

/// The error of a `ChunkFailed`.
fn failed(answer: Message) -> String {
    match answer {
        Message::ChunkFailed { seq: 7, error, .. } => error,
        other => panic!("expected ChunkFailed for chunk 7, got {other:?}"),
    }
}

/// A shipped chunk larger than one of the source's batches is decoded in
/// parts of the source's byte budget, not in one part of the run's batch
/// size: numbered from the chunk's first line, in order.
#[test]
fn a_shipped_chunk_is_decoded_in_parts_of_the_sources_batch_bytes() {
    let mut p = csv_processor(10);
    let (parts, records) = done(ship(&mut p, 101, 35, &rows(1, 35)));
    assert_eq!(records, 35);
    let sizes: Vec<(u64, usize)> = parts.iter().map(|(f, ids)| (*f, ids.len())).collect();
    assert_eq!(sizes, [(101, 10), (111, 10), (121, 10), (131, 5)]);
    let ids: Vec<u32> = parts.into_iter().flat_map(|(_, ids)| ids).collect();
    assert_eq!(ids, (1..=35).collect::<Vec<_>>());
}

/// A chunk the coordinator did not count (cut by bytes) is counted by its
/// decoding and numbered from 1.
#[test]
fn an_uncounted_shipped_chunk_is_numbered_by_its_decoding() {
    let mut p = csv_processor(10);
    let (parts, records) = done(ship(&mut p, 1, 0, &rows(1, 12)));
    assert_eq!(records, 12);
    assert_eq!(parts[0].0, 1);
    assert_eq!(parts[1], (11, vec![11, 12]));
    // An empty frame is an empty chunk.
    let (parts, records) = done(ship(&mut p, 1, 0, b""));
    assert_eq!((parts.len(), records), (0, 0));
}

/// Bytes that are not the records the header says fail the chunk with
/// what was expected, and the processor goes on with the next chunk.
#[test]
fn a_shipped_chunk_unlike_its_header_fails_clearly() {
    let mut p = csv_processor(10);
    let e = failed(ship(&mut p, 1, 36, &rows(1, 35)));
    assert!(
        e.contains("holds 35 records where its header says 36"),
        "{e}"
    );
    let e = failed(ship(&mut p, 1, 3, b""));
    assert!(e.contains("holds 0 records where its header says 3"), "{e}");
    // A count far beyond what the bytes can hold: nothing is sized by it.
    let e = failed(ship(&mut p, 1, 1 << 40, &rows(1, 35)));
    assert!(
        e.contains("holds 35 records where its header says 1099511627776"),
        "{e}"
    );
    // Cut inside its last line.
    let mut text = rows(1, 12);
    text.truncate(text.len() - 3);
    let e = failed(ship(&mut p, 1, 12, &text));
    assert!(e.contains("ends inside a record"), "{e}");
    // A malformed row is named by its record number and input.
    let mut text = rows(1, 4);
    text.extend_from_slice(b"five,\"n, 5\"\n");
    let e = failed(ship(&mut p, 201, 5, &text));
    assert!(
        e.contains("cannot decode the chunk")
            && e.contains("never-read.csv")
            && e.contains("record 205"),
        "{e}"
    );
    // Not text at all.
    let e = failed(ship(&mut p, 1, 2, &[0xff, 0xfe, b'\n', 0, b'\n']));
    assert!(e.contains("cannot decode the chunk"), "{e}");
    let (_, records) = done(ship(&mut p, 1, 35, &rows(1, 35)));
    assert_eq!(records, 35, "the processor still works");
}

/// A plain source's batches.
struct Numbers;

impl Source for Numbers {
    type Out = Vec<u32>;

    fn next_batch(&mut self, _max: usize) -> Result<Option<Vec<u32>>, StageError> {
        Ok(None)
    }
}

#[derive(Clone)]
struct Sum;

impl Aggregate for Sum {
    type In = Vec<u32>;
    type Partial = Vec<(u64, u64)>;

    fn empty(&self) -> Vec<(u64, u64)> {
        Vec::new()
    }

    fn add(
        &mut self,
        acc: &mut Vec<(u64, u64)>,
        batch: Vec<u32>,
        info: &BatchInfo,
    ) -> Result<(), StageError> {
        acc.push((info.first_line, batch.iter().map(|&n| u64::from(n)).sum()));
        Ok(())
    }

    fn merge(&self, acc: &mut Vec<(u64, u64)>, later: Vec<(u64, u64)>) {
        acc.extend(later);
    }
}

/// A plain source's chunk (one batch in bincode) is decoded whole, by the
/// same path: one part however large, checked against its header, and
/// bytes that are not one batch fail the chunk.
#[test]
fn a_plain_sources_batch_is_decoded_whole_and_checked() {
    let pipeline = Pipeline::builder("plain", "numbers", Numbers)
        .collect("sum", Sum)
        .erase();
    let roots = AllowedRoots::new::<&str>(&[]).unwrap();
    let mut p = ChunkProcessor::new(pipeline, 1 << 20, 4, roots);
    let batch: Vec<u32> = (1..=10).collect();
    let mut bytes = Vec::new();
    crate::stage::encode_batch(&batch, &mut bytes).unwrap();
    let msg = |records, payload: &[u8]| Message::Chunk {
        seq: 7,
        first_line: 21,
        records,
        payload: bytes::Bytes::copy_from_slice(payload),
    };
    let run = |p: &mut ChunkProcessor, m| {
        let Ok(work) = Work::from_message(m, false) else {
            panic!("a Chunk is work");
        };
        p.process(work)
    };
    match run(&mut p, msg(10, &bytes)) {
        Message::ChunkDone { partial, stats, .. } => {
            let sums: Vec<(u64, u64)> = crate::protocol::decode_whole(&partial, "partial").unwrap();
            assert_eq!(sums, [(21, 55)]);
            assert_eq!(stats.records, 10);
        }
        other => panic!("expected ChunkDone, got {other:?}"),
    }
    let e = failed(run(&mut p, msg(11, &bytes)));
    assert!(
        e.contains("holds 10 records where its header says 11"),
        "{e}"
    );
    let e = failed(run(&mut p, msg(10, &bytes[..bytes.len() - 1])));
    assert!(e.contains("cannot decode the chunk"), "{e}");
    let mut longer = bytes.clone();
    longer.push(0);
    let e = failed(run(&mut p, msg(10, &longer)));
    assert!(e.contains("cannot decode the chunk"), "{e}");
}

/// Each line of a `Lines` chunk, with its number.
#[derive(Clone)]
struct Texts;

impl Aggregate for Texts {
    type In = crate::sources::lines::batch::LineBatch;
    type Partial = Vec<(usize, u64, Vec<u8>)>;

    fn empty(&self) -> Self::Partial {
        Vec::new()
    }

    fn add(
        &mut self,
        acc: &mut Self::Partial,
        batch: Self::In,
        _: &BatchInfo,
    ) -> Result<(), StageError> {
        let part = batch.len();
        acc.extend(batch.iter().map(|(no, l)| (part, no, l.to_vec())));
        Ok(())
    }

    fn merge(&self, acc: &mut Self::Partial, later: Self::Partial) {
        acc.extend(later);
    }
}

/// Shipped text lines are cut into parts of whole lines of at most the
/// run's batch size, a CR before a line feed dropped, numbered from the
/// chunk's first line.
#[test]
fn shipped_lines_are_cut_into_parts_of_whole_lines() {
    let text = b"a\nbb\r\n\nccc\nd\n";
    let want: Vec<(u64, Vec<u8>)> = [&b"a"[..], b"bb", b"", b"ccc", b"d"]
        .iter()
        .enumerate()
        .map(|(i, l)| (i as u64 + 11, l.to_vec()))
        .collect();
    for max in 1..=6 {
        let source = crate::sources::Lines::new(vec![InputSpec::File("never-read.log".into())]);
        let pipeline = Pipeline::builder_files("lines", "lines", source)
            .collect("texts", Texts)
            .erase();
        let roots = AllowedRoots::new::<&str>(&[]).unwrap();
        let mut p = ChunkProcessor::new(pipeline, 1 << 20, max, roots);
        let msg = Message::Chunk {
            seq: 7,
            first_line: 11,
            records: 5,
            payload: bytes::Bytes::copy_from_slice(text),
        };
        let Ok(work) = Work::from_message(msg, false) else {
            panic!("a Chunk is work");
        };
        let Message::ChunkDone { partial, .. } = p.process(work) else {
            panic!("max {max}: the chunk failed");
        };
        let lines: Vec<(usize, u64, Vec<u8>)> =
            crate::protocol::decode_whole(&partial, "partial").unwrap();
        assert!(
            lines.iter().all(|&(part, ..)| part <= max),
            "max {max}: {lines:?}"
        );
        let got: Vec<(u64, Vec<u8>)> = lines.into_iter().map(|(_, no, l)| (no, l)).collect();
        assert_eq!(got, want, "max {max}");
    }
}
