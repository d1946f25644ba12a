//! Routes, methods, statuses, the probes, the token, and the query string.

mod common;

use actor_metrics::scrape::Scrape;
use actor_metrics_server::{
    Health, MetricsServer, OptionsError, Readiness, ServerError, ServerOptions, TEXT_FORMAT,
};
use common::*;
use hyper::{Method, StatusCode};

#[tokio::test]
async fn routes_methods_and_statuses() {
    let m = small_metrics();
    let (server, addr) = serve(m.clone()).await;

    let r = get(addr, "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some(TEXT_FORMAT));
    assert_eq!(r.header("vary"), Some("accept, accept-encoding"));
    let s = Scrape::parse(r.text()).unwrap();
    assert_eq!(
        s.sum("actor_queue_messages_sent_total", &[("actor_key", "k\"ey")]),
        3.0
    );

    let r = get(addr, "/metrics?debug=1").await;
    assert_eq!(r.status, StatusCode::OK, "query strings are ignored");

    let r = send(addr, Method::HEAD, "/metrics", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some(TEXT_FORMAT));
    assert!(r.body.is_empty());

    let r = get(addr, "/healthz").await;
    assert_eq!((r.status, r.text()), (StatusCode::OK, "ok\n"));
    let r = get(addr, "/readyz").await;
    assert_eq!((r.status, r.text()), (StatusCode::OK, "ready\n"));

    for path in ["/", "/metric", "/metrics/", "/healthz/x", "/%2e%2e/metrics"] {
        assert_eq!(
            get(addr, path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
        for path in ["/metrics", "/healthz", "/readyz"] {
            let r = send(addr, method.clone(), path, &[]).await;
            assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_eq!(r.header("allow"), Some("GET, HEAD"));
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn readyz_goes_503_200_503_with_the_causes() {
    let readiness = Readiness::new(["metrics not initialised", "actors not loaded"]);
    let server = MetricsServer::bind(
        local(),
        small_metrics(),
        ServerOptions {
            readiness: readiness.clone(),
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let readyz = || async move {
        let r = get(addr, "/readyz").await;
        (r.status.as_u16(), r.text().to_owned())
    };
    let not_ready = |body: &str| (503, body.to_owned());
    assert_eq!(
        readyz().await,
        not_ready("not ready: metrics not initialised\nnot ready: actors not loaded\n")
    );
    readiness.mark_ready("metrics not initialised");
    assert_eq!(readyz().await, not_ready("not ready: actors not loaded\n"));
    server.readiness().mark_ready("actors not loaded");
    assert_eq!(readyz().await, (200, "ready\n".to_owned()));
    readiness.set_not_ready("shutting down");
    assert_eq!(readyz().await, not_ready("not ready: shutting down\n"));
    // Health is about serving, not readiness.
    assert_eq!(get(addr, "/healthz").await.status, StatusCode::OK);
    // The default options start not ready.
    let other = MetricsServer::bind(local(), small_metrics(), ServerOptions::default())
        .await
        .unwrap();
    let r = get(other.local_addr(), "/readyz").await;
    assert_eq!(
        (r.status, r.text()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: not marked ready\n"
        )
    );
}

#[tokio::test]
async fn bearer_token_guards_metrics_only() {
    let server = MetricsServer::bind(
        local(),
        small_metrics(),
        ServerOptions {
            bearer_token: Some("s3cret".into()),
            ..ready()
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let r = get(addr, "/metrics").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"metrics\"")
    );
    for wrong in [
        "Bearer s3cre",
        "Bearer s3cret2",
        "Basic s3cret",
        "Bearer  s3cret",
        "Bearers3cret",
        "Bearer ",
    ] {
        let r = send(addr, Method::GET, "/metrics", &[("authorization", wrong)]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{wrong}");
        assert!(!r.text().contains("actor_"), "nothing leaks");
    }
    let r = send(
        addr,
        Method::GET,
        "/metrics",
        &[("authorization", "Bearer s3cret")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("actor_queue_messages_sent_total"));
    // The scheme is case-insensitive (RFC 7235); the token is not.
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let auth = format!("{scheme} s3cret");
        let r = send(addr, Method::GET, "/metrics", &[("authorization", &auth)]).await;
        assert_eq!(r.status, StatusCode::OK, "{auth}");
    }
    let r = send(
        addr,
        Method::GET,
        "/metrics",
        &[("authorization", "Bearer S3CRET")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(get(addr, "/healthz").await.status, StatusCode::OK);
    assert_eq!(get(addr, "/readyz").await.status, StatusCode::OK);

    let err = MetricsServer::bind(
        local(),
        small_metrics(),
        ServerOptions {
            bearer_token: Some(String::new()),
            ..ready()
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            ServerError::InvalidOptions(OptionsError::EmptyBearerToken)
        ),
        "{err}"
    );
}

#[tokio::test]
async fn healthz_fails_with_the_failing_checks_and_recovers() {
    let health = Health::default();
    let server = MetricsServer::bind(
        local(),
        small_metrics(),
        ServerOptions {
            health: health.clone(),
            ..ready()
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    assert_eq!(get(addr, "/healthz").await.text(), "ok\n");
    let dead = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = dead.clone();
    health.check("sweeper", move || {
        if flag.load(std::sync::atomic::Ordering::SeqCst) {
            Err("the sweeper task ended".into())
        } else {
            Ok(())
        }
    });
    health.check("runtime", || Err("no heartbeat for 12 s".into()));
    let r = get(addr, "/healthz").await;
    assert_eq!(
        (r.status, r.text()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "unhealthy: sweeper: the sweeper task ended\nunhealthy: runtime: no heartbeat for 12 s\n"
        )
    );
    dead.store(false, std::sync::atomic::Ordering::SeqCst);
    health.check("runtime", || Ok(()));
    assert_eq!(get(addr, "/healthz").await.status, StatusCode::OK);
    // Readiness is another matter.
    assert_eq!(get(addr, "/readyz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_query_string_picks_the_level_and_the_actors() {
    let m = actor_metrics::Metrics::new(actor_metrics::Config::default()).unwrap();
    let ty = m.actor_type("counter");
    let a = ty.register("1", Some(1), "alice/x");
    let b = ty.register("2", Some(1), "bob");
    for h in [&a, &b] {
        h.queue_messages_sent_total().inc();
        h.sqlite_commits_total().inc();
    }
    let (_server, addr) = serve(m.clone()).await;
    let per_actor = |r: &Reply| {
        Scrape::parse(r.text())
            .unwrap()
            .samples()
            .iter()
            .filter(|s| s.labels.contains_key("actor_id_gen"))
            .count()
    };
    let core = get(addr, "/metrics").await;
    let full = get(addr, "/metrics?detail=full").await;
    let off = get(addr, "/metrics?detail=off").await;
    assert_eq!(per_actor(&off), 0);
    assert!(per_actor(&core) > 0 && per_actor(&full) > per_actor(&core));
    assert!(!core.text().contains("actor_queue_messages_sent_total{"));
    assert!(full.text().contains("actor_queue_messages_sent_total{"));

    let one = get(addr, "/metrics?actor_key=alice%2Fx").await;
    assert_eq!(one.status, StatusCode::OK);
    let s = Scrape::parse(one.text()).unwrap();
    assert!(s.has_label_value("actor_key", "alice/x"));
    assert!(!s.has_label_value("actor_key", "bob"));
    assert_eq!(
        s.series("actor_queue_messages_sent_total").count(),
        1,
        "full"
    );
    assert!(!one.text().contains("actor_type_"), "nothing but the actor");
    let both = get(
        addr,
        "/metrics?actor_key=bob&actor_id_gen=1%3A1&detail=core",
    )
    .await;
    let s = Scrape::parse(both.text()).unwrap();
    assert!(s.has_label_value("actor_key", "bob") && s.has_label_value("actor_key", "alice/x"));
    assert_eq!(
        s.series("actor_queue_messages_sent_total").count(),
        0,
        "core asked"
    );

    for bad in [
        "/metrics?detail=everything",
        "/metrics?detail=",
        "/metrics?detail=full&detail=core",
        "/metrics?actor_key=%FF",
        "/metrics?actor_id_gen=1%3A%C3",
        "/metrics?promoted=yes",
        "/metrics?promoted=1&promoted=1",
    ] {
        let r = get(addr, bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(!r.text().contains("# HELP"), "nothing rendered for {bad}");
    }
    let r = get(addr, "/metrics?detail=everything").await;
    assert_eq!(
        r.text(),
        "unknown detail level \"everything\"; valid levels: off, core, full\n"
    );
    let r = get(addr, "/metrics?actor_key=%FF").await;
    assert_eq!(
        r.text(),
        "actor_key=%FF is not UTF-8 once percent-decoded\n"
    );
    // Nobody is promoted: the promoted scrape is empty, and with a key it
    // holds that actor alone.
    let r = get(addr, "/metrics?promoted=1").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(Scrape::parse(r.text()).unwrap().samples().is_empty());
    let r = get(addr, "/metrics?promoted=1&actor_key=bob").await;
    let s = Scrape::parse(r.text()).unwrap();
    assert!(s.has_label_value("actor_key", "bob") && !s.has_label_value("actor_key", "alice/x"));
    drop((a, b));
}
