//! Bounded decoding: the same values as plain bincode for every valid
//! input, and a clear error, without the allocation, for declared lengths
//! beyond the input.

use super::*;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Unit,
    Newtype(String),
    Tuple(u8, Vec<u64>),
    Struct { name: String, tags: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Everything {
    text: String,
    path: PathBuf,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
    seq: Vec<u8>,
    nested: Vec<Vec<u32>>,
    map: HashMap<String, u64>,
    sorted: BTreeMap<u64, String>,
    maybe: Option<Box<Shape>>,
    shapes: Vec<Shape>,
    wide: (u128, i128, i64, f64, bool, char),
}

fn plain<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), String> {
    bincode::serde::decode_from_slice(bytes, bincode_config()).map_err(|e| e.to_string())
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(v, bincode_config()).unwrap()
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Unit),
        ".{0,8}".prop_map(Shape::Newtype),
        (any::<u8>(), prop::collection::vec(any::<u64>(), 0..4))
            .prop_map(|(a, b)| Shape::Tuple(a, b)),
        (".{0,6}", prop::collection::vec(".{0,4}", 0..3))
            .prop_map(|(name, tags)| Shape::Struct { name, tags }),
    ]
}

fn everything() -> impl Strategy<Value = Everything> {
    (
        (
            ".{0,12}",
            "[a-z/]{0,12}",
            prop::collection::vec(any::<u8>(), 0..40),
        ),
        (
            prop::collection::vec(any::<u8>(), 0..40),
            prop::collection::vec(prop::collection::vec(any::<u32>(), 0..4), 0..4),
        ),
        (
            prop::collection::hash_map(".{0,5}", any::<u64>(), 0..5),
            prop::collection::btree_map(any::<u64>(), ".{0,5}", 0..5),
        ),
        (
            prop::option::of(shape()),
            prop::collection::vec(shape(), 0..4),
        ),
        (
            any::<u128>(),
            any::<i128>(),
            any::<i64>(),
            -1e300f64..1e300,
            any::<bool>(),
            any::<char>(),
        ),
    )
        .prop_map(
            |((text, path, blob), (seq, nested), (map, sorted), (maybe, shapes), wide)| {
                Everything {
                    text,
                    path: PathBuf::from(path),
                    blob,
                    seq,
                    nested,
                    map,
                    sorted,
                    maybe: maybe.map(Box::new),
                    shapes,
                    wide,
                }
            },
        )
}

proptest! {
    // No regression files: the project's top level is fixed.
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Every valid encoding decodes to the same value as with plain bincode.
    #[test]
    fn valid_inputs_decode_as_plain_bincode_does(v in everything()) {
        let bytes = encode(&v);
        let (got, used): (Everything, usize) = decode_prefix(&bytes).unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(&got, &v);
        let (again, _): (Everything, usize) = plain(&bytes).unwrap();
        prop_assert_eq!(got, again);
    }

    /// Any truncation or byte change: the same verdict as plain bincode
    /// when plain bincode can be run without danger (no huge declared length).
    #[test]
    fn mutated_inputs_get_the_verdict_of_plain_bincode(
        v in everything(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encode(&v);
        let i = at.index(bytes.len());
        bytes[i] = byte;
        bytes.truncate(cut.index(bytes.len() + 1).max(1));
        let ours = decode_prefix::<Everything>(&bytes);
        // Plain bincode allocates declared lengths: only compare when every
        // varint could not declare more than a few KiB (single-byte ones).
        if bytes.iter().all(|&b| b < 251) {
            let theirs = plain::<Everything>(&bytes);
            match (&ours, &theirs) {
                (Ok((a, n)), Ok((b, m))) => {
                    // NaN != NaN: a changed byte can make one.
                    let same = a == b || format!("{:?}", a) == format!("{:?}", b);
                    prop_assert!(same);
                    prop_assert_eq!(n, m);
                }
                (Err(_), Err(_)) => {}
                // Ours may only refuse more: a sequence longer than the input.
                (Err(e), Ok(_)) => prop_assert!(e.to_string().contains("declares"), "{}", e),
                (Ok(_), Err(e)) => prop_assert!(false, "plain refused ({e}), ours accepted"),
            }
        }
    }
}

/// A value with `len` written as the varint bincode gives a u64.
fn varint(len: u64) -> Vec<u8> {
    encode(&len)
}

#[test]
fn a_declared_string_longer_than_the_input_is_refused() {
    for len in [1u64 << 40, u64::MAX, (isize::MAX as u64) + 1, 1000] {
        let mut bytes = varint(len);
        bytes.extend_from_slice(b"abc");
        let err = decode_prefix::<String>(&bytes).unwrap_err().to_string();
        assert!(
            err.contains("UnexpectedEnd") || err.contains("OutsideUsizeRange"),
            "{len}: {err}"
        );
        let err = decode_prefix::<PathBuf>(&bytes).unwrap_err();
        let _ = err;
        let err = decode_prefix::<serde_bytes::ByteBuf>(&bytes).unwrap_err();
        let _ = err;
    }
}

#[test]
fn a_declared_sequence_longer_than_the_input_is_refused() {
    let mut bytes = varint(1 << 40);
    bytes.extend_from_slice(&[1, 2, 3]);
    let err = decode_prefix::<Vec<u64>>(&bytes).unwrap_err().to_string();
    assert!(err.contains("declares 1099511627776 elements"), "{err}");
    let err = decode_prefix::<HashMap<u8, u8>>(&bytes)
        .unwrap_err()
        .to_string();
    assert!(err.contains("a map declares"), "{err}");
    // Zero-sized elements would loop as often as declared.
    let err = decode_prefix::<Vec<()>>(&bytes).unwrap_err().to_string();
    assert!(err.contains("declares"), "{err}");
}

#[test]
fn whole_refuses_trailing_bytes_and_names_the_value() {
    let mut bytes = encode(&7u64);
    assert_eq!(decode_whole::<u64>(&bytes, "count").unwrap(), 7);
    bytes.push(0);
    assert_eq!(
        decode_whole::<u64>(&bytes, "count").unwrap_err(),
        "1 trailing bytes after the count"
    );
    assert!(decode_whole::<u64>(&[], "count")
        .unwrap_err()
        .starts_with("count: "));
}
