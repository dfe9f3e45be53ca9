//! The examples listed in examples/README.md, run for real: `custom_stage`
//! in three modes, `stream_from_channel` against `parpipe run --mode
//! serial` on the same lines, and `embed_actix_web` in each mode, fed over
//! real sockets with bodies that end mid-line while summaries are asked
//! for concurrently, `any_runtime` under each kind of `main`, and the two
//! user jobs on `parpipe::sources` (`csv_etl`, `jsonl_events`): every mode,
//! batch size, worker count and input kind (plain file, gzip, standard
//! input) gives the bytes of the plain loop; and `byte_ranges`, a source of
//! the user's own cut by byte ranges with an aggregate that renumbers.
//! (`embedded_wordcount` has its own test file.)

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// `cargo test` builds the examples next to the test binaries' directory.
/// The built example `name`, or `None` after saying the test skips.
fn example(name: &str) -> Option<PathBuf> {
    let exe = (|| {
        let deps = std::env::current_exe().ok()?.parent()?.to_path_buf();
        let exe = deps
            .parent()?
            .join("examples")
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        exe.exists().then_some(exe)
    })();
    if exe.is_none() {
        eprintln!("SKIPPED: {name} was not built (run through `cargo test`)");
    }
    exe
}

fn generate(dir: &Path, records: u64, seed: u64) -> PathBuf {
    let path = dir.join(format!("gen-{records}-{seed}.log"));
    let n = records.to_string();
    let s = seed.to_string();
    let out = common::run_with_stdin(
        &[
            "generate",
            "--records",
            &n,
            "--seed",
            &s,
            "--output",
            path.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "generate failed");
    path
}

/// `parpipe run --mode serial` on `input`: its summary.json bytes.
fn serial_summary(dir: &Path, input: &Path) -> Vec<u8> {
    let out_dir = dir.join(format!(
        "serial-{}",
        input.file_name().unwrap().to_string_lossy()
    ));
    let args = [
        "run",
        "--mode",
        "serial",
        "--input",
        input.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "-q",
    ];
    let out = common::run_with_stdin(&args, None);
    assert!(out.status.success(), "{}", common::describe(&args, &out));
    std::fs::read(out_dir.join("summary.json")).unwrap()
}

#[test]
fn custom_stage_is_identical_in_every_mode_and_counts_what_it_dropped() {
    let Some(exe) = example("custom_stage") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = generate(dir.path(), 30_000, 7);
    for extra in [vec![], vec!["--input", input.to_str().unwrap()]] {
        let mut outputs = Vec::new();
        for mode in ["serial", "pipeline", "multiprocess"] {
            let mut args = vec!["--mode", mode];
            args.extend(&extra);
            let out = Command::new(&exe).args(&args).output().unwrap();
            assert!(
                out.status.success(),
                "{mode}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            outputs.push(out.stdout);
        }
        assert_eq!(outputs[0], outputs[1], "pipeline differs from serial");
        assert_eq!(outputs[0], outputs[2], "multiprocess differs from serial");
        let s: serde_json::Value = serde_json::from_slice(&outputs[0]).unwrap();
        let n = |k: &str| s[k].as_u64().unwrap();
        assert!(n("dropped") > 0, "the deny list dropped nothing: {s}");
        assert_eq!(n("lines"), n("parsed") + n("rejected"));
        let kept: u64 = s["methods"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(n("parsed"), kept + n("dropped"));
    }
}

#[test]
fn stream_from_channel_gives_the_serial_summary() {
    let Some(exe) = example("stream_from_channel") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let expected = serial_summary(dir.path(), &generate(dir.path(), 50_000, 7));
    let summary: serde_json::Value = serde_json::from_slice(&expected).unwrap();
    let rejected = summary["rejected"].as_u64().unwrap();
    for mode in ["serial", "pipeline", "multiprocess"] {
        let out = Command::new(&exe)
            .args(["--lines", "50000", "--mode", mode])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{mode}: {err}");
        assert_eq!(out.stdout, expected, "{mode}");
        assert!(err.contains("waited"), "{err}");
        // One acknowledgement per batch pushed (at least 7 of at most
        // 8,192 lines; a partial one leaves after 50 ms), adding up to
        // every line.
        let ack = err
            .lines()
            .find_map(|l| l.strip_prefix("acknowledged: "))
            .unwrap_or_else(|| panic!("{mode}: no acknowledgements: {err}"));
        let batches: u64 = ack.split(' ').next().unwrap().parse().unwrap();
        assert!(batches >= 50_000u64.div_ceil(8192), "{mode}: {ack}");
        assert!(
            ack.ends_with(&format!(
                "batches, 50000 lines, {rejected} of them rejected"
            )),
            "{mode}: {ack}"
        );
    }
    let bad = Command::new(&exe).args(["--lines", "x"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// One HTTP/1.1 request on a fresh connection: (status, body).
fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut response = Vec::new();
    s.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no header end");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, response[split + 4..].to_vec())
}

/// The example server, stopped (by its process id) when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_web_example_answers_the_serial_summary_in_every_mode() {
    let Some(exe) = example("embed_actix_web") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = generate(dir.path(), 20_000, 11);
    let expected = serial_summary(dir.path(), &input);
    let data = std::fs::read(&input).unwrap();
    for mode in ["serial", "pipeline", "multiprocess"] {
        let mut child = Command::new(&exe)
            .args(["--listen", "127.0.0.1:0", "--mode", mode])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let server = Server(child);
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("{mode}: first line {line:?}"))
            .to_string();
        // 60 bodies of odd sizes: nearly all end in the middle of a line.
        let size = data.len() / 60 + 7;
        let bodies: Vec<&[u8]> = data.chunks(size).collect();
        assert!(bodies.len() >= 50);
        let mid_line = bodies.iter().filter(|b| b.last() != Some(&b'\n')).count();
        assert!(mid_line >= 50, "{mid_line} bodies end mid-line");
        let reader = {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut lines_seen = Vec::new();
                for _ in 0..20 {
                    let (status, body) = http(&addr, "GET", "/summary", b"");
                    assert_eq!(status, 200);
                    let s: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    lines_seen.push(s["lines"].as_u64().unwrap());
                }
                lines_seen
            })
        };
        for body in &bodies {
            let (status, _) = http(&addr, "POST", "/lines", body);
            assert_eq!(status, 200, "{mode}");
        }
        let (status, summary) = http(&addr, "GET", "/summary", b"");
        assert_eq!(status, 200);
        assert_eq!(
            String::from_utf8_lossy(&summary),
            String::from_utf8_lossy(&expected),
            "{mode}: the summary after the last POST"
        );
        let seen = reader.join().unwrap();
        // Concurrent snapshots never go back in time.
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{mode}: {seen:?}");
        let (status, stats) = http(&addr, "GET", "/stats", b"");
        assert_eq!(status, 200);
        let stats: serde_json::Value = serde_json::from_slice(&stats).unwrap();
        assert_eq!(stats["lines_pushed"], 20_000, "{mode}: {stats}");
        // The report so far, once the run has refreshed it.
        if !stats["report"].is_null() {
            let stages = stats["report"]["stages"].as_array().expect("stages");
            assert!(
                stages.iter().any(|s| s["name"] == "parse"),
                "{mode}: {stats}"
            );
        }
        drop(server);
    }
}

#[test]
fn any_runtime_gives_the_same_results_under_every_kind_of_main() {
    let Some(exe) = example("any_runtime") else {
        return;
    };
    let total = (100_000u64 * 100_001 / 2).to_string();
    for main in ["plain", "tokio", "actix"] {
        let out = Command::new(&exe).args(["--main", main]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{main}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let full: Vec<&str> = text.lines().filter(|l| l.contains("finish")).collect();
        assert_eq!(full.len(), 3, "{main}: {text}");
        for line in full {
            assert_eq!(line.matches(total.as_str()).count(), 4, "{main}: {line}");
        }
    }
}

/// Runs `exe` with `args` (standard input from `stdin` if given): its
/// stdout, or a panic naming the run and its stderr.
fn run_example(exe: &Path, args: &[&str], stdin: Option<&Path>) -> Vec<u8> {
    let mut cmd = Command::new(exe);
    cmd.args(args);
    if let Some(path) = stdin {
        cmd.stdin(std::fs::File::open(path).unwrap());
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Every way of running a user job over `input` (and its gzip copy, and
/// standard input) gives the plain loop's bytes, which are returned.
fn every_mode_matches_the_plain_loop(exe: &Path, input: &Path) -> Vec<u8> {
    let file = input.to_str().unwrap();
    let gz = input.with_extension("gz");
    let text = std::fs::read(input).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&text).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let gz = gz.to_str().unwrap();
    let plain = run_example(exe, &["--input", file, "--mode", "plain"], None);
    assert!(plain.ends_with(b"\n") && plain.len() > 100, "{plain:?}");
    let runs: &[(&[&str], bool)] = &[
        (&["--input", file, "--mode", "rayon"], false),
        (&["--input", file, "--mode", "plain-threads"], false),
        (
            &["--input", file, "--mode", "plain-threads", "--workers", "3"],
            false,
        ),
        (&["--input", file, "--mode", "serial"], false),
        (
            &["--input", file, "--mode", "serial", "--batch-size", "1"],
            false,
        ),
        (&["--input", file, "--mode", "pipeline"], false),
        (
            &[
                "--input",
                file,
                "--mode",
                "pipeline",
                "--replicas",
                "auto",
                "--batch-size",
                "700",
            ],
            false,
        ),
        (&["--input", file, "--mode", "multiprocess"], false),
        (
            &[
                "--input",
                file,
                "--mode",
                "multiprocess",
                "--workers",
                "3",
                "--batch-size",
                "999",
            ],
            false,
        ),
        (&["--input", gz, "--mode", "serial"], false),
        (
            &[
                "--input",
                gz,
                "--mode",
                "multiprocess",
                "--batch-size",
                "2000",
            ],
            false,
        ),
        (
            &["--input", gz, "--mode", "pipeline", "--replicas", "auto"],
            false,
        ),
        (
            &["--input", "-", "--mode", "pipeline", "--batch-size", "1500"],
            true,
        ),
        (&["--input", "-", "--mode", "multiprocess"], true),
    ];
    for (args, stdin) in runs {
        let got = run_example(exe, args, stdin.then_some(input));
        assert!(got == plain, "{args:?} differs from the plain loop");
    }
    plain
}

/// The example built by `cargo test`, and a directory with `records` of
/// its generated input in `name`.
fn user_job(
    example_name: &str,
    name: &str,
    records: u64,
) -> Option<(PathBuf, tempfile::TempDir, PathBuf)> {
    let exe = example(example_name)?;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join(name);
    let n = records.to_string();
    run_example(&exe, &["--generate", &n, input.to_str().unwrap()], None);
    Some((exe, dir, input))
}

#[test]
fn csv_etl_gives_the_plain_loops_bytes_in_every_mode() {
    let Some((exe, dir, input)) = user_job("csv_etl", "orders.csv", 25_000) else {
        return;
    };
    let out = every_mode_matches_the_plain_loop(&exe, &input);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["orders"], 25_000, "{v}");
    let rejected = v["rejected"].as_u64().unwrap();
    assert!((500..2000).contains(&rejected), "{v}");
    let by_month: i64 = v["by_country_month"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c.as_i64().unwrap())
        .sum();
    assert_eq!(v["revenue_cents"].as_i64(), Some(by_month), "{v}");
    assert_eq!(v["top_customers"].as_array().unwrap().len(), 10, "{v}");

    // A quoted field holding a line break: refused in every mode, naming
    // the record, with nothing on stdout.
    let bad_record = b"O1,\"two\nlines\",DE,2024-01-01,A-100,1,1.00,EUR,paid\n";
    bad_input_fails_in_every_mode(&exe, &dir, &input, "bad.csv", bad_record, "line break");
    let flag = Command::new(&exe)
        .args(["--input", input.to_str().unwrap(), "--workers", "0"])
        .output()
        .unwrap();
    assert_eq!(flag.status.code(), Some(2));
}

#[test]
fn jsonl_events_gives_the_plain_loops_bytes_in_every_mode() {
    let Some((exe, dir, input)) = user_job("jsonl_events", "events.jsonl", 25_000) else {
        return;
    };
    let out = every_mode_matches_the_plain_loop(&exe, &input);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["events"], 25_000, "{v}");
    let kinds: u64 = v["kinds"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(kinds + v["rejected"].as_u64().unwrap(), 25_000, "{v}");
    assert_eq!(v["top_pages"].as_array().unwrap().len(), 10, "{v}");

    // A line that is not an event fails the run in every mode, naming it.
    bad_input_fails_in_every_mode(
        &exe,
        &dir,
        &input,
        "bad.jsonl",
        b"{\"ts\": 5}\n",
        "not a record",
    );
}

/// Runs `byte_ranges` with `args`: its stdout, and how many chunks it
/// said it cut by bytes and by counting lines.
fn byte_ranges_run(exe: &Path, args: &[&str]) -> (Vec<u8>, u64, u64) {
    let out = Command::new(exe).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {err}");
    let line = err
        .lines()
        .find_map(|l| l.strip_prefix("byte_ranges: "))
        .unwrap_or_else(|| panic!("{args:?}: no chunk counts in {err}"));
    let words: Vec<&str> = line.split(' ').collect();
    let by_bytes = words[0].parse().unwrap();
    let counted = words[5].parse().unwrap();
    (out.stdout, by_bytes, counted)
}

#[test]
fn byte_ranges_cuts_a_users_source_by_bytes_and_renumbers_in_every_mode() {
    let Some((exe, dir, input)) = user_job("byte_ranges", "readings.txt", 60_000) else {
        return;
    };
    // A last line without its line feed.
    let mut text = std::fs::read(&input).unwrap();
    text.extend_from_slice(b"Oslo;12");
    std::fs::write(&input, &text).unwrap();
    let file = input.to_str().unwrap();
    let plain = run_example(&exe, &["--input", file, "--mode", "plain"], None);
    let v: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(v["records"], 60_001, "{v}");
    // The generator's one 59.8 °C reading, seven tenths into the file: far
    // past the first chunk, so a partial that was not renumbered would
    // name another line.
    assert_eq!(v["hottest"]["line"], 42_001, "{v}");
    let line = std::str::from_utf8(&text)
        .unwrap()
        .lines()
        .nth(42_000)
        .unwrap();
    assert!(line.ends_with(";598"), "{line}");

    // (args, cut by bytes?, counted?)
    let runs: &[(&[&str], bool, bool)] = &[
        (&["--mode", "serial"], false, false),
        (&["--mode", "serial", "--batch-size", "7"], false, false),
        // Pipeline mode over a plain file: reading lanes, with or without
        // `--replicas auto`.
        (&["--mode", "pipeline"], true, false),
        (&["--mode", "pipeline", "--replicas", "auto"], true, false),
        (
            &[
                "--mode",
                "pipeline",
                "--replicas",
                "auto",
                "--batch-size",
                "333",
            ],
            true,
            false,
        ),
        (&["--mode", "multiprocess"], true, false),
        (
            &[
                "--mode",
                "multiprocess",
                "--workers",
                "3",
                "--batch-size",
                "999",
            ],
            true,
            false,
        ),
        (&["--mode", "multiprocess", "--counted"], false, true),
    ];
    for (args, by_bytes, counted) in runs {
        let mut all = vec!["--input", file];
        all.extend_from_slice(args);
        let (got, b, c) = byte_ranges_run(&exe, &all);
        assert!(got == plain, "{all:?} differs from the plain loop");
        assert_eq!(
            (b > 1, c > 1),
            (*by_bytes, *counted),
            "{all:?}: {b} by bytes, {c} counted"
        );
    }

    // A line that is not a reading fails the run in every mode, naming it.
    bad_input_fails_in_every_mode(
        &exe,
        &dir,
        &input,
        "bad.txt",
        b"\nLima;warm\n",
        "not a whole number",
    );
}

/// `input` with `bad` appended, as `name`, fails in every mode with exit 1,
/// nothing on stdout, and a message naming the file and saying `why`.
fn bad_input_fails_in_every_mode(
    exe: &std::path::Path,
    dir: &tempfile::TempDir,
    input: &std::path::Path,
    name: &str,
    bad: &[u8],
    why: &str,
) {
    let path = dir.path().join(name);
    let mut text = std::fs::read(input).unwrap();
    text.extend_from_slice(bad);
    std::fs::write(&path, text).unwrap();
    for mode in ["serial", "pipeline", "multiprocess"] {
        let out = Command::new(exe)
            .args([
                "--input",
                path.to_str().unwrap(),
                "--mode",
                mode,
                "--replicas",
                "auto",
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{mode}: {err}");
        assert!(out.stdout.is_empty(), "{mode}");
        assert!(err.contains(why) && err.contains(name), "{mode}: {err}");
    }
}

/// Runs `geoip_country` with `args` and `--out DIR` in serial, pipeline,
/// pipeline with replicas and multiprocess mode: each run's summary.json
/// and report.html must be the serial run's bytes, which it returns.
fn geoip_every_mode(exe: &Path, dir: &Path, args: &[&str]) -> (Vec<u8>, String) {
    let modes: [&[&str]; 4] = [
        &["--mode", "serial"],
        &["--mode", "pipeline"],
        &["--mode", "pipeline", "--replicas", "auto"],
        &["--mode", "multiprocess", "--workers", "2"],
    ];
    let mut first: Option<(Vec<u8>, Vec<u8>)> = None;
    for (i, mode) in modes.iter().enumerate() {
        let out_dir = dir.join(format!("geo-{i}"));
        let out = Command::new(exe)
            .args(*mode)
            .args(args)
            .arg("--out")
            .arg(&out_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{mode:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if mode.contains(&"multiprocess") {
            // The workers, not the coordinator, ran the tagging stage.
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!err.contains("(chunks counted by workers: 0)"), "{err}");
            assert!(err.contains("(chunks counted by workers: "), "{err}");
        }
        let summary = std::fs::read(out_dir.join("summary.json")).unwrap();
        let report = std::fs::read(out_dir.join("report.html")).unwrap();
        match &first {
            None => first = Some((summary, report)),
            Some((s, r)) => {
                assert!(*s == summary, "{mode:?}: summary.json differs from serial");
                assert!(*r == report, "{mode:?}: report.html differs from serial");
            }
        }
    }
    let (summary, report) = first.unwrap();
    (summary, String::from_utf8(report).unwrap())
}

#[test]
fn geoip_country_counts_by_its_tags_identically_in_every_mode() {
    let Some(exe) = example("geoip_country") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Eight lines, one rejected; checked by hand below.
    let line = |client: &str, req: &str, status: u16, bytes: u64| {
        format!("{client} - - [10/Oct/2000:13:55:36 -0700] \"{req} HTTP/1.1\" {status} {bytes} \"-\" \"curl/8.0\"\n")
    };
    let log = [
        line("1.2.3.4", "GET /api/users", 200, 100),
        line("1.9.9.9", "GET /images/a.png", 404, 50),
        line("8.8.8.8", "GET /index.html", 200, 1000),
        "not a log line\n".to_string(),
        line("2001:db8::1", "GET /", 500, 0),
        line("9.1.1.1", "GET /x", 503, 20),
        line("8.8.4.4", "POST /api/login", 401, 30),
        line("5.5.5.5", "GET /", 200, 7),
    ]
    .concat();
    let input = dir.path().join("small.log");
    std::fs::write(&input, log).unwrap();
    let ranges = dir.path().join("ranges.csv");
    std::fs::write(
        &ranges,
        "# first,last,country\n1.0.0.0,1.255.255.255,AU\n\
         9.0.0.0,9.255.255.255,<script>alert(1)</script>\n8.0.0.0,8.255.255.255,US\n",
    )
    .unwrap();
    let (summary, report) = geoip_every_mode(
        &exe,
        dir.path(),
        &[
            "--input",
            input.to_str().unwrap(),
            "--ranges",
            ranges.to_str().unwrap(),
        ],
    );
    let s: serde_json::Value = serde_json::from_slice(&summary).unwrap();
    let row = |value: &str, hits: u64, bytes: u64, c4: u64, c5: u64| serde_json::json!({"4xx": c4, "5xx": c5, "bytes": bytes, "hits": hits, "value": value});
    // Country: AU 1.2.3.4 and 1.9.9.9 (a 404); US 8.8.8.8 and 8.8.4.4 (a
    // 401); `-` for the IPv6 client (a 500) and 5.5.5.5 (no range); the
    // hostile code for 9.1.1.1 (a 503). Ties by value: `-` < `AU` < `US`.
    assert_eq!(
        s["dimensions"]["country"],
        serde_json::json!([
            row("-", 2, 7, 0, 1),
            row("AU", 2, 150, 1, 0),
            row("US", 2, 1030, 1, 0),
            row("<script>alert(1)</script>", 1, 20, 0, 1),
        ])
    );
    // Team: /api/… platform, /images/… media, the rest web.
    assert_eq!(
        s["dimensions"]["team"],
        serde_json::json!([
            row("web", 4, 1027, 0, 2),
            row("platform", 2, 130, 1, 0),
            row("media", 1, 50, 1, 0),
        ])
    );
    assert_eq!(
        (s["parsed"].as_u64(), s["rejected"].as_u64()),
        (Some(7), Some(1))
    );
    // The hostile code is text in the report, never markup.
    assert!(report.contains("<section id=\"dimensions\""));
    assert!(report.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        !report.contains("<script>alert"),
        "a plugin value became markup"
    );

    // `--top 2` keeps the two most frequent values.
    let top_dir = dir.path().join("top");
    let out = Command::new(&exe)
        .args(["--top", "2", "--ranges", ranges.to_str().unwrap()])
        .args([
            "--input",
            input.to_str().unwrap(),
            "--out",
            top_dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t: serde_json::Value =
        serde_json::from_slice(&std::fs::read(top_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        t["dimensions"]["country"],
        serde_json::json!([row("-", 2, 7, 0, 1), row("AU", 2, 150, 1, 0)])
    );

    // A bad ranges file is refused, naming the file and the line.
    std::fs::write(&ranges, "1.0.0.0,1.255.255.255,AU\n2.0.0.0,nope,FR\n").unwrap();
    let out = Command::new(&exe)
        .args(["--ranges", ranges.to_str().unwrap(), "--out"])
        .arg(dir.path().join("bad"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("ranges.csv line 2") && err.contains("\"nope\""),
        "{err}"
    );
    assert!(!dir.path().join("bad").exists());
}

#[test]
fn geoip_country_on_many_chunks_counts_every_kept_record_once() {
    let Some(exe) = example("geoip_country") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = generate(dir.path(), 30_000, 7);
    let (summary, _) = geoip_every_mode(&exe, dir.path(), &["--input", input.to_str().unwrap()]);
    let s: serde_json::Value = serde_json::from_slice(&summary).unwrap();
    let kept = s["parsed"].as_u64().unwrap() - s["dropped"].as_u64().unwrap();
    // Every kept record has a country and a team (`-` when no range holds
    // its client), so each dimension's hits add up to them.
    for dim in ["country", "team"] {
        let rows = s["dimensions"][dim].as_array().unwrap();
        let hits: u64 = rows.iter().map(|r| r["hits"].as_u64().unwrap()).sum();
        assert_eq!(hits, kept, "{dim}: {rows:?}");
    }
    // Without the plugin the summary has no `dimensions` key.
    let plain = serial_summary(dir.path(), &input);
    let p: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert!(p.get("dimensions").is_none());
}
