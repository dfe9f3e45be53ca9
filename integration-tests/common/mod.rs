//! Helpers shared by the integration tests: running the real binary with a
//! readable failure message, and a small independent reference
//! implementation of docs/logs-workload.md's `logs` summary (regex based, written
//! plainly, to check the fast parser against).
#![allow(dead_code)]

pub mod live;
pub mod process;
pub mod reference;

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_parpipe")
}

/// Runs parpipe with `args`, feeding `stdin`, and returns its output.
pub fn run_with_stdin(args: &[&str], stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut child = Command::new(bin())
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start parpipe");
    if let Some(data) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    child.wait_with_output().expect("parpipe did not finish")
}

/// Describes a finished command for assertion messages.
pub fn describe(args: &[&str], out: &Output) -> String {
    format!(
        "command: parpipe {}\nstatus: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs parpipe and asserts it exits with `code`.
pub fn expect_code(args: &[&str], stdin: Option<&[u8]>, code: i32) -> Output {
    let out = run_with_stdin(args, stdin);
    assert_eq!(out.status.code(), Some(code), "{}", describe(args, &out));
    out
}

/// Runs parpipe and asserts success.
pub fn expect_ok(args: &[&str]) -> Output {
    expect_code(args, None, 0)
}

/// Reads a JSON file.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Reads a `summary.json`. An integer too large for u64 (a `bytes` sum)
/// becomes its decimal text, as the reference implementation writes it.
pub fn read_summary(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut value: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    if value["bytes"].is_f64() {
        let start = text.find("\"bytes\":").expect("bytes key") + 8;
        let digits: String = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        value["bytes"] = serde_json::Value::String(digits);
    }
    value
}

/// Path as &str (test paths are UTF-8).
pub fn s(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}
