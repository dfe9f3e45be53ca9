//! A plugin that enriches, not only drops: a stage before `metrics` tags
//! each record with a country, looked up in a GeoIP-style table of IPv4
//! ranges, and with a team, from the path's prefix; the builder declares
//! both as dimensions, so `summary.json` counts hits, bytes, 4xx and 5xx
//! per country and per team (`dimensions`), and `report.html` shows them
//! under "Custom dimensions". It runs in every mode, workers included:
//! they rebuild the same stage, table and all, from the registry.
//!
//! Run: `cargo run --release --example geoip_country -- --out geo --mode multiprocess`
//! Flags: `--out DIR` (required: `summary.json` and `report.html` go
//! there), `--mode serial|pipeline|multiprocess` (default serial),
//! `--replicas none|auto` (pipeline), `--workers N` (multiprocess,
//! default 2), `--input FILE` (default: 200 000 generated lines, seed 7),
//! `--ranges FILE` (default: the small illustrative table below), `--top N`.
//!
//! A ranges file holds one range per line, `FIRST,LAST,CODE` (IPv4
//! addresses, `FIRST <= LAST`; ranges may not overlap); blank lines and
//! lines starting with `#` are skipped. A client no range holds (an IPv6
//! address, a host name, an address outside every range) is counted
//! under `-`.

use parpipe::sources::InputSpec;
use parpipe::workloads::logs::stages::EnrichedBatch;
use parpipe::workloads::logs::{self, LogsInput, LogsParams};
use parpipe::{BatchInfo, Key, Mode, Registry, Replicas, RunConfig, Stage, StageError};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::process::ExitCode;

/// The table used without `--ranges`: made up for the example (it is not
/// real geography), in the format a `--ranges` file has.
const DEFAULT_RANGES: &str = "\
# first,last,country
1.0.0.0,50.255.255.255,US
51.0.0.0,99.255.255.255,DE
100.0.0.0,149.255.255.255,JP
150.0.0.0,199.255.255.255,BR
200.0.0.0,223.255.255.255,NL
";

/// Teams by path prefix, the first that matches; other paths are `web`'s.
const TEAMS: &[(&str, &str)] = &[("/api/", "platform"), ("/images/", "media")];

/// One range of the table.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Range {
    first: u32,
    last: u32,
    code: String,
}

/// The job's parameters (they cross the wire to the workers).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Params {
    logs: LogsParams,
    /// Sorted by `first`, not overlapping.
    ranges: Vec<Range>,
}

/// Reads a ranges table; `name` names it in errors.
fn parse_ranges(name: &str, text: &str) -> Result<Vec<Range>, String> {
    let mut ranges = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |what: &str| format!("{name} line {}: {what} (in {line:?})", i + 1);
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [first, last, code] = fields[..] else {
            return Err(bad("expected FIRST,LAST,CODE"));
        };
        let addr = |a: &str| {
            a.parse::<Ipv4Addr>()
                .map(u32::from)
                .map_err(|_| bad(&format!("{a:?} is not an IPv4 address")))
        };
        let (first, last) = (addr(first)?, addr(last)?);
        if first > last || code.is_empty() {
            return Err(bad("expected FIRST <= LAST and a code"));
        }
        ranges.push(Range {
            first,
            last,
            code: code.to_string(),
        });
    }
    ranges.sort_by_key(|r| r.first);
    if let Some(w) = ranges.windows(2).find(|w| w[1].first <= w[0].last) {
        return Err(format!(
            "{name}: ranges for {} and {} overlap",
            w[0].code, w[1].code
        ));
    }
    Ok(ranges)
}

/// Tags each kept record with `country` and `team`.
#[derive(Clone)]
struct GeoTag {
    ranges: std::sync::Arc<Vec<Range>>,
}

impl GeoTag {
    /// The code of the range holding `client`, or `-`.
    fn country(&self, client: &[u8]) -> &str {
        let Some(ip) = std::str::from_utf8(client)
            .ok()
            .and_then(|c| c.parse::<Ipv4Addr>().ok())
        else {
            return "-";
        };
        let ip = u32::from(ip);
        // The last range starting at or before `ip`, if it reaches it.
        let at = self.ranges.partition_point(|r| r.first <= ip);
        match at.checked_sub(1).map(|i| &self.ranges[i]) {
            Some(r) if ip <= r.last => &r.code,
            _ => "-",
        }
    }
}

fn team(path: &[u8]) -> &'static str {
    TEAMS
        .iter()
        .find(|(prefix, _)| path.starts_with(prefix.as_bytes()))
        .map_or("web", |&(_, team)| team)
}

impl Stage for GeoTag {
    type In = EnrichedBatch;
    type Out = EnrichedBatch;

    fn process(
        &mut self,
        mut batch: EnrichedBatch,
        _: &BatchInfo,
    ) -> Result<EnrichedBatch, StageError> {
        for at in 0..batch.parsed.records.len() {
            let r = batch.parsed.records[at];
            let country = self.country(batch.parsed.bytes(r.client));
            let team = team(batch.parsed.bytes(r.path));
            batch.tag(at, "country", country);
            batch.tag(at, "team", team);
        }
        Ok(batch)
    }
}

fn registry() -> (Registry, Key<Params, ()>) {
    let mut registry = Registry::new();
    let key = registry.register("logs-geoip", |p: Params| {
        let tag = GeoTag {
            ranges: std::sync::Arc::new(p.ranges),
        };
        Ok(logs::builder()
            .before_metrics("geoip", tag)
            .dimension("country")
            .dimension("team")
            .build(p.logs))
    });
    (registry, key)
}

fn usage(message: &str) -> ExitCode {
    eprintln!("geoip_country: {message}");
    eprintln!(
        "usage: geoip_country --out DIR [--mode serial|pipeline|multiprocess] \
         [--replicas none|auto] [--workers N] [--input FILE] [--ranges FILE] [--top N]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let (registry, key) = registry();
    parpipe::worker::dispatch_if_worker(&registry);

    let mut config = RunConfig {
        mode: Mode::Serial,
        workers: Some(2),
        ..RunConfig::default()
    };
    let mut input = LogsInput::Generate {
        records: 200_000,
        seed: 7,
    };
    let mut out = None;
    let mut ranges = parse_ranges("the built-in table", DEFAULT_RANGES);
    let mut dimensions = logs::Dimensions::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let Some(value) = args.next() else {
            return usage(&format!("{flag} needs a value"));
        };
        match flag.as_str() {
            "--mode" => {
                config.mode = match value.as_str() {
                    "serial" => Mode::Serial,
                    "pipeline" => Mode::Pipelined,
                    "multiprocess" => Mode::Multiprocess,
                    other => return usage(&format!("unknown mode '{other}'")),
                }
            }
            "--replicas" => {
                config.replicas = match value.as_str() {
                    "none" => Replicas::None,
                    "auto" => Replicas::Auto,
                    _ => return usage("--replicas must be none or auto"),
                }
            }
            "--workers" => match value.parse() {
                Ok(n) if (1..=256).contains(&n) => config.workers = Some(n),
                _ => return usage("--workers must be between 1 and 256"),
            },
            "--top" => match value.parse() {
                Ok(n) if n <= logs::metrics::MAX_TOP => dimensions.top = n,
                _ => {
                    return usage(&format!(
                        "--top must be between 0 and {}",
                        logs::metrics::MAX_TOP
                    ))
                }
            },
            "--input" => input = LogsInput::Files(vec![InputSpec::parse(&value)]),
            "--out" => out = Some(std::path::PathBuf::from(value)),
            "--ranges" => {
                ranges = match std::fs::read_to_string(&value) {
                    Ok(text) => parse_ranges(&value, &text),
                    Err(e) => Err(format!("cannot read {value}: {e}")),
                }
            }
            other => return usage(&format!("unknown flag '{other}'")),
        }
    }
    let Some(out_dir) = out else {
        return usage("--out is required");
    };
    let ranges = match ranges {
        Ok(r) => r,
        Err(e) => return usage(&e),
    };
    let logs = LogsParams {
        input,
        out_dir: out_dir.clone(),
        emit_records: false,
        snapshot: None,
        max_batch_delay_ms: 200,
        format: Default::default(),
        max_rejected_ppm: 900_000,
        dimensions,
    };
    match registry.run(&key, &Params { logs, ranges }, &config) {
        Ok(done) => {
            // In multiprocess mode the workers tagged and counted the chunks.
            let chunks: u64 = done.report.workers.iter().map(|w| w.chunks).sum();
            eprintln!(
                "{}: summary.json and report.html in {} (chunks counted by workers: {chunks})",
                config.mode,
                out_dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("geoip_country: {e}");
            ExitCode::FAILURE
        }
    }
}
