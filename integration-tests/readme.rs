//! The commands the documentation shows, run for real: every line of every
//! ```` ```sh ````, ```` ```bash ````, ```` ```shell ```` and ```` ```console ````
//! block (in a console block, the lines starting with `$ `) of README.md,
//! examples/README.md and docs/*.md, so that a renamed flag, a removed
//! subcommand or a wrong example fails `cargo test`.
//!
//! How a line runs:
//! - Each block runs line by line, with `bash -c` (`set -eo pipefail`), in a
//!   fresh empty temporary directory (so the binary must work from any
//!   directory) that holds the files the documentation's examples name:
//!   `access.log` (2000 generated lines), `access.log.1` (1000 lines) and
//!   `access.log.2.gz` (1000 lines, gzip). `parpipe` on the `PATH` is the
//!   binary this `cargo test` built. Every line must exit with 0, or with
//!   `N` when its comment says `exit code N` (a failure shown on purpose).
//! - `cargo run [--release] -- ARGS` runs as `parpipe ARGS`, and a path
//!   ending in `/parpipe` (`target/release/parpipe`) as `parpipe`: the same
//!   source, only the profile differs. `cargo run [--release] --example
//!   NAME -- ARGS` runs the example binary that `cargo test` builds
//!   (`target/debug/examples/NAME`); when it was not built (`cargo test
//!   --test readme` alone does not build examples) the line is skipped, and
//!   the skip is printed.
//! - Sizes shrink where a flag allows: `--records` at most 2000 (8 tasks
//!   for `--workload matrix`), `parpipe run` without input or `--records`
//!   gets `--records 2000`, `parpipe bench` gets `--sizes 2000 --repeat 1`;
//!   a run with `--dashboard` and no `--linger` gets `--linger 0`.
//! - A `parpipe run … --listen ADDR` followed in its block by `parpipe worker
//!   --connect …` is the two-machine example: the coordinator listens on
//!   127.0.0.1:0, the worker connects to the address it announces, both must
//!   exit with 0. `--keep-alive` is dropped from such a worker (it would
//!   wait for the next job forever). A worker line with no coordinator
//!   before it in its block is skipped.
//! - [`SKIPS`] lists, with a reason each, the lines that are not run: the
//!   test suite itself, builds and installs, measurements.
//!
//! The test prints how many commands it ran and skipped, and fails when
//! README.md shows fewer than [`MIN_README_COMMANDS`] commands or lacks the
//! exact line `cargo test`, which CI runs.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Lines that are not run, by a substring, with the reason.
const SKIPS: &[(&str, &str)] = &[
    (
        "cargo test",
        "the test suite itself: this test runs inside it",
    ),
    (
        "cargo build",
        "a build: the test runs the binary `cargo test` built",
    ),
    (
        "cargo install",
        "installs into ~/.cargo/bin: the test runs the binary `cargo test` built, from an empty directory",
    ),
    ("cargo bench", "criterion benches take minutes"),
    (
        "--follow",
        "follows a growing file until SIGINT: integration-tests/follow.rs runs it with a writer",
    ),
    (
        "docker build",
        "builds a container image: no container engine here (integration-tests/deploy.rs parses the Dockerfile)",
    ),
    (
        "kubectl ",
        "needs a Kubernetes cluster (integration-tests/deploy.rs parses the manifests)",
    ),
    (
        "promtool",
        "needs Debian's prometheus package (integration-tests/monitoring.rs runs promtool where it is installed)",
    ),
    (
        "docs/side-by-side.sh",
        "a measurement: 4 x N release-build runs of a 1 M-line file",
    ),
    (
        "docs/hostile/",
        "a measurement: a 40 s run under attack, or thousands of worker processes",
    ),
];

/// README.md must show at least this many commands (a parser that finds
/// nothing must not pass).
const MIN_README_COMMANDS: usize = 8;

/// Largest `--records` for `logs` (lines) and `matrix` (tasks).
const MAX_LINES: u64 = 2000;
const MAX_TASKS: u64 = 8;

/// Longest a single documented command may take in the test.
const TIMEOUT: Duration = Duration::from_secs(180);

/// A shell block: its file and its logical lines with their line numbers.
#[derive(Debug, Clone, PartialEq)]
struct Block {
    file: String,
    lines: Vec<(usize, String)>,
}

/// Where the Markdown scan is.
enum Fence {
    Outside,
    /// Inside a shell block; `console`: only `$ ` lines are commands.
    Shell {
        console: bool,
        lines: Vec<(usize, String)>,
        /// A line ending in `\`, waiting for its continuation.
        open: Option<(usize, String)>,
    },
    /// Inside any other fenced block.
    Other,
}

/// The shell blocks of a Markdown text, as logical lines: continuations
/// joined, blank and comment-only lines dropped, console output left out.
fn shell_blocks(file: &str, text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut state = Fence::Outside;
    for (i, raw) in text.lines().enumerate() {
        let number = i + 1;
        let trimmed = raw.trim();
        let fence = trimmed.starts_with("```") || trimmed.starts_with("~~~");
        state = match state {
            Fence::Outside if fence => match trimmed[3..].split_whitespace().next().unwrap_or("") {
                "sh" | "bash" | "shell" => Fence::Shell {
                    console: false,
                    lines: Vec::new(),
                    open: None,
                },
                "console" => Fence::Shell {
                    console: true,
                    lines: Vec::new(),
                    open: None,
                },
                _ => Fence::Other,
            },
            Fence::Outside => Fence::Outside,
            Fence::Other if fence => Fence::Outside,
            Fence::Other => Fence::Other,
            Fence::Shell {
                mut lines, open, ..
            } if fence => {
                lines.extend(open);
                if !lines.is_empty() {
                    blocks.push(Block {
                        file: file.to_string(),
                        lines,
                    });
                }
                Fence::Outside
            }
            Fence::Shell {
                console,
                mut lines,
                open,
            } => {
                let (start, text) = match open {
                    Some((start, mut text)) => {
                        text.push(' ');
                        text.push_str(trimmed);
                        (start, Some(text))
                    }
                    None if console => (number, trimmed.strip_prefix("$ ").map(str::to_string)),
                    None if trimmed.is_empty() || trimmed.starts_with('#') => (number, None),
                    None => (number, Some(trimmed.to_string())),
                };
                let mut open = None;
                if let Some(mut text) = text {
                    if text.ends_with('\\') {
                        text.pop();
                        open = Some((start, text.trim_end().to_string()));
                    } else {
                        lines.push((start, text));
                    }
                }
                Fence::Shell {
                    console,
                    lines,
                    open,
                }
            }
        };
    }
    blocks
}

/// One shell word or operator of a line, with its byte span.
#[derive(Debug, Clone, PartialEq)]
struct Tok {
    start: usize,
    end: usize,
    /// The word with quotes removed (the operator itself for an operator).
    value: String,
    op: bool,
}

/// Splits a line into words and operators (`|`, `||`, `&`, `&&`, `;`, `<`,
/// `>`, `>>`, `>&`), honouring quotes and backslashes; an unquoted `#` at
/// the start of a word begins a comment.
fn tokens(line: &str) -> Vec<Tok> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b' ' || c == b'\t' {
            i += 1;
            continue;
        }
        if c == b'#' {
            break;
        }
        if b"|&;<>".contains(&c) {
            let two = b.get(i + 1).copied();
            let len = match (c, two) {
                (b'|', Some(b'|'))
                | (b'&', Some(b'&'))
                | (b'>', Some(b'>'))
                | (b'>', Some(b'&')) => 2,
                _ => 1,
            };
            out.push(Tok {
                start: i,
                end: i + len,
                value: line[i..i + len].to_string(),
                op: true,
            });
            i += len;
            continue;
        }
        let start = i;
        let mut value = String::new();
        while i < b.len() && !b" \t|&;<>".contains(&b[i]) {
            match b[i] {
                b'\'' => {
                    let close = line[i + 1..].find('\'').map_or(b.len(), |k| i + 1 + k);
                    value.push_str(&line[i + 1..close]);
                    i = (close + 1).min(b.len());
                }
                b'"' => {
                    i += 1;
                    while i < b.len() && b[i] != b'"' {
                        if b[i] == b'\\' && i + 1 < b.len() {
                            i += 1;
                        }
                        let ch = line[i..].chars().next().unwrap_or(' ');
                        value.push(ch);
                        i += ch.len_utf8();
                    }
                    i = (i + 1).min(b.len());
                }
                b'\\' if i + 1 < b.len() => {
                    let ch = line[i + 1..].chars().next().unwrap_or(' ');
                    value.push(ch);
                    i += 1 + ch.len_utf8();
                }
                _ => {
                    let ch = line[i..].chars().next().unwrap_or(' ');
                    value.push(ch);
                    i += ch.len_utf8();
                }
            }
        }
        out.push(Tok {
            start,
            end: i,
            value,
            op: false,
        });
    }
    out
}

/// The exit code a documented line promises: 0, unless its comment says
/// `exit code N` (a command shown failing on purpose).
fn expected_code(line: &str) -> i32 {
    let comment = tokens(line).last().map_or(0, |t| t.end);
    let re = regex::Regex::new(r"#.*\bexit code (\d+)").expect("valid regex");
    re.captures(&line[comment..])
        .and_then(|c| c[1].parse().ok())
        .unwrap_or(0)
}

/// What a documented line turned out to be, once rewritten for the test.
#[derive(Debug, Clone, PartialEq)]
struct Prepared {
    /// The line to give `bash -c`.
    line: String,
    /// `parpipe` / `cargo run` commands in it.
    commands: usize,
    /// A `parpipe run … --listen ADDR` coordinator.
    listens: bool,
    /// A `parpipe worker` (to pair with a coordinator).
    worker: bool,
    /// Why the line cannot run here, if so.
    skip: Option<String>,
}

/// Quotes a path for bash.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The value of `--flag V` or `--flag=V` among `args`: (token index, value,
/// whether it is the `=` form).
fn flag(args: &[Tok], name: &str) -> Option<(usize, String, bool)> {
    let eq = format!("{name}=");
    for (k, t) in args.iter().enumerate() {
        if t.value == name {
            return args.get(k + 1).map(|v| (k + 1, v.value.clone(), false));
        }
        if let Some(v) = t.value.strip_prefix(&eq) {
            return Some((k, v.to_string(), true));
        }
    }
    None
}

/// Rewrites a documented line for the test: the binary's path for
/// `parpipe` and `cargo run`, small sizes, the loopback for `--listen`.
fn prepare(line: &str, bin: &str, examples: &Path) -> Prepared {
    let mut prepared = Prepared {
        line: line.to_string(),
        commands: 0,
        listens: false,
        worker: false,
        skip: None,
    };
    if let Some((_, why)) = SKIPS.iter().find(|(pat, _)| line.contains(pat)) {
        prepared.skip = Some((*why).to_string());
        return prepared;
    }
    let toks = tokens(line);
    // (start, end, replacement), applied from the end.
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for seg in toks.split(|t| t.op) {
        let mut w = seg
            .iter()
            .skip_while(|t| {
                let v = &t.value;
                v.find('=').is_some_and(|eq| {
                    eq > 0
                        && v[..eq]
                            .bytes()
                            .all(|c| c.is_ascii_alphanumeric() || c == b'_')
                })
            })
            .cloned()
            .collect::<Vec<Tok>>();
        let Some(first) = w.first().cloned() else {
            continue;
        };
        let args: Vec<Tok>;
        if first.value == "parpipe" || first.value.ends_with("/parpipe") {
            edits.push((first.start, first.end, quote(bin)));
            args = w.split_off(1);
        } else if first.value == "cargo" && w.get(1).is_some_and(|t| t.value == "run") {
            let dash = w.iter().position(|t| t.value == "--");
            let opts = &w[2..dash.unwrap_or(w.len())];
            let example = flag(opts, "--example").map(|(_, v, _)| v);
            let program = match &example {
                Some(name) => {
                    let path = examples.join(name);
                    if !path.exists() {
                        prepared.skip = Some(format!(
                            "example '{name}' is not built ({} missing: `cargo test --test readme` alone builds no examples)",
                            path.display()
                        ));
                        return prepared;
                    }
                    path.display().to_string()
                }
                None => bin.to_string(),
            };
            let last = dash.map_or(w.len() - 1, |d| d);
            edits.push((first.start, w[last].end, quote(&program)));
            args = match dash {
                Some(d) => w.split_off(d + 1),
                None => Vec::new(),
            };
            if example.is_some() {
                prepared.commands += 1;
                continue;
            }
        } else {
            continue;
        }
        prepared.commands += 1;
        // Appended flags go at the end of this command, before any `|` or `>`.
        let end = seg.last().map_or(first.end, |t| t.end);
        let mut append = String::new();
        let sub = args
            .iter()
            .find(|t| !t.value.starts_with('-'))
            .map(|t| t.value.clone());
        let cap = |name: &str, max: u64, edits: &mut Vec<(usize, usize, String)>| -> bool {
            match flag(&args, name) {
                Some((k, v, eq)) => {
                    if v.parse::<u64>().is_ok_and(|n| n > max) {
                        let new = if eq {
                            format!("{name}={max}")
                        } else {
                            max.to_string()
                        };
                        edits.push((args[k].start, args[k].end, new));
                    }
                    true
                }
                None => false,
            }
        };
        match sub.as_deref() {
            Some("run") => {
                let matrix = flag(&args, "--workload").is_some_and(|(_, v, _)| v == "matrix");
                let max = if matrix { MAX_TASKS } else { MAX_LINES };
                if !cap("--records", max, &mut edits) && flag(&args, "--input").is_none() {
                    append.push_str(&format!(" --records {max}"));
                }
                // The dashboard would stay up 16 s after the run for a
                // last scrape; the test needs only the run's exit.
                let given = |name: &str| {
                    let eq = format!("{name}=");
                    args.iter()
                        .any(|t| t.value == name || t.value.starts_with(&eq))
                };
                if given("--dashboard") && !given("--linger") {
                    append.push_str(" --linger 0");
                }
                if let Some((k, _, eq)) = flag(&args, "--listen") {
                    prepared.listens = true;
                    let new = if eq {
                        "--listen=127.0.0.1:0".to_string()
                    } else {
                        "127.0.0.1:0".to_string()
                    };
                    edits.push((args[k].start, args[k].end, new));
                }
            }
            Some("generate") => {
                cap("--records", MAX_LINES, &mut edits);
            }
            Some("bench") => {
                for (name, small) in [("--sizes", "2000"), ("--repeat", "1")] {
                    match flag(&args, name) {
                        Some((k, _, eq)) => {
                            let new = if eq {
                                format!("{name}={small}")
                            } else {
                                small.to_string()
                            };
                            edits.push((args[k].start, args[k].end, new));
                        }
                        None => append.push_str(&format!(" {name} {small}")),
                    }
                }
            }
            Some("worker") => {
                prepared.worker = true;
                if let Some(t) = args.iter().find(|t| t.value == "--keep-alive") {
                    edits.push((t.start, t.end, String::new()));
                }
            }
            _ => {}
        }
        if !append.is_empty() {
            edits.push((end, end, append));
        }
    }
    edits.sort_by_key(|e| std::cmp::Reverse((e.0, e.1)));
    let mut text = line.to_string();
    for (start, end, new) in edits {
        text.replace_range(start..end, &new);
    }
    prepared.line = text;
    prepared
}

/// Kills a command's whole process group when dropped (a failed assertion
/// must not leave a coordinator or worker behind).
struct Group(i32);

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: kill(2) with a negative pid signals that process group;
        // it has no memory effects.
        unsafe {
            libc::kill(-self.0, libc::SIGKILL);
        }
    }
}

/// Starts `line` under bash in `dir`, in its own process group.
fn spawn(line: &str, dir: &Path, path_env: &str) -> (Child, Group) {
    let child = Command::new("bash")
        .arg("-c")
        .arg(format!("set -eo pipefail\n{line}"))
        .current_dir(dir)
        .env("PATH", path_env)
        .env_remove("PARPIPE_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("cannot start bash");
    let group = Group(child.id() as i32);
    (child, group)
}

/// Waits for `child` (at most [`TIMEOUT`]); returns its exit code and its
/// output (with the lines `extra_stderr` already took from its stderr).
fn finish(mut child: Child, extra_stderr: Option<mpsc::Receiver<String>>) -> (Option<i32>, String) {
    let (tx, rx) = mpsc::channel();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    std::thread::spawn(move || {
        // Both pipes drain at once, so a full one never blocks the child.
        let err_reader = std::thread::spawn(move || {
            let mut err = String::new();
            if let Some(s) = stderr.as_mut() {
                let _ = s.read_to_string(&mut err);
            }
            err
        });
        let mut out = String::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_string(&mut out);
        }
        let err = err_reader.join().unwrap_or_default();
        let status = child.wait().ok().and_then(|s| s.code());
        let _ = tx.send((status, out, err));
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok((status, out, mut err)) => {
            if let Some(more) = extra_stderr {
                err = more.try_iter().collect::<Vec<_>>().join("\n") + &err;
            }
            (
                status,
                format!("--- stdout ---\n{out}\n--- stderr ---\n{err}"),
            )
        }
        Err(_) => (None, format!("timed out after {TIMEOUT:?}")),
    }
}

/// The files the documented commands use, in a fresh directory.
fn fixtures(dir: &Path, bin: &str) {
    for (name, records, seed) in [("access.log", "2000", "42"), ("access.log.1", "1000", "1")] {
        let out = Command::new(bin)
            .args([
                "generate",
                "--records",
                records,
                "--seed",
                seed,
                "--output",
                name,
            ])
            .current_dir(dir)
            .output()
            .expect("cannot run parpipe generate");
        assert!(out.status.success(), "parpipe generate failed: {out:?}");
    }
    let out = Command::new(bin)
        .args(["generate", "--records", "1000", "--seed", "2"])
        .output()
        .expect("cannot run parpipe generate");
    assert!(out.status.success(), "parpipe generate failed: {out:?}");
    let file = std::fs::File::create(dir.join("access.log.2.gz")).expect("create gz");
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &out.stdout).expect("write gz");
    gz.finish().expect("finish gz");
}

/// What the run of the documentation found.
#[derive(Default)]
struct Tally {
    commands: usize,
    other_lines: usize,
    skipped: Vec<String>,
    per_file: Vec<(String, usize)>,
}

/// What to do with the lines of a block, in order.
enum Step {
    One(usize),
    /// A coordinator and the worker that joins it.
    Pair(usize, usize),
    Skip(usize, String),
}

/// Pairs each `--listen` coordinator with the first worker after it.
fn steps(prepared: &[Prepared]) -> Vec<Step> {
    let mut taken = vec![false; prepared.len()];
    let mut out = Vec::new();
    for (k, p) in prepared.iter().enumerate() {
        if taken[k] {
            continue;
        }
        if let Some(why) = &p.skip {
            out.push(Step::Skip(k, why.clone()));
        } else if p.worker {
            out.push(Step::Skip(
                k,
                "a worker needs a coordinator before it in its block".into(),
            ));
        } else if let Some(w) = (k + 1..prepared.len())
            .find(|&w| p.listens && !taken[w] && prepared[w].worker && prepared[w].skip.is_none())
        {
            taken[w] = true;
            out.push(Step::Pair(k, w));
        } else {
            out.push(Step::One(k));
        }
    }
    out
}

/// Runs one block's lines in order, in a fresh directory.
fn run_block(block: &Block, bin: &str, examples: &Path, path_env: &str, tally: &mut Tally) {
    let dir = tempfile::tempdir().expect("temp dir");
    fixtures(dir.path(), bin);
    let prepared: Vec<Prepared> = block
        .lines
        .iter()
        .map(|(_, l)| prepare(l, bin, examples))
        .collect();
    let at = |k: usize| format!("{}:{} `{}`", block.file, block.lines[k].0, block.lines[k].1);
    let mut ran = 0;
    for step in steps(&prepared) {
        match step {
            Step::Skip(k, why) => tally.skipped.push(format!("{}: {why}", at(k))),
            Step::One(k) => {
                let p = &prepared[k];
                let (child, _group) = spawn(&p.line, dir.path(), path_env);
                let (code, output) = finish(child, None);
                let want = expected_code(&block.lines[k].1);
                assert_eq!(
                    code,
                    Some(want),
                    "{} exited with {code:?}, expected {want}\nran: {}\n{output}",
                    at(k),
                    p.line
                );
                ran += p.commands;
                if p.commands == 0 {
                    tally.other_lines += 1;
                }
            }
            Step::Pair(c, w) => {
                run_pair(
                    &prepared[c],
                    &prepared[w],
                    &at(c),
                    &at(w),
                    dir.path(),
                    path_env,
                );
                ran += prepared[c].commands + prepared[w].commands;
            }
        }
    }
    tally.commands += ran;
    match tally.per_file.iter_mut().find(|(f, _)| *f == block.file) {
        Some((_, n)) => *n += ran,
        None => tally.per_file.push((block.file.clone(), ran)),
    }
}

/// The two-machine example on one machine: the coordinator listens on the
/// loopback, the worker connects to the address it announces.
fn run_pair(
    coord: &Prepared,
    worker: &Prepared,
    at_c: &str,
    at_w: &str,
    dir: &Path,
    path_env: &str,
) {
    let (mut child, _cgroup) = spawn(&coord.line, dir, path_env);
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let addr = loop {
        match rx.recv_timeout(TIMEOUT) {
            Ok(line) => {
                if let Some(a) = line.strip_prefix("parpipe: listening on ") {
                    break a.trim().to_string();
                }
                seen.push(line);
            }
            Err(_) => panic!(
                "{at_c}: no 'parpipe: listening on' line\nran: {}\nstderr so far:\n{}",
                coord.line,
                seen.join("\n")
            ),
        }
    };
    let toks = tokens(&worker.line);
    let connect = toks
        .iter()
        .position(|t| t.value == "--connect")
        .and_then(|i| toks.get(i + 1))
        .unwrap_or_else(|| panic!("{at_w}: a worker line without --connect ADDR"));
    let mut line = worker.line.clone();
    line.replace_range(connect.start..connect.end, &addr);
    let (wchild, _wgroup) = spawn(&line, dir, path_env);
    let (wcode, woutput) = finish(wchild, None);
    assert_eq!(wcode, Some(0), "{at_w} failed\nran: {line}\n{woutput}");
    let (code, output) = finish(child, Some(rx));
    assert_eq!(
        code,
        Some(0),
        "{at_c} failed\nran: {}\n{output}",
        coord.line
    );
}

/// The documentation files, as paths relative to the package.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![
        PathBuf::from("README.md"),
        PathBuf::from("examples/README.md"),
        PathBuf::from("docs/hostile/README.md"),
    ];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "md"))
                .filter_map(|p| p.strip_prefix(root).ok().map(Path::to_path_buf))
                .collect()
        })
        .unwrap_or_default();
    docs.sort();
    files.extend(docs);
    files
}

#[test]
fn documented_commands_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = env!("CARGO_BIN_EXE_parpipe");
    // target/debug/deps/readme-HASH → target/debug/examples
    let examples = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.join("examples")))
        .unwrap_or_default();
    let bin_dir = tempfile::tempdir().expect("temp dir");
    std::os::unix::fs::symlink(bin, bin_dir.path().join("parpipe")).expect("symlink parpipe");
    let path_env = format!(
        "{}:{}",
        bin_dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let readme = std::fs::read_to_string(root.join("README.md")).expect("read README.md");
    let readme_blocks = shell_blocks("README.md", &readme);
    assert!(
        readme_blocks
            .iter()
            .flat_map(|b| &b.lines)
            .any(|(_, l)| l == "cargo test"),
        "README.md must show the test command as exactly `cargo test` (CI runs it)"
    );
    let mut tally = Tally::default();
    for file in documents(root) {
        let Ok(text) = std::fs::read_to_string(root.join(&file)) else {
            continue;
        };
        let name = file.display().to_string();
        for block in shell_blocks(&name, &text) {
            run_block(&block, bin, &examples, &path_env, &mut tally);
        }
    }
    let mut report = format!(
        "documented commands: {} run (parpipe or cargo run), {} other lines run, {} skipped\n",
        tally.commands,
        tally.other_lines,
        tally.skipped.len()
    );
    for (file, n) in &tally.per_file {
        report.push_str(&format!("  {file}: commands run: {n}\n"));
    }
    for s in &tally.skipped {
        report.push_str(&format!("  skipped {s}\n"));
    }
    // Straight to stderr, past the test harness's capture, so `cargo test` shows it.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), report.as_bytes());
    let in_readme = tally
        .per_file
        .iter()
        .find(|(f, _)| f == "README.md")
        .map_or(0, |(_, n)| *n);
    assert!(
        in_readme >= MIN_README_COMMANDS,
        "README.md: only {in_readme} commands ran, expected at least {MIN_README_COMMANDS}\n{report}"
    );
}

#[test]
fn blocks_lines_and_rewrites() {
    let md = "text\n```sh\n# comment\nparpipe run --records 1000000 \\\n  --out x   # trailing\n\ncargo test\n```\n\
              ```text\nparpipe not-a-command\n```\n```console\n$ parpipe generate --records 5\noutput line\n```\n";
    let blocks = shell_blocks("t.md", md);
    assert_eq!(blocks.len(), 2);
    assert_eq!(
        blocks[0].lines,
        vec![
            (
                4,
                "parpipe run --records 1000000 --out x   # trailing".to_string()
            ),
            (7, "cargo test".to_string())
        ]
    );
    assert_eq!(
        blocks[1].lines,
        vec![(13, "parpipe generate --records 5".to_string())]
    );

    let ex = Path::new("/nonexistent");
    let p = prepare(
        "parpipe run --records 1000000 --out x # c",
        "/b/parpipe",
        ex,
    );
    assert_eq!(p.line, "'/b/parpipe' run --records 2000 --out x # c");
    assert_eq!(p.commands, 1);
    let p = prepare("cargo run --release -- run", "/b/p", ex);
    assert_eq!(p.line, "'/b/p' run --records 2000");
    let p = prepare(
        "cargo run --release -- run --workload matrix --records=200",
        "/b/p",
        ex,
    );
    assert_eq!(p.line, "'/b/p' run --workload matrix --records=8");
    let p = prepare("gzip -dc a.gz | parpipe run --input - --out y", "/b/p", ex);
    assert_eq!(p.line, "gzip -dc a.gz | '/b/p' run --input - --out y");
    let p = prepare(
        "target/release/parpipe generate --records 1000000 --output g.log",
        "/b/p",
        ex,
    );
    assert_eq!(p.line, "'/b/p' generate --records 2000 --output g.log");
    let p = prepare(
        "parpipe bench --workload all --sizes 1,2 > t.txt",
        "/b/p",
        ex,
    );
    assert_eq!(
        p.line,
        "'/b/p' bench --workload all --sizes 2000 --repeat 1 > t.txt"
    );
    let p = prepare(
        "parpipe run --mode multiprocess --listen 0.0.0.0:7070 --token-file t --input a",
        "/b/p",
        ex,
    );
    assert!(p.listens);
    assert_eq!(
        p.line,
        "'/b/p' run --mode multiprocess --listen 127.0.0.1:0 --token-file t --input a"
    );
    let p = prepare(
        "parpipe worker --connect h:1 --keep-alive --token-file t",
        "/b/p",
        ex,
    );
    assert!(p.worker);
    assert_eq!(p.line, "'/b/p' worker --connect h:1  --token-file t");
    assert!(prepare("cargo test", "/b/p", ex).skip.is_some());
    assert!(prepare("cargo run --example nope -- 1", "/b/p", ex)
        .skip
        .is_some());
    let p = prepare(
        "head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \\n' > token",
        "/b/p",
        ex,
    );
    assert_eq!((p.commands, p.skip.is_none()), (0, true));
    assert_eq!(
        p.line,
        "head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \\n' > token"
    );
    let fake = tempfile::tempdir().expect("temp dir");
    std::fs::write(fake.path().join("demo"), b"").expect("write");
    let p = prepare(
        "cargo run --release --example demo -- 200000 3",
        "/b/p",
        fake.path(),
    );
    let demo = fake.path().join("demo");
    assert_eq!(
        p.line,
        format!("{} 200000 3", quote(&demo.display().to_string()))
    );
    assert_eq!((p.commands, p.skip.is_none()), (1, true));
    assert_eq!(
        expected_code("parpipe run --input a # exit code 1: a bad line"),
        1
    );
    assert_eq!(expected_code("parpipe run --input '#exit code 1'"), 0);
    assert_eq!(expected_code("parpipe run --input a  # fine"), 0);
}
