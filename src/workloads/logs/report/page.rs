//! `report.html`: the sections of the page, each drawn from the keys of
//! `summary.json` it needs and left out when they are absent.

use super::html::{bars, bytes, esc, int, micros, pct, Cell, Table};
use super::series::{regroup, Step};
use super::status_names::{class_name, reason};
use super::summary::{num, pairs, Numbers};
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
const REJECTED_CHARS: usize = 300;

/// Keys a section of its own draws; any other key goes to "More keys".
const DRAWN: &[&str] = &[
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

fn card(out: &mut String, key: &str, value: &str, detail: &str) {
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

fn as_points(v: Option<&Value>) -> Vec<(String, u128)> {
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

fn class_index(class: &str) -> usize {
    class
        .as_bytes()
        .first()
        .map_or(0, |d| (d.wrapping_sub(b'0') as usize).min(9))
}

fn status(summary: &Value, n: &Numbers) -> String {
    let codes = pairs(summary.get("status"));
    if codes.is_empty() {
        return String::new();
    }
    let mut out = String::from("<div class=\"stack\">");
    for (class, count) in n.classes() {
        let _ = write!(
            out,
            "<span class=\"s{}\" style=\"width:{:.3}%\" title=\"{}: {}\"></span>",
            class_index(&class).min(5),
            count as f64 * 100.0 / n.status_total.max(1) as f64,
            esc(&class),
            pct(count, n.status_total)
        );
    }
    out.push_str("</div>");
    let class_bytes = summary.get("status_class_bytes");
    let mut t = Table::new(&["Class", "Meaning", "#Requests", "#Share", "#Bytes"]);
    for (class, count) in n.classes() {
        let dot = format!(
            "<span class=\"dot s{}\"></span>{}",
            class_index(&class).min(5),
            esc(&class)
        );
        let b = class_bytes.and_then(|m| m.get(&class)).map(num);
        t.row(vec![
            Cell::Raw(dot),
            Cell::Word(class_name(&class)),
            Cell::Num(count),
            Cell::Share(count, n.status_total),
            b.map_or(Cell::Empty, Cell::Bytes),
        ]);
    }
    t.write(&mut out);
    let mut t = Table::new(&["Code", "Name", "#Requests", "#Share"]);
    for (code, count) in &codes {
        let name = code.parse::<u16>().ok().and_then(reason).unwrap_or("");
        t.row(vec![
            Cell::Text(code.clone()),
            Cell::Word(name),
            Cell::Num(num(count)),
            Cell::Share(num(count), n.status_total),
        ]);
    }
    out.push_str("<div style=\"height:10px\"></div>");
    t.write(&mut out);
    out
}

/// A table of `key → count` entries, most frequent first.
fn ranked(entries: Vec<(String, u128)>, head: &'static str, whole: u128) -> String {
    if entries.is_empty() {
        return String::new();
    }
    let mut entries = entries;
    entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let total = entries.len();
    let mut t = Table::new(&[head, "#Requests", "#Share"]);
    for (k, v) in entries.into_iter().take(MAX_ROWS) {
        t.row(vec![Cell::Text(k), Cell::Num(v), Cell::Share(v, whole)]);
    }
    let mut out = String::new();
    t.write(&mut out);
    more_rows(&mut out, total);
    out
}

fn more_rows(out: &mut String, total: usize) {
    if total > MAX_ROWS {
        let _ = write!(
            out,
            "<div class=\"more\">{} more in summary.json</div>",
            int((total - MAX_ROWS) as u128)
        );
    }
}

fn methods(summary: &Value, n: &Numbers) -> String {
    ranked(as_points(summary.get("methods")), "Method", n.requests)
}

fn vhosts(summary: &Value, n: &Numbers) -> String {
    ranked(as_points(summary.get("vhosts")), "Virtual host", n.requests)
}

fn clients(summary: &Value, n: &Numbers) -> String {
    let top = as_points(summary.get("top_clients"));
    if top.is_empty() {
        return String::new();
    }
    let mut t = Table::new(&["Client", "#Requests", "#Share"]);
    let total = top.len();
    for (k, v) in top.into_iter().take(MAX_ROWS) {
        t.row(vec![
            Cell::Text(k),
            Cell::Num(v),
            Cell::Share(v, n.requests),
        ]);
    }
    let mut out = format!(
        "<div class=\"sub\">The most frequent of {} distinct clients.</div>",
        int(num(summary.get("clients").unwrap_or(&Value::Null)))
    );
    t.write(&mut out);
    more_rows(&mut out, total);
    out
}

fn paths(summary: &Value, n: &Numbers) -> String {
    let top = as_points(summary.get("top_paths"));
    if top.is_empty() {
        return String::new();
    }
    let lat = pairs(summary.get("top_paths_latency"));
    let stats = pairs(summary.get("top_paths_stats"));
    let (has_lat, has_stats) = (!lat.is_empty(), !stats.is_empty());
    let mut heads: Vec<&'static str> = vec!["Path", "#Requests", "#Share"];
    if has_stats {
        heads.extend(["#Bytes", "#4xx", "#5xx"]);
    }
    if has_lat {
        heads.extend(["#p50", "#p99"]);
    }
    let mut t = Table::new(&heads);
    let total = top.len();
    for (i, (path, hits)) in top.into_iter().take(MAX_ROWS).enumerate() {
        let mut row = vec![
            Cell::Text(path.clone()),
            Cell::Num(hits),
            Cell::Share(hits, n.requests),
        ];
        if has_stats {
            // In `top_paths`' order; looked up by path should it not be.
            let s = stats
                .get(i)
                .filter(|(p, _)| *p == path)
                .or_else(|| stats.iter().find(|(p, _)| *p == path));
            match s {
                Some((_, s)) => row.extend([
                    Cell::Bytes(s.get("bytes").map_or(0, num)),
                    Cell::Num(s.get("4xx").map_or(0, num)),
                    Cell::Num(s.get("5xx").map_or(0, num)),
                ]),
                None => row.extend([Cell::Empty, Cell::Empty, Cell::Empty]),
            }
        }
        if has_lat {
            match lat.iter().find(|(p, _)| *p == path) {
                Some((_, l)) => {
                    row.push(Cell::Micros(num(&l["p50_us"]) as u64));
                    row.push(Cell::Micros(num(&l["p99_us"]) as u64));
                }
                None => row.extend([Cell::Empty, Cell::Empty]),
            }
        }
        t.row(row);
    }
    let mut out = String::new();
    t.write(&mut out);
    more_rows(&mut out, total);
    out
}

/// A `[key, count]` list as a ranked table, in its own order.
fn listed(summary: &Value, key: &str, head: &'static str, whole: u128) -> String {
    let entries = as_points(summary.get(key));
    if entries.is_empty() {
        return String::new();
    }
    let total = entries.len();
    let mut t = Table::new(&[head, "#Requests", "#Share"]);
    for (k, v) in entries.into_iter().take(MAX_ROWS) {
        t.row(vec![Cell::Text(k), Cell::Num(v), Cell::Share(v, whole)]);
    }
    let mut out = String::new();
    t.write(&mut out);
    more_rows(&mut out, total);
    out
}

fn not_found(summary: &Value, n: &Numbers) -> String {
    let all_404 = pairs(summary.get("status"))
        .into_iter()
        .find(|(code, _)| code == "404")
        .map_or(0, |(_, v)| num(v));
    let table = listed(summary, "top_not_found", "Path", all_404);
    if table.is_empty() {
        return table;
    }
    format!(
        "<div class=\"sub\">{} requests answered 404 Not Found ({} of all); share of the 404s:</div>{table}",
        int(all_404),
        pct(all_404, n.requests)
    )
}

fn referrers(summary: &Value, n: &Numbers) -> String {
    let table = listed(summary, "top_referrers", "Referring host", n.requests);
    if table.is_empty() {
        return table;
    }
    format!("<div class=\"sub\">\"-\" is direct traffic (no referer).</div>{table}")
}

fn agents(summary: &Value, n: &Numbers) -> String {
    let mut out = String::new();
    for (key, head) in [
        ("top_browsers", "Browser"),
        ("top_operating_systems", "Operating system"),
        ("top_crawlers", "Crawler"),
    ] {
        let table = listed(summary, key, head, n.requests);
        if !table.is_empty() {
            let _ = write!(out, "<div class=\"col\">{table}</div>");
        }
    }
    if out.is_empty() {
        return out;
    }
    format!("<div class=\"cols\">{out}</div>")
}

fn latency(summary: &Value) -> String {
    let Some(l) = summary.get("latency") else {
        return String::new();
    };
    let count = num(&l["count"]);
    let mean = num(&l["sum_us"]).checked_div(count).unwrap_or(0);
    let mut out = String::from("<div class=\"cards\">");
    card(&mut out, "Requests timed", &int(count), "");
    card(&mut out, "Mean", &micros(mean as u64), "exact");
    for (k, name) in [("p50_us", "p50"), ("p90_us", "p90"), ("p99_us", "p99")] {
        card(&mut out, name, &micros(num(&l[k]) as u64), "within −3.1 %");
    }
    card(&mut out, "Max", &micros(num(&l["max_us"]) as u64), "exact");
    out.push_str("</div>");
    let per_path = pairs(summary.get("top_paths_latency"));
    if !per_path.is_empty() {
        let mut t = Table::new(&["Path", "#Timed", "#Mean", "#p50", "#p90", "#p99", "#Max"]);
        for (path, l) in per_path.into_iter().take(MAX_ROWS) {
            let c = num(&l["count"]);
            let mean = num(&l["sum_us"]).checked_div(c).unwrap_or(0);
            t.row(vec![
                Cell::Text(path),
                Cell::Num(c),
                Cell::Micros(mean as u64),
                Cell::Micros(num(&l["p50_us"]) as u64),
                Cell::Micros(num(&l["p90_us"]) as u64),
                Cell::Micros(num(&l["p99_us"]) as u64),
                Cell::Micros(num(&l["max_us"]) as u64),
            ]);
        }
        out.push_str("<div style=\"height:10px\"></div>");
        t.write(&mut out);
    }
    out
}

fn rejected(summary: &Value, n: &Numbers, lines: &[&[u8]]) -> String {
    if summary.get("rejected").is_none() {
        return String::new();
    }
    let mut out = format!(
        "<p>{} of {} lines were rejected ({}).</p>",
        int(n.rejected),
        int(n.lines),
        pct(n.rejected, n.lines)
    );
    let samples: Vec<u128> = summary
        .get("rejected_samples")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(num).collect())
        .unwrap_or_default();
    for (i, line_no) in samples.iter().enumerate() {
        let _ = write!(out, "<div class=\"sub\">line {}</div>", int(*line_no));
        if let Some(raw) = lines.get(i) {
            let text = String::from_utf8_lossy(raw);
            let _ = write!(
                out,
                "<pre>{}</pre>",
                esc(&super::html::cut(&text, REJECTED_CHARS))
            );
        }
    }
    out
}

/// Keys no section draws (added by a newer parpipe, or a plugged-in
/// stage's dimension): drawn generically, maps and pair lists as tables.
fn more(summary: &Value) -> String {
    let Some(map) = summary.as_object() else {
        return String::new();
    };
    let mut out = String::new();
    for (key, value) in map {
        if DRAWN.contains(&key.as_str()) || key == "final" {
            continue;
        }
        let _ = write!(out, "<h3>{}</h3>", esc(key));
        generic(&mut out, value);
    }
    out
}

/// A value as a table (a map or a list of `[key, value]` pairs), a list
/// of numbers, or plain text.
fn generic(out: &mut String, value: &Value) {
    let entries = pairs(Some(value));
    if entries.is_empty() {
        let _ = write!(
            out,
            "<pre>{}</pre>",
            esc(&super::html::cut(&value.to_string(), 2000))
        );
        return;
    }
    let mut columns: Vec<String> = Vec::new();
    for (_, v) in &entries {
        if let Some(o) = v.as_object() {
            for k in o.keys() {
                if !columns.contains(k) && columns.len() < 12 {
                    columns.push(k.clone());
                }
            }
        }
    }
    let _ = write!(
        out,
        "<div class=\"tw\"><table class=\"sort\"><thead><tr><th>Key</th>"
    );
    if columns.is_empty() {
        out.push_str("<th class=\"n\">Value</th>");
    }
    for c in &columns {
        let _ = write!(out, "<th class=\"n\">{}</th>", esc(c));
    }
    out.push_str("</tr></thead><tbody>");
    let cell = |out: &mut String, v: Option<&Value>| match v {
        Some(v) if v.is_number() => {
            let _ = write!(
                out,
                "<td class=\"n\" data-v=\"{}\">{}</td>",
                num(v),
                int(num(v))
            );
        }
        Some(v) => {
            let _ = write!(
                out,
                "<td class=\"n\" data-v=\"0\">{}</td>",
                esc(&super::html::cut(&v.to_string(), 160))
            );
        }
        None => out.push_str("<td class=\"n\" data-v=\"-1\">–</td>"),
    };
    for (k, v) in entries.iter().take(MAX_ROWS) {
        let _ = write!(
            out,
            "<tr><td class=\"t\">{}</td>",
            esc(&super::html::cut(k, 160))
        );
        if columns.is_empty() {
            cell(out, Some(v));
        }
        for c in &columns {
            cell(out, v.get(c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    more_rows(out, entries.len());
}
