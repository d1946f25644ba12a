//! Binding, shutdown, dropping the handle, and the server's own metrics.

mod common;

use std::time::{Duration, Instant};

use actor_metrics::scrape::Scrape;
use actor_metrics_server::{FnSource, MetricsServer, ServerError, ServerHandle, ServerOptions};
use common::*;
use hyper::StatusCode;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test]
async fn a_port_in_use_is_a_typed_error_naming_the_address() {
    let (_first, addr) = serve(small_metrics()).await;
    let err = MetricsServer::bind(addr, small_metrics(), ready())
        .await
        .unwrap_err();
    match &err {
        ServerError::Bind { addr: a, source } => {
            assert_eq!(*a, addr);
            assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&addr.to_string()), "{text}");
    assert!(
        text.starts_with("cannot bind the metrics address"),
        "{text}"
    );
    // The first server is unaffected.
    assert_eq!(get(addr, "/healthz").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_an_in_flight_scrape_finish_then_closes() {
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (entered_tx, release_rx) = (
        std::sync::Mutex::new(entered_tx),
        std::sync::Mutex::new(release_rx),
    );
    let source = FnSource(move |out: &mut String| {
        let _ = entered_tx.lock().unwrap().send(());
        let _ = release_rx
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(10));
        out.push_str("# TYPE slow counter\nslow 1\n");
    });
    let server = MetricsServer::bind(local(), source, ready()).await.unwrap();
    let addr = server.local_addr();
    let scrape = tokio::spawn(async move { get(addr, "/metrics").await });
    tokio::task::spawn_blocking(move || entered_rx.recv().unwrap())
        .await
        .unwrap();
    let shutdown = tokio::spawn(server.shutdown());
    // The listener closes first: new connections are refused while the scrape runs.
    let refused = async {
        loop {
            if TcpStream::connect(addr).await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), refused)
        .await
        .expect("the port is released at shutdown");
    assert!(!shutdown.is_finished(), "shutdown waits for the scrape");
    release_tx.send(()).unwrap();
    let r = scrape.await.unwrap();
    assert_eq!(
        (r.status, r.text()),
        (StatusCode::OK, "# TYPE slow counter\nslow 1\n")
    );
    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("shutdown completes once the scrape is done")
        .unwrap();
}

#[tokio::test]
async fn shutdown_grace_bounds_a_stuck_connection() {
    let server = MetricsServer::bind(
        local(),
        small_metrics(),
        ServerOptions {
            shutdown_grace: Duration::from_millis(200),
            header_read_timeout: Duration::from_secs(60),
            ..ready()
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    // Half a request: the connection is mid-request and never finishes.
    let mut stuck = TcpStream::connect(addr).await.unwrap();
    stuck
        .write_all(b"GET /metrics HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), server.shutdown())
        .await
        .expect("shutdown ends after the grace");
    assert!(started.elapsed() < Duration::from_secs(10));
    read_until_closed(&mut stuck, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn self_metrics_count_scrapes_and_a_second_server_does_not_panic() {
    let m = small_metrics();
    let (_server, addr) = serve(m.clone()).await;
    let first = get(addr, "/metrics").await;
    get(addr, "/metrics").await;
    let s = Scrape::parse(get(addr, "/metrics").await.text()).unwrap();
    assert_eq!(s.get("actor_metrics_http_scrapes_total", &[]), Some(2.0));
    assert_eq!(
        s.get("actor_metrics_http_connections_cut_total", &[]),
        Some(0.0)
    );
    assert_eq!(
        s.get("actor_metrics_http_scrape_duration_seconds_count", &[]),
        Some(2.0)
    );
    let bytes = s.get("actor_metrics_http_scrape_bytes_total", &[]).unwrap();
    assert!(bytes >= 2.0 * first.body.len() as f64 - 1024.0, "{bytes}");
    assert_eq!(
        s.type_of("actor_metrics_http_scrapes_total"),
        Some("counter")
    );

    // A second server on the same registry: serves, keeps the first one's series.
    let second: ServerHandle = MetricsServer::bind(local(), m.clone(), ready())
        .await
        .unwrap();
    let r = get(second.local_addr(), "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    let s = Scrape::parse(r.text()).unwrap();
    assert_eq!(s.get("actor_metrics_http_scrapes_total", &[]), Some(3.0));

    // A plain prometheus registry works as a source too.
    let registry = prometheus::Registry::new();
    let c = prometheus::IntCounter::new("plain_total", "A plain counter.").unwrap();
    registry.register(Box::new(c.clone())).unwrap();
    c.inc_by(7);
    let third = MetricsServer::bind(local(), registry, ready())
        .await
        .unwrap();
    get(third.local_addr(), "/metrics").await;
    let s = Scrape::parse(get(third.local_addr(), "/metrics").await.text()).unwrap();
    assert_eq!(s.get("plain_total", &[]), Some(7.0));
    assert_eq!(s.get("actor_metrics_http_scrapes_total", &[]), Some(1.0));
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let (server, addr) = serve(small_metrics()).await;
    assert_eq!(get(addr, "/healthz").await.status, StatusCode::OK);
    drop(server);
    let refused = async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), refused)
        .await
        .expect("the port is released");
}

/// Blocking `GET path` on a raw socket: the whole answer.
fn blocking_get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// A server on its own thread answers with no runtime on the caller's side
/// at all (the caller could be wedged), and shuts down cleanly.
#[test]
fn a_server_on_its_own_thread_serves_without_the_callers_runtime() {
    let m = small_metrics();
    let server = MetricsServer::spawn_thread(local(), m.clone(), ready()).unwrap();
    let addr = server.local_addr();
    assert!(blocking_get(addr, "/healthz").starts_with("HTTP/1.1 200"));
    let scrape = blocking_get(addr, "/metrics");
    assert!(
        scrape.contains("actor_queue_messages_sent_total{"),
        "{scrape}"
    );
    // The same port again: a typed error, synchronously.
    match MetricsServer::spawn_thread(addr, m, ready()) {
        Err(ServerError::Bind { addr: a, .. }) => assert_eq!(a, addr),
        other => panic!("{other:?}"),
    }
    server.shutdown();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the port is released"
    );
}
