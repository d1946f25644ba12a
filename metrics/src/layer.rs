//! A `tracing` layer that records action calls from the spans a runtime
//! already wraps them in (feature `tracing-layer`).
//!
//! A runtime that runs each action call inside a `tracing` span can install an
//! [`ActionLayer`] in its subscriber instead of calling
//! [`ActorMetrics::record_action_traced`] itself. The numbers are the same:
//! calls, errors and durations per actor and per (`actor_name`, `action`),
//! and, for a span that carries a trace, an exemplar where that call offers
//! one (see [`exemplar`](crate::exemplar)).
//!
//! # The span
//!
//! The layer looks at spans named `action` ([`ActionLayer::span_name`] to
//! change it), with these fields (`actor-core`'s host writes this shape):
//!
//! | field | use |
//! |---|---|
//! | `actor_name`, `actor_key`, `actor_id_gen` | handed to the runtime's resolver as an [`ActorSpan`], as the span wrote them |
//! | `action` | the `action` label |
//! | `trace_id`, `span_id` | 32 and 16 lowercase hex digits, neither all zeros: the call's exemplar. Anything else: the call is recorded without one |
//! | `sampled` (bool), or `trace_flags` (the W3C flags: an integer, or two hex digits) | optional: a trace that is not sampled (`false`, or flags without bit `01`) gives no exemplar, as its id would lead to no stored trace: at the span's creation, or recorded later. Absent: sampled |
//! | `error` (any value but `false`), or `ok = false` | the call failed: at the span's creation, or recorded later (declare it `tracing::field::Empty`) |
//!
//! A span without `actor_name` or `action`, or whose actor the resolver does
//! not know, is not recorded (and is counted in a `debug` event). A filter
//! that disables the span disables its recording too, so give the span a
//! level every filter lets through, or filter the other layers only.
//!
//! # Why the runtime resolves the actor
//!
//! Registering is an actor's start: it raises `actor_active`, and the handle's
//! end queues the label set to expire. A layer that registered per span would
//! do both once per call. So the runtime, which registers its actors when they
//! start, hands the layer a resolver from the span's fields to the handle it
//! holds; the layer calls it once per span. The action's aggregate cells are
//! resolved once per (`actor_name`, `action`) and cached in the layer.
//!
//! # Clock reads
//!
//! Two per call, both of the store's [`Clock`](crate::clock::Clock): the
//! start, when the span is created, and the end, when it closes; the duration
//! is the time between. The exemplar's timestamp is the end placed on the wall
//! clock through an anchor the layer takes once, when it is built, so there is
//! no `SystemTime::now()` per call. (A wall-clock step after that, say by NTP,
//! is not followed: exemplar times keep the monotonic clock's pace.)
//!
//! A span of another name costs a name compare at its creation, and the
//! registry lookup of the span at its records and close that every layer's
//! `on_record` and `on_close` pays.
//!
//! While an action span is entered, its trace is the thread's current one
//! ([`exemplar::current`](crate::exemplar::current)), so a SQLite commit the
//! call makes ([`ActorMetrics::record_sqlite_commit`], which the SQLite
//! hooks call) carries the call's exemplar too.
//!
//! Do not install the layer on top of `actor-core`'s host: the host records
//! its calls itself, and the layer would count each call twice.
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::{Arc, RwLock};
//!
//! use actor_metrics::layer::{ActionLayer, ActorSpan};
//! use actor_metrics::{ActorMetrics, Config, Metrics};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let metrics = Metrics::new(Config::default()).unwrap();
//! // The runtime's handles, registered when its actors start, by `actor_id_gen`.
//! let actors: Arc<RwLock<HashMap<String, ActorMetrics>>> = Arc::default();
//! let layer = ActionLayer::new(metrics.clone(), {
//!     let actors = actors.clone();
//!     move |span: &ActorSpan<'_>| actors.read().unwrap().get(span.actor_id_gen).cloned()
//! });
//! let counter = metrics.actor_type("counter");
//! actors.write().unwrap().insert("a1:1".into(), counter.register("a1", Some(1), "user-42"));
//!
//! let subscriber = tracing_subscriber::registry().with(layer);
//! tracing::subscriber::with_default(subscriber, || {
//!     let span = tracing::error_span!(
//!         "action",
//!         actor_name = "counter",
//!         actor_key = "user-42",
//!         actor_id_gen = "a1:1",
//!         action = "withdraw",
//!         trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
//!         span_id = "00f067aa0ba902b7",
//!         error = tracing::field::Empty,
//!     );
//!     span.in_scope(|| { /* the call runs here, and fails: */ });
//!     span.record("error", "overdrawn");
//!     drop(span); // the close records the call
//! });
//!
//! let totals = counter.totals();
//! assert_eq!((totals.action_calls_total, totals.action_errors_total), (1, 1));
//! assert_eq!(totals.action_duration_seconds.count(), 1);
//! ```

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;
use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::exemplar::{CallTrace, SpanId, TraceId, replace_current};
use crate::{ActionMetrics, ActorMetrics, Metrics};

/// The fields of one action span that name its actor and action, as the span
/// wrote them (empty when it has no such field): what a resolver reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActorSpan<'a> {
    /// `actor_name`: the actor's type.
    pub actor_name: &'a str,
    /// `actor_key`.
    pub actor_key: &'a str,
    /// `actor_id_gen`: `actor-core` writes `{actor_id}:{generation}`.
    pub actor_id_gen: &'a str,
    /// `action`.
    pub action: &'a str,
}

/// The runtime's map from a span's fields to the handle of the actor it runs.
type Resolve = dyn Fn(&ActorSpan<'_>) -> Option<ActorMetrics> + Send + Sync;

/// A [`Layer`] that records each action span's call when the span closes:
/// see the [module docs](self).
pub struct ActionLayer {
    metrics: Metrics,
    resolve: Box<Resolve>,
    span_name: &'static str,
    /// Each action's aggregate cells, by `actor_name` then `action`.
    actions: RwLock<HashMap<String, HashMap<String, ActionMetrics>>>,
    /// One instant of the store's clock and its wall-clock time.
    anchor: std::time::Instant,
    anchor_unix_ns: u64,
    /// Action spans not recorded, for the `debug` event.
    unrecorded: AtomicU64,
}

impl fmt::Debug for ActionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionLayer")
            .field("span_name", &self.span_name)
            .field("unrecorded", &self.unrecorded.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl ActionLayer {
    /// A layer that records into `metrics` the calls of the actors `resolve`
    /// returns a handle for. The handles must be of `metrics` (a span whose
    /// handle is of another instance is not recorded). Takes the wall-clock
    /// anchor.
    pub fn new(
        metrics: Metrics,
        resolve: impl Fn(&ActorSpan<'_>) -> Option<ActorMetrics> + Send + Sync + 'static,
    ) -> Self {
        let anchor = metrics.0.clock.now().into_std();
        let anchor_unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        ActionLayer {
            metrics,
            resolve: Box::new(resolve),
            span_name: "action",
            actions: RwLock::default(),
            anchor,
            anchor_unix_ns,
            unrecorded: AtomicU64::new(0),
        }
    }

    /// The name of the spans to record. Default `action`.
    pub fn span_name(mut self, name: &'static str) -> Self {
        self.span_name = name;
        self
    }

    /// The call a new action span starts, or `None` when it is not recorded.
    fn start(&self, fields: &SpanFields) -> Option<Call> {
        let span = fields.actor_span();
        let actor = if span.actor_name.is_empty() || span.action.is_empty() {
            Err("the span has no actor_name or no action")
        } else {
            match (self.resolve)(&span) {
                Some(a) if a.is_of(&self.metrics) => Ok(a),
                Some(_) => Err("the resolver returned a handle of another Metrics instance"),
                None => Err("the resolver knows no such actor"),
            }
        };
        let actor = match actor {
            Ok(a) => a,
            Err(why) => {
                let unrecorded = self.unrecorded.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::debug!(
                    actor_name = span.actor_name,
                    actor_id_gen = span.actor_id_gen,
                    action = span.action,
                    unrecorded,
                    "action span not recorded: {why}"
                );
                return None;
            }
        };
        let action = self.action(&actor, span.action);
        let trace = match (fields.trace_id, fields.span_id) {
            (Some(t), Some(s)) if t.is_valid() && s.is_valid() && !fields.unsampled => {
                Some(CallTrace::new(t, s, self.anchor, self.anchor_unix_ns))
            }
            _ => None,
        };
        Some(Call {
            actor,
            action,
            trace,
            failed: fields.outcome.failed,
            start: self.metrics.0.clock.now(),
            entered: Vec::new(),
        })
    }

    /// The cells of `action` of `actor`'s type: resolved on its first call,
    /// then read from the cache.
    fn action(&self, actor: &ActorMetrics, action: &str) -> ActionMetrics {
        let name = actor.actor_name();
        if let Some(a) = self.actions.read().get(name).and_then(|m| m.get(action)) {
            return a.clone();
        }
        self.actions
            .write()
            .entry(name.to_owned())
            .or_default()
            .entry(action.to_owned())
            .or_insert_with(|| self.metrics.actor_type(name).action(action))
            .clone()
    }
}

impl<S> Layer<S> for ActionLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != self.span_name {
            return;
        }
        let mut fields = SpanFields::default();
        attrs.record(&mut fields);
        if let Some(call) = self.start(&fields)
            && let Some(span) = ctx.span(id)
        {
            span.extensions_mut().insert(call);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if span.name() != self.span_name {
            return;
        }
        let mut fields = SpanFields::default();
        values.record(&mut fields);
        if (fields.outcome.failed || fields.unsampled)
            && let Some(call) = span.extensions_mut().get_mut::<Call>()
        {
            call.failed |= fields.outcome.failed;
            if fields.unsampled {
                call.trace = None;
            }
        }
    }

    /// While the call's span is entered, its trace is the thread's current
    /// one, so a SQLite commit made inside it carries the call's exemplar.
    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if span.name() != self.span_name {
            return;
        }
        let mut ext = span.extensions_mut();
        if let Some(call) = ext.get_mut::<Call>()
            && call.trace.is_some()
        {
            call.entered.push(replace_current(call.trace));
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if span.name() != self.span_name {
            return;
        }
        if let Some(call) = span.extensions_mut().get_mut::<Call>()
            && let Some(previous) = call.entered.pop()
        {
            replace_current(previous);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        if span.name() != self.span_name {
            return;
        }
        // The call's second and last clock read, before the layer's own work.
        let end = self.metrics.0.clock.now();
        let call = span.extensions_mut().remove::<Call>();
        if let Some(call) = call {
            call.finish(end);
        }
    }
}

/// One action call under way: kept in its span's extensions from the span's
/// creation to its close.
struct Call {
    actor: ActorMetrics,
    action: ActionMetrics,
    trace: Option<CallTrace>,
    failed: bool,
    start: tokio::time::Instant,
    /// The thread's current traces this span's enters replaced, one per
    /// enter not yet exited (a span may be entered again while entered).
    entered: Vec<Option<CallTrace>>,
}

impl Call {
    /// Records the call as ended at `end`.
    fn finish(self, end: tokio::time::Instant) {
        let elapsed = end.saturating_duration_since(self.start);
        let exemplar = self
            .trace
            .map(|t| t.exemplar(elapsed.as_secs_f64(), end.into_std()));
        self.actor
            .record_action_traced(&self.action, elapsed, !self.failed, exemplar.as_ref());
    }
}

/// Whether a call failed, from its span's `error` and `ok` fields.
#[derive(Debug, Default)]
struct Outcome {
    failed: bool,
}

impl Visit for Outcome {
    fn record_bool(&mut self, field: &Field, value: bool) {
        match field.name() {
            "error" => self.failed |= value,
            "ok" => self.failed |= !value,
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, _: &dyn fmt::Debug) {
        self.failed |= field.name() == "error";
    }
}

/// The fields of a new action span.
#[derive(Debug, Default)]
struct SpanFields {
    actor_name: String,
    actor_key: String,
    actor_id_gen: String,
    action: String,
    trace_id: Option<TraceId>,
    span_id: Option<SpanId>,
    /// `sampled = false`, or `trace_flags` without the sampled bit.
    unsampled: bool,
    outcome: Outcome,
}

impl SpanFields {
    fn actor_span(&self) -> ActorSpan<'_> {
        ActorSpan {
            actor_name: &self.actor_name,
            actor_key: &self.actor_key,
            actor_id_gen: &self.actor_id_gen,
            action: &self.action,
        }
    }

    fn text(&mut self, field: &Field) -> Option<&mut String> {
        match field.name() {
            "actor_name" => Some(&mut self.actor_name),
            "actor_key" => Some(&mut self.actor_key),
            "actor_id_gen" => Some(&mut self.actor_id_gen),
            "action" => Some(&mut self.action),
            _ => None,
        }
    }
}

impl Visit for SpanFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "trace_id" => self.trace_id = TraceId::from_hex(value.as_bytes()),
            "span_id" => self.span_id = SpanId::from_hex(value.as_bytes()),
            "trace_flags" => self.unsampled = unsampled_hex(value.as_bytes()),
            _ => match self.text(field) {
                Some(text) => value.clone_into(text),
                None => self.outcome.record_str(field, value),
            },
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        match field.name() {
            "sampled" => self.unsampled = !value,
            _ => self.outcome.record_bool(field, value),
        }
    }

    /// A number: `trace_flags`, or a text field written as one (`actor_key = 42`).
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "trace_flags" => self.unsampled = value & 1 == 0,
            _ => self.record_debug(field, &value),
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        match field.name() {
            "trace_flags" => self.unsampled = value & 1 == 0,
            _ => self.record_debug(field, &value),
        }
    }

    /// Fields written with `%` (`Display`) or `?` (`Debug`): the ids are
    /// formatted on the stack, the rest into their strings.
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "trace_id" => {
                self.trace_id = Hex::<32>::of(value).and_then(|h| TraceId::from_hex(h.text()))
            }
            "span_id" => {
                self.span_id = Hex::<16>::of(value).and_then(|h| SpanId::from_hex(h.text()))
            }
            "trace_flags" => {
                self.unsampled = Hex::<2>::of(value).is_some_and(|h| unsampled_hex(h.text()))
            }
            _ => match self.text(field) {
                Some(text) => {
                    text.clear();
                    // Writing into a `String` fails only if `value`'s own
                    // formatting does; the field then reads as written so far.
                    let _ = write!(text, "{value:?}");
                }
                None => self.outcome.record_debug(field, value),
            },
        }
    }
}

/// Whether W3C trace flags written as two hex digits, as in a `traceparent`,
/// lack the sampled bit (anything else is no flag: sampled).
fn unsampled_hex(text: &[u8]) -> bool {
    text.len() == 2
        && std::str::from_utf8(text)
            .ok()
            .and_then(|t| u8::from_str_radix(t, 16).ok())
            .is_some_and(|flags| flags & 1 == 0)
}

/// At most `N` bytes of formatted text, on the stack: an id formatted without
/// an allocation. Longer text does not fit, and is no id.
struct Hex<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Hex<N> {
    /// `value` formatted, or `None` when it is longer than `N` bytes.
    fn of(value: &dyn fmt::Debug) -> Option<Self> {
        let mut hex = Hex {
            buf: [0; N],
            len: 0,
        };
        write!(hex, "{value:?}").ok()?;
        Some(hex)
    }

    fn text(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl<const N: usize> fmt::Write for Hex<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let to = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        to.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}
