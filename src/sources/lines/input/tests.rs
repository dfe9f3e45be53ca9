use super::super::batch::LineBatch;
use super::*;
use flate2::{write::GzEncoder, Compression};
use std::io::Write;
use std::path::Path;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> InputSpec {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    InputSpec::File(p)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// All `(number, line)` pairs, checking batch limits and numbering.
fn read_all(
    inputs: Vec<InputSpec>,
    max_lines: usize,
    max_bytes: usize,
) -> Result<Vec<(u64, Vec<u8>)>, InputError> {
    let mut r = LineReader::new(inputs);
    let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
    loop {
        let mut b = LineBatch::new(0);
        let n = r.fill(&mut b, max_lines, max_bytes)?;
        if n == 0 {
            assert!(b.is_empty());
            return Ok(out);
        }
        assert_eq!(n, b.len());
        assert!(n <= max_lines.max(1));
        assert!(n == 1 || b.data.len() <= max_bytes, "batch over max_bytes");
        assert_eq!(b.first_line, out.len() as u64 + 1);
        out.extend(b.iter().map(|(i, l)| (i, l.to_vec())));
    }
}

/// The same through `fill_text` and `LineBatch::from_text`, checking
/// the limits on the text.
fn read_all_text(
    inputs: Vec<InputSpec>,
    max_lines: usize,
    max_bytes: usize,
) -> Result<Vec<(u64, Vec<u8>)>, InputError> {
    let mut r = LineReader::new(inputs);
    let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut text = b"kept".to_vec();
    loop {
        text.truncate(4);
        let first = r.next_line();
        let n = r.fill_text(&mut text, max_lines, max_bytes)?;
        assert_eq!(&text[..4], b"kept", "appends");
        if n == 0 {
            assert_eq!(text.len(), 4);
            return Ok(out);
        }
        assert!(n <= max_lines.max(1));
        assert!(n == 1 || text.len() - 4 <= max_bytes, "text over max_bytes");
        assert_eq!(first, out.len() as u64 + 1);
        let b = LineBatch::from_text(first, &text[4..]).unwrap();
        assert_eq!(b.len(), n);
        out.extend(b.iter().map(|(i, l)| (i, l.to_vec())));
    }
}

/// `fill` and `fill_text` agree on every line of `inputs`.
fn assert_text_agrees(inputs: Vec<InputSpec>, max_lines: usize, max_bytes: usize) {
    let lines = read_all(inputs.clone(), max_lines, max_bytes).unwrap();
    let text = read_all_text(inputs, max_lines, max_bytes).unwrap();
    assert_eq!(lines, text, "max_lines {max_lines} max_bytes {max_bytes}");
}

fn lines_of(inputs: Vec<InputSpec>) -> Vec<Vec<u8>> {
    read_all(inputs, 1000, 1 << 20)
        .unwrap()
        .into_iter()
        .map(|(_, l)| l)
        .collect()
}

fn v(lines: &[&[u8]]) -> Vec<Vec<u8>> {
    lines.iter().map(|l| l.to_vec()).collect()
}

#[test]
fn parse_and_names() {
    assert_eq!(InputSpec::parse("-"), InputSpec::Stdin);
    assert_eq!(InputSpec::parse("a.log"), InputSpec::File("a.log".into()));
    assert_eq!(InputSpec::Stdin.display_name(), "<stdin>");
    assert_eq!(InputSpec::parse("logs/a.log").display_name(), "logs/a.log");
}

#[test]
fn line_endings_and_files_in_sequence() {
    let d = tempfile::tempdir().unwrap();
    let inputs = vec![
        write(d.path(), "a", b"a1\na2\n"),
        write(d.path(), "b", b"b1\r\nb2"), // CRLF, last line without LF
        write(d.path(), "c", b""),         // empty file: no line
        write(d.path(), "d", b"\n"),       // one empty line
        write(d.path(), "e", b"x\ry\n\r\n"), // CR in mid-line kept
        write(d.path(), "f", b"z\r\r\n\r"), // only one CR removed
    ];
    let got = read_all(inputs.clone(), 2, 1 << 20).unwrap();
    let expected = v(&[b"a1", b"a2", b"b1", b"b2", b"", b"x\ry", b"", b"z\r", b""]);
    assert_eq!(
        got.iter().map(|(_, l)| l.clone()).collect::<Vec<_>>(),
        expected
    );
    let numbers: Vec<u64> = got.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, (1..=9).collect::<Vec<_>>());
    for (max_lines, max_bytes) in [(2, 1 << 20), (1, 1), (100, 3)] {
        assert_text_agrees(inputs.clone(), max_lines, max_bytes);
    }
}

#[test]
fn empty_inputs() {
    let d = tempfile::tempdir().unwrap();
    assert!(lines_of(vec![]).is_empty());
    assert!(lines_of(vec![write(d.path(), "e", b"")]).is_empty());
    assert_eq!(lines_of(vec![write(d.path(), "n", b"\n")]), v(&[b""]));
    assert_eq!(lines_of(vec![write(d.path(), "x", b"x\n")]), v(&[b"x"]));
    // Exhaustion is sticky.
    let mut r = LineReader::new(vec![write(d.path(), "y", b"y")]);
    let mut b = LineBatch::new(0);
    assert_eq!(r.fill(&mut b, 10, 100).unwrap(), 1);
    assert_eq!(r.fill(&mut LineBatch::new(0), 10, 100).unwrap(), 0);
    assert_eq!(r.fill(&mut LineBatch::new(0), 10, 100).unwrap(), 0);
}

#[test]
fn binary_bytes_are_lines() {
    let d = tempfile::tempdir().unwrap();
    let data = b"a\0b\n\xff\xfe\xc3(\n\x1f\n\x8b";
    assert_text_agrees(vec![write(d.path(), "bin", data)], 3, 100);
    let got = lines_of(vec![write(d.path(), "bin", data)]);
    assert_eq!(got, v(&[b"a\0b", b"\xff\xfe\xc3(", b"\x1f", b"\x8b"]));
    // One byte that looks like the start of the gzip magic is plain data.
    assert_eq!(
        lines_of(vec![write(d.path(), "one", b"\x1f")]),
        v(&[b"\x1f"])
    );
}

#[test]
fn gzip_detected_by_magic_and_multi_member() {
    let d = tempfile::tempdir().unwrap();
    let mut two = gzip(b"m1\nm2");
    two.extend(gzip(b"\nm3\r\n"));
    let inputs = vec![
        write(d.path(), "plain.log", b"p1\n"),
        // No .gz extension: detected by the magic bytes.
        write(d.path(), "packed", &gzip(b"g1\ng2\n")),
        write(d.path(), "two.gz", &two),
        // A .gz name on plain text is read as plain text.
        write(d.path(), "fake.gz", b"f1\n"),
        write(d.path(), "empty.gz", &gzip(b"")),
    ];
    assert_text_agrees(inputs.clone(), 2, 1 << 20);
    assert_eq!(
        lines_of(inputs),
        v(&[b"p1", b"g1", b"g2", b"m1", b"m2", b"m3", b"f1"])
    );
}

#[test]
fn truncated_gzip_is_an_error_after_the_good_lines() {
    let d = tempfile::tempdir().unwrap();
    let text: Vec<u8> = (0..200_000u32)
        .flat_map(|i| format!("line {} {}\n", i, i.wrapping_mul(2_654_435_761)).into_bytes())
        .collect();
    let gz = gzip(&text);
    let spec = write(d.path(), "cut.gz", &gz[..gz.len() / 2]);
    let after = write(d.path(), "after.log", b"next\n");
    let mut r = LineReader::new(vec![spec, after]);
    let mut got = Vec::new();
    let err = loop {
        let mut b = LineBatch::new(0);
        match r.fill(&mut b, 1000, 1 << 20) {
            Ok(0) => panic!("truncation not reported"),
            Ok(_) => got.extend(b.iter().map(|(_, l)| l.to_vec())),
            Err(e) => break e,
        }
    };
    assert!(got.len() > 1000);
    for (i, l) in got.iter().enumerate() {
        assert!(l.starts_with(format!("line {i} ").as_bytes()));
    }
    let msg = err.to_string();
    let want = format!(
        "input '{}' line {}: corrupt gzip data",
        d.path().join("cut.gz").display(),
        got.len() + 1
    );
    assert!(msg.starts_with(&want), "{msg}");
    // As text: the same lines, then the same error.
    let mut t = LineReader::new(vec![InputSpec::File(d.path().join("cut.gz"))]);
    let mut text = Vec::new();
    let text_err = loop {
        match t.fill_text(&mut text, 1000, 1 << 20) {
            Ok(0) => panic!("truncation not reported"),
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    assert_eq!(text_err.to_string(), msg);
    let cut: Vec<Vec<u8>> = LineBatch::from_text(1, &text)
        .unwrap()
        .iter()
        .map(|(_, l)| l.to_vec())
        .collect();
    assert_eq!(cut, got);
    // The reader goes on with the next input.
    let mut b = LineBatch::new(0);
    assert_eq!(r.fill(&mut b, 10, 100).unwrap(), 1);
    assert_eq!(b.line(0), b"next");

    // Garbage after the magic bytes: an error on the first line.
    let bad = write(d.path(), "bad.gz", b"\x1f\x8bnot gzip at all\n");
    let msg = read_all(vec![bad], 10, 100).unwrap_err().to_string();
    assert!(msg.contains("bad.gz' line 1: corrupt gzip data"), "{msg}");
}

#[test]
fn open_errors_name_the_input() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("nope.log");
    // Lazy: nothing is opened before the first fill.
    let mut r = LineReader::new(vec![
        write(d.path(), "ok", b"1\n2\n"),
        InputSpec::File(missing.clone()),
    ]);
    let mut b = LineBatch::new(0);
    assert_eq!(r.fill(&mut b, 100, 1000).unwrap(), 2);
    let err = r.fill(&mut LineBatch::new(0), 100, 1000).unwrap_err();
    assert!(matches!(err, InputError::Open { .. }));
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("input '{}': cannot open: ", missing.display())),
        "{msg}"
    );
    assert_eq!(r.fill(&mut LineBatch::new(0), 100, 1000).unwrap(), 0);

    let dir = InputSpec::File(d.path().to_path_buf());
    let msg = read_all(vec![dir], 10, 100).unwrap_err().to_string();
    assert_eq!(
        msg,
        format!(
            "input '{}': is a directory, expected a file of log lines",
            d.path().display()
        )
    );
}

#[test]
fn error_after_lines_in_the_same_call_is_deferred() {
    let d = tempfile::tempdir().unwrap();
    let mut r = LineReader::new(vec![
        write(d.path(), "ok", b"1\n2\n"),
        InputSpec::File(d.path().join("missing")),
        write(d.path(), "last", b"3"),
    ]);
    let mut b = LineBatch::new(0);
    // The two lines come back; the error waits for the next call.
    assert_eq!(r.fill(&mut b, 100, 1000).unwrap(), 2);
    assert!(r.fill(&mut LineBatch::new(0), 100, 1000).is_err());
    let mut b = LineBatch::new(0);
    assert_eq!(r.fill(&mut b, 100, 1000).unwrap(), 1);
    assert_eq!((b.first_line, b.line(0)), (3, &b"3"[..]));
}

#[test]
fn batches_respect_limits_and_cover_every_line() {
    let d = tempfile::tempdir().unwrap();
    let mut text = Vec::new();
    let mut expected = Vec::new();
    for i in 0..3000usize {
        let line = vec![b'a' + (i % 26) as u8; i % 97];
        text.extend_from_slice(&line);
        text.push(b'\n');
        expected.push(line);
    }
    let spec = write(d.path(), "many", &text);
    for (max_lines, max_bytes) in [
        (7, 100),
        (1, 1),
        (1000, 50),
        (10_000, 1 << 20),
        (0, 0),
        (7, 1 << 20),
        (100, 1000),
    ] {
        assert_text_agrees(vec![spec.clone()], max_lines, max_bytes);
        let got = read_all(vec![spec.clone()], max_lines, max_bytes).unwrap();
        let lines: Vec<_> = got.into_iter().map(|(_, l)| l).collect();
        assert_eq!(
            lines, expected,
            "max_lines {max_lines} max_bytes {max_bytes}"
        );
    }
}

#[test]
fn long_lines_across_buffer_boundaries() {
    let d = tempfile::tempdir().unwrap();
    let mut text = Vec::new();
    // The CR of this CRLF is the last byte of the first buffer, its LF
    // the first byte of the second.
    let first = vec![b'a'; BUF_SIZE - 1];
    text.extend_from_slice(&first);
    text.extend_from_slice(b"\r\n");
    // A line spanning three buffers, then short ones.
    let long: Vec<u8> = (0..BUF_SIZE * 2 + 123)
        .map(|i| b'0' + (i % 10) as u8)
        .collect();
    text.extend_from_slice(&long);
    text.extend_from_slice(b"\nshort\r\n");
    // A binary tail without LF, longer than a buffer.
    let tail = vec![0u8; BUF_SIZE + 5];
    text.extend_from_slice(&tail);
    let expected = vec![first, long, b"short".to_vec(), tail];
    let plain = write(d.path(), "long", &text);
    assert_eq!(lines_of(vec![plain.clone()]), expected);
    let gz = write(d.path(), "long.gz", &gzip(&text));
    assert_eq!(lines_of(vec![gz.clone()]), expected);
    for (max_lines, max_bytes) in [(100, 1 << 30), (100, 10), (2, 1 << 20)] {
        assert_text_agrees(vec![plain.clone(), gz.clone()], max_lines, max_bytes);
    }
    // One line per batch when lines exceed max_bytes.
    let got = read_all(vec![plain], 100, 10).unwrap();
    assert_eq!(got.len(), 4);
}

#[test]
fn reader_is_send() {
    fn send<T: Send>() {}
    send::<LineReader>();
}

/// Text for frames: a line longer than the limit fails `fill_text` naming
/// the input and the line, whether it lies in one read buffer or spans
/// several; the lines before it are delivered first; batches take it.
#[test]
fn text_lines_over_the_frame_limit_are_named() {
    let d = tempfile::tempdir().unwrap();
    for long in [100, BUF_SIZE * 2 + 7] {
        let mut text = b"a\nbb\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', long));
        text.extend_from_slice(b"\nc\n");
        let input = write(d.path(), "in.log", &text);
        let mut r = LineReader::new(vec![input.clone()]);
        r.limit_text_lines(50, 4096);
        let mut out = Vec::new();
        assert_eq!(r.fill_text(&mut out, 100, 1 << 20).unwrap(), 2, "{long}");
        assert_eq!(out, b"a\nbb\n");
        match r.fill_text(&mut out, 100, 1 << 20) {
            Err(InputError::LineOverFrame {
                input: name,
                line: 3,
                max_frame: 4096,
            }) => assert_eq!(name, input.display_name()),
            other => panic!("{long}: {other:?}"),
        }
        let mut r = LineReader::new(vec![input]);
        r.limit_text_lines(50, 4096);
        let mut batch = LineBatch::new(1);
        assert_eq!(r.fill(&mut batch, 100, 1 << 30).unwrap(), 4, "{long}");
    }
}
