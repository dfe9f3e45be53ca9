//! [`JsonLines`]: one JSON value per line, through `serde_json`.

use super::parsed::{LineError, LineFormat, ParsedLines};
use super::split;
use crate::sources::lines::input::InputSpec;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::ops::ControlFlow;

/// Records of JSON-lines inputs (files, gzip files, standard input): every
/// line is one JSON value, deserialized into `T`. An empty line, or one
/// that is not a `T`, is an error naming its record. Build it with
/// [`JsonLines::new`].
pub type JsonLines<T> = ParsedLines<JsonRows<T>>;

/// The [`LineFormat`] of [`JsonLines`]: one JSON value per line into `T`.
pub struct JsonRows<T>(PhantomData<fn() -> T>);

impl<T> Clone for JsonRows<T> {
    fn clone(&self) -> Self {
        JsonRows(PhantomData)
    }
}

impl<T: DeserializeOwned + Send + 'static> JsonLines<T> {
    /// Records of `inputs`, in order (nothing is opened yet).
    pub fn new(inputs: Vec<InputSpec>) -> Self {
        ParsedLines::with_format(inputs, JsonRows(PhantomData))
    }
}

impl<T: DeserializeOwned + Send + 'static> LineFormat for JsonRows<T> {
    type Record = T;

    fn parse_each(
        &self,
        text: &[u8],
        each: &mut dyn FnMut(T) -> ControlFlow<()>,
    ) -> Result<(), LineError> {
        // The text is checked to be UTF-8 once, in one vectorised pass, and
        // each line parsed as a `str`: parsed from bytes, serde_json checks
        // every string it reads on its own, which costs more than the
        // rest of the framework together. A line that is not UTF-8 is named as
        // any bad line is, after the lines before it.
        let (valid, bad_utf8) = match std::str::from_utf8(text) {
            Ok(all) => (all, None),
            Err(e) => {
                let (valid, _) = text.split_at(e.valid_up_to());
                (std::str::from_utf8(valid).unwrap_or_default(), Some(e))
            }
        };
        let mut lines = split::lines(valid.as_bytes());
        let mut index = 0;
        let mut start = 0;
        for (line, end) in lines.by_ref() {
            let err = |message: String| LineError { index, message };
            if line.iter().all(u8::is_ascii_whitespace) {
                return Err(err("empty line (a JSON value was expected)".into()));
            }
            // A line starts after a LF and ends before one: both are
            // character boundaries.
            let line = valid.get(start..start + line.len()).unwrap_or_default();
            let record =
                serde_json::from_str(line).map_err(|e| err(format!("not a record: {e}")))?;
            if each(record).is_break() {
                return Ok(());
            }
            start = end;
            index += 1;
        }
        if let Some(e) = bad_utf8 {
            return Err(LineError {
                index,
                message: format!(
                    "not a record: the line is not UTF-8 text (byte {} of the line)",
                    e.valid_up_to() - start + 1
                ),
            });
        }
        if !lines.rest().is_empty() {
            return Err(LineError {
                index,
                message: "the line has no line feed".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Ev {
        user: String,
    }

    #[test]
    fn one_value_per_line_and_errors_name_the_line() {
        let rows = JsonRows::<Ev>(PhantomData);
        let mut out = Vec::new();
        rows.parse(b"{\"user\":\"a\"}\r\n{\"user\":\"b\"}\n", &mut out)
            .unwrap();
        assert_eq!(
            out.iter().map(|e| e.user.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let e = rows
            .parse(b"{\"user\":\"a\"}\n{\"user\":1}\n", &mut Vec::new())
            .unwrap_err();
        assert_eq!(e.index, 1);
        let e = rows
            .parse(b"{\"user\":\"a\"}\n\n", &mut Vec::new())
            .unwrap_err();
        assert_eq!((e.index, e.message.contains("empty")), (1, true));
        // Not UTF-8: named after the good lines before it, and a bad line
        // before it is named first.
        let e = rows
            .parse(b"{\"user\":\"a\"}\n{\"user\":\"\xff\"}\n", &mut Vec::new())
            .unwrap_err();
        assert_eq!((e.index, e.message.contains("UTF-8")), (1, true), "{e:?}");
        assert!(e.message.contains("byte 10 of the line"), "{e:?}");
        let e = rows
            .parse(b"{\"user\":1}\n{\"user\":\"\xff\"}\n", &mut Vec::new())
            .unwrap_err();
        assert_eq!((e.index, e.message.contains("UTF-8")), (0, false), "{e:?}");
        let mut out = Vec::new();
        rows.parse("{\"user\":\"ünï\"}\n".as_bytes(), &mut out)
            .unwrap();
        assert_eq!(out[0].user, "ünï");
    }
}
