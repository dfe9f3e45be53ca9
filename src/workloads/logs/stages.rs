//! The `logs` transforming stages: `parse` (preprocess: raw lines → parsed
//! records or rejects) and `enrich` (transform: status class, UTC hour, bot
//! flag). Parsed fields are kept as spans into the batch's own line buffer,
//! so a batch costs a few allocations whatever its size.
//!
//! The batches each stage makes live in `parsed` and `enriched`, the
//! stages themselves in `parse` and `enrich`; all are re-exported here.

mod enrich;
mod enriched;
mod parse;
mod parsed;

pub use enrich::Enrich;
pub use enriched::{EnrichedBatch, Enrichment};
pub use parse::Parse;
pub use parsed::{ParsedBatch, ParsedRecord, Span};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::lines::batch::LineBatch;
    use crate::stage::{BatchInfo, Stage};

    fn batch(lines: &[&[u8]]) -> LineBatch {
        let mut b = LineBatch::new(1);
        for l in lines {
            b.push_line(l).unwrap();
        }
        b
    }

    fn info() -> BatchInfo {
        BatchInfo {
            seq: 0,
            first_line: 1,
            records: 0,
        }
    }

    #[test]
    fn parse_keeps_valid_text_in_place_and_converts_invalid_utf8() {
        let lines = batch(&[
            b"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET /a?x=1 HTTP/1.0\" 200 2326 \"-\" \"Googlebot/2.1\"",
            b"garbage",
            b"h\xffst - - [10/Oct/2000:13:55:36 -0700] \"-\" 404 -",
        ]);
        let parsed = Parse::default().process(lines, &info()).unwrap();
        assert_eq!(parsed.rejected, vec![1]);
        assert_eq!(parsed.records.len(), 2);
        let (a, b) = (parsed.records[0], parsed.records[2 - 1]);
        assert_eq!(parsed.bytes(a.client), b"1.2.3.4");
        assert_eq!(parsed.bytes(a.path), b"/a");
        assert_eq!(parsed.bytes(a.method), b"GET");
        assert_eq!(b.index, 2);
        assert_eq!(parsed.bytes(b.client), "h\u{fffd}st".as_bytes());
        assert_eq!(parsed.bytes(b.method), b"-");
        assert_eq!(parsed.bytes(b.path), b"-");
        assert_eq!(b.user_agent, None);
        let enriched = Enrich::default().process(parsed, &info()).unwrap();
        assert!(enriched.enriched[0].bot);
        assert!(!enriched.enriched[1].bot);
        assert_eq!(enriched.enriched[0].status_class, 2);
        assert_eq!(enriched.enriched[1].status_class, 4);
        // 13:55:36 -0700 is 20:55:36 UTC.
        assert_eq!(enriched.enriched[0].hour.rem_euclid(24), 20);
    }
}
