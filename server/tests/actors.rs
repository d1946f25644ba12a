//! `/actors/top` and `/actors` over HTTP: the JSON rows, the page, the token,
//! bad parameters, and a source without per-actor figures.

mod common;

use std::time::Duration;

use actor_metrics::{Config, Metrics};
use actor_metrics_server::{MetricsServer, ServerOptions};
use common::*;
use hyper::{Method, StatusCode};

/// One type of 30 actors, `bad` failing 3 of 4 calls, after two ticks.
fn troubled() -> Metrics {
    let m = Metrics::new(Config {
        envoy_key: "e".into(),
        ..Config::default()
    })
    .unwrap();
    let ty = m.actor_type("counter");
    let inc = ty.action("increment");
    let t0 = tokio::time::Instant::now();
    m.watch(t0);
    let healthy: Vec<_> = (0..30)
        .map(|i| ty.register(&format!("h{i}"), Some(1), &format!("h-{i}")))
        .collect();
    let bad = ty.register("b", Some(1), "bad <&> \"key\"");
    for k in 1..=2 {
        for a in &healthy {
            for _ in 0..20 {
                a.record_action(&inc, Duration::from_millis(1), true);
            }
        }
        for i in 0..40 {
            bad.record_action(&inc, Duration::from_millis(2), i % 4 == 0);
        }
        m.watch(t0 + Duration::from_secs(10 * k));
    }
    std::mem::forget((healthy, bad));
    m
}

#[tokio::test]
async fn top_answers_json_worst_first_and_400_names_the_valid_values() {
    let (server, addr) = serve(troubled()).await;
    let r = get(addr, "/actors/top?by=error_ratio&n=3").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(r.text()).unwrap();
    assert_eq!(v["by"], "error_ratio");
    assert_eq!(v["window"], "1m");
    assert_eq!(v["tick_seconds"], 10.0);
    assert!(v["figures_age_seconds"].is_f64(), "two ticks ran: {v}");
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "the healthy have no errors: {v}");
    assert_eq!(rows[0]["actor_key"], "bad <&> \"key\"");
    assert_eq!(rows[0]["actor_name"], "counter");
    assert_eq!(rows[0]["actor_id_gen"], "b:1");
    assert_eq!(rows[0]["envoy_key"], "e");
    assert_eq!(rows[0]["promoted"], true);
    assert_eq!(rows[0]["reason"], "error_ratio");
    assert!((rows[0]["figure"].as_f64().unwrap() - 0.75).abs() < 1e-3);

    let r = get(addr, "/actors/top?by=calls&n=5&window=5m&type=counter").await;
    let v: serde_json::Value = serde_json::from_str(r.text()).unwrap();
    assert_eq!(v["rows"].as_array().unwrap().len(), 5);

    for (q, says) in [
        ("by=slowest", "valid: error_ratio, errors, calls"),
        ("window=2m", "valid: 1m, 5m"),
        ("n=0", "from 1 to 1000"),
    ] {
        let r = get(addr, &format!("/actors/top?{q}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        assert!(r.text().contains(says), "{q}: {}", r.text());
    }
    let r = send(addr, Method::POST, "/actors/top", &[]).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    server.shutdown().await;
}

#[tokio::test]
async fn the_page_marks_the_promoted_actor_escapes_it_and_links_its_full_scrape() {
    let (server, addr) = serve(troubled()).await;
    let r = get(addr, "/actors").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let html = r.text();
    assert!(!html.contains("<script"), "no script");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external asset"
    );
    assert!(
        html.contains("bad &lt;&amp;&gt; &quot;key&quot;"),
        "escaped"
    );
    assert!(!html.contains("bad <&>"), "never raw");
    let link = "/metrics?actor_key=bad+%3C%26%3E+%22key%22";
    assert!(html.contains(link), "links to its full scrape");
    assert!(html.contains("<span class=\"tag\">error_ratio</span>"));
    // The link answers that actor's full detail.
    let full = get(addr, link).await;
    assert!(full.text().contains("actor_action_duration_seconds_bucket"));
    server.shutdown().await;
}

#[tokio::test]
async fn the_token_guards_both_and_a_plain_registry_has_no_figures() {
    let server = MetricsServer::bind(
        local(),
        troubled(),
        ServerOptions {
            bearer_token: Some("s3cret".into()),
            ..ready()
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    for path in ["/actors/top", "/actors"] {
        assert_eq!(
            get(addr, path).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
        let r = send(
            addr,
            Method::GET,
            path,
            &[("authorization", "Bearer s3cret")],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
    }
    server.shutdown().await;

    let (server, addr) = serve(prometheus::Registry::new()).await;
    let r = get(addr, "/actors/top").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text().contains("no per-actor figures"));
    server.shutdown().await;
}
