//! The metrics server on ephemeral ports, with a real HTTP client (hyper's) and,
//! for misbehaving clients, raw sockets.

use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actor_metrics::Metrics;
use actor_metrics::scrape::Scrape;
use actor_metrics_server::{
    FnSource, MetricsServer, Readiness, ServerError, ServerHandle, ServerOptions, TEXT_FORMAT,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LOCAL: &str = "127.0.0.1:0";

fn local() -> SocketAddr {
    LOCAL.parse().unwrap()
}

fn ready() -> ServerOptions {
    ServerOptions {
        readiness: Readiness::new(Vec::<String>::new()),
        ..ServerOptions::default()
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

async fn send(addr: SocketAddr, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .request(req.body(Full::new(Bytes::new())).unwrap())
        .await
        .expect("request");
    let (parts, body) = resp.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.expect("body").to_bytes(),
    }
}

/// A server on an ephemeral port that reports ready, and its address.
async fn serve(source: impl actor_metrics_server::MetricsSource) -> (ServerHandle, SocketAddr) {
    let server = MetricsServer::bind(local(), source, ready()).await.unwrap();
    let addr = server.local_addr();
    (server, addr)
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    send(addr, Method::GET, path, &[]).await
}

fn gunzip(body: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(body)
        .read_to_string(&mut out)
        .expect("valid gzip");
    out
}

/// A source with one actor and a little traffic.
fn small_metrics() -> Metrics {
    let m = Metrics::new(Default::default()).unwrap();
    let a = m.actor_type("counter").register("1", Some(1), "k\"ey");
    a.queue_messages_sent_total().inc_by(3);
    std::mem::forget(a); // stays live for the test's life
    m
}

#[tokio::test]
async fn routes_methods_and_statuses() {
    let m = small_metrics();
    let (server, addr) = serve(m.clone()).await;

    let r = get(addr, "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some(TEXT_FORMAT));
    assert_eq!(r.header("vary"), Some("accept-encoding"));
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
        assert_eq!(r.header("vary"), Some("accept-encoding"));
        if gzip {
            assert_eq!(r.header("content-encoding"), Some("gzip"), "{accept}");
            assert_eq!(gunzip(&r.body), plain.text(), "{accept}");
        } else {
            assert_eq!(r.header("content-encoding"), None, "{accept}");
            assert_eq!(r.text(), plain.text(), "{accept}");
        }
    }
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
        "bearer s3cret",
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
    assert!(matches!(err, ServerError::InvalidOptions(_)), "{err}");
}

/// Sends raw bytes on a new connection and reads until the server closes it.
async fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    read_until_closed(&mut s, Duration::from_secs(10)).await
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(limit, stream.read_to_end(&mut got))
        .await
        .expect("the server closed the connection in time")
        .ok();
    got
}

#[tokio::test]
async fn slow_and_silent_clients_are_cut_while_scrapes_go_on() {
    let timeout = Duration::from_millis(300);
    let server = MetricsServer::bind(
        local(),
        small_metrics(),
        ServerOptions {
            header_read_timeout: timeout,
            ..ready()
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr();

    // Half a request line, then nothing.
    let started = Instant::now();
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /metr").await.unwrap();
    // A client that connects and sends nothing at all.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    // Scrapes keep working meanwhile.
    for _ in 0..3 {
        assert_eq!(get(addr, "/metrics").await.status, StatusCode::OK);
    }
    let got = read_until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(started.elapsed() >= timeout, "not before the timeout");
    assert!(
        !got.starts_with(b"HTTP/1.1 200"),
        "no scrape for half a request"
    );
    read_until_closed(&mut silent, Duration::from_secs(10)).await;

    // A kept-alive connection idling after a request is cut too.
    let got = exchange(addr, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );

    // A client that asks for a scrape and hangs up without reading.
    for _ in 0..20 {
        let mut cut = TcpStream::connect(addr).await.unwrap();
        cut.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        drop(cut);
    }
    assert_eq!(get(addr, "/metrics").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_declared_large_body_gets_413_and_bodies_are_ignored() {
    let (_server, addr) = serve(small_metrics()).await;
    let got = exchange(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n",
    )
    .await;
    assert!(
        got.starts_with(b"HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    // A small body is ignored: the scrape is served.
    let got = exchange(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await;
    assert!(got.starts_with(b"HTTP/1.1 200"));
    // Garbage instead of HTTP: the connection is dropped, the server goes on.
    let got = exchange(addr, b"\x00\x01\x02 not http\r\n\r\n").await;
    assert!(!got.starts_with(b"HTTP/1.1 200"));
    assert_eq!(get(addr, "/metrics").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_scrapes_of_50k_series_while_updates_go_on() {
    let m = Metrics::new(Default::default()).unwrap();
    let ty = m.actor_type("load");
    let actors: Vec<_> = (0..2_000)
        .map(|i| {
            let a = ty.register(&format!("actor-{i}"), Some(1), "k");
            a.queue_messages_sent_total().inc();
            a.queue_messages_received_total().inc();
            a.connections_total().inc();
            a.sqlite_commits_total().inc();
            a.sqlite_commit_duration_seconds().observe(0.001);
            a
        })
        .collect();
    let actors = Arc::new(actors);
    let (_server, addr) = serve(m.clone()).await;
    let first = get(addr, "/metrics").await;
    let series = first
        .text()
        .lines()
        .filter(|l| l.starts_with("actor_") && l.contains("actor_id_gen="))
        .count();
    assert!(series >= 50_000, "{series} per-actor series");

    // Four updater threads, each on its own slice of actors, counting what they did.
    let stop = Arc::new(AtomicBool::new(false));
    let done: Arc<[AtomicU64; 4]> = Arc::new(Default::default());
    let updaters: Vec<_> = (0..4)
        .map(|t| {
            let (actors, stop, done) = (actors.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mine: Vec<_> = actors.iter().skip(t).step_by(4).collect();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for a in &mine {
                        a.queue_messages_sent_total().inc();
                    }
                    n += mine.len() as u64;
                    done[t].store(n, Ordering::Relaxed);
                }
                n
            })
        })
        .collect();

    let before: Vec<u64> = done.iter().map(|d| d.load(Ordering::Relaxed)).collect();
    let scrapes: Vec<_> = (0..200)
        .map(|_| tokio::spawn(async move { get(addr, "/metrics").await }))
        .collect();
    for s in scrapes {
        let r = s.await.unwrap();
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.len() > first.body.len() / 2);
    }
    let during: Vec<u64> = done.iter().map(|d| d.load(Ordering::Relaxed)).collect();
    stop.store(true, Ordering::Relaxed);
    let totals: Vec<u64> = updaters.into_iter().map(|u| u.join().unwrap()).collect();
    for t in 0..4 {
        assert!(
            during[t] > before[t],
            "updater {t} made progress during the scrapes"
        );
    }
    // Exact counts: every increment landed.
    let sent: u64 = actors
        .iter()
        .map(|a| a.queue_messages_sent_total().get())
        .sum();
    assert_eq!(sent, 2_000 + totals.iter().sum::<u64>());
    let s = Scrape::parse(get(addr, "/metrics").await.text()).unwrap();
    assert_eq!(s.sum("actor_queue_messages_sent_total", &[]), sent as f64);
    assert_eq!(
        s.get(
            "actor_type_queue_messages_sent_total",
            &[("actor_name", "load")]
        ),
        Some(sent as f64)
    );
    assert!(s.get("actor_metrics_http_scrapes_total", &[]).unwrap() >= 201.0);
}

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
