//! Reading a non-essential field of the recording data straight into its type, keeping a value of another kind as
//! sent (only the chunk list is essential to a recording).

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{
    BoolDeserializer, BorrowedStrDeserializer, F64Deserializer, I64Deserializer, MapAccessDeserializer,
    SeqAccessDeserializer, StrDeserializer, U64Deserializer,
};
use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

/// One field's value as read: typed (`None` for `null`), or kept as sent because it does not fit the type.
#[derive(Debug)]
pub(super) enum Lenient<T> {
    Typed(Option<T>),
    Kept(Value),
}

/// Reads one field into `T` from the JSON kind it arrives as, with no [`Value`] in between: the common case (a
/// string for a string or an open enum, a `u64` for a duration) allocates what `T` holds and nothing else. A
/// [`Value`] is built only for a value that does not fit, to keep it as sent.
pub(super) struct LenientSeed<T>(PhantomData<fn() -> T>);

impl<T> LenientSeed<T> {
    pub(super) fn new() -> Self {
        Self(PhantomData)
    }
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for LenientSeed<T> {
    type Value = Lenient<T>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(LenientVisitor(PhantomData))
    }
}

/// The error of typing one scalar: only whether it fit matters, so it carries no message (and allocates none).
#[derive(Debug)]
struct Mismatch;

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the value does not fit its type")
    }
}

impl std::error::Error for Mismatch {}

impl de::Error for Mismatch {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Mismatch
    }
}

/// The typed value, or the value kept as sent; `sent` runs only when the type refused it.
fn typed_or<T>(typed: Result<T, Mismatch>, sent: impl FnOnce() -> Value) -> Lenient<T> {
    match typed {
        Ok(value) => Lenient::Typed(Some(value)),
        Err(Mismatch) => Lenient::Kept(sent()),
    }
}

/// Types a list or an object already read into a [`Value`] (no field of the data takes one, but the rule stays
/// "kept when `T` refuses it", whatever `T` is).
fn typed_from_value<T: DeserializeOwned>(value: Value) -> Lenient<T> {
    match T::deserialize(&value) {
        Ok(typed) => Lenient::Typed(Some(typed)),
        Err(_) => Lenient::Kept(value),
    }
}

struct LenientVisitor<T>(PhantomData<fn() -> T>);

// Each scalar is offered to `T` through serde's own one-value deserializers, so that `T` decides what fits exactly as
// it would from the JSON itself (an open enum takes any string, a `u64` a non-negative integer). A number that does
// not fit becomes the `Value` serde_json would have built for it.
impl<'de, T: DeserializeOwned> Visitor<'de> for LenientVisitor<T> {
    type Value = Lenient<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Lenient::Typed(None))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Lenient::Typed(None))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
        Ok(typed_or(T::deserialize(BoolDeserializer::new(value)), || Value::Bool(value)))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(typed_or(T::deserialize(I64Deserializer::new(value)), || Value::from(value)))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(typed_or(T::deserialize(U64Deserializer::new(value)), || Value::from(value)))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
        // `Value::from` turns a non-finite float into `null`, as serde_json's own `Value` does.
        Ok(typed_or(T::deserialize(F64Deserializer::new(value)), || Value::from(value)))
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(typed_or(T::deserialize(BorrowedStrDeserializer::new(value)), || Value::String(value.to_owned())))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(typed_or(T::deserialize(StrDeserializer::new(value)), || Value::String(value.to_owned())))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
        // Offered by reference: a `String` handed to `T` would be gone if `T` refused it, and it is to be kept.
        match T::deserialize(StrDeserializer::<Mismatch>::new(&value)) {
            Ok(typed) => Ok(Lenient::Typed(Some(typed))),
            Err(Mismatch) => Ok(Lenient::Kept(Value::String(value))),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Ok(typed_from_value(Value::deserialize(SeqAccessDeserializer::new(seq))?))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok(typed_from_value(Value::deserialize(MapAccessDeserializer::new(map))?))
    }
}
