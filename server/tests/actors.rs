//! `/actors/top` and `/actors` over HTTP: the JSON rows, the page, the token,
//! bad parameters, and a source without per-actor figures.

mod common;

use std::time::Duration;

use actor_metrics::{ActionMetrics, ActorType, Config, Metrics};
use actor_metrics_server::{MetricsServer, ServerOptions};
use common::*;
use hyper::{Method, StatusCode};

/// An instance with type `counter` and its `increment` action, after the
/// baseline tick at the returned instant.
fn instance() -> (Metrics, ActorType, ActionMetrics, tokio::time::Instant) {
    let m = Metrics::new(Config {
        envoy_key: "e".into(),
        ..Config::default()
    })
    .unwrap();
    let ty = m.actor_type("counter");
    let inc = ty.action("increment");
    let t0 = tokio::time::Instant::now();
    m.watch(t0);
    (m, ty, inc, t0)
}

/// One type of 30 actors, `bad` failing 3 of 4 calls, after two ticks.
fn troubled() -> Metrics {
    let (m, ty, inc, t0) = instance();
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
    assert_eq!(rows[0]["scrape"], "/metrics?actor_id_gen=b%3A1");
    assert!((rows[0]["figure"].as_f64().unwrap() - 0.75).abs() < 1e-3);

    let r = get(addr, "/actors/top?by=calls&n=5&window=5m&type=counter").await;
    let v: serde_json::Value = serde_json::from_str(r.text()).unwrap();
    assert_eq!(v["rows"].as_array().unwrap().len(), 5);

    for (q, says) in [
        ("by=slowest", "valid: error_ratio, errors, calls"),
        ("window=2m", "valid: 1m, 5m"),
        ("n=0", "from 1 to 1000"),
        ("by=calls&by=errors", "by is given more than once"),
        ("type=%FF", "type=%FF is not UTF-8"),
    ] {
        let r = get(addr, &format!("/actors/top?{q}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        assert!(r.text().contains(says), "{q}: {}", r.text());
    }
    // A long bad value is repeated cut, on both routes.
    for path in ["/actors/top", "/actors"] {
        let r = get(addr, &format!("{path}?window={}", "w".repeat(6000))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(
            r.text().len() < 200 && r.text().contains("(6000 bytes)"),
            "{path}: {}",
            r.text()
        );
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
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.starts_with("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
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
    let link = "/metrics?actor_id_gen=b%3A1";
    assert!(
        html.contains(&format!("<a href=\"{link}\">bad &lt;")),
        "links to its full scrape"
    );
    assert!(html.contains("<span class=\"tag\">error_ratio</span>"));
    // The link answers that actor's full detail.
    let full = get(addr, link).await;
    assert!(full.text().contains("actor_action_duration_seconds_bucket"));
    server.shutdown().await;
}

/// Actors whose `actor_key` label value is not their key: `a~b` (exported
/// `a~~b`) beside an actor whose key is `a~~b`, and a key past the label
/// limit (exported cut and hashed). Each failing, so each has a row.
#[tokio::test]
async fn each_link_opens_its_own_actor_even_when_the_label_is_not_the_key() {
    let (m, ty, inc, t0) = instance();
    let long = "L".repeat(600);
    let keys = ["a~b", "a~~b", long.as_str()];
    let actors: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| ty.register(&format!("x{i}"), Some(1), k))
        .collect();
    for k in 1..=2 {
        for a in &actors {
            for i in 0..40 {
                a.record_action(&inc, Duration::from_millis(1), i % 2 == 0);
            }
        }
        m.watch(t0 + Duration::from_secs(10 * k));
    }
    let (server, addr) = serve(m).await;
    let html = get(addr, "/actors").await.text().to_owned();
    let v: serde_json::Value =
        serde_json::from_str(get(addr, "/actors/top?by=error_ratio").await.text()).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{v}");
    for (i, _) in keys.iter().enumerate() {
        let id_gen = format!("x{i}:1");
        let row = rows
            .iter()
            .find(|r| r["actor_id_gen"] == id_gen.as_str())
            .unwrap_or_else(|| panic!("no row for {id_gen}: {v}"));
        let link = row["scrape"].as_str().unwrap();
        assert_eq!(link, format!("/metrics?actor_id_gen=x{i}%3A1"));
        assert!(
            html.contains(&format!("<a href=\"{link}\">")),
            "{link} not on the page"
        );
        let body = get(addr, link).await.text().to_owned();
        let others: Vec<String> = (0..keys.len())
            .filter(|&j| j != i)
            .map(|j| format!("actor_id_gen=\"x{j}:1\""))
            .collect();
        assert!(
            body.contains(&format!("actor_id_gen=\"{id_gen}\""))
                && body.contains("actor_action_duration_seconds_bucket"),
            "{link} does not open {id_gen} in full: {body}"
        );
        assert!(
            others.iter().all(|o| !body.contains(o.as_str())),
            "{link} opens another actor too: {body}"
        );
    }
    assert!(
        rows.iter().any(|r| r["actor_key"] == "a~~b")
            && rows.iter().any(|r| r["actor_key"] == "a~~~~b"),
        "the rows carry the exported label values: {v}"
    );
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
