//! Exemplars: a pointer from a series to one event, `{trace_id, span_id}` with
//! the observed value and its time, kept in a lock-free slot that observers
//! write without allocating and scrapes read without blocking them.
//!
//! # Where exemplars are kept
//!
//! A traced call (of a sampled trace) offers an [`Exemplar`] after the
//! observation it belongs to; an observation outside a traced call offers
//! nothing, so that path costs what it cost before exemplars. They are kept
//! on:
//!
//! * `actor_type_action_duration_seconds` buckets and
//!   `actor_type_action_errors_total`, per (`actor_name`, `action`), always;
//! * `actor_type_sqlite_commit_duration_seconds` buckets, per type, always;
//! * the same three families per actor (`kept.rs`) when the store is
//!   at `full` or the actor is promoted: the per-actor slots are one lazily
//!   allocated box behind a pointer in the actor's entry, in bytes the entry
//!   already had, so an actor at `core` costs not one byte more. They are
//!   shown only while the actor keeps them: a demoted actor's stop following
//!   its calls, so they are no longer written.
//!
//! A SQLite commit happens inside the action that makes it, deep in code that
//! knows nothing of the call: [`InCall`] makes the call's [`CallTrace`] the
//! thread's current one while the action's future is polled, and the commit
//! hook reads it with [`current`].
//!
//! The formats that carry exemplars (OpenMetrics text, protobuf) export the
//! slots; Prometheus text 0.0.4 never does.
//!
//! # Keep policy
//!
//! * A histogram keeps one slot per classic bucket ([`HistogramExemplars`]),
//!   chosen by the value, so each bucket line can carry its own exemplar.
//!   A bucket's slot keeps **the slowest observation offered since the slot was
//!   last exported** ([`ExemplarSlot::offer`]): after a scrape has read it, the
//!   next offer replaces it whatever its value; until then only a larger value
//!   does. The slowest call of each latency band in each scrape interval is
//!   the trace an operator wants to open, where "the latest" is whichever call
//!   happened to come last. It is also cheaper: once a bucket holds its
//!   interval's slowest so far, an offer is two loads and a compare (and
//!   [`ExemplarSlot::offer_with`] does not even build the losing exemplar),
//!   and a write happens about `1 + ln n` times for `n` offers in one
//!   interval.
//!   An exemplar stays readable after its export (several scrapers, or a
//!   scrape that failed downstream, read it again) until an offer replaces it.
//! * A counter keeps **the latest** ([`ExemplarSlot::store`]): every increment
//!   of a counter that has exemplars (action errors) is one event of the same
//!   weight, so the most recent one is the useful pointer.
//!
//! Both are best effort under contention: an offer that finds another write
//! in progress on the same slot is dropped rather than waited for (the two
//! observations were nanoseconds apart), so a concurrent larger value can
//! lose to a smaller one that got in first. A scrape's export racing an offer
//! can make that offer lose once too.
//!
//! # The slot: a seqlock of atomics
//!
//! An exemplar is 40 bytes (trace id 16, span id 8, value 8, timestamp 8): more
//! than one atomic store can publish, so a slot is a sequence word and five
//! `AtomicU64` words. The sequence word holds a version (bumped by each write),
//! a *writing* bit and an *exported* bit.
//!
//! * A writer takes the slot with one compare-and-swap of the sequence word
//!   (setting *writing*; failing when another writer holds it, in which case
//!   it gives up instead of waiting), writes the five words, and releases with
//!   one store of the next version. Writers never wait: the slot is lock-free
//!   for them and allocation-free.
//! * A reader reads the sequence word, the five words, and the sequence word
//!   again (with the fences of a seqlock); if a write started or ended in
//!   between, or was under way, it tries again, at most [`READ_ATTEMPTS`]
//!   times, then reports nothing rather than spin on. It never writes a data
//!   word, so it can never make a writer wait; it sees either one whole
//!   exemplar or none, never a mix of two. Its export sets the *exported* bit
//!   with a compare-and-swap on the version it read, so a write that slipped
//!   in after its read is never marked exported without having been read.
//!
//! Why not a versioned pointer to an immutable exemplar: publishing a new one
//! needs a new allocation (or a pool, whose reclamation needs the reader to
//! be tracked): the hot path must not allocate. Why not a mutex: a scrape
//! holding it would make an observer wait.

mod current;
mod kept;
mod slot;

#[cfg(feature = "tracing-layer")]
pub(crate) use current::replace as replace_current;
pub use current::{CallTrace, InCall, current, in_call};
pub(crate) use kept::{ActionExemplars, ActorExemplars, Carrier, Kept};
pub use slot::{ExemplarSlot, HistogramExemplars, READ_ATTEMPTS};

use std::fmt;

/// A W3C trace id: 16 bytes, written as 32 lowercase hex digits. All zeros is
/// not a valid id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TraceId(pub [u8; 16]);

/// A W3C span id (the `parent-id` of a `traceparent`): 8 bytes, written as 16
/// lowercase hex digits. All zeros is not a valid id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SpanId(pub [u8; 8]);

/// Writes `bytes` as lowercase hex, with no allocation.
fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 32];
    for (i, b) in bytes.iter().enumerate() {
        buf[2 * i] = DIGITS[usize::from(b >> 4)];
        buf[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
    }
    let text = &buf[..2 * bytes.len()];
    // Only ASCII hex digits were written.
    f.write_str(std::str::from_utf8(text).expect("hex digits are ASCII"))
}

/// `N` bytes from exactly `2 × N` lowercase hex digits (the W3C form), or
/// `None`.
fn read_hex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    if text.len() != 2 * N {
        return None;
    }
    let mut bytes = [0u8; N];
    for (b, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
        *b = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(bytes)
}

impl TraceId {
    /// Whether the id may be used: not all zeros.
    pub const fn is_valid(&self) -> bool {
        u128::from_ne_bytes(self.0) != 0
    }

    /// The id written as 32 lowercase hex digits, or `None` for any other
    /// text (uppercase included). All zeros reads, and is not [valid](Self::is_valid).
    pub fn from_hex(text: &[u8]) -> Option<TraceId> {
        read_hex(text).map(TraceId)
    }
}

impl SpanId {
    /// Whether the id may be used: not all zeros.
    pub const fn is_valid(&self) -> bool {
        u64::from_ne_bytes(self.0) != 0
    }

    /// The id written as 16 lowercase hex digits, or `None` for any other
    /// text (uppercase included). All zeros reads, and is not [valid](Self::is_valid).
    pub fn from_hex(text: &[u8]) -> Option<SpanId> {
        read_hex(text).map(SpanId)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

/// One exemplar: the event (`trace_id`, `span_id`), the observed value and
/// when it was observed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exemplar {
    /// The trace of the event.
    pub trace_id: TraceId,
    /// The span of the event.
    pub span_id: SpanId,
    /// The observed value (seconds for a duration, the increment for a counter).
    pub value: f64,
    /// When, in nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_from_their_hex_and_nothing_else_reads() {
        let t = TraceId(*b"\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36");
        assert_eq!(TraceId::from_hex(t.to_string().as_bytes()), Some(t));
        let s = SpanId(*b"\x00\xf0\x67\xaa\x0b\xa9\x02\xb7");
        assert_eq!(SpanId::from_hex(b"00f067aa0ba902b7"), Some(s));
        assert_eq!(TraceId::from_hex(&[b'0'; 32]), Some(TraceId::default()));
        for bad in [
            &b"00F067AA0BA902B7"[..], // uppercase
            b"00f067aa0ba902b",       // short
            b"00f067aa0ba902b7a",     // long
            b"00f067aa0ba902bg",      // not hex
            b"",
        ] {
            assert_eq!(
                SpanId::from_hex(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            TraceId::from_hex(b"00f067aa0ba902b7"),
            None,
            "a span id is no trace id"
        );
    }
}
