//! The ready-made sources read the same records whether they stream their
//! input or cut it into byte ranges, gzip and CR LF included.

use super::*;
use crate::file_range::read_ranges;
use crate::stage::{ChunkSource, FileChunkSource, Source};
use std::io::Write;

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct Row {
    id: u32,
    name: String,
}

/// A CSV file of `n` rows (a header, CR LF on every third line, no final
/// line feed) and its gzip copy.
fn files(dir: &std::path::Path, n: u32) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut text = b"id,name\n".to_vec();
    for i in 1..=n {
        let eol = if i % 3 == 0 { "\r\n" } else { "\n" };
        write!(text, "{i},\"n, {i}\"{eol}").unwrap();
    }
    text.pop();
    let plain = dir.join("rows.csv");
    std::fs::write(&plain, &text).unwrap();
    let gz = dir.join("rows.csv.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&text).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    (plain, gz)
}

fn want(n: u32) -> Vec<Row> {
    (1..=n)
        .map(|id| Row {
            id,
            name: format!("n, {id}"),
        })
        .collect()
}

/// Every batch of a source read as a stream.
fn streamed<S: Source<Out = Vec<Row>>>(mut source: S, max: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    while let Some(batch) = source.next_batch(max).unwrap() {
        assert!(!batch.is_empty() && batch.len() <= max);
        rows.extend(batch);
    }
    rows
}

#[test]
fn csv_streamed_gzip_and_cut_into_ranges_give_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, gz) = files(dir.path(), 1000);
    for max in [1, 7, 1000] {
        let csv = Csv::<Row>::new(InputSpec::File(plain.clone()));
        assert_eq!(streamed(csv, max), want(1000), "plain, {max}");
        let csv = Csv::<Row>::new(InputSpec::File(gz.clone()));
        assert_eq!(streamed(csv, max), want(1000), "gzip, {max}");
    }
    // Cut by bytes, as lanes and workers do: the header is not a record.
    let mut csv = Csv::<Row>::new(InputSpec::File(plain.clone()));
    assert!(csv.would_chunk_in_files() && csv.chunks_in_files() && csv.cuts_by_bytes());
    let (mut rows, mut ranges, mut text) = (Vec::new(), Vec::new(), Vec::new());
    while csv
        .next_chunk_ranges_uncounted(50, 1 << 20, &mut ranges)
        .unwrap()
    {
        read_ranges(&ranges, &mut text, usize::MAX).unwrap();
        let decoder = csv.chunk_decoder();
        let info = crate::BatchInfo {
            seq: 0,
            first_line: 1,
            records: 0,
        };
        let mut batch = decoder.new_batch(&info);
        let (used, n) = decoder.extend(&mut batch, &text, usize::MAX).unwrap();
        assert_eq!((used, n), (text.len(), batch.len()), "whole lines only");
        rows.extend(batch);
        ranges.clear();
        text.clear();
    }
    assert_eq!(rows, want(1000));
    // A gzip file is not cut.
    let mut csv = Csv::<Row>::new(InputSpec::File(gz));
    assert!(!csv.would_chunk_in_files() && !csv.chunks_in_files());
}

#[test]
fn lines_are_numbered_across_inputs_and_keep_their_text() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, gz) = files(dir.path(), 10);
    let mut lines = Lines::new(vec![InputSpec::File(plain), InputSpec::File(gz)]);
    let mut got = Vec::new();
    while let Some(batch) = lines.next_batch(4).unwrap() {
        got.extend(
            batch
                .iter()
                .map(|(no, l)| (no, String::from_utf8(l.to_vec()).unwrap())),
        );
    }
    assert_eq!(got.len(), 22);
    assert_eq!(got[0], (1, "id,name".to_string()));
    assert_eq!(got[3], (4, "3,\"n, 3\"".to_string()), "the CR is dropped");
    assert_eq!(got[11], (12, "id,name".to_string()));
    assert_eq!(got[21], (22, "10,\"n, 10\"".to_string()));
}

/// A line too long for a frame fails naming the input, the line and
/// `--max-frame`, in every built-in source, cut by bytes or shipped as
/// text (the sources pass the frame limit to the reader beneath them).
#[test]
fn a_line_over_the_frame_is_named_by_every_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.csv");
    let mut text = b"id,name\n1,a\n".to_vec();
    text.extend(std::iter::repeat_n(b'x', 5000));
    text.extend_from_slice(b"\n3,c\n");
    std::fs::write(&path, &text).unwrap();
    let expect = |e: crate::StageError, what: &str| {
        let e = e.to_string();
        assert!(
            e.contains("long.csv") && e.contains("line 3") && e.contains("--max-frame 2000"),
            "{what}: {e}"
        );
    };
    let input = || InputSpec::File(path.clone());
    // Cut by bytes.
    let mut lines = Lines::new(vec![input()]);
    lines.fit_chunks_to_frame(1000, 2000);
    assert!(lines.chunks_in_files());
    let mut out = Vec::new();
    let e = loop {
        match lines.next_chunk_ranges_uncounted(1, 1 << 20, &mut out) {
            Ok(true) => out.clear(),
            Ok(false) => panic!("lines: the long line was cut into a chunk"),
            Err(e) => break e,
        }
    };
    expect(e, "lines, ranges");
    // Shipped as text.
    let mut csv = Csv::<Row>::new(input());
    csv.fit_chunks_to_frame(1000, 2000);
    let mut text = Vec::new();
    let e = loop {
        match csv.next_chunk(10, &mut text) {
            Ok(Some(_)) => text.clear(),
            Ok(None) => panic!("csv: the long line was shipped"),
            Err(e) => break e,
        }
    };
    expect(e, "csv, text");
}

/// A chunk decoded block by block, as lanes and workers do, is cut into
/// batches of at most the source's byte budget of records, whatever the
/// run's batch size, and gives the rows in order.
#[test]
fn decoded_chunks_are_batched_by_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, _) = files(dir.path(), 1000);
    let per_record = std::mem::size_of::<Row>();
    let csv = Csv::<Row>::new(InputSpec::File(plain.clone())).with_batch_bytes(10 * per_record);
    let decoder = csv.chunk_decoder();
    assert_eq!(decoder.batch_records(8192), 10);
    assert_eq!(
        decoder.batch_records(4),
        4,
        "the run's batch size still caps"
    );
    let text = std::fs::read(&plain).unwrap();
    let body = &text[text.iter().position(|&b| b == b'\n').unwrap() + 1..];
    let mut body = body.to_vec();
    body.push(b'\n');
    let info = crate::BatchInfo {
        seq: 0,
        first_line: 1,
        records: 0,
    };
    let (mut rows, mut at) = (Vec::new(), 0);
    let max = decoder.batch_records(8192);
    while at < body.len() {
        let mut batch = decoder.new_batch(&info);
        let (used, n) = decoder.extend(&mut batch, &body[at..], max).unwrap();
        assert!(n > 0 && n <= 10 && batch.len() == n, "{n} records");
        at += used;
        rows.extend(batch);
    }
    assert_eq!(rows, want(1000));
}
