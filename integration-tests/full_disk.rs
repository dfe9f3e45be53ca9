//! Runs that write their outputs onto a full disk: a small tmpfs (needs
//! root; the test says SKIPPED and passes where it cannot mount), filled so
//! that only so much space is left — none, 1 KiB, 4 KiB, 64 KiB, just
//! enough for `summary.json` but not `report.json`, plenty — with and
//! without `--emit-records`, in every mode, for both workloads. A run that
//! fails exits 1 and leaves no `summary.json` and no temporary file; one
//! that succeeds leaves every output complete. Also: a read-only `--out` is
//! refused before any input is read.

mod common;

use common::describe;
use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A tmpfs mounted on a fresh directory under the system temp dir, unmounted
/// when dropped (also when the test fails).
struct Tmpfs {
    dir: Option<tempfile::TempDir>,
}

impl Tmpfs {
    fn mount(options: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::Builder::new()
            .prefix("parpipe-full-disk-")
            .tempdir()
            .map_err(|e| format!("cannot make a directory: {e}"))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs { dir: Some(dir) })
    }

    fn path(&self) -> &Path {
        self.dir
            .as_ref()
            .map(|d| d.path())
            .unwrap_or(Path::new("/"))
    }

    /// Bytes still free for files.
    fn free(&self) -> u64 {
        let c = CString::new(self.path().as_os_str().as_bytes()).unwrap();
        // SAFETY: a zeroed statvfs filled in by the call; the path is NUL-terminated.
        unsafe {
            let mut st: libc::statvfs = std::mem::zeroed();
            assert_eq!(libc::statvfs(c.as_ptr(), &mut st), 0);
            st.f_bavail as u64 * st.f_frsize as u64
        }
    }

    /// Fills the file system until `left` bytes (rounded down to whole
    /// pages, tmpfs's unit) remain free.
    fn leave_free(&self, left: u64) {
        let fill = self.free().saturating_sub(left);
        let mut f = std::fs::File::create(self.path().join("filler")).unwrap();
        let block = vec![0xa5u8; 1 << 20];
        let mut done = 0;
        while done < fill {
            let n = (fill - done).min(block.len() as u64) as usize;
            f.write_all(&block[..n]).unwrap();
            done += n as u64;
        }
        f.sync_all().unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let done = Command::new("umount").arg(dir.path()).status();
            if !done.is_ok_and(|s| s.success()) {
                // Lazily then, so that the directory can still go.
                let _ = Command::new("umount").arg("-l").arg(dir.path()).status();
            }
        }
    }
}

/// Mounts a tmpfs, or says why the test is skipped.
fn tmpfs(options: &str) -> Option<Tmpfs> {
    match Tmpfs::mount(options) {
        Ok(t) => Some(t),
        Err(why) => {
            println!("SKIPPED: cannot mount tmpfs: {why}");
            None
        }
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(common::bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run parpipe")
}

/// Every name in `dir`, sorted (none when it does not exist).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

const PAGE: u64 = 4096;

/// One workload's run, repeated at each amount of free space.
struct Case {
    label: String,
    args: Vec<String>,
    emit: bool,
}

#[test]
fn a_full_disk_fails_cleanly_and_a_roomy_one_gets_complete_outputs() {
    let Some(probe) = tmpfs("size=16m") else {
        return;
    };
    drop(probe);
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("in.log");
    common::expect_ok(&[
        "generate",
        "--records",
        "20000",
        "--output",
        common::s(&input),
    ]);
    let mut cases = Vec::new();
    for mode in ["serial", "pipeline", "multiprocess"] {
        for emit in [false, true] {
            let mut args = vec!["--mode", mode, "--input", common::s(&input)];
            if emit {
                args.push("--emit-records");
            }
            if mode == "multiprocess" {
                args.extend(["--workers", "2"]);
            }
            cases.push(Case {
                label: format!("logs {mode}{}", if emit { " --emit-records" } else { "" }),
                args: args.into_iter().map(String::from).collect(),
                emit,
            });
        }
        cases.push(Case {
            label: format!("matrix {mode}"),
            args: [
                "--workload",
                "matrix",
                "--records",
                "40",
                "--matrix-size",
                "16",
                "--mode",
                mode,
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            emit: false,
        });
    }
    let mut lines = Vec::new();
    let (mut ok, mut failed) = (0, 0);
    for case in &cases {
        // The sizes of this case's files, from a run on the ordinary disk.
        let plain = work.path().join("plain");
        let _ = std::fs::remove_dir_all(&plain);
        let mut args: Vec<&str> = vec!["run", "-q", "--out", common::s(&plain)];
        args.extend(case.args.iter().map(String::as_str));
        let o = run(&args);
        assert_eq!(o.status.code(), Some(0), "{}", describe(&args, &o));
        let size = |name: &str| std::fs::metadata(plain.join(name)).map_or(0, |m| m.len());
        let summary_pages = size("summary.json").div_ceil(PAGE);
        let mut amounts = vec![
            ("0".to_string(), 0),
            ("1 KiB".into(), 1024),
            ("4 KiB".into(), 4096),
            ("64 KiB".into(), 64 << 10),
            (
                format!("summary only ({summary_pages} pages)"),
                summary_pages * PAGE,
            ),
        ];
        if case.emit {
            let streams =
                (size("records.jsonl").div_ceil(PAGE) + size("rejects.txt").div_ceil(PAGE)) * PAGE;
            amounts.push((
                "records, rejects and summary".into(),
                streams + summary_pages * PAGE,
            ));
        }
        amounts.push(("plenty".into(), u64::MAX));
        for (what, left) in amounts {
            let fs = tmpfs("size=16m").expect("mounted once already");
            if left != u64::MAX {
                fs.leave_free(left);
            }
            let free = fs.free();
            let out = fs.path().join("out");
            let mut args: Vec<&str> = vec!["run", "-q", "--out", common::s(&out)];
            args.extend(case.args.iter().map(String::as_str));
            let o = run(&args);
            let context = format!(
                "{}, {what} free ({free} B):\n{}",
                case.label,
                describe(&args, &o)
            );
            let files = names(&out);
            match o.status.code() {
                Some(0) => {
                    ok += 1;
                    let summary = common::read_json(&out.join("summary.json"));
                    let report = common::read_json(&out.join("report.json"));
                    assert!(report["records"].is_u64(), "{context}");
                    let mut expected = vec!["report.json", "summary.json"];
                    if case.label.starts_with("logs") {
                        expected = vec!["report.html", "report.json", "summary.json"];
                    }
                    if case.emit {
                        expected = vec![
                            "records.jsonl",
                            "rejects.txt",
                            "report.html",
                            "report.json",
                            "summary.json",
                        ];
                        let lines = |name: &str| {
                            let bytes = std::fs::read(out.join(name)).unwrap();
                            bytes.iter().filter(|&&b| b == b'\n').count() as u64
                        };
                        assert_eq!(
                            lines("records.jsonl"),
                            summary["parsed"].as_u64().unwrap(),
                            "{context}"
                        );
                        assert_eq!(
                            lines("rejects.txt"),
                            summary["rejected"].as_u64().unwrap(),
                            "{context}"
                        );
                    }
                    // The report has timings; everything else is the same.
                    for name in expected.iter().filter(|&&n| n != "report.json") {
                        assert_eq!(
                            std::fs::read(out.join(name)).unwrap(),
                            std::fs::read(plain.join(name)).unwrap(),
                            "{name} differs from the ordinary run; {context}"
                        );
                    }
                    assert_eq!(files, expected, "{context}");
                }
                Some(1) => {
                    failed += 1;
                    assert!(files.is_empty(), "left {files:?}; {context}");
                    let err = String::from_utf8_lossy(&o.stderr);
                    assert!(err.contains("No space left on device"), "{context}");
                }
                _ => panic!("neither success nor a clean failure; {context}"),
            }
            let mut expected_top = vec!["out".to_string()];
            if left != u64::MAX {
                expected_top.insert(0, "filler".into());
            }
            assert_eq!(
                names(fs.path()),
                expected_top,
                "nothing beside out/; {context}"
            );
            if left == u64::MAX {
                assert_eq!(o.status.code(), Some(0), "{context}");
            }
            if left < PAGE || what.starts_with("summary only") {
                assert_eq!(o.status.code(), Some(1), "{context}");
            }
            if what.starts_with("summary only") && !case.emit {
                let err = String::from_utf8_lossy(&o.stderr);
                assert!(
                    err.contains("report"),
                    "not the report that failed; {context}"
                );
            }
            let err = String::from_utf8_lossy(&o.stderr);
            lines.push(format!(
                "{:<36} {:<34} free {:>8} B: exit {:?}, left {:?} {}",
                case.label,
                what,
                free,
                o.status.code().unwrap_or(-1),
                files,
                err.lines().last().unwrap_or("")
            ));
        }
    }
    println!("{}", lines.join("\n"));
    println!("{ok} runs succeeded with complete outputs, {failed} failed leaving nothing");
}

#[test]
fn a_read_only_out_is_refused_before_any_input_is_read() {
    let Some(ro) = tmpfs("size=1m,ro") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    // Opening a FIFO nobody writes blocks: a run that read its input before
    // checking --out would never finish.
    let fifo = work.path().join("fifo");
    let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for out in [ro.path().join("out"), PathBuf::from(ro.path())] {
        let args = [
            "run".to_string(),
            "--input".into(),
            fifo.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ];
        let (tx, rx) = mpsc::channel();
        let a = args.clone();
        std::thread::spawn(move || {
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            let _ = tx.send(run(&a));
        });
        let Ok(o) = rx.recv_timeout(Duration::from_secs(60)) else {
            // Let the blocked run go before failing.
            drop(std::fs::OpenOptions::new().write(true).open(&fifo));
            panic!("{args:?}: still running: it read its input first");
        };
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(o.status.code(), Some(1), "{}", describe(&a, &o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&out.display().to_string()),
            "{}",
            describe(&a, &o)
        );
        assert!(
            err.contains("Read-only file system"),
            "{}",
            describe(&a, &o)
        );
        println!("{}", err.trim());
    }
}
