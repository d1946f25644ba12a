//! Content encoding: gzip when asked, the same text either way.

mod common;

use actor_metrics::scrape::Scrape;
use actor_metrics_server::FnSource;
use common::*;
use hyper::{Method, StatusCode};

#[tokio::test]
async fn gzip_body_equals_the_plain_body() {
    // A fixed source, so both scrapes see the same text.
    let m = small_metrics();
    let text = m.render();
    let (_server, addr) = serve(FnSource(move |out: &mut String| out.push_str(&text))).await;
    let plain = get(addr, "/metrics").await;
    assert_eq!(plain.header("content-encoding"), None);
    let gzipped = ["gzip", "deflate, gzip;q=0.8", "*", "br;q=1.0, gzip;q=0.5"];
    let identity = ["gzip;q=0", "identity", "deflate", "*;q=0", "gzip;q=0, *"];
    for (accept, gzip) in gzipped
        .map(|a| (a, true))
        .into_iter()
        .chain(identity.map(|a| (a, false)))
    {
        let r = send(
            addr,
            Method::GET,
            "/metrics",
            &[("accept-encoding", accept)],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("vary"), Some("accept, accept-encoding"));
        if gzip {
            assert_eq!(r.header("content-encoding"), Some("gzip"), "{accept}");
            assert_eq!(gunzip(&r.body), plain.text(), "{accept}");
        } else {
            assert_eq!(r.header("content-encoding"), None, "{accept}");
            assert_eq!(r.text(), plain.text(), "{accept}");
        }
    }
}

/// What Prometheus sends with `--enable-feature=native-histograms`.
const PROMETHEUS_ACCEPT: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

#[tokio::test]
async fn protobuf_when_accept_prefers_it_gzipped_or_not() {
    let m = small_metrics();
    let a = m.actor_type("counter").register("2", Some(1), "p");
    let inc = m.actor_type("counter").action("increment");
    a.record_action(&inc, std::time::Duration::from_millis(3), true);
    let (_server, addr) = serve(m.clone()).await;
    let r = send(
        addr,
        Method::GET,
        "/metrics",
        &[("accept", PROMETHEUS_ACCEPT)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("content-type"),
        Some(actor_metrics_server::PROTOBUF_FORMAT)
    );
    let s = actor_metrics::scrape::Scrape::parse_protobuf(&r.body).unwrap();
    let labels = [
        ("actor_id_gen", "2:1"),
        ("actor_key", "p"),
        ("envoy_key", m.config().envoy_key.as_str()),
    ];
    assert_eq!(
        s.native("actor_action_duration_seconds", &labels)
            .map(|n| n.count),
        Some(1)
    );

    let gz = send(
        addr,
        Method::GET,
        "/metrics?actor_key=p",
        &[("accept", PROMETHEUS_ACCEPT), ("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz.body[..]), &mut body).unwrap();
    let one = actor_metrics::scrape::Scrape::parse_protobuf(&body).unwrap();
    assert!(
        one.natives()
            .iter()
            .all(|n| n.labels.get("actor_key").map(String::as_str) == Some("p"))
    );
    assert!(!one.natives().is_empty());

    // A plain client still gets text.
    let t = get(addr, "/metrics").await;
    assert_eq!(
        t.header("content-type"),
        Some(actor_metrics_server::TEXT_FORMAT)
    );
    drop(a);
}

#[tokio::test]
async fn a_gzip_scrape_counts_once_in_the_self_metrics() {
    let (_server, addr) = serve(small_metrics()).await;
    for _ in 0..3 {
        let r = send(
            addr,
            Method::GET,
            "/metrics",
            &[("accept-encoding", "gzip")],
        )
        .await;
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        gunzip(&r.body);
    }
    let s = Scrape::parse(get(addr, "/metrics").await.text()).unwrap();
    assert_eq!(s.get("actor_metrics_http_scrapes_total", &[]), Some(3.0));
    assert_eq!(
        s.get("actor_metrics_http_scrape_duration_seconds_count", &[]),
        Some(3.0)
    );
}
