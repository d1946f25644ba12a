//! Exemplars and trace correlation end to end (issue 21): the real
//! `actor-host`, scraped by a real Prometheus 2.42 with
//! `--enable-feature=exemplar-storage` under the shipped `prometheus.yml`
//! (compressed as in `alerts.rs`: scrapes every second). Prometheus
//! negotiates OpenMetrics, the only format it reads exemplars from here, and:
//!
//! * a 700 ms `slow` call sent with a known `traceparent` is found through
//!   `/api/v1/query_exemplars` on the `le="1"` bucket (0.7 s is in
//!   (0.5, 1], `ACTION_BUCKETS`) of that actor's
//!   `actor_action_duration_seconds` and of its type's
//!   `actor_type_action_duration_seconds{action="slow"}`, with that trace id,
//!   the host's span id, its value and its time;
//! * a failing call's trace id is on that actor's `actor_action_errors_total`
//!   and on `actor_type_action_errors_total{action="fail"}`;
//! * the host's JSON log lines written inside those two calls carry the same
//!   trace and span ids.
//!
//! Per-actor exemplars are kept only at `--per-actor-detail full` or for a
//! promoted actor. This test takes the incident path, which is the one an
//! operator meets: the actor fails all its calls until the error-ratio rule
//! promotes it, and the traced calls made after that land on its own series.
//! With a 5 s promotion window, a 1 s tick and a floor of 10 calls in the
//! window (as in `promotion.rs`) that takes about two ticks, and the test
//! waits for the promotion itself rather than for a time: it is as
//! deterministic as `--per-actor-detail full` and checks more.
//!
//! The host runs its demo workload, at 10 calls a second, on 20 other
//! `counter` actors, `slow` (5 ms) and `fail` among them. Its calls are
//! traced as a client's would be, so they leave exemplars too: in the type's
//! low `slow` buckets, and no `fail` before 200 s. So every exemplar on the
//! type's `fail` errors and its slow `slow` buckets must be one of the
//! test's calls.

use std::collections::BTreeSet;
use std::time::Duration;

use actor_e2e_tests::driver::create_counter;
use actor_e2e_tests::promql::{StoredExemplar, unix_now};
use actor_e2e_tests::shipped::{self, compressed_rule_files};
use actor_e2e_tests::traced::{self, Answer, json_lines};
use actor_e2e_tests::{Host, Prometheus, Role, poll, prometheus_available};

const T: Duration = Duration::from_secs(30);
const KEY: &str = "traced";
/// The trace of the slow call, and of the failing call the test looks for.
const SLOW_TRACE: &str = "5105e7a1c0ffee00000000000000a700";
const FAIL_TRACE: &str = "fa11ed00c0ffee00000000000000e422";
/// A failing call the caller did not sample.
const UNSAMPLED_TRACE: &str = "005a4b1ed0c0ffee000000000000e422";
/// The caller's span in every `traceparent` sent.
const PARENT: &str = "b7ad6b7169203331";

fn traceparent(trace_id: &str) -> String {
    format!("00-{trace_id}-{PARENT}-01")
}

/// The `n`th trace id of the calls that fail until the actor is promoted.
fn burst_trace(n: u32) -> String {
    format!("b0257000c0ffee000000{n:012x}")
}

/// `action` on [`KEY`] in the trace `trace_id`, with the wall-clock times
/// just before it was sent and just after it was answered.
fn call(host: &Host, action: &str, body: &str, trace_id: &str) -> (Answer, f64, f64) {
    let sent = unix_now();
    let answer = traced::call(
        host,
        "counter",
        KEY,
        action,
        body,
        &[&traceparent(trace_id)],
    );
    let answered = unix_now();
    assert_eq!(answer.trace_id, trace_id, "{action}: the caller's trace");
    (answer, sent, answered)
}

/// The exemplars of `trace_id` among `stored`.
fn of_trace<'a>(stored: &'a [StoredExemplar], trace_id: &str) -> Vec<&'a StoredExemplar> {
    stored.iter().filter(|e| e.trace_id() == trace_id).collect()
}

/// The value of the label `name` of `e`'s series, or `""`.
fn label<'a>(e: &'a StoredExemplar, name: &str) -> &'a str {
    e.series.get(name).map_or("", String::as_str)
}

/// The one JSON log line `message` written in the trace `trace_id`: its span.
fn span_of_line(log: &str, message: &str, trace_id: &str) -> serde_json::Value {
    let lines: Vec<serde_json::Value> = json_lines(log, message)
        .into_iter()
        .filter(|l| l["span"]["trace_id"] == trace_id)
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{message:?} in trace {trace_id} once in:\n{log}"
    );
    lines[0]["span"].clone()
}

#[test]
fn a_traced_slow_call_and_a_failing_one_are_found_by_trace_id_in_prometheus_and_the_log() {
    if !prometheus_available(
        "a_traced_slow_call_and_a_failing_one_are_found_by_trace_id_in_prometheus_and_the_log",
    ) {
        return;
    }
    let data = tempfile::tempdir().expect("temp dir");
    // `failing as asked` and `sleeping as asked`, the lines inside the two
    // actions, are debug lines of the `counter` behaviour.
    let host = Host::start_logged_env(
        data.path(),
        &[
            "--log-format",
            "json",
            "--promotion-window",
            "5s",
            "--promotion-tick",
            "1s",
            "--promotion-min-calls",
            "10",
            // The demo at a twentieth of its rate: its first deliberate
            // `fail`, whose exemplar would replace ours as the type's
            // latest error, comes 200 s in.
            "--rate",
            "10",
        ],
        &[("RUST_LOG", "info,actor_host=debug")],
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = compressed_rule_files(dir.path());
    // Alerts go nowhere (port 9); the debug job reads no actor.
    let config = shipped::prometheus_config(host.metrics, &rules, "none", "127.0.0.1:9");
    let prom = Prometheus::start_with(&config, Role::Exemplars);
    let start = unix_now();
    create_counter(&host, KEY);

    // The incident: every call fails until the host promotes the actor.
    let mut ours: BTreeSet<String> = [SLOW_TRACE, FAIL_TRACE].map(str::to_owned).into();
    let mut n = 0;
    poll(T, "the failing actor promoted for its error ratio", || {
        for _ in 0..5 {
            let trace_id = burst_trace(n);
            n += 1;
            let (answer, ..) = call(&host, "fail", "{}", &trace_id);
            assert_eq!(answer.status, 422, "{}", answer.body);
            ours.insert(trace_id);
        }
        let promoted = host.promoted();
        match promoted.get(KEY).map(String::as_str) {
            Some("error_ratio") => Ok(()),
            _ => Err(format!("promoted: {promoted:?} after {n} failed calls")),
        }
    });

    // The two calls the test looks for, made while the actor is promoted.
    let (failed, ..) = call(&host, "fail", "{}", FAIL_TRACE);
    assert_eq!(failed.status, 422, "{}", failed.body);
    let (slow, slow_sent, slow_answered) = call(&host, "slow", r#"{"ms":700}"#, SLOW_TRACE);
    assert_eq!(slow.status, 200, "{}", slow.body);

    let own_buckets = format!("actor_action_duration_seconds_bucket{{actor_key=\"{KEY}\"}}");
    let type_buckets =
        "actor_type_action_duration_seconds_bucket{actor_name=\"counter\",action=\"slow\"}";
    let own_errors = format!("actor_action_errors_total{{actor_key=\"{KEY}\"}}");
    let type_errors = "actor_type_action_errors_total{actor_name=\"counter\",action=\"fail\"}";
    let exemplars = |promql: &str| {
        prom.api
            .query_exemplars(promql, start - 1.0, unix_now() + 1.0)
    };
    let [own_buckets, type_buckets, own_errors, type_errors] =
        poll(T, "both calls' exemplars stored by Prometheus", || {
            let found = [
                (own_buckets.as_str(), SLOW_TRACE),
                (type_buckets, SLOW_TRACE),
                (own_errors.as_str(), FAIL_TRACE),
                (type_errors, FAIL_TRACE),
            ]
            .map(|(promql, trace_id)| (promql, trace_id, exemplars(promql)));
            let missing: Vec<String> = found
                .iter()
                .filter(|(_, trace_id, stored)| of_trace(stored, trace_id).is_empty())
                .map(|(promql, trace_id, stored)| {
                    format!("{trace_id} not on {promql}, which has {stored:?}")
                })
                .collect();
            if missing.is_empty() {
                Ok(found.map(|(.., stored)| stored))
            } else {
                Err(missing.join("; "))
            }
        });
    prom.read_openmetrics()
        .expect("exemplars came in an OpenMetrics scrape");

    // The slow call: on the (0.5, 1] bucket of its actor (scraped by the
    // shipped promoted job) and of its type (the main job), with its value,
    // the host's span and the time it ended.
    for (family, job, stored) in [
        (
            "actor_action_duration_seconds_bucket",
            "actor-host-promoted",
            &own_buckets,
        ),
        (
            "actor_type_action_duration_seconds_bucket",
            "actor-host",
            &type_buckets,
        ),
    ] {
        for e in of_trace(stored, SLOW_TRACE) {
            assert_eq!(label(e, "__name__"), family, "{e:?}");
            assert_eq!(label(e, "job"), job, "{e:?}");
            assert_eq!(label(e, "le"), "1", "0.7 s is in (0.5, 1]: {e:?}");
            assert!((0.7..1.0).contains(&e.value), "{e:?}");
            assert_eq!(e.span_id(), slow.span_id(), "{e:?}");
            assert!(
                (slow_sent - 0.01..=slow_answered + 0.01).contains(&e.timestamp),
                "ended between {slow_sent} and {slow_answered}: {e:?}"
            );
        }
    }
    for e in of_trace(&own_buckets, SLOW_TRACE) {
        assert_eq!(label(e, "actor_key"), KEY, "{e:?}");
    }
    for e in of_trace(&type_buckets, SLOW_TRACE) {
        assert_eq!(label(e, "actor_name"), "counter", "{e:?}");
        assert_eq!(label(e, "action"), "slow", "{e:?}");
    }

    // The failing call: on its actor's error counter and its type's, as one error.
    for (family, stored) in [
        ("actor_action_errors_total", &own_errors),
        ("actor_type_action_errors_total", &type_errors),
    ] {
        for e in of_trace(stored, FAIL_TRACE) {
            assert_eq!(label(e, "__name__"), family, "{e:?}");
            // Counters are `core`: the main job's.
            assert_eq!(label(e, "job"), "actor-host", "{e:?}");
            assert_eq!(e.value, 1.0, "{e:?}");
            assert_eq!(e.span_id(), failed.span_id(), "{e:?}");
        }
    }
    for e in of_trace(&own_errors, FAIL_TRACE) {
        assert_eq!(label(e, "actor_key"), KEY, "{e:?}");
    }

    // Every exemplar on the actor's own series is one of its calls (the
    // demo never calls it), and so is every one on the type's `fail`
    // errors (at `--rate 10` the demo's first `fail` comes 200 s in). The
    // demo's calls are traced too: on the type's `slow` buckets its 5 ms
    // calls may sit, in the low buckets only.
    for (what, stored) in [
        ("the actor's buckets", &own_buckets),
        ("the actor's errors", &own_errors),
        ("the type's fail errors", &type_errors),
    ] {
        let strangers: Vec<&StoredExemplar> = stored
            .iter()
            .filter(|e| !ours.contains(e.trace_id()))
            .collect();
        assert!(strangers.is_empty(), "{what}: {strangers:?}");
    }
    let misplaced: Vec<&StoredExemplar> = type_buckets
        .iter()
        .filter(|e| !ours.contains(e.trace_id()) && e.value >= 0.1)
        .collect();
    assert!(
        misplaced.is_empty(),
        "the type's slow buckets hold a slow call not ours: {misplaced:?}"
    );

    // The same traces, and the host's same spans, on the JSON log lines
    // written inside the two calls.
    let log = host.log();
    for (message, trace_id, answer, action) in [
        ("sleeping as asked", SLOW_TRACE, &slow, "slow"),
        ("failing as asked", FAIL_TRACE, &failed, "fail"),
    ] {
        let span = span_of_line(&log, message, trace_id);
        assert_eq!(span["span_id"], answer.span_id(), "{span}");
        assert_eq!(span["actor_key"], KEY, "{span}");
        assert_eq!(span["action"], action, "{span}");
    }

    // A trace the caller did not sample leaves no exemplar (it would link
    // to a trace nobody recorded): the error counters keep the last sampled
    // failure. The call itself still runs in the caller's trace, and its
    // log lines carry it.
    let unsampled = format!("00-{UNSAMPLED_TRACE}-{PARENT}-00");
    let answer = traced::call(&host, "counter", KEY, "fail", "{}", &[&unsampled]);
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert_eq!(answer.trace_id, UNSAMPLED_TRACE);
    assert!(
        answer.traceparent.ends_with("-00"),
        "{}",
        answer.traceparent
    );
    let body = host.scrape_openmetrics_with("");
    let scrape = actor_metrics::scrape::Scrape::parse_openmetrics(&body).expect("OpenMetrics");
    for (name, labels) in [
        ("actor_action_errors_total", [("actor_key", KEY)]),
        ("actor_type_action_errors_total", [("action", "fail")]),
    ] {
        let kept = scrape
            .exemplar(name, &labels)
            .unwrap_or_else(|| panic!("{name}: an exemplar"));
        assert_eq!(kept.exemplar["trace_id"], FAIL_TRACE, "{name}: {kept:?}");
    }
    span_of_line(&host.log(), "failing as asked", UNSAMPLED_TRACE);
}
