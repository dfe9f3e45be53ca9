//! The exposition formats of `/metrics` ([`Format`]): which one a
//! scraper's `Accept` header asks for, and the text of a registry in
//! either (prometheus-client writes OpenMetrics; the text format 0.0.4 is
//! rewritten from it).

use prometheus_client::registry::Registry;

/// The exposition formats `/metrics` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
    /// `text/plain; version=0.0.4` (what `promtool check metrics`, the
    /// node_exporter textfile collector and older scrapers read).
    Text,
}

impl Format {
    /// The `Content-Type` of this format.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }

    /// The format an `Accept` header prefers: OpenMetrics when it weighs
    /// `application/openmetrics-text` above `text/plain` (as Prometheus
    /// does), the text format otherwise (also with no header, `*/*`, or
    /// nothing this server speaks).
    pub(crate) fn negotiate(accept: Option<&str>) -> Format {
        let (mut open, mut text) = (0.0f32, 0.0f32);
        for range in accept.unwrap_or("").split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let mut q = 1.0f32;
            for param in parts {
                if let Some(v) = param
                    .strip_prefix("q=")
                    .or_else(|| param.strip_prefix("Q="))
                {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
            match media.as_str() {
                "application/openmetrics-text" => open = open.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if open > 0.0 && open > text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// The exposition text of `registry` in `format`.
pub(crate) fn render(registry: &Registry, format: Format) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(match format {
        Format::OpenMetrics => text,
        Format::Text => to_text_format(&text),
    })
}

/// OpenMetrics as written by prometheus-client, rewritten into the text
/// format 0.0.4: a counter's HELP and TYPE name its samples' `_total`
/// name, an info family becomes a gauge named `_info`, and `# UNIT` and
/// `# EOF` go (the unit stays in the name).
fn to_text_format(open_metrics: &str) -> String {
    let lines: Vec<&str> = open_metrics.lines().collect();
    let mut out = String::with_capacity(open_metrics.len());
    for (i, line) in lines.iter().enumerate() {
        if *line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        // prometheus-client writes HELP just before TYPE.
        let kind_of = |name: &str| {
            lines[i..]
                .iter()
                .find_map(|l| {
                    l.strip_prefix("# TYPE ")?
                        .strip_prefix(name)?
                        .strip_prefix(' ')
                })
                .unwrap_or("")
        };
        let renamed = |name: &str, kind: &str| match kind {
            "counter" => format!("{name}_total"),
            "info" => format!("{name}_info"),
            _ => name.to_string(),
        };
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push_str(&format!("# HELP {} {help}\n", renamed(name, kind_of(name))));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let kind_04 = match kind {
                "info" => "gauge",
                "unknown" => "untyped",
                k => k,
            };
            out.push_str(&format!("# TYPE {} {kind_04}\n", renamed(name, kind)));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}
