//! Bounded decoding: the one way parpipe turns bincode bytes from a peer
//! or a file into values ([`decode_prefix`], [`decode_whole`]), so that no
//! length a peer *declares* is allocated before it is checked against the
//! bytes actually in hand.
//!
//! bincode 2's serde decoder, left alone, trusts declared lengths in two
//! places (checked in bincode 2.0.1's `features/serde/de_borrowed.rs`):
//!
//! - `deserialize_string` and `deserialize_byte_buf` (a `String`, a
//!   `PathBuf`, a `serde_bytes` buffer) go through `Vec<u8>::decode`, which
//!   allocates `vec![0; len]` *before* reading: a 15-byte frame declaring
//!   2^40 bytes aborts the process. A configured limit
//!   (`with_limit::<N>()`) would only lower that to N, not to the input.
//! - `deserialize_seq` and `deserialize_map` claim nothing at all: the
//!   declared length goes to the visitor as its size hint, and serde's own
//!   collections preallocate up to 1 MiB from it (more for a hand-written
//!   visitor), and loop as many times as declared for zero-sized elements.
//!
//! [`Guard`] wraps the decoder to close both: an owned string or byte
//! buffer is read as a borrowed slice first (bincode checks the declared
//! length against the bytes left before borrowing) and copied only then;
//! a sequence or map that declares more elements than the input has bytes
//! is refused before the visitor sees it (every element but a zero-sized
//! one takes at least a byte), and the size hint a visitor gets is at most
//! a sixteenth of the input length. So decoding `n` bytes allocates at
//! most `n` bytes for any string or byte buffer, preallocates at most
//! `n / 16` elements for any collection, and otherwise grows only with
//! elements actually read (see `docs/protocol.md`, §5, Decoding, for the measured
//! bounds).

use serde::de::{
    DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use std::fmt;
use std::marker::PhantomData;

/// The bincode configuration of everything parpipe encodes and decodes.
pub(crate) fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Decodes one `T` from the start of `bytes` with every declared length
/// bounded by `bytes.len()`; returns it and the number of bytes it took.
pub fn decode_prefix<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<(T, usize), bincode::error::DecodeError> {
    let seed = Root::<T> {
        budget: bytes.len(),
        _t: PhantomData,
    };
    bincode::serde::seed_decode_from_slice(seed, bytes, bincode_config())
}

/// Decodes exactly one `T` from all of `bytes` (see [`decode_prefix`]);
/// trailing bytes are an error. `what` names the value in messages.
pub fn decode_whole<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, String> {
    let (value, used) = decode_prefix(bytes).map_err(|e| format!("{what}: {e}"))?;
    if used != bytes.len() {
        return Err(format!(
            "{} trailing bytes after the {what}",
            bytes.len() - used
        ));
    }
    Ok(value)
}

/// The seed that starts a guarded decode.
struct Root<T> {
    budget: usize,
    _t: PhantomData<fn() -> T>,
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for Root<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        T::deserialize(Guard {
            inner: d,
            budget: self.budget,
        })
    }
}

/// A deserializer that bounds what the one inside it allocates (see the
/// module documentation). `budget` is the length of the whole input.
struct Guard<D> {
    inner: D,
    budget: usize,
}

/// What the value being read asked for, so that a borrowed slice read in
/// its place is handed over in the owned form it expects.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Owned {
    /// Whatever the inner deserializer gives.
    AsIs,
    /// `deserialize_string`: give `visit_string`.
    String,
    /// `deserialize_byte_buf`: give `visit_byte_buf`.
    ByteBuf,
}

/// A visitor whose nested deserializers, sequences and maps are guarded too.
struct Wrap<V> {
    inner: V,
    budget: usize,
    owned: Owned,
}

macro_rules! forward_deserialize {
    ($($method:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            let budget = self.budget;
            self.inner.$method(Wrap { inner: visitor, budget, owned: Owned::AsIs })
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Guard<D> {
    type Error = D::Error;

    forward_deserialize!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_bytes,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any,
    );

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_str(Wrap {
            inner: visitor,
            budget: self.budget,
            owned: Owned::String,
        })
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_bytes(Wrap {
            inner: visitor,
            budget: self.budget,
            owned: Owned::ByteBuf,
        })
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let w = Wrap::new(visitor, self.budget);
        self.inner.deserialize_unit_struct(name, w)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let w = Wrap::new(visitor, self.budget);
        self.inner.deserialize_newtype_struct(name, w)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let w = Wrap::new(visitor, self.budget);
        self.inner.deserialize_tuple(len, w)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let w = Wrap::new(visitor, self.budget);
        self.inner.deserialize_tuple_struct(name, len, w)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let w = Wrap::new(visitor, self.budget);
        self.inner.deserialize_struct(name, fields, w)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let w = Wrap::new(visitor, self.budget);
        self.inner.deserialize_enum(name, variants, w)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

impl<V> Wrap<V> {
    fn new(inner: V, budget: usize) -> Self {
        Wrap {
            inner,
            budget,
            owned: Owned::AsIs,
        }
    }

    /// Refuses a declared element count the input cannot hold.
    fn check_len<E: serde::de::Error>(&self, declared: Option<usize>, what: &str) -> Result<(), E> {
        match declared {
            Some(n) if n > self.budget => Err(E::custom(format_args!(
                "a {what} declares {n} elements, more than the {} bytes of the input",
                self.budget
            ))),
            _ => Ok(()),
        }
    }
}

macro_rules! forward_visit {
    ($($method:ident: $ty:ty),* $(,)?) => {$(
        fn $method<E: serde::de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit!(
        visit_bool: bool,
        visit_i8: i8,
        visit_i16: i16,
        visit_i32: i32,
        visit_i64: i64,
        visit_i128: i128,
        visit_u8: u8,
        visit_u16: u16,
        visit_u32: u32,
        visit_u64: u64,
        visit_u128: u128,
        visit_f32: f32,
        visit_f64: f64,
        visit_char: char,
        visit_str: &str,
        visit_string: String,
        visit_bytes: &[u8],
        visit_byte_buf: Vec<u8>,
    );

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<V::Value, E> {
        // The bytes are in hand: only now is the owned copy made.
        match self.owned {
            Owned::String => self.inner.visit_string(v.to_owned()),
            _ => self.inner.visit_borrowed_str(v),
        }
    }

    fn visit_borrowed_bytes<E: serde::de::Error>(self, v: &'de [u8]) -> Result<V::Value, E> {
        match self.owned {
            Owned::ByteBuf => self.inner.visit_byte_buf(v.to_vec()),
            _ => self.inner.visit_borrowed_bytes(v),
        }
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Guard {
            inner: d,
            budget: self.budget,
        })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(Guard {
            inner: d,
            budget: self.budget,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.check_len(seq.size_hint(), "sequence")?;
        self.inner.visit_seq(GuardSeq {
            inner: seq,
            budget: self.budget,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.check_len(map.size_hint(), "map")?;
        self.inner.visit_map(GuardMap {
            inner: map,
            budget: self.budget,
        })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(GuardEnum {
            inner: data,
            budget: self.budget,
        })
    }
}

/// The largest size hint a visitor is given: a sixteenth of the input.
/// It is only a hint (a collection with more elements grows as they come,
/// each of which takes input bytes), so it can be small: what a visitor
/// preallocates from it is then at most `n / 16` elements of its type,
/// whatever the input declares — a `Vec` of 96-byte structs from `n`
/// bytes starts at `6 n`, not at `n` elements (`96 n`).
fn hint_cap(budget: usize) -> usize {
    budget / 16
}

/// A seed whose deserializer is guarded.
struct GuardSeed<S> {
    inner: S,
    budget: usize,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for GuardSeed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Guard {
            inner: d,
            budget: self.budget,
        })
    }
}

struct GuardSeq<A> {
    inner: A,
    budget: usize,
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for GuardSeq<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.inner.next_element_seed(GuardSeed {
            inner: seed,
            budget: self.budget,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint().map(|n| n.min(hint_cap(self.budget)))
    }
}

struct GuardMap<A> {
    inner: A,
    budget: usize,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for GuardMap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.inner.next_key_seed(GuardSeed {
            inner: seed,
            budget: self.budget,
        })
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.next_value_seed(GuardSeed {
            inner: seed,
            budget: self.budget,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint().map(|n| n.min(hint_cap(self.budget)))
    }
}

struct GuardEnum<A> {
    inner: A,
    budget: usize,
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for GuardEnum<A> {
    type Error = A::Error;
    type Variant = GuardVariant<A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let budget = self.budget;
        let (value, variant) = self.inner.variant_seed(GuardSeed {
            inner: seed,
            budget,
        })?;
        Ok((
            value,
            GuardVariant {
                inner: variant,
                budget,
            },
        ))
    }
}

struct GuardVariant<A> {
    inner: A,
    budget: usize,
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for GuardVariant<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.newtype_variant_seed(GuardSeed {
            inner: seed,
            budget: self.budget,
        })
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.inner
            .tuple_variant(len, Wrap::new(visitor, self.budget))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.inner
            .struct_variant(fields, Wrap::new(visitor, self.budget))
    }
}

#[cfg(test)]
#[path = "bounded_tests.rs"]
mod tests;
