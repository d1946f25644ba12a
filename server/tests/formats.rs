//! One owner per format: every kind of source under every `Accept`, and the
//! `Content-Type` always names the format the body is in (read back with that
//! format's parser), whatever was asked for.

mod common;

use actor_metrics::Format;
use actor_metrics::scrape::Scrape;
use actor_metrics_server::{FnSource, MetricsSource};
use common::*;
use hyper::{Method, StatusCode};

/// What Prometheus 2.42 sends by default.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/// What it sends with `--enable-feature=native-histograms`.
const PROMETHEUS_NATIVE_ACCEPT: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Each `Accept` and the format it negotiates.
const ACCEPTS: [(&str, Format); 5] = [
    ("", Format::Text),
    ("text/plain;version=0.0.4", Format::Text),
    (PROMETHEUS_ACCEPT, Format::OpenMetrics),
    (
        "application/openmetrics-text;version=1.0.0",
        Format::OpenMetrics,
    ),
    (PROMETHEUS_NATIVE_ACCEPT, Format::Protobuf),
];

/// Reads `body` with the parser of the format `content_type` names.
fn parse(content_type: &str, body: &[u8]) -> Scrape {
    let text = || std::str::from_utf8(body).expect("a text format is UTF-8");
    match Format::ALL
        .into_iter()
        .find(|f| f.content_type() == content_type)
    {
        Some(Format::Text) => Scrape::parse(text()).expect("text 0.0.4 parses"),
        Some(Format::OpenMetrics) => Scrape::parse_openmetrics(text()).expect("OpenMetrics parses"),
        Some(Format::Protobuf) => Scrape::parse_protobuf(body).expect("protobuf decodes"),
        None => panic!("unknown content type {content_type:?}"),
    }
}

/// Scrapes `source` under every `Accept` (GET and HEAD), asserting the
/// `Content-Type` is `expected(negotiated)` and the body reads back under it
/// with `sample` at `value`.
async fn check(
    name: &str,
    source: impl MetricsSource,
    expected: impl Fn(Format) -> Format,
    sample: (&str, f64),
) {
    let (_server, addr) = serve(source).await;
    for (accept, negotiated) in ACCEPTS {
        let headers: &[(&str, &str)] = if accept.is_empty() {
            &[]
        } else {
            &[("accept", accept)]
        };
        let want = expected(negotiated).content_type();
        let r = send(addr, Method::GET, "/metrics", headers).await;
        assert_eq!(r.status, StatusCode::OK, "{name} {accept:?}");
        assert_eq!(r.header("content-type"), Some(want), "{name} {accept:?}");
        let s = parse(want, &r.body);
        assert_eq!(
            s.sum(sample.0, &[]),
            sample.1,
            "{name} {accept:?}: {} in {}",
            sample.0,
            String::from_utf8_lossy(&r.body)
        );
        let head = send(addr, Method::HEAD, "/metrics", headers).await;
        assert_eq!(
            head.header("content-type"),
            Some(want),
            "{name} HEAD {accept:?}"
        );
        assert!(head.body.is_empty(), "{name} HEAD {accept:?}");
    }
}

#[tokio::test]
async fn a_metrics_instance_writes_every_format_as_asked() {
    let m = small_metrics();
    let a = m.actor_type("counter").register("1", Some(1), "k");
    a.sqlite_commits_total().inc_by(3);
    check(
        "Metrics",
        m.clone(),
        |f| f,
        ("actor_sqlite_commits_total", 3.0),
    )
    .await;
}

#[tokio::test]
async fn a_registry_is_served_as_the_text_it_writes() {
    let registry = prometheus::Registry::new();
    let c = prometheus::IntCounter::new("jobs_total", "Jobs.").unwrap();
    c.inc_by(7);
    registry.register(Box::new(c)).unwrap();
    check("Registry", registry, |_| Format::Text, ("jobs_total", 7.0)).await;
}

#[tokio::test]
async fn a_function_source_is_served_as_the_text_it_writes() {
    let source = FnSource(|out: &mut String| {
        out.push_str("# HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total 5\n")
    });
    check("FnSource", source, |_| Format::Text, ("jobs_total", 5.0)).await;
}
