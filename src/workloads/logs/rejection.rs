//! The rejected-lines threshold (docs/log-formats.md, "When most lines are
//! rejected"): a run whose lines are mostly rejected is reading the wrong
//! format, so it fails, showing the first rejected line and the built-in
//! formats that read the first rejected lines.

use super::format::{self, LogFormat, Outcome};
use super::metrics::LogsPartial;
use crate::stage::StageError;
use serde::{Deserialize, Serialize};

/// The default `--max-rejected-ratio`, in millionths: fail above 90 %.
pub const DEFAULT_MAX_REJECTED_PPM: u32 = 900_000;

/// Most bytes of a rejected line kept for the message and the detection.
pub const KEPT_LINE_BYTES: usize = 4096;

/// The check run before any output is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectCheck {
    /// The format the lines were read with.
    pub format: LogFormat,
    /// The largest share of rejected lines that passes, in millionths.
    pub max_ppm: u32,
}

impl RejectCheck {
    /// `Err` when more than `max_ppm` of the lines that are not directives
    /// were rejected.
    pub fn verdict(&self, result: &LogsPartial) -> Result<(), StageError> {
        let counted = u128::from(result.parsed) + u128::from(result.rejected);
        if counted == 0
            || u128::from(result.rejected) * 1_000_000 <= u128::from(self.max_ppm) * counted
        {
            return Ok(());
        }
        let tenths = |n: u128| format!("{}.{}", n / 10, n % 10);
        let share = tenths(u128::from(result.rejected) * 1000 / counted);
        let limit = tenths(u128::from(self.max_ppm) / 1000);
        let samples: Vec<&[u8]> = result.rejected_lines.iter().map(|l| &l[..]).collect();
        let first = match (result.rejected_samples.first(), samples.first()) {
            (Some(n), Some(line)) => {
                let text = String::from_utf8_lossy(line);
                // Control bytes would garble the terminal: shown escaped.
                let text: String = text
                    .chars()
                    .take(300)
                    .flat_map(|c| {
                        let shown: Vec<char> = if c.is_control() {
                            c.escape_default().collect()
                        } else {
                            vec![c]
                        };
                        shown
                    })
                    .collect();
                format!("; the first, line {n}: {text}")
            }
            _ => String::new(),
        };
        let likely = likely_formats(&samples, &self.format.name);
        let hint = if likely.is_empty() {
            "no built-in format reads it: describe the server's own format with \
             nginx:'…', apache:'…' or json:KEY=PATH (docs/log-formats.md)"
                .to_string()
        } else {
            format!("it reads as --log-format {}", likely.join(" or "))
        };
        Err(StageError::new(format!(
            "{} of {counted} lines ({share} %) were rejected by --log-format {} \
             (more than {limit} %, --max-rejected-ratio){first}; {hint}",
            result.rejected, self.format.name
        )))
    }
}

/// The built-in formats (other than `tried`) that read the most of
/// `samples`, in the order of [`format::BUILT_IN`]; empty when none reads
/// any. A `#Fields:` line among the samples is tried as a W3C header.
pub fn likely_formats(samples: &[&[u8]], tried: &str) -> Vec<String> {
    let mut candidates: Vec<(String, LogFormat)> = format::BUILT_IN
        .iter()
        .filter(|n| **n != tried)
        .filter_map(|n| Some((n.to_string(), LogFormat::built_in(n)?)))
        .collect();
    if let Some(fields) = samples.iter().find_map(|l| l.strip_prefix(b"#Fields:")) {
        if let Ok(w) = LogFormat::parse(&format!("w3c:{}", String::from_utf8_lossy(fields))) {
            candidates.retain(|(n, _)| n != "w3c");
            candidates.push(("w3c".into(), w));
        }
    }
    let mut best = (0, Vec::new());
    for (name, f) in candidates {
        let read = samples
            .iter()
            .filter(|l| matches!(f.parse_line(l), Outcome::Parsed(_)))
            .count();
        if read > best.0 {
            best = (read, vec![name]);
        } else if read == best.0 && read > 0 {
            best.1.push(name);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partial(parsed: u64, lines: &[&[u8]]) -> LogsPartial {
        LogsPartial {
            parsed,
            rejected: lines.len() as u64,
            rejected_samples: (1..=lines.len() as u64).collect(),
            rejected_lines: lines
                .iter()
                .map(|l| serde_bytes::ByteBuf::from(l.to_vec()))
                .collect(),
            ..LogsPartial::default()
        }
    }

    #[test]
    fn fails_above_the_ratio_naming_the_line_and_the_likely_format() {
        let caddy: &[u8] = br#"{"ts":1702900801.5,"request":{"client_ip":"192.0.2.1","method":"GET","uri":"/"},"status":200,"size":5,"duration":0.01}"#;
        let check = RejectCheck {
            format: LogFormat::default(),
            max_ppm: DEFAULT_MAX_REJECTED_PPM,
        };
        let err = check
            .verdict(&partial(0, &[caddy, caddy, caddy]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("3 of 3 lines (100.0 %)"), "{err}");
        assert!(err.contains("--log-format combined"), "{err}");
        assert!(err.contains("line 1: {\"ts\""), "{err}");
        assert!(err.contains("it reads as --log-format caddy"), "{err}");
        // 9 of 10 is not above 90 %; 10 of 11 is.
        assert!(check.verdict(&partial(1, &[&b"x"[..]; 9])).is_ok());
        assert!(check.verdict(&partial(1, &[&b"x"[..]; 10])).is_err());
        assert!(check.verdict(&LogsPartial::default()).is_ok());
        let strict = RejectCheck {
            max_ppm: 0,
            ..check
        };
        let err = strict
            .verdict(&partial(100, &[b"garbage"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no built-in format reads it"), "{err}");
    }

    #[test]
    fn a_w3c_header_among_the_rejects_is_tried() {
        let lines: &[&[u8]] = &[
            b"#Fields: date time c-ip cs-method cs-uri-stem sc-status",
            b"2023-12-18 12:00:00 192.0.2.1 GET / 200",
        ];
        assert_eq!(likely_formats(lines, "combined"), vec!["w3c".to_string()]);
        let vhost: &[u8] = b"www.example.com:443 192.0.2.7 - - [10/Oct/2000:13:55:36 -0700] \"GET /a HTTP/1.1\" 404 12 \"-\" \"curl\"";
        assert_eq!(
            likely_formats(&[vhost], "combined"),
            vec!["vcombined".to_string()]
        );
    }
}
