//! The dimensions of docs/logs-workload.md §4a through the real binary:
//! per-path statistics, 404s, referring hosts, user-agent families,
//! hourly/daily traffic, `--top`, `--tz`, canonical IPv6 clients and
//! `--client-from x-forwarded-for`; checked by hand on a small log, and
//! byte for byte across every mode on larger ones.

mod common;

use common::{expect_code, expect_ok, read_json, s};
use serde_json::json;
use std::path::Path;

/// nginx's `main` format plus the X-Forwarded-For header.
const NGINX: &str = r#"nginx:$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for""#;

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

/// Four requests around the end of summer time in Berlin (2024-10-27
/// 01:00 UTC) and one line that is not of the format.
fn sample() -> String {
    [
        format!(r#"10.0.0.1 - - [27/Oct/2024:00:30:00 +0000] "GET /a HTTP/1.1" 200 100 "https://www.Google.com/search?q=x" "{CHROME}" "203.0.113.7, 10.0.0.1""#),
        format!(r#"10.0.0.1 - - [27/Oct/2024:01:30:00 +0000] "GET /missing HTTP/1.1" 404 10 "-" "{GOOGLEBOT}" "-""#),
        r#"2001:DB8:0:0:0:0:0:1 - - [27/Oct/2024:02:30:00 +0000] "GET /a?x=1 HTTP/1.1" 500 5 "http://user@intranet.example:8080/x" "-" "[2001:db8::1]""#.to_string(),
        r#"[2001:db8::1] - - [28/Oct/2024:10:00:00 +0100] "GET /missing HTTP/1.1" 404 0 "" "-" """#.to_string(),
        "not a log line".to_string(),
    ]
    .join("\n")
        + "\n"
}

fn run(dir: &Path, input: &Path, extra: &[&str]) -> serde_json::Value {
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let mut args = vec![
        "run",
        "--mode",
        "serial",
        "--input",
        s(input),
        "--out",
        s(&out),
        "-q",
    ];
    args.extend(["--log-format", NGINX, "--max-rejected-ratio", "1"]);
    args.extend(extra);
    expect_ok(&args);
    read_json(&out.join("summary.json"))
}

#[test]
fn a_small_log_gives_the_documented_dimensions() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("access.log");
    std::fs::write(&input, sample()).unwrap();
    let got = run(dir.path(), &input, &[]);
    assert_eq!(
        (got["parsed"].clone(), got["rejected"].clone()),
        (json!(4), json!(1))
    );
    // Three spellings of 2001:db8::1 are one client.
    assert_eq!(got["clients"], 2);
    assert_eq!(
        got["top_clients"],
        json!([["10.0.0.1", 2], ["2001:db8::1", 2]])
    );
    assert_eq!(got["time_zone"], "UTC");
    assert_eq!(
        got["top_paths_stats"],
        json!([
            ["/a", {"4xx": 0, "5xx": 1, "bytes": 105, "hits": 2}],
            ["/missing", {"4xx": 2, "5xx": 0, "bytes": 10, "hits": 2}]
        ])
    );
    assert_eq!(got["top_not_found"], json!([["/missing", 2]]));
    // `-` and the empty referer are direct; host lower-cased, no user or port.
    assert_eq!(
        got["top_referrers"],
        json!([["-", 2], ["intranet.example", 1], ["www.google.com", 1]])
    );
    assert_eq!(got["top_browsers"], json!([["UNKNOWN", 2], ["Chrome", 1]]));
    assert_eq!(
        got["top_operating_systems"],
        json!([["UNKNOWN", 2], ["Windows 10", 1]])
    );
    assert_eq!(got["top_crawlers"], json!([["Googlebot", 1]]));
    assert_eq!(
        got["hours"],
        json!({"2024-10-27T00": 1, "2024-10-27T01": 1, "2024-10-27T02": 1, "2024-10-28T09": 1})
    );
    assert_eq!(
        got["daily"],
        json!({
            "2024-10-27": {"bytes": 115, "clients": 2, "requests": 3},
            "2024-10-28": {"bytes": 0, "clients": 1, "requests": 1}
        })
    );
    assert_eq!(
        got["hourly"]["2024-10-27T02"],
        json!({"bytes": 5, "clients": 1, "requests": 1})
    );

    // --top 1 cuts every list; --top 0 keeps all.
    let one = run(dir.path(), &input, &["--top", "1"]);
    for key in [
        "top_clients",
        "top_paths",
        "top_paths_stats",
        "top_referrers",
        "top_browsers",
    ] {
        assert_eq!(one[key].as_array().unwrap().len(), 1, "{key}");
        assert_eq!(one[key][0], got[key][0], "{key}");
    }
    let all = run(dir.path(), &input, &["--top", "0"]);
    assert_eq!(all["top_referrers"], got["top_referrers"]);
}

#[test]
fn time_zones_move_the_buckets_and_merge_the_repeated_hour() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("access.log");
    std::fs::write(&input, sample()).unwrap();
    // 00:30 UTC is 02:30 summer time, 01:30 UTC is 02:30 winter time: one
    // local hour holds both.
    let berlin = run(dir.path(), &input, &["--tz", "Europe/Berlin"]);
    assert_eq!(berlin["time_zone"], "Europe/Berlin");
    assert_eq!(
        berlin["hours"],
        json!({"2024-10-27T02": 2, "2024-10-27T03": 1, "2024-10-28T10": 1})
    );
    assert_eq!(
        berlin["hourly"]["2024-10-27T02"],
        json!({"bytes": 110, "clients": 1, "requests": 2})
    );
    let india = run(dir.path(), &input, &["--tz", "+05:30"]);
    assert_eq!(india["time_zone"], "+05:30");
    assert_eq!(
        india["hours"],
        json!({"2024-10-27T06": 1, "2024-10-27T07": 1, "2024-10-27T08": 1, "2024-10-28T14": 1})
    );
    // The other keys do not move.
    for key in ["top_paths", "status", "bytes", "clients"] {
        assert_eq!(berlin[key], india[key], "{key}");
    }
}

#[test]
fn the_client_can_come_from_x_forwarded_for() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("access.log");
    std::fs::write(&input, sample()).unwrap();
    let got = run(dir.path(), &input, &["--client-from", "x-forwarded-for"]);
    // The first address of the list; `-` and empty fall back to the remote one.
    assert_eq!(
        got["top_clients"],
        json!([["2001:db8::1", 2], ["10.0.0.1", 1], ["203.0.113.7", 1]])
    );
    assert_eq!(got["clients"], 3);
}

#[test]
fn bad_dimension_flags_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("access.log");
    std::fs::write(&input, sample()).unwrap();
    let out = dir.path().join("out");
    let base = ["run", "--input", s(&input), "--out", s(&out), "-q"];
    for (flag, value) in [
        ("--top", "-1"),
        ("--top", "1000001"),
        ("--top", "ten"),
        ("--tz", "Mars/Olympus"),
        ("--tz", "+24:00"),
        ("--client-from", "header"),
    ] {
        let mut args = base.to_vec();
        let arg = format!("{flag}={value}");
        args.push(&arg);
        let o = expect_code(&args, None, 2);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(flag) && err.contains(value), "{err}");
    }
    // Combined logs have no X-Forwarded-For field.
    let mut args = base.to_vec();
    args.extend(["--client-from", "x-forwarded-for"]);
    let o = expect_code(&args, None, 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("X-Forwarded-For") && err.contains("combined"),
        "{err}"
    );
    assert!(!out.join("summary.json").exists());
}

/// Many clients in few hours, so that hour and day buckets become
/// sketches, with varied referers, agents, statuses and forwarded lists.
fn busy_log() -> String {
    let agents = [CHROME, GOOGLEBOT, "curl/8.0", "-", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"];
    let mut out = String::new();
    for i in 0u64..12_000 {
        let client = if i % 5 == 0 {
            format!("2001:DB8::{:x}", i % 3000)
        } else {
            format!("10.{}.{}.{}", i % 7, (i / 7) % 250, i % 250)
        };
        let minute = i % 180;
        let status = [200, 200, 404, 500, 301][(i % 5) as usize];
        let referer = ["-", "https://a.example/x", "http://B.example:81/", ""][(i % 4) as usize];
        let xff = if i % 3 == 0 {
            "-".to_string()
        } else {
            format!("192.0.2.{}, 10.0.0.1", i % 200)
        };
        out.push_str(&format!(
            "{client} - - [27/Oct/2024:{:02}:{:02}:{:02} +0000] \"GET /p{} HTTP/1.1\" {status} {} \"{referer}\" \"{}\" \"{xff}\"\n",
            minute / 60,
            minute % 60,
            i % 60,
            i % 37,
            i * 13 % 5000,
            agents[(i % 5) as usize],
        ));
    }
    out
}

/// Every mode, several batch sizes and worker counts: the same bytes.
#[test]
fn the_dimensions_are_byte_identical_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("busy.log");
    std::fs::write(&input, busy_log()).unwrap();
    let generated = dir.path().join("gen.log");
    expect_ok(&["generate", "--records", "20000", "--output", s(&generated)]);
    let cases: [(&Path, &[&str]); 3] = [
        (
            &input,
            &[
                "--log-format",
                NGINX,
                "--tz",
                "Europe/Berlin",
                "--client-from",
                "x-forwarded-for",
                "--top",
                "0",
            ],
        ),
        (
            &input,
            &["--log-format", NGINX, "--tz", "-03:30", "--top", "3"],
        ),
        (&generated, &["--tz", "Asia/Kolkata", "--top", "25"]),
    ];
    let modes: [&[&str]; 6] = [
        &["--mode", "pipeline", "--batch-size", "7"],
        &[
            "--mode",
            "pipeline",
            "--batch-size",
            "1000",
            "--replicas",
            "auto",
        ],
        &[
            "--mode",
            "pipeline",
            "--batch-size",
            "333",
            "--replicas",
            "enrich=3",
        ],
        &[
            "--mode",
            "multiprocess",
            "--workers",
            "2",
            "--batch-size",
            "500",
        ],
        &[
            "--mode",
            "multiprocess",
            "--workers",
            "3",
            "--batch-size",
            "8192",
        ],
        &["--mode", "serial", "--batch-size", "1"],
    ];
    for (file, extra) in cases {
        let summary = |mode: &[&str], name: &str| -> Vec<u8> {
            let out = dir.path().join(name);
            let mut args = vec!["run", "--input", s(file), "--out", s(&out), "-q"];
            args.extend(mode);
            args.extend(extra);
            expect_ok(&args);
            std::fs::read(out.join("summary.json")).unwrap()
        };
        let serial = summary(&["--mode", "serial"], "serial");
        let value: serde_json::Value = serde_json::from_slice(&serial).unwrap();
        if file == input.as_path() {
            // The hour buckets hold over 1024 clients: sketches are compared too.
            let most = value["hourly"]
                .as_object()
                .unwrap()
                .values()
                .map(|b| b["clients"].as_u64().unwrap())
                .max()
                .unwrap();
            assert!(most > 1024, "largest hour has {most} clients");
        }
        for mode in modes {
            assert!(
                summary(mode, "got") == serial,
                "{mode:?} {extra:?}: summary.json differs"
            );
        }
    }
}

/// Requests with a duration (`$request_time`): `n` lines from `from`, one
/// in four answered 404, durations 0.000 s to 0.999 s.
fn timed(from: u64, n: u64) -> String {
    (from..from + n)
        .map(|i| {
            let status = if i % 4 == 0 { 404 } else { 200 };
            format!(
                "10.0.0.{} - - [27/Oct/2024:10:00:{:02} +0000] \"GET /t{} HTTP/1.1\" {status} 10 \"-\" \"curl/8\" {}.{:03}\n",
                i % 9,
                i % 60,
                i % 3,
                0,
                i * 7 % 1000
            )
        })
        .collect()
}

const TIMED: &str = r#"nginx:$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time"#;

/// The value of one sample line of a Prometheus text exposition.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// `promtool check metrics` on `text`, where promtool is installed.
fn promtool_accepts(text: &str) {
    use std::io::Write;
    let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!("SKIPPED: promtool is not installed (apt install prometheus)");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_metrics_file_has_the_traffic_families() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("timed.log");
    std::fs::write(&input, timed(0, 400)).unwrap();
    let (out, prom) = (dir.path().join("out"), dir.path().join("m.prom"));
    expect_ok(&[
        "run",
        "--input",
        s(&input),
        "--out",
        s(&out),
        "-q",
        "--log-format",
        TIMED,
        "--metrics-file",
        s(&prom),
    ]);
    let text = std::fs::read_to_string(&prom).unwrap();
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(
        metric(&text, "parpipe_logs_requests_total{status_class=\"2xx\"}"),
        Some(300.0)
    );
    assert_eq!(
        metric(&text, "parpipe_logs_requests_total{status_class=\"4xx\"}"),
        Some(100.0)
    );
    assert_eq!(
        metric(&text, "parpipe_logs_response_bytes_total"),
        Some(4000.0)
    );
    assert_eq!(summary["latency"]["count"], 400);
    assert_eq!(
        metric(&text, "parpipe_logs_request_duration_seconds_count"),
        Some(400.0)
    );
    let sum = summary["latency"]["sum_us"].as_f64().unwrap() / 1e6;
    let got = metric(&text, "parpipe_logs_request_duration_seconds_sum").unwrap();
    assert!((got - sum).abs() < 1e-6, "{got} {sum}");
    // Durations are i*7 % 1000 ms: at most 5 ms are 0, 1 and 2 ms (i = 0,
    // 143, 286), far from the bound; everything is at most 1 s.
    let bucket = |le: &str| {
        metric(
            &text,
            &format!("parpipe_logs_request_duration_seconds_bucket{{le=\"{le}\"}}"),
        )
    };
    assert_eq!(bucket("0.005"), Some(3.0));
    assert_eq!(bucket("1.0"), Some(400.0));
    assert_eq!(bucket("+Inf"), Some(400.0));
    // A bound on a bucket edge is exact; 0.25 s is not one, and is short
    // by at most the values of the bucket that straddles it.
    let exact = (0..400u64).filter(|i| i * 7 % 1000 <= 250).count() as f64;
    let at = bucket("0.25").unwrap();
    assert!(at <= exact && at >= exact * 0.95, "{at} of {exact}");
    promtool_accepts(&text);
}

#[test]
fn metrics_follow_the_traffic_of_a_follow_run() {
    use std::io::Write;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("live.log");
    std::fs::write(&input, timed(0, 100)).unwrap();
    let out = dir.path().join("out");
    let (mut child, addr) = common::live::follow_with_dashboard(&input, &out, TIMED);
    let metrics = || common::live::get(addr, "/metrics").1;
    let until = |count: f64| -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = metrics();
            if metric(&text, "parpipe_logs_request_duration_seconds_count") == Some(count) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {count}: {text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let first = until(100.0);
    assert_eq!(
        metric(&first, "parpipe_logs_requests_total{status_class=\"4xx\"}"),
        Some(25.0)
    );
    promtool_accepts(&first);
    // More lines: the counters grow while the run goes on.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .unwrap();
    f.write_all(timed(100, 200).as_bytes()).unwrap();
    drop(f);
    let later = until(300.0);
    assert_eq!(
        metric(&later, "parpipe_logs_requests_total{status_class=\"2xx\"}"),
        Some(225.0)
    );
    assert_eq!(
        metric(&later, "parpipe_logs_response_bytes_total"),
        Some(3000.0)
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert!(child.wait().unwrap().success());
}
