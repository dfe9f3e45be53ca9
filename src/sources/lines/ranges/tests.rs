//! The range cutter against the text reader: the same lines, edge cases,
//! windows, estimates, and random files.

use super::super::input::LineReader;
use super::files::SAMPLE_UP_TO;
use super::*;
use crate::file_range::read_ranges;
use crate::sources::split::COUNT_BLOCK;
use proptest::prelude::*;

/// `contents` as files in a temporary directory (kept while it lives).
fn files_of(contents: &[&[u8]]) -> (tempfile::TempDir, Vec<InputSpec>) {
    let dir = tempfile::tempdir().unwrap();
    let inputs = contents
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let p = dir.path().join(format!("in{i}.log"));
            std::fs::write(&p, c).unwrap();
            InputSpec::File(p)
        })
        .collect();
    (dir, inputs)
}

/// Every chunk's ranges read back to the text `fill_text` gives for the
/// same limits, with the same line counts.
fn assert_agrees(contents: &[&[u8]], max_lines: usize, max_bytes: usize) {
    let (_dir, inputs) = files_of(contents);
    let mut cutter = RangeCutter::for_inputs(&inputs)
        .unwrap()
        .expect("plain files");
    let mut reader = LineReader::new(inputs);
    loop {
        let mut text = Vec::new();
        let want = reader.fill_text(&mut text, max_lines, max_bytes).unwrap();
        let mut ranges = Vec::new();
        let got = cutter.fill(&mut ranges, max_lines, max_bytes).unwrap();
        let mut bytes = Vec::new();
        read_ranges(&ranges, &mut bytes, usize::MAX).unwrap();
        assert_eq!(
            (got, &bytes),
            (want, &text),
            "limits {max_lines}/{max_bytes}"
        );
        if want == 0 {
            break;
        }
    }
}

/// Files with CRs, empty lines, no final LF, nothing at all.
const EDGE_FILES: &[&[u8]] = &[
    b"a\r\nb\n\nc",
    b"",
    b"\n\n",
    b"no final lf",
    b"x\ny\n",
    b"\r",
];

#[test]
fn agrees_with_the_text_reader_on_edge_cases() {
    for max_lines in [1, 2, 3, 1000] {
        for max_bytes in [1, 4, 7, 100] {
            assert_agrees(EDGE_FILES, max_lines, max_bytes);
        }
    }
}

#[test]
fn lines_across_windows() {
    let mut big = vec![b'x'; WINDOW + 10];
    big.push(b'\n');
    big.extend_from_slice(b"short\n");
    big.extend(std::iter::repeat_n(b'y', WINDOW * 2));
    assert_agrees(&[&big, b"tail\n"], 2, 1 << 30);
    assert_agrees(&[&big], 1000, 64);
}

#[test]
fn chunks_ending_in_every_count_block_and_window() {
    // Lines of 1 to 97 bytes, about 2.5 windows: chunk ends land in
    // every position of the count blocks and across window edges,
    // including a block without any LF (one 40 KiB line).
    let mut data = Vec::new();
    let mut len = 0usize;
    while data.len() < WINDOW * 5 / 2 {
        data.extend(std::iter::repeat_n(b'a', len % 97));
        data.push(b'\n');
        len += 13;
        if len == 13 * 3000 {
            data.extend(std::iter::repeat_n(b'z', COUNT_BLOCK * 5 / 2));
            data.push(b'\n');
        }
    }
    data.extend_from_slice(b"unterminated");
    for max_lines in [1, 7, 255, 256, 4096, 30_000, 1 << 20] {
        assert_agrees(&[&data, b"second\nfile\n"], max_lines, usize::MAX);
    }
    assert_agrees(&[&data], 5000, 100_000);
}

#[test]
fn line_estimates_sample_small_inputs_and_never_open_large_ones() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.log");
    std::fs::write(&small, b"0123456789\n".repeat(1000)).unwrap();
    let spec = |p: &std::path::Path| InputSpec::File(p.to_path_buf());
    assert_eq!(estimate_lines(&[spec(&small)]), Some(1000));
    assert_eq!(estimate_lines(&[spec(&small), spec(&small)]), Some(2000));
    // Large: the assumed mean line, and the file is not even opened
    // (unreadable here, yet estimated).
    let large = dir.path().join("large.log");
    let f = File::create(&large).unwrap();
    f.set_len(SAMPLE_UP_TO + 1).unwrap();
    drop(f);
    let want = (SAMPLE_UP_TO + 1).div_ceil(ASSUMED_MEAN_LINE);
    assert_eq!(estimate_lines(&[spec(&large)]), Some(want));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&large, std::fs::Permissions::from_mode(0o000)).unwrap();
        assert_eq!(estimate_lines(&[spec(&large)]), Some(want));
    }
    // No estimate: gzip (by content when sampled, by name when not),
    // standard input, a directory, a missing file.
    let gz = dir.path().join("small.bin");
    std::fs::write(&gz, [0x1f, 0x8b, 8, 0]).unwrap();
    assert_eq!(estimate_lines(&[spec(&small), spec(&gz)]), None);
    let large_gz = dir.path().join("large.log.GZ");
    std::fs::rename(&large, &large_gz).unwrap();
    assert_eq!(estimate_lines(&[spec(&large_gz)]), None);
    assert_eq!(estimate_lines(&[spec(&small), InputSpec::Stdin]), None);
    assert_eq!(estimate_lines(&[spec(dir.path())]), None);
    assert_eq!(estimate_lines(&[spec(&dir.path().join("missing"))]), None);
}

#[test]
fn gzip_stdin_and_directories_are_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("a.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 0, 0]).unwrap();
    assert!(RangeCutter::for_inputs(&[InputSpec::File(gz)])
        .unwrap()
        .is_none());
    assert!(RangeCutter::for_inputs(&[InputSpec::Stdin])
        .unwrap()
        .is_none());
    let d = InputSpec::File(dir.path().to_path_buf());
    assert!(RangeCutter::for_inputs(&[d]).unwrap().is_none());
    let missing = InputSpec::File(dir.path().join("missing"));
    assert!(RangeCutter::for_inputs(&[missing]).unwrap().is_none());
}

#[test]
fn remaining_lines_are_estimated_from_the_mean_line_length() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.log");
    let b = dir.path().join("b.log");
    std::fs::write(&a, b"0123456789\n".repeat(100)).unwrap();
    std::fs::write(&b, b"0123456789\n".repeat(50)).unwrap();
    let inputs = [InputSpec::File(a), InputSpec::File(b)];
    let mut cutter = RangeCutter::for_inputs(&inputs).unwrap().unwrap();
    // Sampled from the first file before anything is cut.
    assert_eq!(cutter.remaining_estimate(), Some(150));
    let mut ranges = Vec::new();
    assert_eq!(cutter.fill(&mut ranges, 120, usize::MAX).unwrap(), 120);
    assert_eq!(cutter.remaining_estimate(), Some(30));
    assert_eq!(cutter.fill(&mut ranges, 1000, usize::MAX).unwrap(), 30);
    assert_eq!(cutter.remaining_estimate(), Some(0));
    let empty = dir.path().join("empty.log");
    std::fs::write(&empty, b"").unwrap();
    let cutter = RangeCutter::for_inputs(&[InputSpec::File(empty)])
        .unwrap()
        .unwrap();
    assert_eq!(cutter.remaining_estimate(), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn agrees_on_random_files(
        files in proptest::collection::vec(
            proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'a')], 0..40),
            1..4,
        ),
        max_lines in 1usize..6,
        max_bytes in 1usize..30,
    ) {
        let refs: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
        assert_agrees(&refs, max_lines, max_bytes);
    }
}

/// Uncounted chunks hold whole lines (each ends with a LF), none is empty,
/// and together they read back to every line the text reader gives, in
/// order: the same text, cut elsewhere.
fn assert_uncounted_covers(contents: &[&[u8]], about_lines: usize, max_bytes: usize) {
    let (_dir, inputs) = files_of(contents);
    let mut cutter = RangeCutter::for_inputs(&inputs)
        .unwrap()
        .expect("plain files");
    let mut reader = LineReader::new(inputs);
    let mut want = Vec::new();
    while reader.fill_text(&mut want, 1000, 1 << 20).unwrap() > 0 {}
    let mut got = Vec::new();
    loop {
        let mut ranges = Vec::new();
        if !cutter
            .fill_uncounted(&mut ranges, about_lines, max_bytes)
            .unwrap()
        {
            assert!(ranges.is_empty());
            break;
        }
        let mut chunk = Vec::new();
        read_ranges(&ranges, &mut chunk, usize::MAX).unwrap();
        assert!(!chunk.is_empty(), "an empty chunk");
        assert_eq!(
            chunk.last(),
            Some(&b'\n'),
            "a chunk ends mid-line: {chunk:?}"
        );
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, want, "limits {about_lines}/{max_bytes}");
}

#[test]
fn uncounted_chunks_cover_edge_cases() {
    for about_lines in [1, 2, 3, 1000] {
        for max_bytes in [1, 4, 7, 100] {
            assert_uncounted_covers(EDGE_FILES, about_lines, max_bytes);
        }
    }
}

#[test]
fn uncounted_cuts_snap_past_lines_longer_than_a_probe() {
    // Lines of 1, 5 000 and 9 000 bytes: a cut inside one reads several
    // probes to find its end.
    let mut text = Vec::new();
    for len in [1usize, 5000, 9000, 3, 12_000] {
        text.extend(std::iter::repeat_n(b'q', len));
        text.push(b'\n');
    }
    text.extend_from_slice(b"tail");
    for about_lines in [1, 2, 50] {
        for max_bytes in [10, 4096, 6000, 1 << 20] {
            assert_uncounted_covers(&[&text, b"next\n"], about_lines, max_bytes);
        }
    }
}

#[test]
fn an_uncounted_chunk_is_about_the_size_asked_for() {
    // 10 000 lines of 100 bytes: asked for about 1000 lines, a chunk is
    // 1000 lines' worth of bytes, plus at most the rest of one line.
    let line = [b"x".repeat(99), b"\n".to_vec()].concat();
    let text = line.repeat(10_000);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    std::fs::write(&p, &text).unwrap();
    let mut cutter = RangeCutter::for_inputs(&[InputSpec::File(p)])
        .unwrap()
        .unwrap();
    let mut sizes = Vec::new();
    loop {
        let mut ranges = Vec::new();
        if !cutter.fill_uncounted(&mut ranges, 1000, 8 << 20).unwrap() {
            break;
        }
        sizes.push(ranges.iter().map(|r| r.len).sum::<u64>());
    }
    assert_eq!(sizes, vec![100_000; 10]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn uncounted_chunks_cover_random_files(
        files in proptest::collection::vec(
            proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'a')], 0..40),
            1..4,
        ),
        about_lines in 1usize..6,
        max_bytes in 1usize..30,
    ) {
        let refs: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
        assert_uncounted_covers(&refs, about_lines, max_bytes);
    }
}

/// With a chunk limit, a chunk ends before a line too long to share it,
/// and that line, alone too long for a chunk, is an error naming its file
/// and line, whether chunks are cut by bytes or counted.
#[test]
fn a_line_longer_than_the_chunk_limit_is_named() {
    let mut text = b"a\nbb\nccc\n".to_vec();
    text.extend_from_slice(&[b'x'; 100]);
    text.extend_from_slice(b"\nd\n");
    let (_dir, inputs) = files_of(&[b"ok\n", &text]);
    let name = match &inputs[1] {
        InputSpec::File(p) => std::fs::canonicalize(p).unwrap().display().to_string(),
        _ => unreachable!(),
    };
    let named = |e: InputError| match e {
        InputError::LineOverFrame {
            input,
            line,
            max_frame,
        } => (input, line, max_frame),
        other => panic!("{other}"),
    };
    // By bytes: a cut inside the long line ends the chunk before it.
    let mut cutter = RangeCutter::for_inputs(&inputs).unwrap().unwrap();
    cutter.limit_chunks(50, 1000);
    let mut ranges = Vec::new();
    assert!(cutter.fill_uncounted(&mut ranges, 100, 14).unwrap());
    let mut chunk = Vec::new();
    read_ranges(&ranges, &mut chunk, usize::MAX).unwrap();
    assert_eq!(chunk, b"ok\na\nbb\nccc\n");
    let e = cutter.fill_uncounted(&mut Vec::new(), 100, 14).unwrap_err();
    assert_eq!(named(e), (name.clone(), 4, 1000));
    // Counted.
    let mut cutter = RangeCutter::for_inputs(&inputs).unwrap().unwrap();
    cutter.limit_chunks(50, 1000);
    assert_eq!(cutter.fill(&mut Vec::new(), 100, 40).unwrap(), 4);
    let e = cutter.fill(&mut Vec::new(), 100, 40).unwrap_err();
    assert_eq!(named(e), (name, 4, 1000));
    // Within the limit, the same line is cut as any other.
    let mut cutter = RangeCutter::for_inputs(&inputs).unwrap().unwrap();
    cutter.limit_chunks(101, 1000);
    let mut all = Vec::new();
    while cutter.fill_uncounted(&mut all, 100, 14).unwrap() {}
    let mut chunk = Vec::new();
    read_ranges(&all, &mut chunk, usize::MAX).unwrap();
    assert_eq!(chunk, [&b"ok\n"[..], &text].concat());
}
