//! `report.html`: the sections of the page, each drawn from the keys of
//! `summary.json` it needs and left out when they are absent.

use super::html::{bars, bytes, esc, int, micros, pct};
use super::series::{regroup, Step};
use super::summary::{num, pairs, Numbers};
use super::tables::{
    agents, clients, latency, methods, more, not_found, paths, referrers, rejected, status, vhosts,
};
use serde_json::Value;
use std::fmt::Write as _;

/// The page's style sheet and script, inline (the file must open from
/// disk with no network).
const CSS: &str = include_str!("page.css");
const JS: &str = include_str!("page.js");

/// Most rows a table shows (a `--top 0` summary may list every path; the
/// rest stays in `summary.json`).
pub const MAX_ROWS: usize = 500;
/// Longest rejected line shown, in characters.
pub(super) const REJECTED_CHARS: usize = 300;

/// Keys a section of its own draws; any other key goes to "More keys".
pub(super) const DRAWN: &[&str] = &[
    "bots",
    "bytes",
    "clients",
    "daily",
    "dimensions",
    "directives",
    "dropped",
    "hourly",
    "hours",
    "latency",
    "lines",
    "methods",
    "parsed",
    "rejected",
    "rejected_samples",
    "status",
    "status_class_bytes",
    "time_zone",
    "top_browsers",
    "top_clients",
    "top_crawlers",
    "top_not_found",
    "top_operating_systems",
    "top_paths",
    "top_paths_latency",
    "top_paths_stats",
    "top_referrers",
    "vhosts",
];

/// The whole page for `summary` (a `summary.json` value) and the raw
/// bytes of the first rejected lines (may be empty).
pub fn render(summary: &Value, rejected_lines: &[&[u8]]) -> String {
    let n = Numbers::of(summary);
    let mut body = String::new();
    let mut nav: Vec<(&str, &str)> = Vec::new();
    let mut section = |id: &'static str, title: &'static str, wide: bool, html: String| {
        if html.is_empty() {
            return;
        }
        nav.push((id, title));
        let _ = write!(
            body,
            "<section id=\"{id}\"{}><h2>{title}</h2>{html}</section>",
            if wide { " class=\"wide\"" } else { "" }
        );
    };
    section("overview", "Overview", true, overview(summary, &n));
    section("time", "Requests over time", true, over_time(summary));
    section("status", "Status codes", false, status(summary, &n));
    section("methods", "Methods", false, methods(summary, &n));
    section("paths", "Top paths", true, paths(summary, &n));
    section("notfound", "Not found (404)", false, not_found(summary, &n));
    section(
        "referrers",
        "Referring hosts",
        false,
        referrers(summary, &n),
    );
    section("agents", "User agents", true, agents(summary, &n));
    section("clients", "Clients", false, clients(summary, &n));
    section("vhosts", "Virtual hosts", false, vhosts(summary, &n));
    section("latency", "Latency", true, latency(summary));
    section(
        "dimensions",
        "Custom dimensions",
        true,
        super::custom::section(summary, n.requests),
    );
    section(
        "rejected",
        "Rejected lines",
        true,
        rejected(summary, &n, rejected_lines),
    );
    section("more", "More keys", true, more(summary));
    let mut page = String::with_capacity(body.len() + CSS.len() + JS.len() + 2048);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\
         <title>Access-log report</title><style>{CSS}</style></head><body>\
         <header><h1>Access-log report</h1><div class=\"sub\">{}</div></header><nav>",
        esc(&subtitle(summary, &n))
    );
    for (id, title) in &nav {
        let _ = write!(page, "<a href=\"#{id}\">{title}</a>");
    }
    let _ = writeln!(
        page,
        "</nav><main>{body}</main><footer>Written by parpipe from the run's \
         summary.json (every figure is defined in docs/logs-workload.md and \
         docs/log-formats.md). Click a column heading to sort.</footer>\
         <script>{JS}</script></body></html>"
    );
    page
}

/// "N requests · FIRST – LAST (UTC)".
fn subtitle(summary: &Value, n: &Numbers) -> String {
    let hours = pairs(summary.get("hours"));
    let mut text = format!("{} requests", int(n.requests));
    if let (Some(first), Some(last)) = (hours.first(), hours.last()) {
        let _ = write!(
            text,
            " · {} – {} (hours, {})",
            first.0,
            last.0,
            zone(summary)
        );
    }
    text
}

pub(super) fn card(out: &mut String, key: &str, value: &str, detail: &str) {
    let _ = write!(
        out,
        "<div class=\"card\"><div class=\"k\">{}</div><div class=\"v\">{}</div><div class=\"d\">{}</div></div>",
        esc(key),
        esc(value),
        esc(detail)
    );
}

fn overview(summary: &Value, n: &Numbers) -> String {
    let mut out = String::from("<div class=\"cards\">");
    card(
        &mut out,
        "Requests",
        &int(n.requests),
        "parsed lines counted",
    );
    card(
        &mut out,
        "Valid lines",
        &pct(n.parsed, n.parsed + n.rejected),
        &format!("{} of {} lines", int(n.parsed), int(n.parsed + n.rejected)),
    );
    if summary.get("clients").is_some() {
        card(
            &mut out,
            "Distinct clients",
            &int(num(&summary["clients"])),
            "",
        );
    }
    if summary.get("bytes").is_some() {
        let b = num(&summary["bytes"]);
        card(
            &mut out,
            "Bytes sent",
            &bytes(b),
            &format!("{} bytes", int(b)),
        );
    }
    if n.status_total > 0 {
        card(
            &mut out,
            "Client errors (4xx)",
            &pct(n.class(4), n.status_total),
            &int(n.class(4)),
        );
        card(
            &mut out,
            "Server errors (5xx)",
            &pct(n.class(5), n.status_total),
            &int(n.class(5)),
        );
    }
    if let Some(l) = summary.get("latency") {
        card(
            &mut out,
            "Latency p50",
            &micros(num(&l["p50_us"]) as u64),
            "median",
        );
        card(
            &mut out,
            "Latency p99",
            &micros(num(&l["p99_us"]) as u64),
            "",
        );
    }
    if summary.get("bots").is_some() {
        let bots = num(&summary["bots"]);
        card(&mut out, "Bots", &int(bots), &pct(bots, n.requests));
    }
    card(
        &mut out,
        "Rejected lines",
        &int(n.rejected),
        &pct(n.rejected, n.lines),
    );
    if n.dropped > 0 {
        card(
            &mut out,
            "Dropped by a stage",
            &int(n.dropped),
            "parsed, not counted",
        );
    }
    if let Some(d) = summary.get("directives").map(num).filter(|d| *d > 0) {
        card(&mut out, "Directive lines", &int(d), "#Fields: …");
    }
    out.push_str("</div>");
    out
}

pub(super) fn as_points(v: Option<&Value>) -> Vec<(String, u128)> {
    pairs(v).into_iter().map(|(k, v)| (k, num(v))).collect()
}

/// The zone of the time buckets (`time_zone`; UTC when absent).
fn zone(summary: &Value) -> String {
    summary
        .get("time_zone")
        .and_then(Value::as_str)
        .map_or_else(|| "UTC".to_string(), |z| super::html::cut(z, 40))
}

/// One field of the `hourly` / `daily` values, as chart points.
fn field(summary: &Value, key: &str, name: &str) -> Vec<(String, u128)> {
    pairs(summary.get(key))
        .into_iter()
        .map(|(k, v)| (k, v.get(name).map_or(0, num)))
        .collect()
}

fn over_time(summary: &Value) -> String {
    let mut out = String::new();
    let tz = zone(summary);
    let title = |what: &str, step: Step| format!("{what} per {} ({tz})", step_name(step));
    let mut hours = as_points(summary.get("hours"));
    let mut finest = Step::Hour;
    if hours.is_empty() {
        hours = field(summary, "daily", "requests");
        finest = Step::Day;
    }
    if hours.is_empty() {
        return out;
    }
    let (step, series) = regroup(&hours, finest);
    bars(&mut out, &title("Requests", step), &series, int);
    // Bytes add up across buckets; distinct clients do not, so they are
    // drawn only at the step the summary counted them (hours or days).
    let hourly = summary.get("hourly").is_some();
    let (bytes_key, bytes_finest) = if hourly {
        ("hourly", Step::Hour)
    } else {
        ("daily", Step::Day)
    };
    let by_bytes = field(summary, bytes_key, "bytes");
    if !by_bytes.is_empty() {
        let (step, series) = regroup(&by_bytes, bytes_finest);
        bars(&mut out, &title("Bytes", step), &series, bytes);
    }
    let clients_key = match step {
        Step::Hour => Some("hourly"),
        Step::Day => Some("daily"),
        _ => None,
    };
    if let Some(key) = clients_key {
        let points = field(summary, key, "clients");
        let finest = if key == "hourly" {
            Step::Hour
        } else {
            Step::Day
        };
        let (got, series) = regroup(&points, finest);
        if !points.is_empty() && got == step {
            bars(&mut out, &title("Distinct clients", step), &series, int);
        }
    }
    out
}

fn step_name(step: Step) -> &'static str {
    match step {
        Step::Hour => "hour",
        Step::Day => "day",
        Step::Month => "month",
        Step::Year => "year",
    }
}
