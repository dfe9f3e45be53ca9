//! `report.html` and the human summary of the real binary: the report is
//! there after a run that succeeds (the same bytes in every mode) and
//! absent after one that fails; the terminal summary follows the engine's
//! report and `-q` silences it; the dashboard's traffic panels follow a
//! `--follow` run.

mod common;

use common::live::{follow_with_dashboard, get};
use common::{describe, expect_code, expect_ok, read_json, s};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// nginx's `combined` with the request times (docs/log-formats.md).
const NGINX: &str = r#"nginx:$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time $upstream_response_time"#;

/// `n` timed lines from line `from`: five paths, a 404 in seven, a
/// hostile path and user agent, and a rejected line in fifty.
fn timed_lines(from: u64, n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for i in from..from + n {
        if i % 50 == 49 {
            out.extend_from_slice(b"\x16\x03\x01 not a log line <script>alert(0)</script>\n");
            continue;
        }
        let path = match i % 11 {
            0 => "/<script>alert(1)</script>",
            k => ["/", "/a", "/b", "/api", "/c"][(k % 5) as usize],
        };
        let status = if i % 7 == 3 { 404 } else { 200 };
        let _ = writeln!(
            out,
            "10.0.{}.{} - - [18/Dec/2023:{:02}:{:02}:00 +0000] \"GET {path} HTTP/1.1\" {status} {} \"-\" \"<img src=x onerror=alert(2)>\" 0.{:03} 0.{:03}",
            i % 3,
            i % 17,
            10 + i / 600 % 10,
            i / 10 % 60,
            100 + i % 900,
            i % 1000,
            i % 900
        );
    }
    out
}

fn run_report(args: &[&str], out: &Path) -> Vec<u8> {
    let mut all = vec!["run", "-q", "--out", s(out), "--log-format", NGINX];
    all.extend(args);
    expect_ok(&all);
    std::fs::read(out.join("report.html")).expect("report.html after a run that succeeded")
}

#[test]
fn the_report_is_the_same_in_every_mode_and_escapes_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("timed.log");
    std::fs::write(&input, timed_lines(0, 6000)).unwrap();
    let serial = run_report(
        &["--mode", "serial", "--input", s(&input)],
        &dir.path().join("serial"),
    );
    let page = String::from_utf8(serial.clone()).unwrap();
    // Key numbers of the summary appear, formatted.
    let summary = read_json(&dir.path().join("serial/summary.json"));
    let requests = summary["parsed"].as_u64().unwrap();
    assert_eq!(requests, 6000 - 6000 / 50);
    assert!(page.contains("5,880"), "the request count");
    assert!(page.contains("Not Found") && page.contains("id=\"latency\""));
    assert!(!page.contains("<script>alert") && !page.contains("<img"));
    assert!(page.contains("/&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("not a log line &lt;script&gt;"));
    assert_eq!(page.matches("<script").count(), 1);
    for (name, args) in [
        (
            "pipeline",
            // The stage actors (without --replicas a plain file gets lanes).
            &[
                "--mode",
                "pipeline",
                "--replicas",
                "parse=1",
                "--batch-size",
                "97",
            ][..],
        ),
        ("lanes", &["--mode", "pipeline", "--replicas", "auto"][..]),
        (
            "multiprocess",
            &[
                "--mode",
                "multiprocess",
                "--workers",
                "2",
                "--batch-size",
                "64",
            ][..],
        ),
    ] {
        let mut args = args.to_vec();
        args.extend(["--input", s(&input)]);
        let got = run_report(&args, &dir.path().join(name));
        assert!(
            got == serial,
            "{name}: report.html differs from serial mode's"
        );
    }
}

#[test]
fn a_run_that_fails_leaves_no_report() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("caddy.log");
    // JSON lines read as Combined: every line rejected, the run fails.
    std::fs::write(&input, "{\"level\":\"info\"}\n".repeat(20)).unwrap();
    let out = dir.path().join("out");
    let args = ["run", "-q", "--input", s(&input), "--out", s(&out)];
    expect_code(&args, None, 1);
    assert!(!out.join("report.html").exists());
    assert!(!out.join("summary.json").exists());
    // An input that cannot be read fails too.
    let missing = dir.path().join("missing.log");
    let args = ["run", "-q", "--input", s(&missing), "--out", s(&out)];
    expect_code(&args, None, 1);
    assert!(!out.join("report.html").exists());
    // Not even a temporary of it stays behind.
    let left: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn the_terminal_summary_follows_the_report_and_q_silences_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("timed.log");
    std::fs::write(&input, timed_lines(0, 500)).unwrap();
    let out = dir.path().join("out");
    let args = [
        "run",
        "--mode",
        "serial",
        "--input",
        s(&input),
        "--out",
        s(&out),
        "--log-format",
        NGINX,
    ];
    let loud = expect_ok(&args);
    let err = String::from_utf8_lossy(&loud.stderr);
    let at = err
        .find("traffic: ")
        .unwrap_or_else(|| panic!("{}", describe(&args, &loud)));
    assert!(
        err[..at].contains("bottleneck"),
        "after the engine's report:\n{err}"
    );
    let summary: Vec<&str> = err[at..].lines().collect();
    assert_eq!(summary.len(), 4, "{err}");
    assert!(summary[0].starts_with("traffic: 490 requests, 98.0 % of 500 lines valid, 51 clients"));
    assert!(summary[1].starts_with("top paths: "));
    assert!(summary[2].starts_with("errors: 4xx 14."));
    assert!(summary[3].starts_with("latency: p50 "));
    let mut quiet = args.to_vec();
    quiet.push("-q");
    let q = expect_ok(&quiet);
    assert!(q.stderr.is_empty(), "{}", describe(&quiet, &q));
}

/// Polls `/api/status` until `done` holds for its `traffic`.
fn traffic_until(
    addr: SocketAddr,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, body) = get(addr, "/api/status");
        assert_eq!(code, 200);
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        if status.get("traffic").is_some_and(&done) {
            return status["traffic"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_dashboard_shows_the_traffic_of_a_follow_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("live.log");
    std::fs::write(&input, timed_lines(0, 100)).unwrap();
    let out = dir.path().join("out");
    let (mut child, addr) = follow_with_dashboard(&input, &out, NGINX);
    let first = traffic_until(addr, "the first 100 lines", |t| t["lines"] == 100);
    assert_eq!(first["requests"], 98);
    assert_eq!(first["rejected"], 2);
    assert_eq!(first["status_classes"]["4xx"], 14);
    // More lines come: the panels follow, without the run ending.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .unwrap();
    f.write_all(&timed_lines(100, 200)).unwrap();
    drop(f);
    let t = traffic_until(addr, "300 lines", |t| t["lines"] == 300);
    assert_eq!(t["requests"], 294);
    assert_eq!(
        t["status_classes"]["4xx"].as_u64().unwrap() + t["status_classes"]["2xx"].as_u64().unwrap(),
        294
    );
    let top: Vec<(String, u64)> = serde_json::from_value(t["top_paths"].clone()).unwrap();
    assert_eq!(top.iter().map(|(_, n)| n).sum::<u64>(), 294);
    assert!(top.iter().any(|(p, _)| p == "/<script>alert(1)</script>"));
    assert!(t["latency_p50_us"].as_u64().unwrap() > 0);
    assert_eq!(t["hours"].as_array().unwrap().len(), 1);
    // The page embeds the status with every "<" escaped.
    let (_, page) = get(addr, "/");
    assert!(page.contains("id=\"traffic-section\""));
    assert!(!page.contains("<script>alert"));
    // SIGINT ends a follow normally: the report is written.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("294"));
}

/// The page as headless Chromium builds it, its script run.
fn rendered(page: &Path) -> Option<String> {
    let browser = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("cannot start chromium");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_browser_opens_the_report_from_disk_and_runs_only_its_own_script() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("timed.log");
    std::fs::write(&input, timed_lines(0, 300)).unwrap();
    run_report(&["--input", s(&input)], &dir.path().join("out"));
    let Some(dom) = rendered(&dir.path().join("out/report.html")) else {
        eprintln!("SKIPPED: no chromium at /usr/bin/chromium (apt-get install chromium)");
        return;
    };
    // The sorting script ran: it made every heading focusable.
    let headings = dom.matches("</th>").count();
    assert!(headings > 10, "{dom}");
    assert_eq!(dom.matches("tabindex=\"0\"").count(), headings);
    // The hostile path is text, and no element came from the log.
    assert!(dom.contains("/&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_eq!(dom.matches("<script").count(), 1);
    assert!(!dom.contains("<img"));
}
