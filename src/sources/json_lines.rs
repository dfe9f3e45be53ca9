//! [`JsonLines`]: one JSON value per line, through `serde_json`.

use super::parsed::{LineError, LineFormat, ParsedLines};
use super::split;
use crate::workloads::logs::input::InputSpec;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

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

    fn parse(&self, text: &[u8], out: &mut Vec<T>) -> Result<(), LineError> {
        let mut lines = split::lines(text);
        let mut index = 0;
        for (line, _) in lines.by_ref() {
            let err = |message: String| LineError { index, message };
            if line.iter().all(u8::is_ascii_whitespace) {
                return Err(err("empty line (a JSON value was expected)".into()));
            }
            out.push(serde_json::from_slice(line).map_err(|e| err(format!("not a record: {e}")))?);
            index += 1;
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
    }
}
