//! Small HTML writers for the report: escaping, number formats, sortable
//! tables and bar charts. Every text that came from a log goes through
//! [`esc`]; numbers are written by this module only.

use std::fmt::Write as _;

/// `text` with `& < > " '` replaced by entities: safe in element content
/// and in quoted attribute values alike.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Controls would be invisible or break the layout: shown as U+FFFD.
            c if c.is_control() && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// `text` cut to at most `max` characters, with `…` when it was longer
/// (a path of megabytes must not make a report of megabytes).
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// `1234567` as `1,234,567`.
pub fn int(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// A byte count in binary units (`1.5 MiB`), exact below 1 KiB.
pub fn bytes(n: u128) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let digits = if value < 10.0 {
        2
    } else if value < 100.0 {
        1
    } else {
        0
    };
    format!("{value:.digits$} {}", UNITS[unit])
}

/// A duration in microseconds, in the unit that reads best, to three
/// significant digits (`850 µs`, `26.6 ms`, `1.5 s`).
pub fn micros(us: u64) -> String {
    let (value, unit) = match us {
        0..=999 => return format!("{us} µs"),
        1_000..=999_999 => (us as f64 / 1e3, "ms"),
        _ => (us as f64 / 1e6, "s"),
    };
    let decimals = if value < 10.0 {
        2
    } else if value < 100.0 {
        1
    } else {
        0
    };
    let digits = format!("{value:.decimals$}");
    let digits = if digits.contains('.') {
        digits.trim_end_matches('0').trim_end_matches('.')
    } else {
        &digits
    };
    format!("{digits} {unit}")
}

/// `part / whole` as a percentage with one decimal (`12.3 %`); `–` for
/// an empty whole.
pub fn pct(part: u128, whole: u128) -> String {
    if whole == 0 {
        return "–".to_string();
    }
    let p = part as f64 * 100.0 / whole as f64;
    if p > 0.0 && p < 0.1 {
        "<0.1 %".to_string()
    } else if part < whole && p >= 99.95 {
        // Not all: never rounded up to 100.
        ">99.9 %".to_string()
    } else {
        format!("{p:.1} %")
    }
}

/// One cell of a [`Table`].
pub enum Cell {
    /// Text from the log (escaped, cut to a readable length).
    Text(String),
    /// A short text of ours (a name), wrapped at spaces only.
    Word(&'static str),
    /// Markup this module made (already escaped).
    Raw(String),
    /// A number, shown formatted and sorted by value.
    Num(u128),
    /// Bytes, shown in binary units, sorted by value, exact on hover.
    Bytes(u128),
    /// A share of a whole, shown with a bar.
    Share(u128, u128),
    /// A duration in microseconds.
    Micros(u64),
    /// Nothing known.
    Empty,
}

/// Longest text shown in a table cell (the rest is in `summary.json`).
const CELL_CHARS: usize = 160;

/// A sortable table (the page's script sorts it by a click on a heading).
pub struct Table {
    /// Headings; a heading of a numeric column starts with `#`.
    heads: Vec<&'static str>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// A table with these headings (`#` first: a numeric column).
    pub fn new(heads: &[&'static str]) -> Self {
        Table {
            heads: heads.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (as many cells as headings).
    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    /// Writes the table into `out`.
    pub fn write(&self, out: &mut String) {
        out.push_str("<div class=\"tw\"><table class=\"sort\"><thead><tr>");
        for h in &self.heads {
            match h.strip_prefix('#') {
                Some(h) => {
                    let _ = write!(out, "<th class=\"n\">{}</th>", esc(h));
                }
                None => {
                    let _ = write!(out, "<th>{}</th>", esc(h));
                }
            }
        }
        out.push_str("</tr></thead><tbody>");
        for row in &self.rows {
            out.push_str("<tr>");
            for cell in row {
                write_cell(out, cell);
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table></div>");
    }
}

fn write_cell(out: &mut String, cell: &Cell) {
    let _ = match cell {
        Cell::Text(t) => {
            let shown = cut(t, CELL_CHARS);
            if shown.len() == t.len() {
                write!(out, "<td class=\"t\">{}</td>", esc(t))
            } else {
                write!(
                    out,
                    "<td class=\"t\" title=\"{}\">{}</td>",
                    esc(&cut(t, 2000)),
                    esc(&shown)
                )
            }
        }
        Cell::Word(w) => write!(out, "<td>{}</td>", esc(w)),
        Cell::Raw(html) => write!(out, "<td class=\"nw\">{html}</td>"),
        Cell::Num(n) => write!(out, "<td class=\"n\" data-v=\"{n}\">{}</td>", int(*n)),
        Cell::Bytes(n) => write!(
            out,
            "<td class=\"n\" data-v=\"{n}\" title=\"{} bytes\">{}</td>",
            int(*n),
            bytes(*n)
        ),
        Cell::Share(part, whole) => {
            let w = if *whole == 0 {
                0.0
            } else {
                *part as f64 * 100.0 / *whole as f64
            };
            write!(
                out,
                "<td class=\"n sh\" data-v=\"{w:.6}\"><span class=\"bar\" style=\"width:{w:.1}%\"></span>{}</td>",
                pct(*part, *whole)
            )
        }
        Cell::Micros(us) => write!(out, "<td class=\"n\" data-v=\"{us}\">{}</td>", micros(*us)),
        Cell::Empty => write!(out, "<td class=\"n\" data-v=\"-1\">–</td>"),
    };
}

/// One bar of a [`bars`] chart.
pub struct Bar {
    /// Its label (escaped here), e.g. a time bucket.
    pub label: String,
    /// Its value.
    pub value: u128,
}

/// A bar chart as inline SVG (bars only, stretched to the width) with
/// its labels in HTML, so that it stays readable at any width. `fmt`
/// writes a value (the axis maximum, the tooltips).
pub fn bars(out: &mut String, title: &str, series: &[Bar], fmt: fn(u128) -> String) {
    let max = series.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    let n = series.len().max(1);
    let _ = write!(
        out,
        "<figure class=\"chart\"><figcaption>{}</figcaption><div class=\"plot\"><span class=\"ymax\">{}</span>\
         <svg viewBox=\"0 0 {n} 100\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"{}\">",
        esc(title),
        esc(&fmt(max)),
        esc(title)
    );
    for (i, b) in series.iter().enumerate() {
        let h = b.value as f64 * 100.0 / max as f64;
        // A bar that is not zero stays visible.
        let h = if b.value > 0 { h.max(0.8) } else { 0.0 };
        let _ = write!(
            out,
            "<rect x=\"{}\" y=\"{:.2}\" width=\"{}\" height=\"{:.2}\"><title>{}: {}</title></rect>",
            i as f64 + 0.1,
            100.0 - h,
            0.8,
            h,
            esc(&b.label),
            esc(&fmt(b.value))
        );
    }
    out.push_str("</svg></div>");
    if let (Some(first), Some(last)) = (series.first(), series.last()) {
        let _ = write!(
            out,
            "<div class=\"xl\"><span>{}</span><span>{}</span></div>",
            esc(&first.label),
            esc(&last.label)
        );
    }
    out.push_str("</figure>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_attributes() {
        assert_eq!(
            esc("<script>alert('x')</script>&\"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;y&quot;"
        );
        assert_eq!(esc("a\u{0}b\nc"), "a\u{fffd}b\u{fffd}c");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(int(0), "0");
        assert_eq!(int(1234567), "1,234,567");
        assert_eq!(int(999), "999");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(10 << 30), "10.0 GiB");
        assert_eq!(micros(850), "850 µs");
        assert_eq!(micros(1500), "1.5 ms");
        assert_eq!(micros(2_500_000), "2.5 s");
        assert_eq!(micros(26_624), "26.6 ms");
        assert_eq!(micros(671_744), "672 ms");
        assert_eq!(micros(120_000), "120 ms");
        assert_eq!(micros(3_000_000), "3 s");
        assert_eq!(pct(1, 3), "33.3 %");
        assert_eq!(pct(1, 100_000), "<0.1 %");
        assert_eq!(pct(0, 0), "–");
        assert_eq!(pct(99_998, 100_000), ">99.9 %");
        assert_eq!(pct(5, 5), "100.0 %");
        assert_eq!(cut("abcdef", 3), "abc…");
        assert_eq!(cut("ab", 3), "ab");
    }
}
