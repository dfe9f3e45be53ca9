//! `report.html`'s tables: status codes, methods, hosts, clients, paths,
//! 404s, referrers, user agents, latency, rejected lines and any other
//! key, each drawn from the summary keys it needs.

use super::page::{as_points, card, DRAWN, MAX_ROWS, REJECTED_CHARS};
use super::html::{esc, int, micros, pct, Cell, Table};
use super::status_names::{class_name, reason};
use super::summary::{num, pairs, Numbers};
use serde_json::Value;
use std::fmt::Write as _;

fn class_index(class: &str) -> usize {
    class
        .as_bytes()
        .first()
        .map_or(0, |d| (d.wrapping_sub(b'0') as usize).min(9))
}

pub(super) fn status(summary: &Value, n: &Numbers) -> String {
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
    let mut entries = entries;
    entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    in_order(entries, head, whole)
}

/// `entries` as a ranked table, in their own order.
fn in_order(entries: Vec<(String, u128)>, head: &'static str, whole: u128) -> String {
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

fn more_rows(out: &mut String, total: usize) {
    if total > MAX_ROWS {
        let _ = write!(
            out,
            "<div class=\"more\">{} more in summary.json</div>",
            int((total - MAX_ROWS) as u128)
        );
    }
}

pub(super) fn methods(summary: &Value, n: &Numbers) -> String {
    ranked(as_points(summary.get("methods")), "Method", n.requests)
}

pub(super) fn vhosts(summary: &Value, n: &Numbers) -> String {
    ranked(as_points(summary.get("vhosts")), "Virtual host", n.requests)
}

pub(super) fn clients(summary: &Value, n: &Numbers) -> String {
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

pub(super) fn paths(summary: &Value, n: &Numbers) -> String {
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
    in_order(as_points(summary.get(key)), head, whole)
}

pub(super) fn not_found(summary: &Value, n: &Numbers) -> String {
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

pub(super) fn referrers(summary: &Value, n: &Numbers) -> String {
    let table = listed(summary, "top_referrers", "Referring host", n.requests);
    if table.is_empty() {
        return table;
    }
    format!("<div class=\"sub\">\"-\" is direct traffic (no referer).</div>{table}")
}

pub(super) fn agents(summary: &Value, n: &Numbers) -> String {
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

pub(super) fn latency(summary: &Value) -> String {
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

pub(super) fn rejected(summary: &Value, n: &Numbers, lines: &[&[u8]]) -> String {
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
pub(super) fn more(summary: &Value) -> String {
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
