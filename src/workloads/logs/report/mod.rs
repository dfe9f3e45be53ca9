//! What a person reads after a `logs` run: `report.html`, one
//! self-contained page drawn from the summary (no network, no external
//! asset; it opens from disk), and a few lines on the terminal.
//!
//! Both are drawn from the `summary.json` value, not from the lines: a
//! report of a billion lines is the size of its summary, and a key the
//! summary lacks (latency of a format without durations, `vhosts`, …) is
//! simply not shown. Keys no section knows are drawn generically under
//! "More keys". Every text that came from a log is HTML-escaped.
//!
//! - `custom.rs`: the dimensions plugged-in stages declared.
//! - `page.rs`: the sections; `page.css`, `page.js` (table sorting),
//!   inlined.
//! - `html.rs`: escaping, number formats, tables, bar charts (SVG).
//! - `series.rs`: time buckets regrouped for a chart.
//! - `status_names.rs`: reason phrases (`404 Not Found`).
//! - `summary.rs`: the numbers every view reads from the summary.
//! - `terminal.rs`: the human summary on the terminal.
//! - `traffic.rs`: the dashboard's traffic panels from a running partial.

mod custom;
mod html;
mod page;
mod series;
mod status_names;
mod summary;
mod tables;
#[cfg(feature = "cli")]
mod terminal;
pub mod traffic;

#[cfg(feature = "cli")]
pub use super::sink::SUMMARY_FILE;

/// Name of the report file, written beside `summary.json`.
pub const REPORT_FILE: &str = "report.html";

/// `report.html` for the summary whose JSON text is `summary_json` (as
/// written to `summary.json`), with the raw bytes of the first rejected
/// lines (may be empty). The same summary always gives the same bytes.
pub fn html(summary_json: &str, rejected_lines: &[&[u8]]) -> String {
    let value = serde_json::from_str(summary_json).unwrap_or(serde_json::Value::Null);
    page::render(&value, rejected_lines)
}

/// The human summary of `summary_json` for the terminal: a few lines,
/// each ending with LF.
#[cfg(feature = "cli")]
pub fn terminal_summary(summary_json: &str) -> String {
    match serde_json::from_str(summary_json) {
        Ok(value) => terminal::render(&value),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests;
