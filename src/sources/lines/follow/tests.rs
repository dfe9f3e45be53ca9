use super::*;
use std::io::Write;

/// Reads what is there now: until the reader says it would block (or ends).
fn drain(r: &mut FollowReader) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 7]; // small, so that reads split lines
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (out, false),
            Err(e) => panic!("{e}"),
        }
    }
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

fn reader(path: &Path) -> (FollowReader, FollowStop) {
    let stop = FollowStop::new();
    let r = FollowReader::open(path, stop.clone(), Duration::from_millis(60)).unwrap();
    (r, stop)
}

#[test]
fn growing_file_with_partial_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    append(&path, b"one\ntw");
    let (mut r, stop) = reader(&path);
    assert_eq!(drain(&mut r), (b"one\ntw".to_vec(), false));
    append(&path, b"o\nthree\n");
    assert_eq!(drain(&mut r), (b"o\nthree\n".to_vec(), false));
    append(&path, b"four\n");
    stop.stop();
    // Everything written before the stop is read, then the end.
    assert_eq!(drain(&mut r), (b"four\n".to_vec(), true));
}

#[test]
fn rename_rotation_reads_the_old_file_to_its_end_then_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    append(&path, b"a1\n");
    let (mut r, stop) = reader(&path);
    assert_eq!(drain(&mut r).0, b"a1\n");
    // Written to the old file just before it is renamed away.
    append(&path, b"a2\n");
    std::fs::rename(&path, dir.path().join("access.log.1")).unwrap();
    append(&dir.path().join("access.log.1"), b"a3\n");
    append(&path, b"b1\n");
    assert_eq!(drain(&mut r).0, b"a2\na3\nb1\n");
    append(&path, b"b2\n");
    stop.stop();
    assert_eq!(drain(&mut r), (b"b2\n".to_vec(), true));
    assert_eq!((r.rotations(), r.truncations()), (1, 0));
}

#[test]
fn truncation_restarts_at_the_start_without_reading_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    append(&path, b"old line one\nold line two\n");
    let (mut r, stop) = reader(&path);
    assert_eq!(drain(&mut r).0, b"old line one\nold line two\n");
    // copytruncate: the file is emptied in place, then written again.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, b"new\n");
    stop.stop();
    assert_eq!(drain(&mut r), (b"new\n".to_vec(), true));
    assert_eq!(r.truncations(), 1);
}

#[test]
fn a_file_that_disappears_and_comes_back_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    append(&path, b"x\n");
    let (mut r, stop) = reader(&path);
    assert_eq!(drain(&mut r).0, b"x\n");
    std::fs::remove_file(&path).unwrap();
    assert_eq!(drain(&mut r), (Vec::new(), false), "waits while it is gone");
    append(&path, b"y\n");
    assert_eq!(drain(&mut r).0, b"y\n");
    stop.stop();
    assert_eq!(drain(&mut r), (Vec::new(), true));
    assert_eq!(r.rotations(), 1);
}

#[test]
fn a_missing_or_directory_path_is_an_error_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let stop = FollowStop::new();
    let idle = Duration::from_millis(10);
    assert!(FollowReader::open(&dir.path().join("nope"), stop.clone(), idle).is_err());
    assert!(FollowReader::open(dir.path(), stop, idle).is_err());
}

/// Waits until the kernel's file clock (coarse: a few ms) has moved past
/// `file`'s birth time, so files made from now on were born after it, as
/// a rotated generation is in real life.
fn next_tick(dir: &Path, file: &Path) {
    let born = std::fs::metadata(file).unwrap().created().unwrap();
    let probe = dir.join("tick-probe");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        append(&probe, b"");
        let now = std::fs::metadata(&probe).unwrap().created().unwrap();
        std::fs::remove_file(&probe).unwrap();
        if now > born {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the file clock never moved"
        );
        std::thread::yield_now();
    }
}

#[test]
fn a_file_rotated_away_between_two_looks_is_counted_as_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    append(&path, b"a\n");
    if std::fs::metadata(&path).unwrap().created().is_err() {
        println!("SKIPPED: this file system keeps no birth times");
        return;
    }
    let (mut r, stop) = reader(&path);
    assert_eq!(drain(&mut r).0, b"a\n");
    next_tick(dir.path(), &path);
    // Two rotations before the next look: A goes to .2, B is written and
    // rotated to .1 without the reader ever seeing it at the path, then C.
    std::fs::rename(&path, dir.path().join("access.log.2")).unwrap();
    append(&dir.path().join("access.log.1"), b"b1\nb2\n");
    // Neither a compressed copy nor another log counts.
    append(&dir.path().join("access.log.3.gz"), b"\x1f\x8b");
    append(&dir.path().join("other.log"), b"o\n");
    let fresh = dir.path().join("fresh");
    append(&fresh, b"c\n");
    std::fs::rename(&fresh, &path).unwrap();
    assert_eq!(drain(&mut r).0, b"c\n");
    stop.stop();
    assert_eq!(drain(&mut r), (Vec::new(), true));
    assert_eq!((r.rotations(), r.skipped_files()), (1, 1));
}

#[test]
fn one_rotation_between_two_looks_skips_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    // An older generation, there before the run.
    append(&dir.path().join("access.log.2"), b"old\n");
    append(&path, b"a\n");
    let (mut r, stop) = reader(&path);
    assert_eq!(drain(&mut r).0, b"a\n");
    std::fs::rename(&path, dir.path().join("access.log.1")).unwrap();
    append(&path, b"b\n");
    assert_eq!(drain(&mut r).0, b"b\n");
    stop.stop();
    assert_eq!(drain(&mut r), (Vec::new(), true));
    assert_eq!((r.rotations(), r.skipped_files()), (1, 0));
}
