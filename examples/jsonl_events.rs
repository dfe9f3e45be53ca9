//! A JSON-lines job as anyone writes it, on `parpipe::sources::JsonLines`:
//! click-stream events (deserialized by `serde_json` into owned structs)
//! are checked, their page paths normalised, and summed per day (events,
//! distinct users in a `HashSet`, purchase revenue in integer cents), per
//! kind, and per page for the ten most viewed pages. The result is one
//! JSON line on stdout, byte-identical in every mode.
//!
//! `--mode plain` runs the same per-record code (`Event` → [`check`] →
//! [`Totals::add`]) in a plain single-threaded loop over the file's lines,
//! `--mode rayon` in rayon's `par_iter` over the whole file in memory, and
//! `--mode plain-threads` the plain loop on one thread per core, each over
//! its share of the file: the baselines parpipe's modes are measured
//! against (`docs/user-pipelines.sh`).
//!
//! Run:
//! `cargo run --release --example jsonl_events -- --generate 1000000 events.jsonl`, then
//! `cargo run --release --example jsonl_events -- --input events.jsonl --mode pipeline --replicas auto`
//!
//! Flags: `--input FILE` (`-` for standard input, gzip files too, except in
//! `plain` and `rayon` modes), `--mode
//! plain|serial|pipeline|multiprocess|rayon|plain-threads` (default
//! serial; `plain-threads`: the plain loop on one thread per core, each
//! over its share of the file), `--workers N` (multiprocess,
//! default 2; plain-threads, default the cores), `--replicas none|auto|STAGE=N` (pipeline,
//! default none; `STAGE=N` forces the stage actors), `--batch-size N`
//! (records per batch, default 8192).
//! `--generate N FILE` writes N events (seeded, deterministic) and exits.

mod common;

use parpipe::sources::{InputSpec, JsonLines};
use parpipe::{Fold, Pipeline, Registry, StageError};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, Write};
use std::process::ExitCode;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// ---- The domain code, shared by every mode ----

/// One event, as the file has it.
#[derive(Debug, Clone, Deserialize)]
struct Event {
    ts: String,
    user: String,
    kind: String,
    page: String,
    #[serde(default)]
    amount_cents: Option<i64>,
    #[serde(default)]
    tags: Vec<String>,
}

/// An event that passed the checks, its page path normalised.
struct Checked {
    day: String,
    user: String,
    kind: String,
    page: String,
    amount_cents: i64,
}

/// The checks an event must pass; `None` rejects it.
fn check(e: Event) -> Option<Checked> {
    let ts = e.ts.as_bytes();
    let ok = ts.len() == 20 && ts[4] == b'-' && ts[10] == b'T' && ts[19] == b'Z';
    let kind_ok = matches!(e.kind.as_str(), "view" | "click" | "purchase");
    if !ok || !kind_ok || e.user.is_empty() || !e.page.starts_with('/') {
        return None;
    }
    let amount_cents = match (e.kind.as_str(), e.amount_cents) {
        ("purchase", Some(a)) if a > 0 => a,
        ("purchase", _) => return None,
        _ => 0,
    };
    // "/p/12?ref=mail" and "/P/12/" count as "/p/12"; bot traffic is tagged.
    if e.tags.iter().any(|t| t == "bot") {
        return None;
    }
    let path = e.page.split('?').next().unwrap_or("/");
    let page = path.trim_end_matches('/').to_ascii_lowercase();
    Some(Checked {
        day: e.ts[..10].to_string(),
        user: e.user,
        kind: e.kind,
        page,
        amount_cents,
    })
}

/// Per day: events, distinct users, revenue.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Day {
    events: u64,
    users: HashSet<String>,
    revenue_cents: i64,
}

/// The result: counts, sets and integer sums, so any grouping of the input
/// gives the same.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Totals {
    events: u64,
    rejected: u64,
    days: BTreeMap<String, Day>,
    kinds: BTreeMap<String, u64>,
    page_views: HashMap<String, u64>,
}

impl Totals {
    /// One event, through the whole per-record code.
    fn add(&mut self, e: Event) {
        self.events += 1;
        match check(e) {
            Some(c) => self.add_checked(c),
            None => self.rejected += 1,
        }
    }

    fn add_checked(&mut self, c: Checked) {
        let day = self.days.entry(c.day).or_default();
        day.events += 1;
        day.revenue_cents += c.amount_cents;
        if !day.users.contains(&c.user) {
            day.users.insert(c.user);
        }
        if c.kind == "view" {
            *self.page_views.entry(c.page).or_default() += 1;
        }
        *self.kinds.entry(c.kind).or_default() += 1;
    }

    fn merge(&mut self, later: Totals) {
        self.events += later.events;
        self.rejected += later.rejected;
        for (k, d) in later.days {
            let day = self.days.entry(k).or_default();
            day.events += d.events;
            day.revenue_cents += d.revenue_cents;
            day.users.extend(d.users);
        }
        for (k, n) in later.kinds {
            *self.kinds.entry(k).or_default() += n;
        }
        for (k, n) in later.page_views {
            *self.page_views.entry(k).or_default() += n;
        }
    }

    /// One JSON line: per day and kind, and the ten most viewed pages.
    fn to_json(&self) -> String {
        let days: BTreeMap<&String, serde_json::Value> = self
            .days
            .iter()
            .map(|(k, d)| {
                let v = serde_json::json!({
                    "events": d.events,
                    "users": d.users.len(),
                    "revenue_cents": d.revenue_cents,
                });
                (k, v)
            })
            .collect();
        let mut top: Vec<(&String, &u64)> = self.page_views.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        top.truncate(10);
        serde_json::json!({
            "events": self.events,
            "rejected": self.rejected,
            "days": days,
            "kinds": self.kinds,
            "pages": self.page_views.len(),
            "top_pages": top,
        })
        .to_string()
    }
}

// ---- The parpipe pipeline: source → check → summary ----
//
// A record stage (`map`) and a `Fold`: parpipe runs each event from its
// line to the totals before it decodes the next, in every mode.

/// Folds each event, passed (`Some`) or rejected, into the totals.
#[derive(Clone)]
struct Summary;

impl Fold for Summary {
    type In = Option<Checked>;
    type Partial = Totals;

    fn empty(&self) -> Totals {
        Totals::default()
    }

    fn add(&mut self, acc: &mut Totals, event: Option<Checked>) -> Result<(), StageError> {
        acc.events += 1;
        match event {
            Some(c) => acc.add_checked(c),
            None => acc.rejected += 1,
        }
        Ok(())
    }

    fn merge(&self, acc: &mut Totals, later: Totals) {
        acc.merge(later);
    }

    // Sums, sets and maps of sums: the same in either order, so each
    // reading lane may keep one partial for all its chunks.
    fn commutes(&self) -> bool {
        true
    }
}

/// The job's parameters (they cross the wire to the workers).
#[derive(Serialize, Deserialize)]
struct Params {
    input: String,
}

fn registry() -> (Registry, parpipe::Key<Params, Totals>) {
    let mut registry = Registry::new();
    let key = registry.register("jsonl-events", |p: Params| {
        let source = JsonLines::<Event>::new(vec![InputSpec::parse(&p.input)]);
        Ok(Pipeline::builder_files("jsonl-events", "events", source)
            .map("check", check)
            .fold("summary", Summary))
    });
    (registry, key)
}

// ---- The baselines ----

/// The same per-record code in a plain loop.
fn plain(input: &str) -> Result<Totals, String> {
    let file = std::fs::File::open(input).map_err(|e| format!("{input}: {e}"))?;
    plain_over(input, file)
}

/// The plain loop over `text` (whole lines).
fn plain_over(input: &str, text: impl std::io::Read) -> Result<Totals, String> {
    let mut totals = Totals::default();
    for (i, line) in std::io::BufReader::new(text).lines().enumerate() {
        let line = line.map_err(|e| format!("{input}: {e}"))?;
        let event =
            serde_json::from_str(&line).map_err(|e| format!("{input}: line {}: {e}", i + 1))?;
        totals.add(event);
    }
    Ok(totals)
}

/// The same per-record code on rayon: the whole file in memory, its lines
/// parsed and summed in parallel, the sums merged in order.
fn with_rayon(input: &str) -> Result<Totals, String> {
    let text = std::fs::read_to_string(input).map_err(|e| format!("{input}: {e}"))?;
    let lines: Vec<&str> = text.lines().collect();
    lines
        .par_iter()
        .enumerate()
        .try_fold(Totals::default, |mut totals, (i, line)| {
            let event =
                serde_json::from_str(line).map_err(|e| format!("{input}: line {}: {e}", i + 1))?;
            totals.add(event);
            Ok(totals)
        })
        .try_reduce(Totals::default, |mut a, b| {
            a.merge(b);
            Ok(a)
        })
}

// ---- The generator ----

/// Writes `n` events to `path`, the same for the same `n`.
fn generate(n: u64, path: &str) -> std::io::Result<()> {
    const KINDS: [&str; 4] = ["view", "view", "click", "purchase"];
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut state = 0xe7e7_u64;
    let mut next = move || {
        // splitmix64: deterministic, no dependency.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for _ in 0..n {
        let r = next();
        let kind = KINDS[(r % 4) as usize];
        let ts = format!(
            "2024-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            (r >> 4) % 3 + 1,
            (r >> 8) % 28 + 1,
            (r >> 13) % 24,
            (r >> 18) % 60,
            (r >> 24) % 60
        );
        let page = match (r >> 30) % 4 {
            0 => format!("/p/{}?ref=mail", (r >> 32) % 2000),
            1 => format!("/P/{}/", (r >> 32) % 2000),
            _ => format!("/p/{}", (r >> 32) % 2000),
        };
        let amount = if kind == "purchase" && (r >> 44) % 40 != 0 {
            format!(",\"amount_cents\":{}", (r >> 46) % 20_000 + 99)
        } else {
            String::new()
        };
        let tags = match (r >> 60) % 16 {
            0 => r#"["bot"]"#,
            1 | 2 => r#"["mobile","promo"]"#,
            _ => r#"["web"]"#,
        };
        writeln!(
            out,
            r#"{{"ts":"{ts}","user":"u{:06}","kind":"{kind}","page":"{page}"{amount},"tags":{tags}}}"#,
            (r >> 36) % 100_000
        )?;
    }
    out.flush()
}

fn usage(message: &str) -> ExitCode {
    eprintln!("jsonl_events: {message}");
    eprintln!(
        "usage: jsonl_events --input FILE [--mode plain|serial|pipeline|multiprocess|rayon|plain-threads] \
         [--workers N] [--replicas none|auto|STAGE=N] [--batch-size N] [--report FILE]\n       jsonl_events --generate N FILE"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let (registry, key) = registry();
    parpipe::worker::dispatch_if_worker(&registry);

    let mut args = match common::parse(std::env::args().skip(1).collect(), &[]) {
        Ok(common::Command::Run(args)) => args,
        Ok(common::Command::Generate { records, path }) => {
            return common::generate_and_exit("jsonl_events", records, &path, generate)
        }
        Err(message) => return usage(&message),
    };
    let mode = args.mode.clone();
    let result = match mode.as_str() {
        "plain" => plain(&args.input),
        "plain-threads" => common::plain_threads(
            &args.input,
            args.config.workers.unwrap_or_else(common::cores),
            false,
            |text| plain_over(&args.input, text),
            Totals::merge,
        ),
        "rayon" => with_rayon(&args.input),
        _ if args.parpipe_mode() => common::run_parpipe(
            &registry,
            &key,
            &Params {
                input: args.input.clone(),
            },
            &args,
        ),
        other => return usage(&format!("unknown mode '{other}'")),
    };
    common::finish("jsonl_events", result.map(|totals| totals.to_json()))
}
