//! The trace of the call a thread is running: set by [`InCall`] around each
//! poll of a traced action, read by recording sites that do not see the call
//! (the SQLite commit hook).
//!
//! A thread-local, as `tracing` keeps its current span: an async action can
//! move between threads at each `.await`, and each poll runs on one thread
//! from start to end, so the trace is set at the start of a poll and put back
//! at its end (even when the poll panics). A task spawned by the action is
//! not inside the call and has no current trace.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use super::{Exemplar, SpanId, TraceId};

/// The ids of one traced call, and the wall-clock time of one instant of it,
/// so the time of any later instant is arithmetic (no clock read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallTrace {
    /// The call's trace.
    pub trace_id: TraceId,
    /// The call's own span.
    pub span_id: SpanId,
    anchor: Instant,
    anchor_unix_ns: u64,
}

impl CallTrace {
    /// A call's trace whose wall-clock time at `anchor` was `anchor_unix_ns`
    /// nanoseconds since the Unix epoch.
    pub fn new(trace_id: TraceId, span_id: SpanId, anchor: Instant, anchor_unix_ns: u64) -> Self {
        CallTrace {
            trace_id,
            span_id,
            anchor,
            anchor_unix_ns,
        }
    }

    /// Nanoseconds since the Unix epoch at `at` (not before the anchor: an
    /// earlier instant reads as the anchor's time).
    #[inline]
    pub fn unix_ns_at(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.anchor).as_nanos();
        self.anchor_unix_ns
            .saturating_add(u64::try_from(since).unwrap_or(u64::MAX))
    }

    /// The exemplar of an observation of `value` made at `at` in this call.
    #[inline]
    pub fn exemplar(&self, value: f64, at: Instant) -> Exemplar {
        Exemplar {
            trace_id: self.trace_id,
            span_id: self.span_id,
            value,
            timestamp_ns: self.unix_ns_at(at),
        }
    }
}

thread_local! {
    static CURRENT: Cell<Option<CallTrace>> = const { Cell::new(None) };
}

/// The trace of the call this thread is running, if it runs a traced one.
#[inline]
pub fn current() -> Option<CallTrace> {
    CURRENT.with(Cell::get)
}

/// Makes `trace` this thread's current trace; returns the one it replaces.
/// For a caller that pairs it with a later `replace` of the returned one on
/// the same thread (the tracing layer's span enter and exit).
pub(crate) fn replace(trace: Option<CallTrace>) -> Option<CallTrace> {
    CURRENT.with(|c| c.replace(trace))
}

/// Puts the previous current trace back, also when the scope unwinds.
struct Restore(Option<CallTrace>);

impl Drop for Restore {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// Runs `f` with `trace` as this thread's current trace, then puts the
/// previous one back.
pub fn in_call<R>(trace: Option<CallTrace>, f: impl FnOnce() -> R) -> R {
    let _restore = Restore(CURRENT.with(|c| c.replace(trace)));
    f()
}

/// A future polled with its call's trace as the thread's current one
/// ([`in_call`] around each poll). With no trace it is the bare future and
/// touches no thread-local.
#[derive(Debug)]
pub struct InCall<F> {
    trace: Option<CallTrace>,
    fut: F,
}

impl<F> InCall<F> {
    /// `fut`, polled inside `trace`.
    pub fn new(trace: Option<CallTrace>, fut: F) -> Self {
        InCall { trace, fut }
    }
}

impl<F: Future> Future for InCall<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `fut` is structurally pinned: it is never moved out of
        // `self` (no method hands it out by value) and `InCall` has no `Drop`.
        let this = unsafe { self.get_unchecked_mut() };
        let fut = unsafe { Pin::new_unchecked(&mut this.fut) };
        match this.trace {
            None => fut.poll(cx),
            trace => in_call(trace, || fut.poll(cx)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn trace(n: u8) -> CallTrace {
        CallTrace::new(TraceId([n; 16]), SpanId([n; 8]), Instant::now(), 1_000)
    }

    #[test]
    fn a_scope_sets_the_current_trace_and_puts_the_previous_back_even_on_panic() {
        assert_eq!(current(), None);
        let (a, b) = (trace(1), trace(2));
        in_call(Some(a), || {
            assert_eq!(current(), Some(a));
            in_call(Some(b), || assert_eq!(current(), Some(b)));
            assert_eq!(current(), Some(a));
            let caught = std::panic::catch_unwind(|| in_call(Some(b), || panic!("inside")));
            assert!(caught.is_err());
            assert_eq!(current(), Some(a), "restored by the unwinding scope");
        });
        assert_eq!(current(), None);
    }

    #[test]
    fn an_exemplar_time_is_the_anchor_plus_the_elapsed_time() {
        let t = trace(3);
        let e = t.exemplar(0.7, t.anchor + Duration::from_millis(700));
        assert_eq!(e.timestamp_ns, 1_000 + 700_000_000);
        assert_eq!(
            (e.trace_id, e.span_id, e.value),
            (t.trace_id, t.span_id, 0.7)
        );
        assert_eq!(t.unix_ns_at(t.anchor - Duration::from_secs(1)), 1_000);
    }

    /// Each poll of the wrapped future sees the trace; between polls (another
    /// task on the thread) it is gone.
    #[test]
    fn each_poll_of_a_call_runs_inside_its_trace() {
        let t = trace(4);
        let mut seen = Vec::new();
        let mut polls = 0;
        let fut = std::future::poll_fn(|cx| {
            seen.push(current());
            polls += 1;
            if polls < 3 {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        });
        let mut fut = std::pin::pin!(InCall::new(Some(t), fut));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        while fut.as_mut().poll(&mut cx).is_pending() {
            assert_eq!(current(), None, "not between polls");
        }
        assert_eq!(seen, [Some(t); 3]);
    }
}
