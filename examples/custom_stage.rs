//! A plugin for the built-in `logs` pipeline: a deny-list stage after
//! `parse` drops the records of some clients, in every mode (workers
//! included: they rebuild the same pipeline, stage and list, from the
//! registry). The summary goes to stdout, byte-identical across modes;
//! its `dropped` key counts what the stage removed (`parsed = kept +
//! dropped`, `lines = parsed + rejected`).
//!
//! Run: `cargo run --release --example custom_stage -- --mode multiprocess`
//! Flags: `--mode serial|pipeline|multiprocess` (default serial),
//! `--input FILE` (default: 200 000 generated lines, seed 7),
//! `--deny ADDR,ADDR` (default: the two busiest clients of that input),
//! `--workers N` (multiprocess, default 2).

use parpipe::sources::InputSpec;
use parpipe::workloads::logs::stages::ParsedBatch;
use parpipe::workloads::logs::{self, metrics::LogsPartial, LogsInput};
use parpipe::{BatchInfo, Key, Mode, Registry, RunConfig, Stage, StageError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::process::ExitCode;

/// The job's parameters (they cross the wire to the workers).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Params {
    input: LogsInput,
    deny: Vec<String>,
}

/// Drops the parsed records whose client is on the list.
#[derive(Clone)]
struct DenyClients {
    deny: BTreeSet<Vec<u8>>,
}

impl Stage for DenyClients {
    type In = ParsedBatch;
    type Out = ParsedBatch;

    fn process(
        &mut self,
        mut batch: ParsedBatch,
        _: &BatchInfo,
    ) -> Result<ParsedBatch, StageError> {
        batch.retain(|b, r| !self.deny.contains(b.bytes(r.client)));
        Ok(batch)
    }
}

fn registry() -> (Registry, Key<Params, LogsPartial>) {
    let mut registry = Registry::new();
    let key = registry.register("logs-deny", |p: Params| {
        let deny = DenyClients {
            deny: p.deny.iter().map(|c| c.as_bytes().to_vec()).collect(),
        };
        Ok(logs::builder()
            .after_parse("deny", deny)
            .build_collect(p.input))
    });
    (registry, key)
}

fn usage(message: &str) -> ExitCode {
    eprintln!("custom_stage: {message}");
    eprintln!(
        "usage: custom_stage [--mode serial|pipeline|multiprocess] [--input FILE] \
         [--deny ADDR,ADDR] [--workers N]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let (registry, key) = registry();
    parpipe::worker::dispatch_if_worker(&registry);

    let mut mode = Mode::Serial;
    let mut input = LogsInput::Generate {
        records: 200_000,
        seed: 7,
    };
    let mut deny = vec![
        "2001:db8:488a:4c74::7e1c".to_string(),
        "45.91.241.92".to_string(),
    ];
    let mut workers = 2usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let Some(value) = args.next() else {
            return usage(&format!("{flag} needs a value"));
        };
        match flag.as_str() {
            "--mode" => {
                mode = match value.as_str() {
                    "serial" => Mode::Serial,
                    "pipeline" => Mode::Pipelined,
                    "multiprocess" => Mode::Multiprocess,
                    other => return usage(&format!("unknown mode '{other}'")),
                }
            }
            "--input" => input = LogsInput::Files(vec![InputSpec::parse(&value)]),
            "--deny" => deny = value.split(',').map(str::to_string).collect(),
            "--workers" => match value.parse() {
                Ok(n) if (1..=256).contains(&n) => workers = n,
                _ => return usage("--workers must be between 1 and 256"),
            },
            other => return usage(&format!("unknown flag '{other}'")),
        }
    }
    let config = RunConfig {
        mode,
        workers: Some(workers),
        ..RunConfig::default()
    };
    match registry.run(&key, &Params { input, deny }, &config) {
        Ok(done) => {
            let summary = done.result.summary();
            print!("{}", summary.to_json());
            eprintln!(
                "{mode}: {} lines, {} parsed, {} dropped by the deny list, {} rejected",
                summary.lines, summary.parsed, summary.dropped, summary.rejected
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("custom_stage: {e}");
            ExitCode::FAILURE
        }
    }
}
