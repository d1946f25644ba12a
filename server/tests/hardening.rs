//! Misbehaving clients: slow, silent, hung up, oversized, garbage, and
//! kept-alive connections that send bodies where none is expected.

mod common;

use std::time::{Duration, Instant};

use actor_metrics_server::{MetricsServer, ServerOptions};
use common::*;
use hyper::StatusCode;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

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
    // A small body is read and dropped: the scrape is served.
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

/// Requests with bodies on every route, one kept-alive connection: each is
/// answered and the connection stays open, so no client is left guessing
/// whether its request ran.
#[tokio::test]
async fn a_kept_alive_connection_survives_bodies_on_every_route() {
    let (_server, addr) = serve(small_metrics()).await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut stream = tokio::io::BufReader::new(stream);
    let requests: [(&[u8], u16, bool); 6] = [
        (b"GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", 200, false),
        (b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n{\"a\": true}", 405, false),
        (b"PUT /nope HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc", 404, false),
        (b"GET /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n", 200, false),
        (b"DELETE /readyz HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nno", 405, false),
        (b"HEAD /readyz HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nhead", 200, true),
    ];
    for i in 0..600 {
        let (request, status, head) = requests[i % requests.len()];
        stream.get_mut().write_all(request).await.unwrap();
        let r = read_response(&mut stream, head)
            .await
            .unwrap_or_else(|| panic!("request {i}: the server closed the connection"));
        assert_eq!(r.status, status, "request {i}");
        assert_ne!(r.header("connection"), Some("close"), "request {i}");
    }
}

#[tokio::test]
async fn an_oversized_or_missing_body_is_answered_then_the_connection_closes() {
    let server = MetricsServer::bind(
        local(),
        small_metrics(),
        ServerOptions {
            header_read_timeout: Duration::from_millis(300),
            ..ready()
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    // Chunked, so no length is declared: the limit is found while reading.
    let mut big =
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..20 {
        big.extend_from_slice(b"1000\r\n");
        big.extend_from_slice(&[b'x'; 0x1000]);
        big.extend_from_slice(b"\r\n");
    }
    big.extend_from_slice(b"0\r\n\r\n");
    let got = String::from_utf8_lossy(&exchange(addr, &big).await).into_owned();
    assert!(got.starts_with("HTTP/1.1 413"), "{got}");
    assert!(
        got.to_ascii_lowercase().contains("connection: close"),
        "{got}"
    );
    // A declared body that never comes.
    let got = exchange(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly this",
    )
    .await;
    let got = String::from_utf8_lossy(&got).into_owned();
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert_eq!(get(addr, "/metrics").await.status, StatusCode::OK);
}

/// Clients that ask for a big scrape and never read it: past `max_scrapes`
/// more scrapes get 503 at once, the probes keep answering, and after the
/// write timeout the stalled connections are cut and scrapes work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_cannot_starve_the_probes() {
    // A source far bigger than the socket buffers: writes stall for real.
    let m = full_metrics();
    let ty = m.actor_type("counter");
    let actors: Vec<_> = (0..3_000)
        .map(|i| {
            let a = ty.register(&i.to_string(), Some(1), "k");
            a.queue_messages_sent_total().inc();
            a
        })
        .collect();
    let server = MetricsServer::bind(
        local(),
        m.clone(),
        ServerOptions {
            max_scrapes: 4,
            write_timeout: Duration::from_millis(500),
            ..ready()
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let mut stalled = Vec::new();
    for _ in 0..12 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        stalled.push(s); // never read
    }
    // Probes answer at once while every scrape slot is stuck.
    let started = Instant::now();
    assert_eq!(get(addr, "/healthz").await.status, StatusCode::OK);
    assert_eq!(get(addr, "/readyz").await.status, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(2));
    let busy = get(addr, "/metrics").await;
    assert_eq!(busy.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(busy.header("retry-after"), Some("1"));
    // Refused scrapers do not keep a connection slot idle.
    assert_eq!(busy.header("connection"), Some("close"));
    // The stalled writes time out; the slots come back.
    let r = poll_scrape(addr).await;
    assert_eq!(r.status, StatusCode::OK);
    // Counted as cut: the 4 that held a scrape slot, not the 8 answered 503.
    let s = actor_metrics::scrape::Scrape::parse(r.text()).unwrap();
    let cut = s
        .get("actor_metrics_http_connections_cut_total", &[])
        .unwrap();
    assert!((1.0..=4.0).contains(&cut), "{cut} connections cut");
    drop((stalled, actors));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_holding_every_slot_cannot_make_a_probe_wait() {
    let server = MetricsServer::bind(
        local(),
        small_metrics(),
        ServerOptions {
            max_connections: 4,
            // Idle kept-alive connections would hold their slots this long.
            header_read_timeout: Duration::from_secs(60),
            ..ready()
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = tokio::io::BufReader::new(TcpStream::connect(addr).await.unwrap());
        s.get_mut()
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let r = read_response(&mut s, false).await.expect("an answer");
        assert_eq!(r.status, 200);
        held.push(s); // kept alive and idle: the slot stays taken
    }
    // Every ordinary slot is taken: the probes still answer, well before any
    // held connection times out.
    for path in ["/healthz", "/readyz"] {
        let r = tokio::time::timeout(Duration::from_secs(10), get(addr, path))
            .await
            .unwrap_or_else(|_| panic!("{path} waited for a connection slot"));
        assert_eq!(r.status, StatusCode::OK, "{path}");
    }
    // A probe slot serves nothing else, and closes after one answer.
    let r = tokio::time::timeout(Duration::from_secs(10), get(addr, "/metrics"))
        .await
        .expect("an answer on a probe slot");
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.header("connection"), Some("close"));
    // Once a slot is free again, scrapes are served as before.
    drop(held.pop());
    let r = poll_scrape(addr).await;
    assert_eq!(r.status, StatusCode::OK);
    drop(held);
}

/// Scrapes until one is served (the stalled ones free their slots after the
/// write timeout), for at most 10 s.
async fn poll_scrape(addr: std::net::SocketAddr) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = get(addr, "/metrics").await;
        if r.status == StatusCode::OK || Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Through hyper, which flushes at every wake-up of a closing connection: a
/// `Connection: close` client that leaves its response unread is cut once
/// the close has waited the write timeout, and its slot comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_connection_left_unread_is_cut_and_its_slot_comes_back() {
    let m = full_metrics();
    let ty = m.actor_type("counter");
    let actors: Vec<_> = (0..20)
        .map(|i| ty.register(&i.to_string(), Some(1), "k"))
        .collect();
    let body = m.render().len();
    let server = MetricsServer::bind(
        local(),
        m,
        ServerOptions {
            max_connections: 1,
            write_timeout: Duration::from_millis(300),
            ..ready()
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    assert!(
        (8_000..200_000).contains(&body),
        "{body} bytes: more than the client's window, less than the server's queue"
    );
    let client = tokio::net::TcpSocket::new_v4().unwrap();
    client.set_recv_buffer_size(2048).unwrap();
    let mut unread = client.connect(addr).await.unwrap();
    unread
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    // The only ordinary slot is the unread one's (the first connection)
    // until it is cut; then a scrape gets it (a probe slot answers it 503).
    let started = Instant::now();
    let r = poll_scrape(addr).await;
    assert_eq!(r.status, StatusCode::OK, "the slot never came back");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let s = actor_metrics::scrape::Scrape::parse(r.text()).unwrap();
    assert_eq!(
        s.get("actor_metrics_http_connections_cut_total", &[]),
        Some(1.0)
    );
    drop((unread, actors));
}

/// A client that shuts its sending side after its request (`nc -N`) still
/// gets the whole answer.
#[tokio::test]
async fn a_client_that_half_closes_after_its_request_gets_the_answer() {
    let (_server, addr) = serve(small_metrics()).await;
    let whole = get(addr, "/metrics").await.body.len();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    s.shutdown().await.unwrap();
    let got = read_until_closed(&mut s, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("0\r\n\r\n"), "the body's last chunk");
    assert!(
        got.len() > whole,
        "{} bytes for a {whole}-byte body",
        got.len()
    );
}
