//! The W3C Trace Context `traceparent` header, read strictly and written back.
//!
//! `version "-" trace-id "-" parent-id "-" trace-flags`, all lowercase hex:
//! `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`. As the
//! specification asks:
//!
//! * version `00` is exactly 55 characters; `ff` is invalid;
//! * a later version (`01`..`fe`, unknown here) is read as `00` from its first
//!   55 characters, which must be followed by nothing or by a `-`;
//! * hex is lowercase only; a trace id or a parent id of all zeros is invalid;
//! * the flags are kept as sent; only bit 0 (`sampled`) means anything here.
//!
//! No crate is used for this: the format is 55 fixed characters, and the ones
//! that parse it come with a whole tracing SDK (`opentelemetry`).

use std::fmt;

use actor_metrics::exemplar::{SpanId, TraceId};

/// Length of a version `00` header.
pub const TRACEPARENT_LEN: usize = 55;

/// The `sampled` flag.
pub const SAMPLED: u8 = 0x01;

/// A parsed `traceparent`: the caller's trace and span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traceparent {
    /// The trace.
    pub trace_id: TraceId,
    /// The caller's span (the `parent-id`).
    pub parent_id: SpanId,
    /// The trace flags, as sent.
    pub flags: u8,
}

/// Why a `traceparent` was not honoured (the call then starts a new trace;
/// this is never an error of the request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TraceparentError {
    /// The request carried the header more than once.
    #[error("more than one traceparent header")]
    Repeated,
    /// Not 55 characters (version `00`), or under 55 (a later version).
    #[error("{0} bytes; version 00 is exactly 55")]
    Length(usize),
    /// A later version's first 55 characters are followed by something other than `-`.
    #[error("a later version's 55 characters are followed by something other than '-'")]
    Trailing,
    /// The version is not two lowercase hex digits, or is `ff`.
    #[error("invalid version")]
    Version,
    /// A `-` is missing where the format has one.
    #[error("a '-' is missing between fields")]
    Delimiter,
    /// A field holds something other than lowercase hex digits.
    #[error("{0} is not lowercase hex")]
    Hex(&'static str),
    /// The trace id is all zeros.
    #[error("the trace id is all zeros")]
    ZeroTraceId,
    /// The parent id is all zeros.
    #[error("the parent id is all zeros")]
    ZeroParentId,
}

/// The value of one lowercase hex digit.
fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// `N` bytes from `2 × N` lowercase hex digits.
fn hex<const N: usize>(text: &[u8], field: &'static str) -> Result<[u8; N], TraceparentError> {
    debug_assert_eq!(text.len(), 2 * N);
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let (hi, lo) = (hex_digit(pair[0]), hex_digit(pair[1]));
        *o = (hi.ok_or(TraceparentError::Hex(field))? << 4)
            | lo.ok_or(TraceparentError::Hex(field))?;
    }
    Ok(out)
}

impl Traceparent {
    /// Reads a header value.
    ///
    /// ## Errors
    ///
    /// A [`TraceparentError`] naming the first rule the value breaks.
    pub fn parse(value: &[u8]) -> Result<Traceparent, TraceparentError> {
        if value.len() < TRACEPARENT_LEN {
            return Err(TraceparentError::Length(value.len()));
        }
        let [version] =
            hex::<1>(&value[..2], "the version").map_err(|_| TraceparentError::Version)?;
        if version == 0xff {
            return Err(TraceparentError::Version);
        }
        match (version, value.get(TRACEPARENT_LEN)) {
            (0, None) | (1.., None) => {}
            (0, Some(_)) => return Err(TraceparentError::Length(value.len())),
            (1.., Some(b'-')) => {}
            (1.., Some(_)) => return Err(TraceparentError::Trailing),
        }
        if value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
            return Err(TraceparentError::Delimiter);
        }
        let trace_id = TraceId(hex::<16>(&value[3..35], "the trace id")?);
        let parent_id = SpanId(hex::<8>(&value[36..52], "the parent id")?);
        let [flags] = hex::<1>(&value[53..55], "the flags")?;
        if !trace_id.is_valid() {
            return Err(TraceparentError::ZeroTraceId);
        }
        if !parent_id.is_valid() {
            return Err(TraceparentError::ZeroParentId);
        }
        Ok(Traceparent {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// Whether the caller sampled the trace.
    pub fn sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }
}

/// Writes version `00` (whatever version was read: this host speaks `00`).
impl fmt::Display for Traceparent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id, self.parent_id, self.flags
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_specification_example_reads_and_writes_back() {
        let t = Traceparent::parse(GOOD.as_bytes()).expect("valid");
        assert_eq!(t.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.parent_id.to_string(), "00f067aa0ba902b7");
        assert_eq!(t.flags, 1);
        assert!(t.sampled());
        assert_eq!(t.to_string(), GOOD);
        let unsampled = GOOD.replace("-01", "-00");
        assert!(
            !Traceparent::parse(unsampled.as_bytes())
                .expect("valid")
                .sampled()
        );
    }

    #[test]
    fn each_broken_rule_is_named() {
        use TraceparentError as E;
        let cases: &[(&str, E)] = &[
            ("", E::Length(0)),
            (&GOOD[..54], E::Length(54)),
            (&format!("{GOOD}-"), E::Length(56)),
            (&format!("{GOOD} "), E::Length(56)),
            (&GOOD.replacen("00", "ff", 1), E::Version),
            (&GOOD.replacen("00", "0g", 1), E::Version),
            (&GOOD.replacen("00", "0A", 1), E::Version),
            (&GOOD.replacen('-', "_", 1), E::Delimiter),
            (&GOOD.replace("-01", "_01"), E::Delimiter),
            (&GOOD.replace("4bf9", "4BF9"), E::Hex("the trace id")),
            (&GOOD.replace("00f067", "00F067"), E::Hex("the parent id")),
            (&GOOD.replace("-01", "-0x"), E::Hex("the flags")),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                E::ZeroTraceId,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                E::ZeroParentId,
            ),
            (&format!("{}x", GOOD.replacen("00", "01", 1)), E::Trailing),
        ];
        for (value, want) in cases {
            assert_eq!(
                Traceparent::parse(value.as_bytes()),
                Err(*want),
                "{value:?}"
            );
        }
    }

    #[test]
    fn a_later_version_is_read_as_00_from_its_first_55_characters() {
        for tail in ["", "-", "-what-comes-later"] {
            let value = format!("{}{tail}", GOOD.replacen("00", "cc", 1));
            let t = Traceparent::parse(value.as_bytes()).expect("a later version");
            assert_eq!(t.to_string(), GOOD, "written back as version 00");
        }
    }

    fn id_hex(len: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("[0-9a-f]{{{len}}}")).expect("regex")
    }

    proptest! {
        /// Any valid header reads back to itself, and its fields are its hex.
        #[test]
        fn valid_headers_round_trip(trace in id_hex(32), parent in id_hex(16), flags in any::<u8>()) {
            prop_assume!(trace.bytes().any(|b| b != b'0') && parent.bytes().any(|b| b != b'0'));
            let value = format!("00-{trace}-{parent}-{flags:02x}");
            let t = Traceparent::parse(value.as_bytes()).expect("valid");
            prop_assert_eq!(t.trace_id.to_string(), trace);
            prop_assert_eq!(t.parent_id.to_string(), parent);
            prop_assert_eq!(t.flags, flags);
            prop_assert_eq!(t.to_string(), value);
        }

        /// Any byte changed to one outside the format is refused: the parser
        /// accepts nothing but the format (never panics, never guesses).
        #[test]
        fn a_corrupted_byte_is_refused(at in 0..TRACEPARENT_LEN, byte in any::<u8>()) {
            let mut value = GOOD.as_bytes().to_vec();
            let dash = matches!(at, 2 | 35 | 52);
            let fits = if dash { byte == b'-' } else { hex_digit(byte).is_some() };
            prop_assume!(!fits);
            value[at] = byte;
            prop_assert!(Traceparent::parse(&value).is_err());
        }

        /// Arbitrary bytes never panic, and whatever is accepted is written
        /// back as a valid version 00 header that reads the same.
        #[test]
        fn arbitrary_bytes_never_panic(value in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(t) = Traceparent::parse(&value) {
                let again = Traceparent::parse(t.to_string().as_bytes()).expect("written valid");
                prop_assert_eq!(again, t);
            }
        }
    }
}
