//! OpenMetrics on the real binary: the reference parser (Python's
//! `prometheus_client.openmetrics.parser`) accepts every OpenMetrics body at
//! every level and selection, exemplars included, reading the samples ours
//! reads; and a real
//! Prometheus 2.42 under the shipped config negotiates OpenMetrics, with the
//! shipped rules loaded, and stores the exact values.

use std::time::Duration;

use actor_e2e_tests::daemon::get_json;
use actor_e2e_tests::shipped::{self, compressed_rule_files};
use actor_e2e_tests::tools::ReferenceParser;
use actor_e2e_tests::{
    Host, PROMOTE_BY_QUEUE, Prometheus, Role, poll, prometheus_available, wait_for,
};
use actor_metrics::scrape::Scrape;

const T: Duration = Duration::from_secs(60);

/// A host with one busy `counter` actor (`om`), one promoted by a queue
/// that nothing reads (`hot`), and the demo's others idle.
fn busy_host() -> Host {
    let host = Host::start(&[&["--workload", "none"][..], &PROMOTE_BY_QUEUE].concat());
    let (status, created) = host.post("/actors/counter/om", "");
    assert_eq!(status, 200, "{created}");
    for _ in 0..3 {
        assert_eq!(
            host.post("/actors/counter/om/actions/increment", "{}").0,
            200
        );
    }
    assert!(host.post("/actors/counter/om/actions/fail", "{}").0 >= 400);
    let (status, created) = host.post("/actors/counter/hot", "");
    assert_eq!(status, 200, "{created}");
    assert_eq!(
        host.post("/actors/counter/hot/actions/slow", "{\"ms\":5}")
            .0,
        200
    );
    host.queue_until_promoted("hot");
    host
}

#[test]
fn the_reference_parser_accepts_every_openmetrics_body() {
    let Some(parser) =
        ReferenceParser::require("the_reference_parser_accepts_every_openmetrics_body")
    else {
        return;
    };
    let host = busy_host();
    for query in [
        "",
        "detail=off",
        "detail=core",
        "detail=full",
        "actor_key=om",
        "actor_key=om&detail=core",
        "actor_key=nobody",
        "promoted=1",
        "promoted=1&actor_key=om",
    ] {
        let body = host.scrape_openmetrics_with(query);
        let ours = Scrape::parse_openmetrics(&body)
            .unwrap_or_else(|e| panic!("{query:?}: ours refuses it: {e}"));
        let theirs = parser
            .parse(&body)
            .unwrap_or_else(|e| panic!("{query:?}: the reference parser refuses it: {e}\n{body}"));
        assert_eq!(theirs, ours.samples().len(), "{query:?}: samples read");
        if query.starts_with("actor_key=om") {
            assert!(theirs > 0, "{query:?}");
        }
        // While `hot` is promoted: the default scrape names it, the
        // promoted scrape holds its buckets (and the strict parser takes
        // both: no family mixes buckets with bare `_sum`/`_count`).
        let hot_buckets = ours
            .series("actor_action_duration_seconds_bucket")
            .any(|s| s.labels["actor_key"] == "hot");
        assert_eq!(
            hot_buckets,
            query.starts_with("promoted=1") || query == "detail=full",
            "{query:?}"
        );
        if query.is_empty() {
            assert!(
                ours.series("actor_detail_promoted")
                    .any(|s| s.labels["actor_key"] == "hot"),
                "{query:?}"
            );
        }
        // The app API traces every call, so the type's buckets and error
        // counter carry exemplars, and the reference parser read them too.
        if !query.starts_with("actor_key") && !query.starts_with("promoted") {
            for name in [
                "actor_type_action_duration_seconds_bucket",
                "actor_type_action_errors_total",
            ] {
                assert!(
                    ours.exemplars().iter().any(|e| e.name == name),
                    "{query:?}: no exemplar on {name}"
                );
            }
        }
    }
    // It is a strict parser: a body cut before `# EOF` is refused.
    let body = host.scrape_openmetrics_with("");
    let cut = body.strip_suffix("# EOF\n").expect("ends with # EOF");
    assert!(parser.parse(cut).is_err(), "a cut body must be refused");
}

#[test]
fn prometheus_negotiates_openmetrics_under_the_shipped_config() {
    if !prometheus_available("prometheus_negotiates_openmetrics_under_the_shipped_config") {
        return;
    }
    let host = busy_host();
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = compressed_rule_files(dir.path());
    // Alerts go nowhere (port 9); the debug job reads the busy actor.
    let config = shipped::prometheus_config(host.metrics, &rules, "om", "127.0.0.1:9");
    let prom = Prometheus::start_with(&config, Role::Server);
    wait_for(T, "the three jobs up", || {
        (prom.value("sum(up)") == Some(3.0)).then_some(())
    });
    // The metadata only an OpenMetrics scrape gives.
    poll(T, "the families read as OpenMetrics", || {
        prom.read_openmetrics()
    });
    // The values are exact, in both jobs, and the rules evaluate.
    let sel = "{job=\"actor-host\",actor_key=\"om\"}";
    wait_for(T, "exact counters", || {
        (prom.value(&format!("actor_action_calls_total{sel}")) == Some(4.0)
            && prom.value(&format!("actor_action_errors_total{sel}")) == Some(1.0)
            && prom.value("count(actor_action_duration_seconds_bucket{job=\"actor-host-debug\",actor_key=\"om\"})")
                >= Some(10.0)
            && prom.value("count(actor_action_duration_seconds_bucket{job=\"actor-host-promoted\",actor_key=\"hot\"})")
                >= Some(10.0))
        .then_some(())
    });
    wait_for(T, "a recording rule over the aggregates", || {
        prom.query("actor_type:action_duration_seconds_bucket:rate5m")
            .first()
            .map(|_| ())
    });
    let failed = get_json(&format!("http://{}/api/v1/rules", prom.addr));
    let unhealthy: Vec<&serde_json::Value> = failed["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .filter(|r| r["health"] != "ok" && r["health"] != "unknown")
        .collect();
    assert!(unhealthy.is_empty(), "rules failing: {unhealthy:?}");
}
