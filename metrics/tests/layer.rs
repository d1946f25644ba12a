//! The tracing layer (feature `tracing-layer`) records what direct recording
//! records: the same calls made inside action spans and through
//! `record_action_traced` give the same counts, errors, duration sums and
//! buckets, per actor and per (`actor_name`, `action`). Spans the layer cannot
//! place are dropped without a panic; spans of another name are ignored.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actor_metrics::exemplar::{CallTrace, SpanId, TraceId};
use actor_metrics::layer::{ActionLayer, ActorSpan};
use actor_metrics::scrape::Scrape;
use actor_metrics::{ActorMetrics, Config, DetailLevel, Metrics};
use tracing::field::Empty;
use tracing_subscriber::layer::SubscriberExt;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

/// How one call says it failed, if it does.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Ok,
    /// `ok = true` at creation.
    OkTrue,
    /// `error = false` at creation: not a failure.
    ErrorFalse,
    /// `error = "…"` recorded while the call runs.
    ErrorRecorded,
    /// `ok = false` at creation.
    OkFalse,
    /// `error = true` at creation.
    ErrorTrue,
}

impl Outcome {
    fn ok(self) -> bool {
        matches!(self, Outcome::Ok | Outcome::OkTrue | Outcome::ErrorFalse)
    }
}

/// One call: the actor (index into `ACTORS`), the action, its run time, how
/// it ends, and its `trace_id` field.
struct Call {
    actor: usize,
    action: &'static str,
    took: Duration,
    outcome: Outcome,
    trace_id: &'static str,
}

/// `(actor_name, actor_id, generation, actor_key)`.
const ACTORS: [(&str, &str, u64, &str); 3] = [
    ("counter", "a1", 1, "k1"),
    ("counter", "a2", 3, "k2"),
    ("bank", "b1", 1, "k1"),
];

fn calls() -> Vec<Call> {
    let ms = Duration::from_millis;
    let call = |actor, action, took, outcome, trace_id| Call {
        actor,
        action,
        took,
        outcome,
        trace_id,
    };
    vec![
        call(0, "increment", ms(700), Outcome::Ok, TRACE),
        call(0, "increment", ms(3), Outcome::ErrorRecorded, TRACE),
        call(0, "get", ms(3), Outcome::OkTrue, TRACE),
        // Uppercase is not the W3C form: recorded, without an exemplar.
        call(
            1,
            "increment",
            ms(3),
            Outcome::OkFalse,
            "4BF92F3577B34DA6A3CE929D0E0E4736",
        ),
        call(1, "increment", ms(1500), Outcome::ErrorFalse, ""),
        call(2, "withdraw", ms(12_000), Outcome::ErrorTrue, TRACE),
        call(2, "withdraw", Duration::ZERO, Outcome::Ok, TRACE),
    ]
}

fn full() -> Metrics {
    Metrics::new(Config {
        per_actor_detail: DetailLevel::Full,
        ..Config::default()
    })
    .unwrap()
}

fn register(m: &Metrics) -> Vec<ActorMetrics> {
    ACTORS
        .iter()
        .map(|&(name, id, generation, key)| m.actor_type(name).register(id, Some(generation), key))
        .collect()
}

/// A resolver over `actors` by `actor_id_gen`, counting its calls.
fn resolver(
    actors: Vec<ActorMetrics>,
    asked: Arc<AtomicUsize>,
) -> impl Fn(&ActorSpan<'_>) -> Option<ActorMetrics> + Send + Sync + 'static {
    move |span| {
        asked.fetch_add(1, Ordering::SeqCst);
        ACTORS
            .iter()
            .position(|&(name, id, generation, _)| {
                span.actor_name == name && span.actor_id_gen == format!("{id}:{generation}")
            })
            .map(|i| actors[i].clone())
    }
}

/// An action span of `ACTORS[actor]` shaped as `actor-core`'s host writes it,
/// with the `error` and `ok` fields `outcome` sets.
fn action_span(
    name: &'static str,
    actor: usize,
    action: &str,
    trace_id: &str,
    outcome: Outcome,
) -> tracing::Span {
    let (actor_name, id, generation, key) = ACTORS[actor];
    macro_rules! span {
        ($name:literal, $($outcome:tt)*) => {
            tracing::error_span!(
                $name,
                actor_name,
                actor_key = %key.escape_debug(),
                actor_id_gen = %format_args!("{id}:{generation}"),
                action,
                trace_id = %trace_id,
                span_id = %SPAN,
                $($outcome)*
            )
        };
    }
    macro_rules! named {
        ($($outcome:tt)*) => {
            match name {
                "action" => span!("action", $($outcome)*),
                "call" => span!("call", $($outcome)*),
                other => panic!("no span named {other} in this test"),
            }
        };
    }
    match outcome {
        Outcome::Ok | Outcome::ErrorRecorded => named!(error = Empty, ok = Empty),
        Outcome::OkTrue => named!(ok = true),
        Outcome::ErrorFalse => named!(error = false),
        Outcome::OkFalse => named!(ok = false),
        Outcome::ErrorTrue => named!(error = true),
    }
}

/// Runs `call` inside its span under the paused clock: the span lives
/// exactly `call.took`.
async fn run_in_span(span_name: &'static str, call: &Call) {
    let span = action_span(
        span_name,
        call.actor,
        call.action,
        call.trace_id,
        call.outcome,
    );
    let entered = span.clone().entered();
    tokio::time::advance(call.took).await;
    if call.outcome == Outcome::ErrorRecorded {
        span.record("error", "overdrawn");
    }
    drop(entered);
    drop(span);
}

/// What the layer's target should hold: each call recorded directly.
fn record_directly(m: &Metrics, actors: &[ActorMetrics]) {
    let trace = CallTrace::new(
        TraceId::from_hex(TRACE.as_bytes()).unwrap(),
        SpanId::from_hex(SPAN.as_bytes()).unwrap(),
        std::time::Instant::now(),
        0,
    );
    for c in calls() {
        let action = m.actor_type(ACTORS[c.actor].0).action(c.action);
        let exemplar = (c.trace_id == TRACE)
            .then(|| trace.exemplar(c.took.as_secs_f64(), std::time::Instant::now()));
        actors[c.actor].record_action_traced(&action, c.took, c.outcome.ok(), exemplar.as_ref());
    }
}

/// The action families' samples, per actor and per type, by name and labels
/// (two instances list their actors in different orders).
fn action_samples(m: &Metrics) -> BTreeMap<(String, BTreeMap<String, String>), f64> {
    let scrape = Scrape::parse(&m.render()).unwrap();
    let samples: BTreeMap<_, _> = scrape
        .samples()
        .iter()
        .filter(|s| s.name.starts_with("actor_action_") || s.name.starts_with("actor_type_action_"))
        .map(|s| ((s.name.clone(), s.labels.clone()), s.value))
        .collect();
    assert!(
        samples.len() > 50,
        "every bucket of every series: {}",
        samples.len()
    );
    samples
}

#[tokio::test(start_paused = true)]
async fn calls_recorded_from_spans_read_as_calls_recorded_directly() {
    let through_layer = full();
    let actors = register(&through_layer);
    let asked = Arc::new(AtomicUsize::new(0));
    let layer = ActionLayer::new(
        through_layer.clone(),
        resolver(actors.clone(), asked.clone()),
    );
    let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    for call in calls() {
        run_in_span("action", &call).await;
    }

    let direct = full();
    let direct_actors = register(&direct);
    record_directly(&direct, &direct_actors);

    assert_eq!(through_layer.totals(), direct.totals(), "per type");
    assert_eq!(
        action_samples(&through_layer),
        action_samples(&direct),
        "per actor and per action, every bucket"
    );
    assert_eq!(
        asked.load(Ordering::SeqCst),
        calls().len(),
        "the resolver is asked once per span"
    );

    // And the numbers are the calls', not two empty stores alike.
    let counter = through_layer.actor_type("counter").totals();
    assert_eq!(
        (counter.action_calls_total, counter.action_errors_total),
        (5, 2)
    );
    assert_eq!(counter.action_duration_seconds.count(), 5);
    assert!((counter.action_duration_seconds.sum - 2.209).abs() < 1e-9);
    let bank = through_layer.actor_type("bank").totals();
    assert_eq!((bank.action_calls_total, bank.action_errors_total), (2, 1));
    assert_eq!(bank.action_duration_seconds.sum, 12.0);
    let scrape = Scrape::parse(&through_layer.render()).unwrap();
    let a1 = [("actor_id_gen", "a1:1")];
    assert_eq!(scrape.sum("actor_action_calls_total", &a1), 3.0);
    assert_eq!(scrape.sum("actor_action_errors_total", &a1), 1.0);
    let bucket = |le| {
        scrape.sum(
            "actor_action_duration_seconds_bucket",
            &[("actor_id_gen", "a1:1"), ("le", le)],
        )
    };
    assert_eq!(
        (
            bucket("0.0025"),
            bucket("0.005"),
            bucket("0.5"),
            bucket("1")
        ),
        (0.0, 2.0, 2.0, 3.0)
    );
    let inc = [("actor_name", "counter"), ("action", "increment")];
    assert_eq!(scrape.get("actor_type_action_calls_total", &inc), Some(4.0));
    assert_eq!(
        scrape.get("actor_type_action_errors_total", &inc),
        Some(2.0)
    );
}

#[tokio::test(start_paused = true)]
async fn spans_the_layer_cannot_place_are_not_recorded() {
    let m = full();
    let actors = register(&m);
    let other = full();
    let stranger = other.actor_type("counter").register("a1", Some(1), "k1");
    let layer = ActionLayer::new(m.clone(), move |span| match span.actor_id_gen {
        "a1:1" => Some(actors[0].clone()),
        // A handle of another instance: refused, not recorded in either.
        "a2:3" => Some(stranger.clone()),
        _ => None,
    });
    let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));

    let unknown = tracing::error_span!(
        "action",
        actor_name = "counter",
        actor_id_gen = "a9:1",
        action = "increment"
    );
    let no_action = tracing::error_span!("action", actor_name = "counter", actor_id_gen = "a1:1");
    let elsewhere = action_span("action", 1, "increment", TRACE, Outcome::Ok);
    let other_name = action_span("call", 0, "increment", TRACE, Outcome::Ok);
    let prefixed = tracing::error_span!(
        "action_helper",
        actor_name = "counter",
        actor_id_gen = "a1:1",
        action = "increment"
    );
    tokio::time::advance(Duration::from_millis(5)).await;
    drop((unknown, no_action, elsewhere, other_name, prefixed));

    for (name, t) in m.totals().into_iter().chain(other.totals()) {
        assert_eq!(t.action_calls_total, 0, "{name}");
    }
    // The layer still records a call it can place after those.
    run_in_span(
        "action",
        &Call {
            actor: 0,
            action: "get",
            took: Duration::from_millis(3),
            outcome: Outcome::Ok,
            trace_id: TRACE,
        },
    )
    .await;
    assert_eq!(m.actor_type("counter").totals().action_calls_total, 1);
}

#[tokio::test(start_paused = true)]
async fn the_span_name_is_the_one_configured() {
    let m = full();
    let actors = register(&m);
    let asked = Arc::new(AtomicUsize::new(0));
    let layer = ActionLayer::new(m.clone(), resolver(actors, asked.clone())).span_name("call");
    let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    let call = |action| Call {
        actor: 0,
        action,
        took: Duration::from_millis(40),
        outcome: Outcome::Ok,
        trace_id: TRACE,
    };
    run_in_span("action", &call("increment")).await;
    run_in_span("call", &call("get")).await;

    let scrape = Scrape::parse(&m.render()).unwrap();
    let of = |action| [("actor_name", "counter"), ("action", action)];
    assert_eq!(
        scrape.get("actor_type_action_calls_total", &of("get")),
        Some(1.0)
    );
    assert_eq!(
        scrape.get("actor_type_action_calls_total", &of("increment")),
        None,
        "never resolved"
    );
    assert_eq!(
        scrape.get("actor_type_action_duration_seconds_sum", &of("get")),
        Some(0.04)
    );
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "an `action` span is not even looked at"
    );
}
