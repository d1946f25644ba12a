//! Exemplars: where a traced call's trace lands (per type always, per actor
//! at `full` or while promoted), which one a bucket keeps (the slowest since
//! the last scrape), and which formats carry them (OpenMetrics and protobuf,
//! never the text format 0.0.4).

use std::time::{Duration, Instant};

use actor_metrics::exemplar::{CallTrace, Exemplar, SpanId, TraceId, in_call};
use actor_metrics::scrape::{ExemplarSample, Scrape};
use actor_metrics::{
    ActionMetrics, ActorMetrics, Config, DetailLevel, Format, Metrics, Promotion, ScrapeRequest,
};

/// 2024-12-05T12:00:00Z, in nanoseconds.
const ANCHOR_NS: u64 = 1_733_400_000_000_000_000;

fn trace(n: u8) -> CallTrace {
    CallTrace::new(
        TraceId([n; 16]),
        SpanId([n.wrapping_add(1); 8]),
        Instant::now(),
        ANCHOR_NS,
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A call of `secs` seconds in `t`, ended 2 s after its anchor.
fn exemplar(t: &CallTrace, secs: f64) -> Exemplar {
    t.exemplar(secs, Instant::now() + Duration::from_secs(2))
}

fn metrics(level: DetailLevel) -> Metrics {
    Metrics::new(Config {
        envoy_key: "e".into(),
        per_actor_detail: level,
        ..Config::default()
    })
    .unwrap()
}

fn body(m: &Metrics, format: Format) -> Vec<u8> {
    m.exposition(&ScrapeRequest {
        format,
        ..ScrapeRequest::default()
    })
    .flatten()
    .collect()
}

fn openmetrics(m: &Metrics) -> Scrape {
    openmetrics_of(m, ScrapeRequest::default())
}

fn openmetrics_of(m: &Metrics, request: ScrapeRequest) -> Scrape {
    let body: Vec<u8> = m
        .exposition(&ScrapeRequest {
            format: Format::OpenMetrics,
            ..request
        })
        .flatten()
        .collect();
    Scrape::parse_openmetrics(std::str::from_utf8(&body).unwrap()).unwrap()
}

fn call(a: &ActorMetrics, action: &ActionMetrics, secs: f64, ok: bool, t: &CallTrace) {
    a.record_action_traced(
        action,
        Duration::from_secs_f64(secs),
        ok,
        Some(&exemplar(t, secs)),
    );
}

/// The exemplar's trace id, and that its span id and time are the call's.
fn trace_of(e: &ExemplarSample, t: &CallTrace) -> String {
    assert_eq!(e.exemplar["span_id"], hex(&t.span_id.0), "{e:?}");
    assert_eq!(e.exemplar.len(), 2, "trace_id and span_id only: {e:?}");
    let ts = e.timestamp.expect("a time");
    assert!((ts - (ANCHOR_NS as f64 / 1e9 + 2.0)).abs() < 0.01, "{ts}");
    e.exemplar["trace_id"].clone()
}

#[test]
fn a_traced_call_leaves_its_trace_on_its_types_bucket_and_error_counter() {
    let m = metrics(DetailLevel::Core);
    let ty = m.actor_type("counter");
    let (slow, fail) = (ty.action("slow"), ty.action("fail"));
    let a = ty.register("a", Some(1), "user-42");
    let (t1, t2) = (trace(1), trace(2));
    call(&a, &slow, 0.7, true, &t1);
    call(&a, &fail, 0.002, false, &t2);
    // An untraced call leaves nothing.
    a.record_action(&slow, Duration::from_secs(3), true);

    let s = openmetrics(&m);
    let e = s
        .exemplar(
            "actor_type_action_duration_seconds_bucket",
            &[("action", "slow"), ("actor_name", "counter")],
        )
        .expect("the slow call's exemplar");
    assert_eq!(e.labels["le"], "1", "0.7 s falls in (0.5, 1]");
    assert_eq!(e.value, 0.7);
    assert_eq!(trace_of(e, &t1), hex(&t1.trace_id.0));
    let e = s
        .exemplar(
            "actor_type_action_errors_total",
            &[("action", "fail"), ("actor_name", "counter")],
        )
        .expect("the failed call's exemplar");
    assert_eq!((e.value, trace_of(e, &t2)), (1.0, hex(&t2.trace_id.0)));
    assert!(
        s.exemplar("actor_type_action_errors_total", &[("action", "slow")])
            .is_none(),
        "no error, no exemplar"
    );
    assert_eq!(
        s.exemplars().len(),
        3,
        "slow and fail buckets, fail's error; none per actor at core: {:?}",
        s.exemplars()
    );

    // Protobuf carries the same ones on the same samples.
    let p = Scrape::parse_protobuf(&body(&m, Format::Protobuf)).unwrap();
    let mut om: Vec<_> = s
        .exemplars()
        .iter()
        .map(|e| (&e.name, &e.labels, &e.exemplar))
        .collect();
    let mut pb: Vec<_> = p
        .exemplars()
        .iter()
        .map(|e| (&e.name, &e.labels, &e.exemplar))
        .collect();
    om.sort();
    pb.sort();
    assert_eq!(om, pb);

    // The text format 0.0.4 has no exemplar syntax: none is written.
    let text = String::from_utf8(body(&m, Format::Text)).unwrap();
    assert!(!text.contains("trace_id"), "{text}");
    Scrape::parse(&text).unwrap();
}

#[test]
fn a_bucket_keeps_the_slowest_call_since_the_last_scrape() {
    let m = metrics(DetailLevel::Core);
    let ty = m.actor_type("counter");
    let slow = ty.action("slow");
    let a = ty.register("a", Some(1), "k");
    let kept = |m: &Metrics| {
        openmetrics(m)
            .exemplar(
                "actor_type_action_duration_seconds_bucket",
                &[("action", "slow"), ("le", "1")],
            )
            .map(|e| (e.value, e.exemplar["trace_id"].clone()))
    };
    call(&a, &slow, 0.6, true, &trace(1));
    call(&a, &slow, 0.9, true, &trace(2));
    call(&a, &slow, 0.7, true, &trace(3));
    assert_eq!(
        kept(&m),
        Some((0.9, hex(&[2; 16]))),
        "the slowest of the interval"
    );
    assert_eq!(
        kept(&m),
        Some((0.9, hex(&[2; 16]))),
        "still there until replaced"
    );
    call(&a, &slow, 0.55, true, &trace(4));
    assert_eq!(
        kept(&m),
        Some((0.55, hex(&[4; 16]))),
        "the next interval's first"
    );
}

#[test]
fn an_actor_keeps_its_own_exemplars_at_full_and_not_at_core() {
    for (level, own) in [(DetailLevel::Full, true), (DetailLevel::Core, false)] {
        let m = metrics(level);
        let ty = m.actor_type("counter");
        let (slow, fail) = (ty.action("slow"), ty.action("fail"));
        let a = ty.register("a", Some(1), "user-42");
        let t = trace(7);
        call(&a, &slow, 0.7, true, &t);
        call(&a, &fail, 0.01, false, &t);
        let s = openmetrics(&m);
        let bucket = s.exemplar(
            "actor_action_duration_seconds_bucket",
            &[("actor_key", "user-42"), ("le", "1")],
        );
        let error = s.exemplar("actor_action_errors_total", &[("actor_key", "user-42")]);
        assert_eq!(bucket.is_some(), own, "{level:?}");
        assert_eq!(error.is_some(), own, "{level:?}");
        if own {
            assert_eq!(trace_of(bucket.unwrap(), &t), hex(&t.trace_id.0));
            assert_eq!(error.unwrap().value, 1.0);
        }
    }
}

/// The actor that stands out is promoted and keeps the trace of its slow
/// call on its own bucket (in the promoted scrape, where its buckets are;
/// its error counter's in the default one); the healthy ones keep none of
/// their own. Once
/// demoted, its own exemplars are no longer shown, in the default scrape or
/// in full: they stopped following its calls.
#[test]
fn a_promoted_actor_keeps_its_own_exemplars_until_demoted() {
    let m = Metrics::new(Config {
        envoy_key: "e".into(),
        promotion: Promotion {
            hold: Duration::from_secs(20),
            ..Promotion::default()
        },
        ..Config::default()
    })
    .unwrap();
    let ty = m.actor_type("counter");
    let inc = ty.action("increment");
    let healthy: Vec<_> = (0..50)
        .map(|i| ty.register(&format!("h{i}"), Some(1), &format!("healthy-{i}")))
        .collect();
    let bad = ty.register("bad", Some(1), "bad");
    let t0 = tokio::time::Instant::now();
    m.watch(t0);
    for tick in 1..=3 {
        for a in &healthy {
            for _ in 0..20 {
                a.record_action(&inc, Duration::from_millis(1), true);
            }
        }
        for i in 0..20 {
            bad.record_action(&inc, Duration::from_millis(1), i >= 10);
        }
        m.watch(t0 + Duration::from_secs(10) * tick);
    }
    let (tb, th) = (trace(8), trace(9));
    call(&bad, &inc, 0.7, true, &tb);
    call(&healthy[0], &inc, 0.7, true, &th);
    let promoted = ScrapeRequest {
        promoted: true,
        ..ScrapeRequest::default()
    };
    let s = openmetrics_of(&m, promoted.clone());
    assert!(
        openmetrics(&m)
            .series("actor_action_duration_seconds_bucket")
            .next()
            .is_none(),
        "the default scrape holds no actor's buckets"
    );
    let own = |key: &str| {
        s.exemplar(
            "actor_action_duration_seconds_bucket",
            &[("actor_key", key), ("le", "1")],
        )
    };
    assert_eq!(
        own("bad").map(|e| trace_of(e, &tb)),
        Some(hex(&tb.trace_id.0)),
        "promoted: {:?}",
        s.exemplars()
    );
    assert!(own("healthy-0").is_none());
    let error = |s: &Scrape| {
        s.exemplar("actor_action_errors_total", &[("actor_key", "bad")])
            .is_some()
    };
    call(&bad, &inc, 0.01, false, &tb);
    assert!(error(&openmetrics(&m)), "promoted: its error's exemplar");

    // Healthy from now on: demoted after the hold.
    let mut tick = 3;
    let demoted = loop {
        tick += 1;
        assert!(tick < 80, "never demoted");
        for a in healthy.iter().chain([&bad]) {
            for _ in 0..20 {
                a.record_action(&inc, Duration::from_millis(1), true);
            }
        }
        m.watch(t0 + Duration::from_secs(10) * tick);
        let promoted = Scrape::parse(&m.render())
            .unwrap()
            .series("actor_detail_promoted")
            .any(|x| x.labels["actor_key"] == "bad");
        if !promoted {
            break tick;
        }
    };
    assert!(demoted > 4, "demoted at tick {demoted}");
    // A traced failure after the demotion takes no slot of its own, and the
    // old ones are not shown, at the default level or in full.
    call(&bad, &inc, 0.7, false, &trace(10));
    for request in [
        ScrapeRequest::default(),
        ScrapeRequest {
            detail: Some(DetailLevel::Full),
            ..ScrapeRequest::default()
        },
    ] {
        let body = m
            .exposition(&ScrapeRequest {
                format: Format::OpenMetrics,
                ..request.clone()
            })
            .flatten()
            .collect::<Vec<u8>>();
        let s = Scrape::parse_openmetrics(std::str::from_utf8(&body).unwrap()).unwrap();
        assert!(
            s.exemplars()
                .iter()
                .all(|e| e.name.starts_with("actor_type_")),
            "{request:?}: {:?}",
            s.exemplars()
        );
        assert!(
            s.exemplar("actor_type_action_errors_total", &[("action", "increment")])
                .is_some_and(|e| e.exemplar["trace_id"] == hex(&[10; 16])),
            "the type's error exemplar is the latest"
        );
    }
    // Demoted, it has left the promoted scrape.
    let s = openmetrics_of(&m, promoted);
    assert!(s.samples().is_empty(), "{:?}", s.samples());
}

#[test]
fn a_commit_inside_a_traced_call_carries_the_calls_trace() {
    let m = metrics(DetailLevel::Full);
    let a = m.actor_type("counter").register("a", Some(1), "k");
    let t = trace(5);
    let at = Instant::now() + Duration::from_secs(2);
    in_call(Some(t), || {
        a.record_sqlite_commit(Duration::from_millis(3), at)
    });
    // Outside a call: recorded, no exemplar.
    a.record_sqlite_commit(Duration::from_secs(20), at);
    let s = openmetrics(&m);
    for name in [
        "actor_type_sqlite_commit_duration_seconds_bucket",
        "actor_sqlite_commit_duration_seconds_bucket",
    ] {
        let got: Vec<_> = s.exemplars().iter().filter(|e| e.name == name).collect();
        assert_eq!(got.len(), 1, "{name}: {got:?}");
        assert_eq!(trace_of(got[0], &t), hex(&t.trace_id.0));
        assert_eq!(got[0].value, 0.003);
        let le: f64 = got[0].labels["le"].parse().unwrap();
        assert!(0.003 <= le, "{le}");
    }
    assert_eq!(
        s.get(
            "actor_type_sqlite_commit_duration_seconds_count",
            &[("actor_name", "counter")]
        ),
        Some(2.0)
    );
}
