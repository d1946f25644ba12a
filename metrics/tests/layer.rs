//! The tracing layer (feature `tracing-layer`) records what direct recording
//! records: the same calls made inside action spans and through
//! `record_action_traced` give the same counts, errors, duration sums and
//! buckets, per actor and per (`actor_name`, `action`). Spans the layer cannot
//! place are dropped without a panic; spans of another name are ignored.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actor_metrics::exemplar::{CallTrace, SpanId, TraceId};
use actor_metrics::layer::{ActionLayer, ActorSpan};
use actor_metrics::scrape::{ExemplarSample, Scrape};
use actor_metrics::{ActorMetrics, Config, DetailLevel, Format, Metrics, ScrapeRequest};
use tracing::field::Empty;
use tracing_subscriber::layer::SubscriberExt;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// One trace per call, so an exemplar names the call it came from.
const T: [&str; 5] = [
    TRACE,
    "0af7651916cd43dd8448eb211c80319c",
    "00000000000000000000000000000003",
    "ffffffffffffffffffffffffffffff04",
    "0123456789abcdef0123456789abcd05",
];
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
        call(0, "increment", ms(700), Outcome::Ok, T[0]),
        call(0, "increment", ms(3), Outcome::ErrorRecorded, T[1]),
        call(0, "get", ms(3), Outcome::OkTrue, T[2]),
        // Uppercase is not the W3C form: recorded, without an exemplar.
        call(
            1,
            "increment",
            ms(3),
            Outcome::OkFalse,
            "4BF92F3577B34DA6A3CE929D0E0E4736",
        ),
        // No trace: recorded, without an exemplar.
        call(1, "increment", ms(1500), Outcome::ErrorFalse, ""),
        call(2, "withdraw", ms(12_000), Outcome::ErrorTrue, T[3]),
        call(2, "withdraw", Duration::ZERO, Outcome::Ok, T[4]),
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

/// An action span of the first counter actor in trace `trace_id`, with
/// `trace_flags` at its creation when given; `error` and `sampled` are
/// recorded later, if at all.
fn counter_span(trace_id: &str, trace_flags: Option<&str>) -> tracing::Span {
    tracing::error_span!(
        "action",
        actor_name = "counter",
        actor_id_gen = "a1:1",
        action = "increment",
        trace_id,
        span_id = SPAN,
        error = Empty,
        sampled = Empty,
        trace_flags,
    )
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

/// What the layer's target should hold: each call recorded directly, with
/// an exemplar when its span has a valid trace.
fn record_directly(m: &Metrics, actors: &[ActorMetrics]) {
    for c in calls() {
        let action = m.actor_type(ACTORS[c.actor].0).action(c.action);
        let exemplar = T.contains(&c.trace_id).then(|| {
            let trace_id = TraceId::from_hex(c.trace_id.as_bytes()).unwrap();
            let span_id = SpanId::from_hex(SPAN.as_bytes()).unwrap();
            let now = std::time::Instant::now();
            CallTrace::new(trace_id, span_id, now, 1_733_400_000_000_000_000)
                .exemplar(c.took.as_secs_f64(), now)
        });
        actors[c.actor].record_action_traced(&action, c.took, c.outcome.ok(), exemplar.as_ref());
    }
}

/// Every exemplar of an OpenMetrics scrape, each with its call's span id
/// and a time.
fn openmetrics_exemplars(m: &Metrics) -> Vec<ExemplarSample> {
    let body: Vec<u8> = m
        .exposition(&ScrapeRequest {
            format: Format::OpenMetrics,
            ..ScrapeRequest::default()
        })
        .flatten()
        .collect();
    let scrape = Scrape::parse_openmetrics(std::str::from_utf8(&body).unwrap()).unwrap();
    for e in scrape.exemplars() {
        assert_eq!(e.exemplar["span_id"], SPAN, "{e:?}");
        assert!(e.timestamp.is_some(), "{e:?}");
    }
    scrape.exemplars().to_vec()
}

/// Every exemplar but its time (the two instances' clocks differ), as
/// `(sample, its labels, trace_id, value)`, sorted.
fn exemplars(m: &Metrics) -> Vec<(String, BTreeMap<String, String>, String, f64)> {
    let mut all: Vec<_> = openmetrics_exemplars(m)
        .into_iter()
        .map(|e| (e.name, e.labels, e.exemplar["trace_id"].clone(), e.value))
        .collect();
    all.sort_by(|a, b| (&a.0, &a.1, &a.2).cmp(&(&b.0, &b.1, &b.2)));
    all
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

    let kept = exemplars(&through_layer);
    assert_eq!(
        kept,
        exemplars(&direct),
        "the same exemplars on the same samples"
    );
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

    // Each exemplar is its call's: the bucket of its duration, the error
    // counter of a failed call; none for the calls without a valid trace.
    let on = |name: &str, labels: &[(&str, &str)]| -> Vec<(&str, f64)> {
        kept.iter()
            .filter(|(n, l, ..)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, trace, value)| (trace.as_str(), *value))
            .collect()
    };
    let bucket = "actor_type_action_duration_seconds_bucket";
    let (increment, withdraw) = (("action", "increment"), ("action", "withdraw"));
    assert_eq!(on(bucket, &[increment, ("le", "1")]), [(T[0], 0.7)]);
    assert_eq!(
        on(bucket, &[increment, ("le", "0.005")]),
        [(T[1], 0.003)],
        "not the untraced 3 ms call's"
    );
    assert_eq!(
        on(bucket, &[increment, ("le", "2.5")]),
        [],
        "the 1.5 s call had no trace"
    );
    assert_eq!(
        on(bucket, &[("action", "get"), ("le", "0.005")]),
        [(T[2], 0.003)]
    );
    assert_eq!(on(bucket, &[withdraw, ("le", "+Inf")]), [(T[3], 12.0)]);
    assert_eq!(on(bucket, &[withdraw, ("le", "0.001")]), [(T[4], 0.0)]);
    let errors = "actor_type_action_errors_total";
    assert_eq!(on(errors, &[increment]), [(T[1], 1.0)]);
    assert_eq!(on(errors, &[withdraw]), [(T[3], 1.0)]);
    assert_eq!(on(errors, &[("action", "get")]), []);
    // Per actor too, at `full`.
    let a1 = ("actor_id_gen", "a1:1");
    assert_eq!(
        on("actor_action_duration_seconds_bucket", &[a1, ("le", "1")]),
        [(T[0], 0.7)]
    );
    assert_eq!(on("actor_action_errors_total", &[a1]), [(T[1], 1.0)]);
    assert_eq!(
        on("actor_action_errors_total", &[("actor_id_gen", "a2:3")]),
        []
    );
    assert_eq!(
        kept.len(),
        5 + 2 + 4 + 2,
        "per type 5 buckets and 2 error counters; per actor 4 and 2 (a1's two 3 ms calls share a bucket)"
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

/// An exemplar is timed from the close's clock read through the wall-clock
/// anchor the layer took once: two calls that end 5 s apart on the paused
/// clock are 5 s apart on their exemplars, which no wall-clock read per call
/// could give (the wall clock barely moves meanwhile). Ids written as plain
/// strings read too; an all-zero trace id is no trace.
#[tokio::test(start_paused = true)]
async fn exemplars_are_timed_from_the_close_through_one_anchor() {
    let m = Metrics::new(Config::default()).unwrap();
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let layer = ActionLayer::new(m.clone(), resolver(register(&m), Arc::default()));
    let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    let call = |trace_id: &str, took| {
        let span = counter_span(trace_id, None);
        async move {
            tokio::time::advance(took).await;
            span
        }
    };
    drop(call(T[0], Duration::from_millis(700)).await);
    tokio::time::advance(Duration::from_millis(4_997)).await;
    let failed = call(T[1], Duration::from_millis(3)).await;
    failed.record("error", true);
    drop(failed);
    drop(call(&"0".repeat(32), Duration::from_millis(300)).await);

    let kept = openmetrics_exemplars(&m);
    let of = |trace: &str| {
        let mut on: Vec<_> = kept
            .iter()
            .filter(|e| e.exemplar["trace_id"] == trace)
            .map(|e| {
                (
                    e.name.as_str(),
                    e.labels.get("le").map(String::as_str),
                    e.value,
                    e.timestamp.unwrap(),
                )
            })
            .collect();
        on.sort_by(|a, b| a.0.cmp(b.0));
        on
    };
    let first = of(T[0]);
    let [("actor_type_action_duration_seconds_bucket", Some("1"), 0.7, at)] = first[..] else {
        panic!("the 700 ms call's exemplar, on its bucket only: {first:?}");
    };
    assert!(
        (at - (wall + 0.7)).abs() < 1.0,
        "{at} is the end of a call that started at {wall}"
    );
    let second = of(T[1]);
    let [
        ("actor_type_action_duration_seconds_bucket", Some("0.005"), 0.003, bucket_at),
        ("actor_type_action_errors_total", None, 1.0, error_at),
    ] = second[..]
    else {
        panic!("the failed call's exemplars: {second:?}");
    };
    assert_eq!(bucket_at, error_at);
    assert!((error_at - at - 5.0).abs() < 1e-6, "{error_at} - {at}");
    assert_eq!(kept.len(), 3, "none for the all-zero trace: {kept:?}");
}

/// A commit made while the call's span is entered carries the call's trace;
/// one made after it is exited carries none.
#[tokio::test(start_paused = true)]
async fn a_commit_inside_an_entered_action_span_carries_its_trace() {
    let m = full();
    let actors = register(&m);
    let a = actors[0].clone();
    let layer = ActionLayer::new(m.clone(), resolver(actors, Arc::default()));
    let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    let span = tracing::error_span!(
        "action",
        actor_name = "counter",
        actor_id_gen = "a1:1",
        action = "increment",
        trace_id = TRACE,
        span_id = SPAN,
    );
    let at = std::time::Instant::now();
    span.in_scope(|| {
        // Entered twice (nested), then exited: the trace stays until the last exit.
        span.in_scope(|| a.record_sqlite_commit(Duration::from_millis(2), at));
        assert!(actor_metrics::exemplar::current().is_some());
    });
    assert_eq!(actor_metrics::exemplar::current(), None);
    a.record_sqlite_commit(Duration::from_secs(20), at);
    drop(span);
    let on_commits: Vec<_> = openmetrics_exemplars(&m)
        .into_iter()
        .filter(|e| e.name.contains("sqlite_commit"))
        .collect();
    assert_eq!(
        on_commits.len(),
        2,
        "per type and per actor: {on_commits:?}"
    );
    for e in &on_commits {
        assert_eq!(e.exemplar["trace_id"], TRACE, "{e:?}");
        assert_eq!(e.value, 0.002);
    }
}

/// A trace the span says is not sampled (`sampled = false`, or W3C
/// `trace_flags` without bit 01, as a number or as two hex digits) leaves no
/// exemplar: its id would lead to no stored trace. The call itself is still
/// counted, and a sampled trace, or a span that says nothing, keeps its
/// exemplar. Each call is scraped on its own (the slots then take the next
/// call whatever its value).
#[tokio::test(start_paused = true)]
async fn an_unsampled_trace_leaves_no_exemplar_but_its_call_is_counted() {
    let m = Metrics::new(Config::default()).unwrap();
    let layer = ActionLayer::new(m.clone(), resolver(register(&m), Arc::default()));
    let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    let unsampled = |s: &tracing::Span, how: usize| {
        match how {
            0 => s.record("sampled", false),
            1 => s.record("trace_flags", 0u64),
            2 => s.record("trace_flags", "00"),
            _ => s.record("trace_flags", tracing::field::display("02")),
        };
    };
    let sampled = |s: &tracing::Span, how: usize| {
        match how {
            0 => s.record("sampled", true),
            1 => s.record("trace_flags", 1u64),
            2 => s.record("trace_flags", "01"),
            // A span that says nothing: sampled.
            _ => s,
        };
    };
    // Said at the span's creation.
    let s = counter_span("0000000000000000000000000000ac01", Some("00"));
    tokio::time::advance(Duration::from_millis(2)).await;
    drop(s);
    let kept = openmetrics_exemplars(&m);
    assert!(kept.is_empty(), "{kept:?}");
    let mut calls = 1;
    for how in 0..4 {
        for keep in [false, true] {
            // A trace of its own per call.
            let trace = &format!("{:032x}", 0xab00 + 2 * how + usize::from(keep));
            let s = counter_span(trace, None);
            if keep {
                sampled(&s, how);
            } else {
                unsampled(&s, how);
            }
            tokio::time::advance(Duration::from_millis(2)).await;
            drop(s);
            calls += 1;
            let kept: Vec<String> = openmetrics_exemplars(&m)
                .into_iter()
                .map(|e| e.exemplar["trace_id"].clone())
                .collect();
            assert_eq!(
                kept.iter().any(|t| t == trace),
                keep,
                "way {how}, sampled {keep}: {trace} in {kept:?}"
            );
        }
    }
    let counter = m.actor_type("counter").totals();
    assert_eq!(counter.action_calls_total, calls, "every call is counted");
}
