//! A call's payload as it waits in an inbox: the JSON text as received, not a
//! parsed tree.
//!
//! A parsed `serde_json::Value` can take 16 times its text (`[0,0,…]`: two
//! bytes of text, a 32-byte `Value` each), so an inbox of parsed payloads is
//! bounded by nothing a client can see. A [`Payload`] keeps the text and knows,
//! from one pass that validates it without allocating, how much memory the
//! parsed value will take: [`Payload::held_bytes`], what the call is charged
//! from the moment it is accepted until its action returns. The actor parses
//! it when it runs the call.

use std::fmt;

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Bytes a `serde_json::Value` takes in its parent's slot.
const VALUE_BYTES: usize = std::mem::size_of::<Value>();
/// What the allocator adds to each heap block, roughly (glibc: 8–16 bytes).
const BLOCK_OVERHEAD: usize = 16;
/// A map entry beyond its key's text and its value: the key's `String`
/// header and its share of a B-tree node.
const MAP_ENTRY_BYTES: usize = std::mem::size_of::<String>() + 24;

/// An action call's JSON payload, validated, with what it will take in memory.
#[derive(Clone)]
pub struct Payload {
    repr: Repr,
    held: usize,
}

#[derive(Clone)]
enum Repr {
    /// Text as received (an HTTP body): parsed when the call runs.
    Text(Bytes),
    /// A value built in process (the demo workload, an embedding runtime).
    Value(Value),
}

/// Why a payload was refused.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON.
    #[error("invalid JSON body: {0}")]
    Invalid(#[from] serde_json::Error),
    /// JSON, but not an object: every action takes its arguments as named fields.
    #[error("the request body must be a JSON object")]
    NotAnObject,
}

impl Payload {
    /// Validates JSON text (an object; empty or all whitespace means `{}`) and
    /// keeps it as it is.
    ///
    /// ## Errors
    ///
    /// [`PayloadError::Invalid`] for text that is not JSON,
    /// [`PayloadError::NotAnObject`] for any other JSON value.
    pub fn from_json(text: Bytes) -> Result<Payload, PayloadError> {
        if text.iter().all(u8::is_ascii_whitespace) {
            return Ok(Payload::from(Value::Object(Default::default())));
        }
        let mut de = serde_json::Deserializer::from_slice(&text);
        let (object, parsed) = SizeOf { top: true }.deserialize(&mut de)?;
        de.end()?;
        if !object {
            return Err(PayloadError::NotAnObject);
        }
        Ok(Payload {
            held: parsed.max(text.len()) + BLOCK_OVERHEAD,
            repr: Repr::Text(text),
        })
    }

    /// Bytes the payload takes at most while it is held: its text while it
    /// waits, its parsed value while its action runs, whichever is larger.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// The parsed value, for the action.
    pub(crate) fn into_value(self) -> Value {
        match self.repr {
            // Validated when it was made, so parsing again cannot fail.
            Repr::Text(text) => serde_json::from_slice(&text)
                .expect("a payload's text was validated when the payload was made"),
            Repr::Value(value) => value,
        }
    }
}

impl From<Value> for Payload {
    fn from(value: Value) -> Self {
        Payload {
            held: value_bytes(&value),
            repr: Repr::Value(value),
        }
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.repr {
            Repr::Text(ref t) => format!("text, {} bytes", t.len()),
            Repr::Value(_) => "value".to_owned(),
        };
        f.debug_struct("Payload")
            .field("repr", &kind)
            .field("held_bytes", &self.held)
            .finish()
    }
}

/// The memory a parsed `Value` takes, its own slot included.
pub(crate) fn value_bytes(value: &Value) -> usize {
    VALUE_BYTES
        + match value {
            Value::Null | Value::Bool(_) | Value::Number(_) => 0,
            Value::String(s) => heap(s.len()),
            Value::Array(items) => {
                heap(vec_capacity(items.len()) * VALUE_BYTES)
                    + items
                        .iter()
                        .map(|v| value_bytes(v) - VALUE_BYTES)
                        .sum::<usize>()
            }
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| MAP_ENTRY_BYTES + heap(k.len()) + value_bytes(v))
                .sum(),
        }
}

/// A heap block of `len` bytes, with the allocator's overhead; none when empty.
fn heap(len: usize) -> usize {
    if len == 0 { 0 } else { len + BLOCK_OVERHEAD }
}

/// The capacity a `Vec` grown by pushes has for `len` items (serde_json gets
/// no length hint from JSON text, so it grows by doubling from 4).
fn vec_capacity(len: usize) -> usize {
    match len {
        0 => 0,
        1..=4 => 4,
        n => n.checked_next_power_of_two().unwrap_or(n),
    }
}

/// Walks JSON without building it: whether the top value is an object, and
/// the bytes its `Value` would take.
struct SizeOf {
    top: bool,
}

impl<'de> DeserializeSeed<'de> for SizeOf {
    type Value = (bool, usize);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(bool, usize), D::Error> {
        d.deserialize_any(self)
    }
}

/// A child value's bytes, beyond its slot in the parent.
struct Child;

impl<'de> DeserializeSeed<'de> for Child {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_any(SizeOf { top: false })
            .map(|(_, bytes)| bytes - VALUE_BYTES)
    }
}

impl<'de> Visitor<'de> for SizeOf {
    type Value = (bool, usize);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(bool, usize), E> {
        Ok((false, VALUE_BYTES))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(bool, usize), E> {
        Ok((false, VALUE_BYTES))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(bool, usize), E> {
        Ok((false, VALUE_BYTES))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(bool, usize), E> {
        Ok((false, VALUE_BYTES))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(bool, usize), E> {
        Ok((false, VALUE_BYTES + heap(s.len())))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(bool, usize), E> {
        Ok((false, VALUE_BYTES))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(bool, usize), A::Error> {
        let (mut len, mut inner) = (0usize, 0usize);
        while let Some(bytes) = seq.next_element_seed(Child)? {
            len += 1;
            inner = inner.saturating_add(bytes);
        }
        let slots = heap(vec_capacity(len).saturating_mul(VALUE_BYTES));
        Ok((
            false,
            VALUE_BYTES.saturating_add(slots).saturating_add(inner),
        ))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(bool, usize), A::Error> {
        let mut total = VALUE_BYTES;
        while let Some(key) = map.next_key_seed(KeyLen)? {
            let value = map.next_value_seed(Child)?;
            total = total
                .saturating_add(MAP_ENTRY_BYTES + heap(key) + VALUE_BYTES)
                .saturating_add(value);
        }
        Ok((self.top, total))
    }
}

/// A map key's length, without keeping it.
struct KeyLen;

impl<'de> DeserializeSeed<'de> for KeyLen {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyLen {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<usize, E> {
        Ok(s.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sized(text: &str) -> usize {
        Payload::from_json(Bytes::copy_from_slice(text.as_bytes()))
            .unwrap()
            .held_bytes()
    }

    /// The pass over the text and the walk over the parsed value agree, so a
    /// payload is charged the same whichever way it came in.
    #[test]
    fn text_and_value_are_sized_alike() {
        for text in [
            r#"{"by":1}"#,
            r#"{"message":"hello","n":[1,2,3,4,5],"o":{"a":null,"b":[{"c":true}]}}"#,
            r#"{"pad":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}"#,
            r#"{"s":"\u00e9\n\t"}"#,
        ] {
            let value: Value = serde_json::from_str(text).unwrap();
            let from_text = sized(text);
            let from_value = Payload::from(value).held_bytes();
            // The text is charged at least its own length.
            assert_eq!(
                from_text,
                from_value.max(text.len()) + BLOCK_OVERHEAD,
                "{text}"
            );
        }
    }

    /// `[0,0,…]` is charged for its parsed size: 32 bytes per element, not 2.
    #[test]
    fn a_padded_array_is_charged_its_parsed_size() {
        let n = 1 << 16;
        let text = format!("{{\"pad\":[{}0]}}", "0,".repeat(n - 1));
        let held = sized(&text);
        assert!(
            held >= n * VALUE_BYTES,
            "{held} for {} bytes of text",
            text.len()
        );
        assert!(held < n * VALUE_BYTES * 2, "{held}");
    }

    #[test]
    fn a_long_string_is_charged_about_its_length() {
        let text = format!("{{\"message\":\"{}\"}}", "x".repeat(100_000));
        let held = sized(&text);
        assert!((100_000..100_400).contains(&held), "{held}");
    }

    #[test]
    fn anything_but_a_json_object_is_refused() {
        for (text, object) in [
            ("[1]", true),
            ("\"x\"", true),
            ("null", true),
            ("{", false),
            ("{} x", false),
        ] {
            let e = Payload::from_json(Bytes::from_static(text.as_bytes())).unwrap_err();
            assert_eq!(
                matches!(e, PayloadError::NotAnObject),
                object,
                "{text}: {e}"
            );
        }
        // Empty means `{}`.
        let empty = Payload::from_json(Bytes::from_static(b"  \n")).unwrap();
        assert_eq!(empty.into_value(), serde_json::json!({}));
    }

    #[test]
    fn the_value_is_what_was_sent() {
        let text = r#"{"by":3,"x":[1.5,"y"]}"#;
        let p = Payload::from_json(Bytes::from_static(text.as_bytes())).unwrap();
        assert_eq!(p.into_value(), serde_json::from_str::<Value>(text).unwrap());
    }
}
