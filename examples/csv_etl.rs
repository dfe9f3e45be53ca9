//! A CSV ETL job as anyone writes it, on `parpipe::sources::Csv`: orders
//! (owned `String` fields, deserialized by the `csv` crate) are validated,
//! enriched (prices converted to euro cents, the month cut from the date)
//! and summed into revenue per country and month, in integer cents (so
//! that every grouping of the input gives the same sums), with the top
//! customers. The result is one JSON line on stdout, byte-identical in
//! every mode.
//!
//! `--mode plain` runs the same per-record code (`Order` → [`validate`] →
//! [`enrich`] → [`Totals::add`]) in a plain single-threaded loop over
//! `csv::Reader`, `--mode rayon` in rayon's `par_iter` over the whole
//! file in memory, and `--mode plain-threads` runs the plain loop on one
//! thread per core (`--workers N`), each over its share of the file: the
//! baselines parpipe's modes are measured against (`docs/user-pipelines.sh`).
//!
//! Run:
//! `cargo run --release --example csv_etl -- --generate 1000000 orders.csv`, then
//! `cargo run --release --example csv_etl -- --input orders.csv --mode multiprocess`
//!
//! Flags: `--input FILE`, `--mode
//! plain|serial|pipeline|multiprocess|rayon|plain-threads` (default
//! serial), `--workers N` (multiprocess, default 2; plain-threads,
//! default the cores), `--replicas
//! none|auto|STAGE=N` (pipeline, default none; `STAGE=N` forces the stage
//! actors), `--batch-size N` (records per batch, default 8192). `--generate N FILE` writes N orders (seeded,
//! deterministic; about 4 % of them rejected) and exits.

mod common;

use parpipe::sources::{Csv, InputSpec};
use parpipe::{Fold, Pipeline, Registry, StageError};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::process::ExitCode;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// ---- The domain code, shared by every mode ----

/// One CSV row, as the file has it.
#[derive(Debug, Clone, Deserialize)]
struct Order {
    order_id: String,
    customer: String,
    country: String,
    date: String,
    sku: String,
    quantity: i64,
    unit_price: String,
    currency: String,
    status: String,
}

/// An order that passed validation: its price in integer minor units.
struct Valid {
    order: Order,
    price_minor: i64,
}

/// An order ready to be summed.
struct Enriched {
    customer: String,
    /// `"DE 2024-03"`.
    country_month: String,
    cents_eur: i64,
}

/// Exchange rates to euros, in millionths.
fn eur_rate(currency: &str) -> Option<i64> {
    match currency {
        "EUR" => Some(1_000_000),
        "USD" => Some(921_500),
        "GBP" => Some(1_163_200),
        "CHF" => Some(1_042_700),
        _ => None,
    }
}

/// `"12.34"` as 1234.
fn parse_minor(price: &str) -> Option<i64> {
    let (units, cents) = price.split_once('.')?;
    if cents.len() != 2 || units.is_empty() {
        return None;
    }
    let units: i64 = units.parse().ok()?;
    let cents: i64 = cents.parse().ok()?;
    (units >= 0 && cents >= 0).then(|| units * 100 + cents)
}

/// The checks an order must pass; `None` rejects it.
fn validate(order: Order) -> Option<Valid> {
    let date_ok = order.date.len() == 10
        && order.date.as_bytes()[4] == b'-'
        && order.date.as_bytes()[7] == b'-'
        && order.date[..4].parse::<u16>().is_ok()
        && matches!(order.date[5..7].parse::<u8>(), Ok(1..=12));
    let ok = date_ok
        && order.status == "paid"
        && (1..=1000).contains(&order.quantity)
        && order.country.len() == 2
        && !order.customer.is_empty()
        && !order.sku.is_empty()
        && !order.order_id.is_empty()
        && eur_rate(&order.currency).is_some();
    let price_minor = parse_minor(&order.unit_price)?;
    ok.then_some(Valid { order, price_minor })
}

/// Converts to euro cents (rounded half up) and keys by country and month.
fn enrich(v: Valid) -> Enriched {
    let rate = eur_rate(&v.order.currency).unwrap_or(1_000_000);
    let total = v.price_minor * v.order.quantity;
    let cents_eur = (total * rate + 500_000) / 1_000_000;
    let country_month = format!("{} {}", v.order.country, &v.order.date[..7]);
    Enriched {
        customer: v.order.customer,
        country_month,
        cents_eur,
    }
}

/// The result: integer sums, so any grouping of the input gives the same.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Totals {
    orders: u64,
    rejected: u64,
    revenue: BTreeMap<String, i64>,
    customers: HashMap<String, i64>,
}

impl Totals {
    /// One order, through the whole per-record code.
    fn add(&mut self, order: Order) {
        self.orders += 1;
        match validate(order) {
            Some(v) => self.add_enriched(enrich(v)),
            None => self.rejected += 1,
        }
    }

    fn add_enriched(&mut self, e: Enriched) {
        *self.revenue.entry(e.country_month).or_default() += e.cents_eur;
        *self.customers.entry(e.customer).or_default() += e.cents_eur;
    }

    fn merge(&mut self, later: Totals) {
        self.orders += later.orders;
        self.rejected += later.rejected;
        for (k, v) in later.revenue {
            *self.revenue.entry(k).or_default() += v;
        }
        for (k, v) in later.customers {
            *self.customers.entry(k).or_default() += v;
        }
    }

    /// One JSON line: the sums and the ten best customers (ties by name).
    fn to_json(&self) -> String {
        let mut top: Vec<(&String, &i64)> = self.customers.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        top.truncate(10);
        let total: i64 = self.revenue.values().sum();
        serde_json::json!({
            "orders": self.orders,
            "rejected": self.rejected,
            "revenue_cents": total,
            "customers": self.customers.len(),
            "by_country_month": self.revenue,
            "top_customers": top,
        })
        .to_string()
    }
}

// ---- The parpipe pipeline: source → validate → enrich → revenue ----
//
// Record stages (`map`) and a `Fold`: parpipe runs each order from its
// line to the totals before it decodes the next, in every mode.

/// Folds each order, valid (`Some`) or rejected, into the totals.
#[derive(Clone)]
struct Revenue;

impl Fold for Revenue {
    type In = Option<Enriched>;
    type Partial = Totals;

    fn empty(&self) -> Totals {
        Totals::default()
    }

    fn add(&mut self, acc: &mut Totals, order: Option<Enriched>) -> Result<(), StageError> {
        acc.orders += 1;
        match order {
            Some(e) => acc.add_enriched(e),
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
    let key = registry.register("csv-etl", |p: Params| {
        let source = Csv::<Order>::new(InputSpec::parse(&p.input));
        Ok(Pipeline::builder_files("csv-etl", "orders", source)
            .map("validate", validate)
            .map("enrich", |v: Option<Valid>| v.map(enrich))
            .fold("revenue", Revenue))
    });
    (registry, key)
}

// ---- The baselines ----

/// The same per-record code in a plain loop.
fn plain(input: &str) -> Result<Totals, String> {
    let file = std::fs::File::open(input).map_err(|e| format!("{input}: {e}"))?;
    plain_over(input, file)
}

/// The plain loop over `text` (a CSV with its header line).
fn plain_over(input: &str, text: impl std::io::Read) -> Result<Totals, String> {
    let mut reader = csv::Reader::from_reader(text);
    let mut totals = Totals::default();
    for order in reader.deserialize() {
        totals.add(order.map_err(|e| format!("{input}: {e}"))?);
    }
    Ok(totals)
}

/// The same per-record code on rayon: the whole file in memory, cut into
/// pieces at line ends, each parsed and summed, the sums merged in order.
fn with_rayon(input: &str) -> Result<Totals, String> {
    let text = std::fs::read(input).map_err(|e| format!("{input}: {e}"))?;
    let body = memchr_after(&text, 0);
    let pieces = rayon::current_num_threads() * 8;
    let mut cuts = vec![body];
    for i in 1..pieces {
        let at = body + (text.len() - body) * i / pieces;
        cuts.push(memchr_after(&text, at.max(*cuts.last().unwrap())));
    }
    cuts.push(text.len());
    cuts.par_windows(2)
        .map(|w| {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(&text[w[0]..w[1]]);
            let mut totals = Totals::default();
            for order in reader.deserialize() {
                totals.add(order.map_err(|e| format!("{input}: {e}"))?);
            }
            Ok(totals)
        })
        .try_reduce(Totals::default, |mut a, b| {
            a.merge(b);
            Ok(a)
        })
}

/// The offset after the first line feed at or after `at` (or the end).
fn memchr_after(text: &[u8], at: usize) -> usize {
    text[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(text.len(), |p| at + p + 1)
}

// ---- The generator ----

/// Writes `n` orders to `path`, the same for the same `n`.
fn generate(n: u64, path: &str) -> std::io::Result<()> {
    const COUNTRIES: [&str; 8] = ["DE", "FR", "NL", "GB", "US", "CH", "IT", "ES"];
    const CURRENCIES: [&str; 4] = ["EUR", "USD", "GBP", "CHF"];
    const SKUS: [&str; 5] = ["A-100", "B-220", "C-310", "D-404", "E-555"];
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        out,
        "order_id,customer,country,date,sku,quantity,unit_price,currency,status"
    )?;
    let mut state = 0x5eed_u64;
    let mut next = move || {
        // splitmix64: deterministic, no dependency.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for i in 0..n {
        let r = next();
        let customer = format!("\"Customer {:05}, Ltd\"", r % 20_000);
        let country = COUNTRIES[(r >> 16) as usize % COUNTRIES.len()];
        let date = format!("2024-{:02}-{:02}", (r >> 20) % 12 + 1, (r >> 24) % 28 + 1);
        let sku = SKUS[(r >> 28) as usize % SKUS.len()];
        let quantity = (r >> 32) % 9 + 1;
        let price = format!("{}.{:02}", (r >> 36) % 500, (r >> 44) % 100);
        let currency = CURRENCIES[(r >> 50) as usize % CURRENCIES.len()];
        let status = match (r >> 54) % 50 {
            0 => "cancelled",
            1 => "pending",
            _ => "paid",
        };
        writeln!(
            out,
            "O{i:09},{customer},{country},{date},{sku},{quantity},{price},{currency},{status}"
        )?;
    }
    out.flush()
}

fn usage(message: &str) -> ExitCode {
    eprintln!("csv_etl: {message}");
    eprintln!(
        "usage: csv_etl --input FILE [--mode plain|serial|pipeline|multiprocess|rayon|plain-threads] \
         [--workers N] [--replicas none|auto|STAGE=N] [--batch-size N] [--report FILE]\n       \
         csv_etl --generate N FILE\n\
         --report FILE: a parpipe mode's run report as JSON (its `plan` says how it ran)"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let (registry, key) = registry();
    parpipe::worker::dispatch_if_worker(&registry);

    let mut args = match common::parse(std::env::args().skip(1).collect(), &[]) {
        Ok(common::Command::Run(args)) => args,
        Ok(common::Command::Generate { records, path }) => {
            return common::generate_and_exit("csv_etl", records, &path, generate)
        }
        Err(message) => return usage(&message),
    };
    let mode = args.mode.clone();
    let result = match mode.as_str() {
        "plain" => plain(&args.input),
        "plain-threads" => common::plain_threads(
            &args.input,
            args.config.workers.unwrap_or_else(common::cores),
            true,
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
    common::finish("csv_etl", result.map(|totals| totals.to_json()))
}
