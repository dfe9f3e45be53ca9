//! The short human summary printed after the engine's report (silenced
//! by `-q`): requests and valid share, clients, bytes, the top three
//! paths, the 4xx and 5xx shares, latency when present.

use super::html::{bytes, int, micros, pct};
use super::summary::{num, pairs, Numbers};
use serde_json::Value;
use std::fmt::Write as _;

/// Longest path shown on the terminal, in characters.
const PATH_CHARS: usize = 60;

/// The summary of `summary` (a `summary.json` value) in a few lines, each
/// ending with LF. Text from the log has its control characters replaced,
/// so that a hostile path cannot drive the terminal.
pub fn render(summary: &Value) -> String {
    let n = Numbers::of(summary);
    let mut out = String::new();
    let _ = write!(
        out,
        "traffic: {} requests, {} of {} lines valid",
        int(n.requests),
        pct(n.parsed, n.parsed + n.rejected),
        int(n.parsed + n.rejected)
    );
    if let Some(c) = summary.get("clients") {
        let _ = write!(out, ", {} clients", int(num(c)));
    }
    if let Some(b) = summary.get("bytes") {
        let _ = write!(out, ", {} sent", bytes(num(b)));
    }
    out.push('\n');
    let top = pairs(summary.get("top_paths"));
    if !top.is_empty() {
        out.push_str("top paths:");
        for (i, (path, hits)) in top.iter().take(3).enumerate() {
            let _ = write!(
                out,
                "{} {} ({})",
                if i == 0 { "" } else { "," },
                plain(path),
                pct(num(hits), n.requests)
            );
        }
        out.push('\n');
    }
    if n.status_total > 0 {
        let _ = writeln!(
            out,
            "errors: 4xx {}, 5xx {}",
            pct(n.class(4), n.status_total),
            pct(n.class(5), n.status_total)
        );
    }
    if let Some(l) = summary.get("latency") {
        let _ = writeln!(
            out,
            "latency: p50 {}, p99 {} ({} timed)",
            micros(num(&l["p50_us"]) as u64),
            micros(num(&l["p99_us"]) as u64),
            int(num(&l["count"]))
        );
    }
    out
}

/// `text` cut for a terminal line, controls (escape sequences) replaced.
fn plain(text: &str) -> String {
    let cut = super::html::cut(text, PATH_CHARS);
    cut.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_lines_with_the_key_numbers() {
        let s: Value = serde_json::from_str(
            r#"{"bots":0,"bytes":2048,"clients":2,"dropped":0,"hours":{},"lines":5,
            "methods":{"GET":4},"parsed":4,"rejected":1,"rejected_samples":[3],
            "status":{"200":2,"404":1,"503":1},"status_class_bytes":{},"top_clients":[],
            "top_paths":[["/a",2],["/b\u001b[31m",1],["/c",1],["/d",0]],
            "latency":{"count":4,"max_us":9000,"p50_us":1500,"p90_us":2000,"p99_us":8800,"sum_us":1}}"#,
        )
        .unwrap();
        let text = render(&s);
        assert_eq!(
            text,
            "traffic: 4 requests, 80.0 % of 5 lines valid, 2 clients, 2.00 KiB sent\n\
             top paths: /a (50.0 %), /b\u{fffd}[31m (25.0 %), /c (25.0 %)\n\
             errors: 4xx 25.0 %, 5xx 25.0 %\n\
             latency: p50 1.5 ms, p99 8.8 ms (4 timed)\n"
        );
        let mut s = s;
        s.as_object_mut().unwrap().remove("latency");
        assert!(!render(&s).contains("latency"));
    }
}
