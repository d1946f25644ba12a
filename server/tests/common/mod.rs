//! Helpers shared by the server tests: a server on an ephemeral port, a real
//! HTTP client (hyper's), and raw sockets for misbehaving clients.

#![allow(dead_code)] // each test file uses its own subset

use std::io::Read as _;
use std::net::SocketAddr;
use std::time::Duration;

use actor_metrics::{Config, DetailLevel, Metrics};
use actor_metrics_server::{MetricsServer, MetricsSource, Readiness, ServerHandle, ServerOptions};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Any free port on loopback.
pub fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Default options, reporting ready.
pub fn ready() -> ServerOptions {
    ServerOptions {
        readiness: Readiness::new(Vec::<String>::new()),
        ..ServerOptions::default()
    }
}

/// A whole answer.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// One request with hyper's client.
pub async fn send(addr: SocketAddr, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
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

/// `GET path`.
pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    send(addr, Method::GET, path, &[]).await
}

/// A server on an ephemeral port that reports ready, and its address.
pub async fn serve(source: impl MetricsSource) -> (ServerHandle, SocketAddr) {
    let server = MetricsServer::bind(local(), source, ready()).await.unwrap();
    let addr = server.local_addr();
    (server, addr)
}

pub fn gunzip(body: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(body)
        .read_to_string(&mut out)
        .expect("valid gzip");
    out
}

/// An instance exporting every family per actor.
pub fn full_metrics() -> Metrics {
    Metrics::new(Config {
        per_actor_detail: DetailLevel::Full,
        ..Config::default()
    })
    .unwrap()
}

/// A source with one actor and a little traffic.
pub fn small_metrics() -> Metrics {
    let m = full_metrics();
    let a = m.actor_type("counter").register("1", Some(1), "k\"ey");
    a.queue_messages_sent_total().inc_by(3);
    std::mem::forget(a); // stays live for the test's life
    m
}

/// Sends raw bytes on a new connection and reads until the server closes it.
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    read_until_closed(&mut s, Duration::from_secs(10)).await
}

/// Reads until the server closes the connection; returns what it sent.
pub async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(limit, stream.read_to_end(&mut got))
        .await
        .expect("the server closed the connection in time")
        .ok();
    got
}

/// One HTTP/1.1 response read off a kept-alive connection: status, lowercase
/// header names, body (`Content-Length` or chunked; none for `HEAD`).
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response from `stream`; `None` if the server closed the connection first.
pub async fn read_response(
    stream: &mut tokio::io::BufReader<TcpStream>,
    head_request: bool,
) -> Option<RawResponse> {
    use tokio::io::AsyncBufReadExt;
    let mut line = String::new();
    if stream.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        stream.read_line(&mut line).await.ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(':')?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let mut r = RawResponse {
        status,
        headers,
        body: Vec::new(),
    };
    if head_request {
        return Some(r);
    }
    if let Some(len) = r.header("content-length") {
        let mut body = vec![0; len.parse().ok()?];
        stream.read_exact(&mut body).await.ok()?;
        r.body = body;
    } else if r.header("transfer-encoding") == Some("chunked") {
        loop {
            line.clear();
            stream.read_line(&mut line).await.ok()?;
            let size = usize::from_str_radix(line.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            stream.read_exact(&mut chunk).await.ok()?;
            if size == 0 {
                break;
            }
            r.body.extend_from_slice(&chunk[..size]);
        }
    }
    Some(r)
}
