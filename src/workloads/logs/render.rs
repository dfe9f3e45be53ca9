//! Rendering of the optional per-line outputs: `records.jsonl` objects and
//! `rejects.txt` lines. JSON strings are escaped exactly as serde_json does.

use super::stages::{Enrichment, ParsedBatch, ParsedRecord};
use super::time::write_timestamp;

/// Appends `LINE<TAB>raw line<LF>`; the raw bytes are kept as they were.
pub fn write_reject(out: &mut Vec<u8>, line_no: u64, raw: &[u8]) {
    out.extend_from_slice(itoa::Buffer::new().format(line_no).as_bytes());
    out.push(b'\t');
    out.extend_from_slice(raw);
    out.push(b'\n');
}

/// Appends one `records.jsonl` line.
pub fn write_record(
    out: &mut Vec<u8>,
    line_no: u64,
    batch: &ParsedBatch,
    r: &ParsedRecord,
    e: &Enrichment,
) {
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(b"{\"line\":");
    out.extend_from_slice(num.format(line_no).as_bytes());
    out.extend_from_slice(b",\"client\":");
    write_json_string(out, batch.bytes(r.client));
    out.extend_from_slice(b",\"time\":\"");
    write_timestamp(r.utc, out);
    out.extend_from_slice(b"\",\"method\":");
    write_json_string(out, batch.bytes(r.method));
    out.extend_from_slice(b",\"path\":");
    write_json_string(out, batch.bytes(r.path));
    out.extend_from_slice(b",\"status\":");
    out.extend_from_slice(num.format(r.status).as_bytes());
    out.extend_from_slice(b",\"bytes\":");
    out.extend_from_slice(num.format(r.bytes).as_bytes());
    out.extend_from_slice(if e.bot {
        b",\"bot\":true}\n"
    } else {
        b",\"bot\":false}\n"
    });
}

/// Appends `text` (valid UTF-8) as a JSON string, escaping like serde_json:
/// `"` and `\`, the short forms `\b \f \n \r \t`, other controls as `\u00XX`.
pub fn write_json_string(out: &mut Vec<u8>, text: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&text[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&text[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_match_serde_json() {
        for s in [
            "plain",
            "a\"b\\c",
            "tab\there\nnl\r\u{8}\u{c}",
            "\u{1}\u{1f}\u{7f}",
            "héllo ✓ \u{fffd}",
            "/x/y",
        ] {
            let mut out = Vec::new();
            write_json_string(&mut out, s.as_bytes());
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
    }

    #[test]
    fn reject_lines_keep_raw_bytes() {
        let mut out = Vec::new();
        write_reject(&mut out, 12, b"bad \xff line");
        assert_eq!(out, b"12\tbad \xff line\n");
    }
}
