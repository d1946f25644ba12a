//! Trace context of an action call: the W3C `traceparent` a caller sent
//! ([`traceparent`]), continued, or a trace started when there is none.
//!
//! A caller that wants its call traced passes a [`TraceContext`] to
//! [`Host::call_traced`](crate::Host::call_traced). The actor then runs the
//! action inside a `tracing` span named `action` with the fields
//! `actor_name`, `actor_key`, `actor_id_gen`, `action`, `trace_id` and
//! `span_id`, so every log line written inside the action carries the trace;
//! actor code reads the context with [`Context::trace`](crate::Context::trace).
//! A call without one ([`Host::call`](crate::Host::call)) creates no span at
//! all: untraced calls cost what they cost before.
//!
//! The host's own span for the call gets a new span id; the trace id and the
//! sampled flag are the caller's. Ids are drawn from `fastrand` (wyrand, per
//! thread, seeded from the OS's randomness through std's `RandomState`): ids
//! must be unique, not secret, and a non-cryptographic generator makes one in
//! a few nanoseconds with no system call (it is already in the dependency tree,
//! through `tempfile`).
//!
//! Exemplars: the recording site (where the action's duration is observed)
//! gets the call's ids and a wall-clock time from [`TraceContext::exemplar`],
//! without allocating and without reading a clock: the context holds the wall
//! time and the monotonic instant of the moment it was made, so the time of
//! any later instant is arithmetic.

pub mod traceparent;

use std::time::{SystemTime, UNIX_EPOCH};

use actor_metrics::exemplar::{CallTrace, Exemplar, SpanId, TraceId};
use tokio::time::Instant;

pub use traceparent::{Traceparent, TraceparentError};

/// The trace one action call runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace, this call's own span, and the wall-clock time of the
    /// instant the context was made.
    call: CallTrace,
    /// The caller's span, when the trace was continued.
    parent_id: Option<SpanId>,
    flags: u8,
}

/// Where a [`TraceContext`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceOrigin {
    /// The caller's `traceparent` was continued.
    Continued,
    /// There was no `traceparent`; a trace was started.
    Started,
    /// The `traceparent` was invalid; a trace was started.
    Invalid(TraceparentError),
}

impl TraceContext {
    /// Starts a new trace (sampled).
    pub fn start() -> TraceContext {
        let trace_id = loop {
            let id = TraceId(fastrand::u128(..).to_be_bytes());
            if id.is_valid() {
                break id;
            }
        };
        TraceContext::new(trace_id, None, traceparent::SAMPLED)
    }

    /// Continues the caller's trace with a new span of this host.
    pub fn child_of(parent: &Traceparent) -> TraceContext {
        TraceContext::new(parent.trace_id, Some(parent.parent_id), parent.flags)
    }

    /// Continues the trace of the `traceparent` header values of a request
    /// (none, one, or a repeated header), or starts one when there is none or
    /// it is invalid: never an error.
    pub fn continue_or_start<'a>(
        traceparent: impl IntoIterator<Item = &'a [u8]>,
    ) -> (TraceContext, TraceOrigin) {
        let mut values = traceparent.into_iter();
        let parsed = match (values.next(), values.next()) {
            (None, _) => return (TraceContext::start(), TraceOrigin::Started),
            (Some(one), None) => Traceparent::parse(one),
            (Some(_), Some(_)) => Err(TraceparentError::Repeated),
        };
        match parsed {
            Ok(parent) => (TraceContext::child_of(&parent), TraceOrigin::Continued),
            Err(e) => (TraceContext::start(), TraceOrigin::Invalid(e)),
        }
    }

    fn new(trace_id: TraceId, parent_id: Option<SpanId>, flags: u8) -> TraceContext {
        let span_id = loop {
            let id = SpanId(fastrand::u64(..).to_be_bytes());
            if id.is_valid() {
                break id;
            }
        };
        // A clock before 1970 (or past 2554) is a broken clock: 0 then.
        let anchor_unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .and_then(|d| u64::try_from(d.as_nanos()).ok())
            .unwrap_or(0);
        TraceContext {
            call: CallTrace::new(trace_id, span_id, Instant::now().into_std(), anchor_unix_ns),
            parent_id,
            flags,
        }
    }

    /// The trace id.
    pub fn trace_id(&self) -> TraceId {
        self.call.trace_id
    }

    /// This call's span id (new for each call).
    pub fn span_id(&self) -> SpanId {
        self.call.span_id
    }

    /// The caller's span id, when the caller's trace was continued.
    pub fn parent_id(&self) -> Option<SpanId> {
        self.parent_id
    }

    /// Whether the trace is sampled (the caller's choice; a new trace is).
    pub fn sampled(&self) -> bool {
        self.flags & traceparent::SAMPLED != 0
    }

    /// The `traceparent` that names this call's span: what to send on to a
    /// callee, and what the app API returns.
    pub fn traceparent(&self) -> Traceparent {
        Traceparent {
            trace_id: self.call.trace_id,
            parent_id: self.call.span_id,
            flags: self.flags,
        }
    }

    /// Nanoseconds since the Unix epoch at `at` (an instant after the
    /// context was made), computed with no clock read.
    #[inline]
    pub fn unix_ns_at(&self, at: Instant) -> u64 {
        self.call.unix_ns_at(at.into_std())
    }

    /// The call's ids and clock anchor as the metrics' [`CallTrace`]: what a
    /// recording site that does not see the call (a SQLite commit) reads
    /// while the action runs.
    pub fn call_trace(&self) -> CallTrace {
        self.call
    }

    /// The exemplar of an observation of `value` made at `at` in this call:
    /// its ids and wall-clock time, with no allocation and no clock read.
    #[inline]
    pub fn exemplar(&self, value: f64, at: Instant) -> Exemplar {
        self.call.exemplar(value, at.into_std())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const GOOD: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_continued_with_a_new_span() {
        let (t, origin) = TraceContext::continue_or_start([GOOD]);
        assert_eq!(origin, TraceOrigin::Continued);
        assert_eq!(t.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            t.parent_id().map(|p| p.to_string()).as_deref(),
            Some("00f067aa0ba902b7")
        );
        assert_ne!(t.span_id(), t.parent_id().expect("continued"));
        assert!(t.sampled());
        let sent = t.traceparent().to_string();
        assert_eq!(
            sent,
            format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", t.span_id())
        );
        let unsampled = TraceContext::continue_or_start([
            &b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"[..],
        ])
        .0;
        assert!(!unsampled.sampled(), "the caller's flag is kept");
        assert!(unsampled.traceparent().to_string().ends_with("-00"));
    }

    #[test]
    fn no_header_a_bad_one_or_two_start_a_new_trace() {
        let (t, origin) = TraceContext::continue_or_start(std::iter::empty());
        assert_eq!(origin, TraceOrigin::Started);
        assert!(t.trace_id().is_valid() && t.span_id().is_valid());
        assert_eq!(t.parent_id(), None);
        assert!(t.sampled());
        let bad = TraceContext::continue_or_start([&b"00-zz"[..]]);
        assert_eq!(bad.1, TraceOrigin::Invalid(TraceparentError::Length(5)));
        assert_ne!(
            bad.0.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        let two = TraceContext::continue_or_start([GOOD, GOOD]);
        assert_eq!(two.1, TraceOrigin::Invalid(TraceparentError::Repeated));
        assert_eq!(two.0.parent_id(), None);
    }

    #[test]
    fn every_context_gets_its_own_ids() {
        let mut traces = std::collections::HashSet::new();
        let mut spans = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let t = TraceContext::start();
            assert!(traces.insert(t.trace_id()));
            assert!(spans.insert(t.span_id()));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_exemplar_is_timed_from_the_anchor_without_a_clock_read() {
        let t = TraceContext::start();
        // Time is paused: this is the instant the context was made at.
        let anchor = Instant::now();
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos() as u64;
        // Made within the last second.
        assert!(now_ns.abs_diff(t.unix_ns_at(anchor)) < 1_000_000_000);
        let later = anchor + Duration::from_millis(1500);
        let e = t.exemplar(0.25, later);
        assert_eq!(e.timestamp_ns, t.unix_ns_at(anchor) + 1_500_000_000);
        assert_eq!(
            (e.trace_id, e.span_id, e.value),
            (t.trace_id(), t.span_id(), 0.25)
        );
        let before = anchor
            .checked_sub(Duration::from_secs(1))
            .expect("after start");
        assert_eq!(
            t.unix_ns_at(before),
            t.unix_ns_at(anchor),
            "never before the anchor"
        );
    }
}
