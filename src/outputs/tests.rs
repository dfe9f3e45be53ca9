use super::*;

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn temp_names_say_parpipe_and_carry_the_pid() {
    assert_eq!(
        temp::parse_temp(".summary.json.parpipe-123-0a1b2c3d.tmp"),
        Some(("summary.json", 123))
    );
    assert_eq!(
        temp::parse_temp(".run.parpipe-7-ffffffff.tmp"),
        Some(("run", 7))
    );
    for not_ours in [
        "summary.json",
        ".summary.json.123.tmp",
        ".backup.3999999.tmp",
        ".parpipe-run.7.tmp",
        ".a.parpipe-12-0a1b2c3.tmp",
        ".a.parpipe-12-0A1B2C3D.tmp",
        ".a.parpipe--0a1b2c3d.tmp",
        ".parpipe-12-0a1b2c3d.tmp",
        "a.parpipe-12-0a1b2c3d.tmp",
        ".a.parpipe-12-0a1b2c3d.tmpx",
        ".a.parpipe-99999999999999999999-0a1b2c3d.tmp",
    ] {
        assert_eq!(temp::parse_temp(not_ours), None, "{not_ours}");
    }
    let p = temp_path(Path::new("d"), "summary.json");
    let name = p.file_name().unwrap().to_str().unwrap();
    assert_eq!(
        temp::parse_temp(name),
        Some(("summary.json", std::process::id()))
    );
    assert_eq!(p.parent(), Some(Path::new("d")));
}

#[test]
fn write_atomic_places_the_file_or_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.json");
    write_atomic(&path, b"{}\n").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"{}\n");
    // Renaming onto a non-empty directory fails: the temporary goes.
    let blocked = dir.path().join("blocked");
    fs::create_dir(&blocked).unwrap();
    fs::write(blocked.join("x"), b"x").unwrap();
    let err = write_atomic(&blocked, b"data").unwrap_err();
    assert!(err.to_string().contains("blocked"), "{err}");
    assert_eq!(names(dir.path()), ["a.json", "blocked"]);
    assert!(write_atomic(&dir.path().join("no/such/dir/f"), b"x").is_err());
}

/// Holds the lock of `path` from another open file description, as a
/// live run (of this or another PID namespace) does.
fn held(path: &Path) -> fs::File {
    let f = fs::File::open(path).unwrap();
    assert!(temp::try_lock(&f).unwrap());
    f
}

#[test]
fn only_unlocked_parpipe_temporaries_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A killed run's: nothing holds their locks.
    let gone_file = d.join(".records.jsonl.parpipe-4242-0000beef.tmp");
    let gone_dir = d.join(".run.parpipe-4242-0000beef.tmp");
    fs::write(&gone_file, b"partial").unwrap();
    fs::create_dir(&gone_dir).unwrap();
    fs::write(
        gone_dir.join(".summary.json.parpipe-4242-0000beef.tmp"),
        b"x",
    )
    .unwrap();
    // A live run's, whatever its pid (here one that exists nowhere).
    let live_file = d.join(".summary.json.parpipe-3999999-12345678.tmp");
    let live_dir = d.join(".run.parpipe-3999999-12345678.tmp");
    fs::write(&live_file, b"x").unwrap();
    fs::create_dir(&live_dir).unwrap();
    fs::write(live_dir.join("summary.json"), b"{}").unwrap();
    let _locks = (held(&live_file), held(&live_dir));
    // Not parpipe's: other programs' temporaries, a directory under a file
    // temporary's name, a link.
    fs::create_dir(d.join(".backup.3999999.tmp")).unwrap();
    fs::write(d.join(".backup.3999999.tmp/db.sqlite"), b"db").unwrap();
    fs::write(d.join(".summary.json.3999999.tmp"), b"x").unwrap();
    fs::create_dir(d.join(".data.parpipe-1-00000000.tmp")).unwrap();
    std::os::unix::fs::symlink(&gone_file, d.join(".l.parpipe-1-00000000.tmp")).unwrap();
    fs::write(d.join("summary.json"), b"{}").unwrap();

    let mut found = clean_stale(d, None).unwrap();
    found.sort_by(|a, b| a.path.cmp(&b.path));
    let removed: Vec<_> = found
        .iter()
        .filter(|s| s.removed)
        .map(|s| &s.path)
        .collect();
    assert_eq!(removed, [&gone_file, &gone_dir]);
    let left: Vec<_> = found
        .iter()
        .filter(|s| !s.removed)
        .map(|s| &s.path)
        .collect();
    assert_eq!(left, [&live_dir, &live_file]);
    assert!(found.iter().all(|s| s.pid == 4242 || s.pid == 3999999));
    assert_eq!(
        names(d),
        [
            ".backup.3999999.tmp",
            ".data.parpipe-1-00000000.tmp",
            ".l.parpipe-1-00000000.tmp",
            ".run.parpipe-3999999-12345678.tmp",
            ".summary.json.3999999.tmp",
            ".summary.json.parpipe-3999999-12345678.tmp",
            "summary.json",
        ]
    );
    assert_eq!(
        fs::read(d.join(".backup.3999999.tmp/db.sqlite")).unwrap(),
        b"db"
    );
    assert!(live_dir.join("summary.json").exists());
    // `only` keeps to one name.
    fs::write(&gone_file, b"partial").unwrap();
    assert!(clean_stale(d, Some("report.json")).unwrap().is_empty());
    assert!(gone_file.exists());
    assert!(clean_stale(&d.join("missing"), None).unwrap().is_empty());
}

#[test]
fn a_staging_directory_is_locked_while_its_run_lives() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let staging = Staging::prepare(&out, &out.join("report.json")).unwrap();
    // Another run preparing the same OUT leaves this one's files alone.
    let found = clean_stale(&out, None).unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().all(|s| !s.removed), "{found:?}");
    assert!(staging.dir().exists());
    drop(staging);
    assert!(names(&out).is_empty());
}

#[test]
fn snapshots_are_marked_and_retracted_only_while_still_in_place() {
    assert_eq!(mark("{\"a\":1}\n"), "{\"final\":false,\"a\":1}\n");
    assert_eq!(mark("{}"), "{\"final\":false}");
    assert_eq!(
        mark("{\n  \"a\": 1\n}"),
        "{\n  \"final\": false,\n  \"a\": 1\n}"
    );
    for pretty in [true, false] {
        let v: serde_json::Value = serde_json::from_str(&mark(if pretty {
            "{\n  \"a\": 1\n}"
        } else {
            "{\"a\":1}"
        }))
        .unwrap();
        assert_eq!(v["final"], false);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.json");
    write_snapshot(&path, "{\"lines\":1}\n").unwrap();
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "{\"final\":false,\"lines\":1}\n"
    );
    assert_eq!(names(dir.path()), ["summary.json"]);
    assert!(retract_snapshot(&path));
    assert!(!path.exists());
    // Replaced by a final result: the final result stays.
    write_snapshot(&path, "{\"lines\":1}\n").unwrap();
    write_atomic(&path, b"{\"lines\":2}\n").unwrap();
    assert!(!retract_snapshot(&path));
    assert_eq!(fs::read(&path).unwrap(), b"{\"lines\":2}\n");
}

#[test]
fn staging_moves_everything_in_at_commit_and_nothing_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let report = out.join("report.json");
    let staging = Staging::prepare(&out, &report).unwrap();
    fs::write(staging.dir().join("summary.json"), b"{\"a\":1}").unwrap();
    fs::write(staging.dir().join("records.jsonl"), b"{}\n").unwrap();
    staging.commit("{\"r\":1}\n").unwrap();
    assert_eq!(
        names(&out),
        ["records.jsonl", "report.json", "summary.json"]
    );
    assert_eq!(fs::read(&report).unwrap(), b"{\"r\":1}\n");

    let again = dir.path().join("again");
    let elsewhere = dir.path().join("reports/r.json");
    let staging = Staging::prepare(&again, &elsewhere).unwrap();
    fs::write(staging.dir().join("summary.json"), b"{}").unwrap();
    drop(staging);
    assert!(names(&again).is_empty());
    assert!(names(&dir.path().join("reports")).is_empty());
}

#[test]
fn an_unwritable_output_directory_fails_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    fs::write(&file, b"x").unwrap();
    let err = Staging::prepare(&file, &file.join("report.json")).unwrap_err();
    assert!(err.to_string().contains("a-file"), "{err}");
    assert_eq!(names(dir.path()), ["a-file"]);
}
