//! The command line the comparison examples (`csv_etl`, `jsonl_events`,
//! `byte_ranges`) share: `--generate N FILE`, or `--input FILE --mode M`
//! with parpipe's engine flags. Parsed by hand so each example needs no
//! argument-parsing crate; every number is range-checked.
// Each example uses the part it needs (only byte_ranges has a switch).
#![allow(dead_code)]

use parpipe::{Mode, Replicas, RunConfig, RunReport};

/// What the command line asks for.
pub enum Command {
    /// `--generate N FILE`: write a sample input.
    Generate { records: u64, path: String },
    /// Run the job on `--input`.
    Run(Box<Args>),
}

/// The flags of a run.
pub struct Args {
    /// `--input FILE`.
    pub input: String,
    /// `--mode`: `plain`, `rayon` (the example's own loops) or a parpipe
    /// mode; `serial` by default.
    pub mode: String,
    /// `--workers`, `--batch-size` and `--replicas` (`none`, `auto` or
    /// `STAGE=N`), as given.
    pub config: RunConfig,
    /// `--report FILE`: where a parpipe mode writes its run report.
    pub report: Option<String>,
    /// The example's own switches (flags without a value) that were given.
    pub switches: Vec<String>,
}

/// Parses the arguments after the program's name; `switches` are the
/// example's own flags that take no value. An error is the usage message's
/// first line.
pub fn parse(args: Vec<String>, switches: &[&str]) -> Result<Command, String> {
    if args.first().map(String::as_str) == Some("--generate") {
        return match (args.get(1).map(|n| n.parse::<u64>()), args.get(2)) {
            (Some(Ok(records)), Some(path)) => Ok(Command::Generate {
                records,
                path: path.clone(),
            }),
            _ => Err("--generate needs a count and a file".into()),
        };
    }
    let (mut input, mut mode, mut report) = (None, "serial".to_string(), None);
    let mut config = RunConfig::default();
    let (given, args): (Vec<String>, Vec<String>) = args
        .into_iter()
        .partition(|a| switches.contains(&a.as_str()));
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--input" => input = Some(value),
            "--report" => report = Some(value),
            "--mode" => mode = value,
            "--workers" => match value.parse() {
                Ok(n) if (1..=256).contains(&n) => config.workers = Some(n),
                _ => return Err("--workers must be between 1 and 256".into()),
            },
            "--batch-size" => match value.parse() {
                Ok(n) if (1..=10_000_000).contains(&n) => {
                    // As `parpipe run --batch-size`: a chunk is then a batch.
                    config.batch_size = n;
                    config.grow_chunks = false;
                }
                _ => return Err("--batch-size must be between 1 and 10000000".into()),
            },
            "--replicas" => {
                config.replicas = match value.as_str() {
                    "none" => Replicas::None,
                    // `auto`, or STAGE=N: the stage actors, whatever the input.
                    other => Replicas::parse_one(other)
                        .map_err(|e| format!("--replicas must be none, auto or STAGE=N: {e}"))?,
                }
            }
            other => return Err(format!("unknown flag '{other}'")),
        }
    }
    let input = input.ok_or("--input is required")?;
    Ok(Command::Run(Box::new(Args {
        input,
        mode,
        config,
        report,
        switches: given,
    })))
}

impl Args {
    /// For a parpipe mode (`serial`, `pipeline`, `multiprocess`): sets it
    /// in `config` (multiprocess with 2 workers unless `--workers` says)
    /// and returns true; false for any other name.
    pub fn parpipe_mode(&mut self) -> bool {
        self.config.mode = match self.mode.as_str() {
            "serial" => Mode::Serial,
            "pipeline" => Mode::Pipelined,
            "multiprocess" => Mode::Multiprocess,
            _ => return false,
        };
        if self.config.mode == Mode::Multiprocess && self.config.workers.is_none() {
            self.config.workers = Some(2);
        }
        true
    }

    /// Whether the example's switch `name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.switches.iter().any(|s| s == name)
    }

    /// Writes `report` as JSON to `--report`'s file, if one was given.
    pub fn write_report(&self, report: &RunReport) -> Result<(), String> {
        match &self.report {
            Some(path) => std::fs::write(path, report.to_json())
                .map_err(|e| format!("cannot write {path}: {e}")),
            None => Ok(()),
        }
    }
}

/// Writes the result line on stdout. A reader that closed the pipe early
/// (`| head`) ends the program quietly; any other write error is reported.
pub fn print_line(name: &str, line: &str) -> std::process::ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: cannot write the result: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `--generate N FILE`: writes the sample with `generate` and exits.
pub fn generate_and_exit(
    name: &str,
    records: u64,
    path: &str,
    generate: fn(u64, &str) -> std::io::Result<()>,
) -> std::process::ExitCode {
    match generate(records, path) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: cannot write {path}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs the registered job in the parpipe mode `args` asked for, and
/// writes its report if asked (`--report`).
pub fn run_parpipe<P: serde::Serialize, T: Send + 'static>(
    registry: &parpipe::Registry,
    key: &parpipe::Key<P, T>,
    params: &P,
    args: &Args,
) -> Result<T, String> {
    registry
        .run(key, params, &args.config)
        .map_err(|e| e.to_string())
        .and_then(|done| args.write_report(&done.report).map(|()| done.result))
}

/// The result line on stdout, or the error on stderr.
pub fn finish(name: &str, result: Result<String, String>) -> std::process::ExitCode {
    match result {
        Ok(line) => print_line(name, &line),
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The same plain loop on `threads` threads of this process at once, each
/// over its share of `input`'s bytes (cut at line ends; after the first
/// line, which each share is given again in front, when `header`), the
/// results merged in input order: the bound for threads of one process,
/// beside the bound for processes (`docs/user-pipelines.sh`). `plain` is
/// the example's own loop, over a reader of one share.
pub fn plain_threads<T: Send>(
    input: &str,
    threads: usize,
    header: bool,
    plain: impl Fn(Box<dyn std::io::Read>) -> Result<T, String> + Sync,
    merge: impl Fn(&mut T, T),
) -> Result<T, String> {
    use std::io::{BufRead, Read, Seek, SeekFrom};
    let fail = |e: std::io::Error| format!("{input}: {e}");
    let open = || std::fs::File::open(input).map_err(fail);
    let len = open()?.metadata().map_err(fail)?.len();
    // The offset after the line feed at or after `at` (or the end).
    let line_end = |at: u64| -> Result<u64, String> {
        let mut file = std::io::BufReader::new(open()?);
        file.seek(SeekFrom::Start(at)).map_err(fail)?;
        let mut skipped = Vec::new();
        file.read_until(b'\n', &mut skipped).map_err(fail)?;
        Ok(at + skipped.len() as u64)
    };
    let body = if header { line_end(0)? } else { 0 };
    let mut first = vec![0; body as usize];
    open()?.read_exact(&mut first).map_err(fail)?;
    let mut cuts = vec![body];
    for i in 1..threads.max(1) as u64 {
        let at = body + (len - body) * i / threads as u64;
        cuts.push(line_end(at.max(*cuts.last().unwrap_or(&body)))?);
    }
    cuts.push(len);
    let results: Vec<Result<T, String>> = std::thread::scope(|s| {
        let parts: Vec<_> = cuts
            .windows(2)
            .map(|w| {
                let (start, end, first, plain) = (w[0], w[1], first.clone(), &plain);
                s.spawn(move || {
                    let mut file = open()?;
                    file.seek(SeekFrom::Start(start)).map_err(fail)?;
                    plain(Box::new(
                        std::io::Cursor::new(first).chain(file.take(end - start)),
                    ))
                })
            })
            .collect();
        parts
            .into_iter()
            .map(|p| p.join().unwrap_or_else(|_| Err("a thread panicked".into())))
            .collect()
    });
    let mut results = results.into_iter();
    let mut all = results.next().ok_or("no part")??;
    for r in results {
        merge(&mut all, r?);
    }
    Ok(all)
}

/// The cores this process may use (at least 1).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
