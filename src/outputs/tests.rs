use super::*;

/// The pid of a process that has exited (spawned and reaped here).
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn temp_names_carry_the_pid() {
    assert_eq!(
        temp_pid(".summary.json.123.tmp"),
        Some(("summary.json", 123))
    );
    assert_eq!(temp_pid(".parpipe-run.7.tmp"), Some(("parpipe-run", 7)));
    for not_ours in [
        "summary.json",
        "report.json.12.tmp",
        ".x.tmp",
        "..12.tmp",
        ".a.12a.tmp",
        ".a.12.tmpx",
        ".a..tmp",
        ".a.99999999999999999999.tmp",
    ] {
        assert_eq!(temp_pid(not_ours), None, "{not_ours}");
    }
    let p = temp_path(Path::new("d"), "summary.json");
    let expected = format!(".summary.json.{}.tmp", std::process::id());
    assert_eq!(p, Path::new("d").join(expected));
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

#[test]
fn stale_temporaries_of_gone_processes_are_removed_and_live_ones_named() {
    let dir = tempfile::tempdir().unwrap();
    let dead = dead_pid();
    let gone_file = dir.path().join(format!(".records.jsonl.{dead}.tmp"));
    let gone_dir = dir.path().join(format!(".parpipe-run.{dead}.tmp"));
    let live = dir.path().join(".summary.json.1.tmp");
    fs::write(&gone_file, b"partial").unwrap();
    fs::create_dir(&gone_dir).unwrap();
    fs::write(gone_dir.join(".summary.json.5.tmp"), b"x").unwrap();
    fs::write(&live, b"x").unwrap();
    fs::write(dir.path().join("summary.json"), b"{}").unwrap();
    fs::write(dir.path().join(format!("notes.{dead}.tmp")), b"x").unwrap();
    let mut found = clean_stale(dir.path(), None).unwrap();
    found.sort_by(|a, b| a.path.cmp(&b.path));
    let removed: Vec<_> = found
        .iter()
        .filter(|s| s.removed)
        .map(|s| &s.path)
        .collect();
    assert_eq!(removed, [&gone_dir, &gone_file]);
    assert!(found
        .iter()
        .any(|s| s.path == live && !s.removed && s.pid == 1));
    let mut expected = vec![
        ".summary.json.1.tmp".to_string(),
        "summary.json".to_string(),
        format!("notes.{dead}.tmp"),
    ];
    expected.sort();
    assert_eq!(names(dir.path()), expected);
    // `only` keeps to one name.
    fs::write(&gone_file, b"partial").unwrap();
    let found = clean_stale(dir.path(), Some("report.json")).unwrap();
    assert!(found.is_empty());
    assert!(gone_file.exists());
    assert!(clean_stale(&dir.path().join("missing"), None)
        .unwrap()
        .is_empty());
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
