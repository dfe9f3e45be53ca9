//! The "Custom dimensions" section: each dimension a plugged-in stage
//! declared (`dimensions` in `summary.json`, docs/logs-workload.md §4b) as
//! a sortable table of its values. Names and values come from the plugin
//! and are escaped like any text from a log.

use super::html::{esc, int, Cell, Table};
use super::page::MAX_ROWS;
use super::summary::num;
use serde_json::Value;
use std::fmt::Write as _;

/// The section's HTML; empty when the summary has no `dimensions`.
pub fn section(summary: &Value, requests: u128) -> String {
    let Some(dims) = summary.get("dimensions").and_then(Value::as_object) else {
        return String::new();
    };
    let mut out = String::new();
    for (name, rows) in dims {
        let _ = write!(out, "<h3>{}</h3>", esc(name));
        let rows = rows.as_array().map(Vec::as_slice).unwrap_or_default();
        if rows.is_empty() {
            out.push_str("<div class=\"sub\">No record had this field.</div>");
            continue;
        }
        let mut t = Table::new(&["Value", "#Requests", "#Share", "#Bytes", "#4xx", "#5xx"]);
        for row in rows.iter().take(MAX_ROWS) {
            let field = |k: &str| row.get(k).map_or(0, num);
            let hits = field("hits");
            let value = row.get("value").and_then(Value::as_str).unwrap_or_default();
            t.row(vec![
                Cell::Text(value.to_string()),
                Cell::Num(hits),
                Cell::Share(hits, requests),
                Cell::Bytes(field("bytes")),
                Cell::Num(field("4xx")),
                Cell::Num(field("5xx")),
            ]);
        }
        t.write(&mut out);
        if rows.len() > MAX_ROWS {
            let _ = write!(
                out,
                "<div class=\"more\">{} more in summary.json</div>",
                int((rows.len() - MAX_ROWS) as u128)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each dimension is a table of its values; a hostile name or value
    /// is text, never markup; no `dimensions` key, no section.
    #[test]
    fn dimensions_are_tables_with_every_text_escaped() {
        let summary: Value = serde_json::json!({
            "parsed": 4, "dropped": 0,
            "dimensions": {
                "country": [
                    {"4xx": 1, "5xx": 0, "bytes": 300, "hits": 3, "value": "NL"},
                    {"4xx": 0, "5xx": 1, "bytes": 7, "hits": 1, "value": "<script>alert(1)</script>"}
                ],
                "<b>team</b>": []
            }
        });
        let html = section(&summary, 4);
        assert!(
            !html.contains("<script>") && !html.contains("<b>"),
            "{html}"
        );
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("<h3>&lt;b&gt;team&lt;/b&gt;</h3>"), "{html}");
        assert!(html.contains("<h3>country</h3>"), "{html}");
        assert_eq!(html.matches("<table class=\"sort\">").count(), 1, "{html}");
        assert_eq!(
            html.matches("<tr>").count(),
            3,
            "a heading and two values: {html}"
        );
        assert!(html.contains(">NL<"), "{html}");
        assert_eq!(section(&serde_json::json!({"parsed": 4}), 4), "");
        // The whole page places it under its own heading, not "More keys".
        let page = super::super::html(&summary.to_string(), &[]);
        assert!(page.contains("<section id=\"dimensions\""), "{page}");
        assert!(!page.contains("id=\"more\""), "{page}");
        assert!(!page.contains("<script>alert"), "{page}");
    }
}
