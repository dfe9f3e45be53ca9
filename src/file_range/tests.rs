//! File ranges: reading them whole and block by block, their checks, and
//! the roots a worker may read under.

use super::*;

fn range(path: &Path, offset: u64, len: u64, suffix: &[u8]) -> FileRange {
    let (file_len, modified_nanos) = file_identity(path).unwrap();
    FileRange {
        path: path.to_path_buf(),
        offset,
        len,
        suffix: suffix.to_vec(),
        file_len,
        modified_nanos,
        fingerprint: fingerprint(&File::open(path).unwrap(), file_len).unwrap(),
    }
}

#[test]
fn reads_ranges_in_order_with_suffixes() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::write(&a, b"hello\nworld").unwrap();
    std::fs::write(&b, b"xyz\n").unwrap();
    let mut out = b"head:".to_vec();
    let ranges = [
        range(&a, 6, 5, b"\n"),
        range(&b, 0, 4, b""),
        range(&a, 0, 0, b""),
    ];
    read_ranges(&ranges, &mut out, 100).unwrap();
    assert_eq!(out, b"head:world\nxyz\n");
    // Block by block, any block size: the same bytes.
    let roots = AllowedRoots::new(&[dir.path()]).unwrap();
    for block in [1, 2, 5, 1000] {
        let mut reader = RangeReader::within(&roots, &ranges, 100).unwrap();
        let mut out = Vec::new();
        loop {
            let n = reader.read_into(&mut out, block).unwrap();
            if n == 0 {
                break;
            }
            // At most a block, but a suffix may come on top.
            assert!(n <= block + 1, "{n} > {block}");
        }
        assert_eq!(out, b"world\nxyz\n", "blocks of {block}");
    }
    assert!(RangeReader::within(&roots, &ranges, 9).is_err());
    let outside = tempfile::tempdir().unwrap();
    let refused = AllowedRoots::new(&[outside.path()]).unwrap();
    let e = RangeReader::within(&refused, &ranges, 100).err().unwrap();
    assert_eq!(e.input.as_deref(), Some(ranges[0].path.as_path()), "{e}");
    let e = e.to_string();
    assert!(e.contains("refused"), "{e}");
}

#[test]
fn a_file_changed_after_its_ranges_were_cut_is_caught_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    std::fs::write(&a, b"one\ntwo\n").unwrap();
    let r = range(&a, 0, 4, b"");
    assert_eq!(check_unchanged(&r), Ok(()));
    // Same size, other bytes, an older time put back: the fingerprint tells.
    let before = std::fs::metadata(&a).unwrap().modified().unwrap();
    std::fs::write(&a, b"one\nTWO\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&a)
        .unwrap()
        .set_modified(before)
        .unwrap();
    let e = check_unchanged(&r).unwrap_err();
    assert!(
        e.contains("fingerprint") && e.contains(&a.display().to_string()),
        "{e}"
    );
    std::fs::write(&a, b"one\n").unwrap();
    let e = check_unchanged(&r).unwrap_err();
    assert!(e.contains("changed during the run"), "{e}");
    std::fs::remove_file(&a).unwrap();
    assert!(check_unchanged(&r).unwrap_err().contains("cannot open"));
}

#[test]
fn a_file_cut_short_while_it_is_read_block_by_block_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    std::fs::write(&a, vec![b'x'; 10_000]).unwrap();
    let ranges = [range(&a, 0, 10_000, b"")];
    let roots = AllowedRoots::new(&[dir.path()]).unwrap();
    let mut reader = RangeReader::within(&roots, &ranges, 1 << 20).unwrap();
    let mut out = Vec::new();
    assert_eq!(reader.read_into(&mut out, 4096), Ok(4096));
    // Truncated under the open file: its size was checked on opening.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&a)
        .unwrap()
        .set_len(5000)
        .unwrap();
    let e = reader.read_into(&mut out, 4096).unwrap_err();
    assert_eq!(e.input.as_deref(), Some(a.as_path()), "{e}");
    let e = e.to_string();
    assert!(e.contains("only 5000 of 10000 bytes"), "{e}");
    assert!(e.contains(&a.display().to_string()), "{e}");
}

#[test]
fn the_fingerprint_sees_both_ends_and_the_length() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    let print = |data: &[u8]| {
        std::fs::write(&p, data).unwrap();
        fingerprint(&File::open(&p).unwrap(), data.len() as u64).unwrap()
    };
    let base = vec![b'a'; 20_000];
    let same = print(&base);
    assert_eq!(print(&base), same);
    let mut head = base.clone();
    head[10] = b'b';
    assert_ne!(print(&head), same);
    let mut tail = base.clone();
    tail[19_990] = b'b';
    assert_ne!(print(&tail), same);
    // The middle is not hashed: that is what the size and time are for.
    let mut middle = base.clone();
    middle[10_000] = b'b';
    assert_eq!(print(&middle), same);
    assert_ne!(print(&base[..5]), print(&base[..6]));
    assert_eq!(print(b""), print(b""));
    // A file shorter than the length it is said to have.
    std::fs::write(&p, b"abc").unwrap();
    assert!(fingerprint(&File::open(&p).unwrap(), 10).is_err());
}

#[test]
fn the_coordinator_sends_ranges_only_under_an_announced_absolute_root() {
    let at = |path: &str| FileRange {
        path: path.into(),
        offset: 0,
        len: 1,
        suffix: Vec::new(),
        file_len: 1,
        modified_nanos: 0,
        fingerprint: 0,
    };
    let roots = vec!["/data".to_string(), "/srv/logs".to_string()];
    assert!(AllowedRoots::covers(
        &roots,
        &[at("/data/a.log"), at("/srv/logs/x/b")]
    ));
    assert!(!AllowedRoots::covers(
        &roots,
        &[at("/data/a.log"), at("/srv/c")]
    ));
    assert!(!AllowedRoots::covers(&roots, &[at("/database/a.log")]));
    assert!(!AllowedRoots::covers(&roots, &[at("data/a.log")]));
    assert!(!AllowedRoots::covers(&roots, &[]));
    assert!(!AllowedRoots::covers(&["".into()], &[at("/data/a.log")]));
    assert!(!AllowedRoots::covers(&["data".into()], &[at("data/a.log")]));
}

#[test]
fn allowed_roots_must_exist_and_be_directories() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let err = AllowedRoots::new(&[&file]).unwrap_err();
    assert!(err.contains("not a directory"), "{err}");
    let err = AllowedRoots::new(&[dir.path().join("missing")]).unwrap_err();
    assert!(err.contains("missing"), "{err}");
    let roots = AllowedRoots::new(&[dir.path()]).unwrap();
    let canon = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(roots.announced(), vec![canon.display().to_string()]);
    assert!(roots.check(&canon.join("f")).is_ok());
    assert!(AllowedRoots::default().check(&canon.join("f")).is_err());
}

#[test]
fn refuses_too_much_changed_files_and_ranges_past_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    std::fs::write(&a, b"0123456789").unwrap();
    let mut out = Vec::new();
    let err = read_ranges(&[range(&a, 0, 10, b"\n")], &mut out, 10).unwrap_err();
    assert!(err.contains("more than 10 bytes"), "{err}");
    let err = read_ranges(&[range(&a, 5, 6, b"")], &mut out, 100).unwrap_err();
    assert!(err.contains("beyond the end"), "{err}");
    let stale = range(&a, 0, 4, b"");
    std::fs::write(&a, b"0123456789ab").unwrap();
    let err = read_ranges(&[stale], &mut out, 100).unwrap_err();
    assert!(err.contains("changed during the run"), "{err}");
    assert!(err.contains(&a.display().to_string()), "{err}");
    let err = read_ranges(&[range(&dir.path().join("a"), 0, 1, b"")], &mut out, 100)
        .map(|()| out.clone());
    assert_eq!(err.unwrap(), b"0");
    let mut gone = range(&a, 0, 1, b"");
    gone.path = dir.path().join("missing");
    let err = read_ranges(&[gone], &mut Vec::new(), 100).unwrap_err();
    assert!(err.contains("cannot open"), "{err}");
}
