//! Reading a `summary.json` value for the report and the terminal: the
//! numbers every view needs, whichever keys are present.

use serde_json::Value;

/// A JSON number as an integer (0 for anything else). A number above
/// 2^64 (a sum of bytes) arrives as a double and is rounded.
pub fn num(v: &Value) -> u128 {
    v.as_u64()
        .map(u128::from)
        .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u128))
        .unwrap_or(0)
}

/// The entries of a map (`{"k": v}`) or of a list of pairs
/// (`[["k", v], …]`), in their order; empty for anything else.
pub fn pairs(v: Option<&Value>) -> Vec<(String, &Value)> {
    match v {
        Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|e| match e.as_array().map(Vec::as_slice) {
                Some([Value::String(k), v]) => Some((k.clone(), v)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The totals the views share.
#[derive(Debug, Default, Clone)]
pub struct Numbers {
    /// Lines read.
    pub lines: u128,
    /// Lines parsed.
    pub parsed: u128,
    /// Lines rejected.
    pub rejected: u128,
    /// Parsed lines a plugged-in stage removed.
    pub dropped: u128,
    /// The requests counted: parsed minus dropped.
    pub requests: u128,
    /// Count per status class digit.
    pub class_counts: [u128; 10],
    /// Sum of the status counts.
    pub status_total: u128,
}

impl Numbers {
    /// The totals of `summary`.
    pub fn of(summary: &Value) -> Self {
        let get = |k: &str| summary.get(k).map_or(0, num);
        let mut n = Numbers {
            lines: get("lines"),
            parsed: get("parsed"),
            rejected: get("rejected"),
            dropped: get("dropped"),
            ..Numbers::default()
        };
        n.requests = n.parsed.saturating_sub(n.dropped);
        for (code, count) in pairs(summary.get("status")) {
            let class = code
                .bytes()
                .next()
                .map_or(0, |d| d.wrapping_sub(b'0') as usize);
            let count = num(count);
            n.class_counts[class.min(9)] += count;
            n.status_total += count;
        }
        n
    }

    /// Requests whose status is in class `digit`xx.
    pub fn class(&self, digit: usize) -> u128 {
        self.class_counts[digit]
    }

    /// The classes seen, as (`2xx`, count).
    pub fn classes(&self) -> Vec<(String, u128)> {
        (0..10)
            .filter(|&c| self.class_counts[c] > 0)
            .map(|c| (format!("{c}xx"), self.class_counts[c]))
            .collect()
    }
}
