//! The side-port exposition of `actor-metrics`: what Prometheus scrapes.
//!
//! Kept out of `actor-metrics` so that a library that only records metrics does
//! not link an HTTP stack. [`MetricsServer::bind`] serves, on its own port
//! (default [`DEFAULT_ADDR`]):
//!
//! | route | answer |
//! |---|---|
//! | `GET /metrics` | 200, text format 0.0.4, gzip when the client accepts it; 401 without the bearer token when one is set |
//! | `GET /healthz` | 200 `ok` while the process serves |
//! | `GET /readyz` | 200 `ready`, or 503 with one `not ready: {condition}` line per open condition of [`Readiness`] |
//! | other paths | 404 |
//! | other methods | 405 with `Allow: GET, HEAD` (`HEAD` answers as `GET` without a body) |
//!
//! Hardening: at most [`ServerOptions::max_connections`] connections (the
//! listener waits for a free slot before accepting), a header read timeout that
//! also cuts connections idling between requests, request bodies never read
//! (a declared body over 64 KiB gets 413), scrapes rendered on the blocking pool
//! (at most one per core at a time) so a large registry never stalls the runtime
//! or metric updates, and accept errors (out of file descriptors) backed off
//! rather than spun on. [`ServerHandle::shutdown`] stops accepting, lets
//! in-flight scrapes finish within [`ServerOptions::shutdown_grace`], then
//! closes what is left.
//!
//! Self-metrics, registered in the source's registry when it has one:
//! `actor_metrics_http_scrapes_total`, `actor_metrics_http_scrape_duration_seconds`
//! and `actor_metrics_http_scrape_bytes_total` (uncompressed bytes).

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use prometheus::{Histogram, HistogramOpts, IntCounter};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinSet;

/// The default metrics address: loopback only, port 9091.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9091";

/// Largest request body a client may declare (`Content-Length`); bodies are never
/// read, a larger declaration gets 413.
pub const MAX_REQUEST_BODY: u64 = 64 * 1024;

/// The `Content-Type` of the Prometheus text format.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a scrape renders.
pub trait MetricsSource: Send + Sync + 'static {
    /// Appends the whole scrape, in the text format 0.0.4, to `out`.
    fn render_into(&self, out: &mut String);

    /// The registry the server registers its own metrics in, if any (they then
    /// appear in the scrape through this source).
    fn registry(&self) -> Option<prometheus::Registry> {
        None
    }
}

impl MetricsSource for actor_metrics::Metrics {
    fn render_into(&self, out: &mut String) {
        actor_metrics::Metrics::render_into(self, out);
    }
    fn registry(&self) -> Option<prometheus::Registry> {
        Some(actor_metrics::Metrics::registry(self).clone())
    }
}

impl MetricsSource for prometheus::Registry {
    fn render_into(&self, out: &mut String) {
        use prometheus::Encoder as _;
        let mut buf = Vec::new();
        match prometheus::TextEncoder::new().encode(&self.gather(), &mut buf) {
            Ok(()) => out.push_str(&String::from_utf8_lossy(&buf)),
            Err(e) => tracing::error!(error = %e, "encoding the prometheus registry failed"),
        }
    }
    fn registry(&self) -> Option<prometheus::Registry> {
        Some(self.clone())
    }
}

/// A closure as a [`MetricsSource`] (no registry).
pub struct FnSource<F>(pub F);

impl<F: Fn(&mut String) + Send + Sync + 'static> MetricsSource for FnSource<F> {
    fn render_into(&self, out: &mut String) {
        (self.0)(out);
    }
}

/// Named conditions that keep `/readyz` at 503 until each is marked ready.
/// Cheap to clone; clones share the same state.
#[derive(Debug, Clone)]
pub struct Readiness(Arc<Mutex<Vec<String>>>);

impl Readiness {
    /// Not ready until every one of `conditions` is marked ready. With no
    /// conditions it starts ready.
    pub fn new<I, S>(conditions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut open: Vec<String> = Vec::new();
        for c in conditions {
            let c = c.into();
            if !open.contains(&c) {
                open.push(c);
            }
        }
        Readiness(Arc::new(Mutex::new(open)))
    }

    /// Marks `condition` as satisfied (no effect if it is not open).
    pub fn mark_ready(&self, condition: &str) {
        self.lock().retain(|c| c != condition);
    }

    /// Opens `reason` (for example `shutting down`): `/readyz` answers 503 again.
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        let reason = reason.into();
        let mut open = self.lock();
        if !open.contains(&reason) {
            open.push(reason);
        }
    }

    /// Whether every condition is satisfied.
    pub fn is_ready(&self) -> bool {
        self.lock().is_empty()
    }

    /// The open conditions, in the order they were opened.
    pub fn not_ready(&self) -> Vec<String> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        // A panic while holding this lock cannot leave the list half-changed.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How the server behaves. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// When set, `/metrics` requires `Authorization: Bearer {token}` (compared in
    /// constant time). Default none; a warning is logged when the server listens
    /// beyond loopback without one.
    pub bearer_token: Option<String>,
    /// Connections served at once; the listener waits for a free slot before
    /// accepting more. Default 256.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, on a new connection and
    /// between requests of a kept-alive one; then the connection is closed.
    /// Default 5 s.
    pub header_read_timeout: Duration,
    /// What `/readyz` reports. Default: one open condition, `not marked ready`.
    pub readiness: Readiness,
    /// How long [`ServerHandle::shutdown`] lets in-flight requests finish before
    /// it closes their connections. Default 10 s.
    pub shutdown_grace: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            bearer_token: None,
            max_connections: 256,
            header_read_timeout: Duration::from_secs(5),
            readiness: Readiness::new(["not marked ready"]),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Errors of [`MetricsServer::bind`].
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address could not be bound (in use, not permitted, not local).
    #[error("cannot bind the metrics address {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// An option is out of range.
    #[error("invalid metrics server options: {0}")]
    InvalidOptions(&'static str),
    /// Reading the bound address back failed.
    #[error("metrics listener: {0}")]
    Io(#[from] std::io::Error),
}

/// Starts metrics servers.
#[derive(Debug)]
pub struct MetricsServer;

impl MetricsServer {
    /// Binds `addr` and serves `source` on the current tokio runtime until the
    /// returned handle is shut down or dropped.
    pub async fn bind(
        addr: SocketAddr,
        source: impl MetricsSource,
        options: ServerOptions,
    ) -> Result<ServerHandle, ServerError> {
        if options.max_connections == 0 {
            return Err(ServerError::InvalidOptions(
                "max_connections must be at least 1",
            ));
        }
        if options.header_read_timeout.is_zero() {
            return Err(ServerError::InvalidOptions(
                "header_read_timeout must be positive",
            ));
        }
        if options.bearer_token.as_deref().is_some_and(str::is_empty) {
            return Err(ServerError::InvalidOptions("bearer_token is empty"));
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let local_addr = listener.local_addr()?;
        if !local_addr.ip().is_loopback() && options.bearer_token.is_none() {
            tracing::warn!(
                addr = %local_addr,
                "the metrics server listens beyond loopback without a bearer token"
            );
        }
        let selfm = SelfMetrics::new(source.registry().as_ref());
        let renders = std::thread::available_parallelism().map_or(2, |n| n.get());
        let shared = Arc::new(Shared {
            source: Box::new(source),
            expected_auth: options
                .bearer_token
                .as_ref()
                .map(|t| format!("Bearer {t}").into_bytes()),
            readiness: options.readiness.clone(),
            selfm,
            renders: Semaphore::new(renders),
            last_len: AtomicUsize::new(0),
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(listener, shared, options.clone(), stopped));
        tracing::info!(addr = %local_addr, "metrics server listening");
        Ok(ServerHandle {
            local_addr,
            readiness: options.readiness,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// A running server. Dropping it stops the server without waiting; call
/// [`ServerHandle::shutdown`] to let in-flight scrapes finish.
#[derive(Debug)]
#[must_use = "the server stops when its handle is dropped"]
pub struct ServerHandle {
    local_addr: SocketAddr,
    readiness: Readiness,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ServerHandle {
    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The readiness this server reports on `/readyz`.
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// Stops accepting (the port is released at once), waits up to the shutdown
    /// grace for in-flight requests, then closes the remaining connections.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "the metrics server task failed");
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        // Dropping the sender ends the accept loop as a send would.
        self.stop.take();
    }
}

struct Shared {
    source: Box<dyn MetricsSource>,
    expected_auth: Option<Vec<u8>>,
    readiness: Readiness,
    selfm: SelfMetrics,
    /// Renders in flight at once (one per core): bounds the memory that many
    /// concurrent scrapes of a large registry can hold.
    renders: Semaphore,
    /// Length of the previous scrape, to size the next buffer.
    last_len: AtomicUsize,
}

async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    options: ServerOptions,
    mut stopped: oneshot::Receiver<()>,
) {
    let slots = Arc::new(Semaphore::new(options.max_connections));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            _ = &mut stopped => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    backoff = ACCEPT_BACKOFF_MIN;
                    a
                }
                Err(e) => {
                    // Out of descriptors or a connection reset before accept:
                    // wait a little instead of spinning, and keep serving.
                    tracing::warn!(error = %e, retry_in = ?backoff, "metrics server accept failed");
                    tokio::select! {
                        _ = &mut stopped => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(options.header_read_timeout)
            .serve_connection(
                TokioIo::new(stream),
                hyper::service::service_fn(move |req| handle(shared.clone(), req)),
            );
        let conn = graceful.watch(conn);
        connections.spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "metrics connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(options.shutdown_grace) => {
            tracing::warn!(
                open = connections.len(),
                "metrics connections still open after the shutdown grace; closing them"
            );
        }
    }
    connections.shutdown().await;
}

const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

type Resp = Response<Full<Bytes>>;

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST_BODY) {
        let mut r = text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Ok(r);
    }
    let route = match req.uri().path() {
        "/metrics" => Route::Metrics,
        "/healthz" => Route::Health,
        "/readyz" => Route::Ready,
        _ => return Ok(text(StatusCode::NOT_FOUND, "not found\n")),
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(r);
    }
    Ok(match route {
        Route::Health => text(StatusCode::OK, "ok\n"),
        Route::Ready => {
            let open = shared.readiness.not_ready();
            if open.is_empty() {
                text(StatusCode::OK, "ready\n")
            } else {
                let body: String = open.iter().map(|c| format!("not ready: {c}\n")).collect();
                text(StatusCode::SERVICE_UNAVAILABLE, body)
            }
        }
        Route::Metrics => metrics(shared, &req).await,
    })
}

enum Route {
    Metrics,
    Health,
    Ready,
}

async fn metrics(shared: Arc<Shared>, req: &Request<Incoming>) -> Resp {
    if let Some(expected) = &shared.expected_auth {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .map_or(&[][..], |v| v.as_bytes());
        if !bool::from(given.ct_eq(expected)) {
            let mut r = text(StatusCode::UNAUTHORIZED, "unauthorized\n");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"metrics\""),
            );
            return r;
        }
    }
    let gzip = accepts_gzip(req.headers().get_all(header::ACCEPT_ENCODING));
    let Ok(_render_slot) = shared.renders.acquire().await else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    };
    let started = Instant::now();
    let worker = shared.clone();
    let rendered = tokio::task::spawn_blocking(move || {
        let mut out = String::with_capacity(worker.last_len.load(Ordering::Relaxed) + 4096);
        worker.source.render_into(&mut out);
        worker.last_len.store(out.len(), Ordering::Relaxed);
        let len = out.len();
        let body = if gzip {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(len / 8),
                flate2::Compression::fast(),
            );
            // Writing into a Vec cannot fail.
            let _ = enc.write_all(out.as_bytes());
            enc.finish().map(Bytes::from).unwrap_or_default()
        } else {
            Bytes::from(out)
        };
        (body, len)
    })
    .await;
    let (body, len) = match rendered {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "rendering the scrape failed");
            return text(StatusCode::INTERNAL_SERVER_ERROR, "rendering failed\n");
        }
    };
    shared.selfm.scrapes.inc();
    shared.selfm.bytes.inc_by(len as u64);
    shared
        .selfm
        .duration
        .observe(started.elapsed().as_secs_f64());
    let mut r = Response::new(Full::new(body));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

/// Whether the `Accept-Encoding` values allow gzip: an explicit `gzip` (or
/// `x-gzip`) with a non-zero q, or else `*` with a non-zero q.
fn accepts_gzip<'a>(values: impl IntoIterator<Item = &'a HeaderValue>) -> bool {
    let (mut gzip, mut star) = (None, None);
    for value in values {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    k.trim().eq_ignore_ascii_case("q").then(|| v.trim())
                })
                .next_back()
                .map_or(Some(1.0), |v| v.parse::<f32>().ok());
            // A malformed q makes the item unusable, not acceptable.
            let q = q.filter(|q| q.is_finite()).unwrap_or(0.0);
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(q);
            } else if coding == "*" {
                star = Some(q);
            }
        }
    }
    gzip.or(star).is_some_and(|q| q > 0.0)
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

struct SelfMetrics {
    scrapes: IntCounter,
    duration: Histogram,
    bytes: IntCounter,
}

impl SelfMetrics {
    fn new(registry: Option<&prometheus::Registry>) -> Self {
        // Names and help are constants: construction cannot fail.
        let scrapes = IntCounter::new(
            "actor_metrics_http_scrapes_total",
            "Scrapes of /metrics served.",
        )
        .expect("valid counter");
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "actor_metrics_http_scrape_duration_seconds",
                "Time to render (and compress) one scrape of /metrics.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )
        .expect("valid histogram");
        let bytes = IntCounter::new(
            "actor_metrics_http_scrape_bytes_total",
            "Bytes of /metrics text rendered, before compression.",
        )
        .expect("valid counter");
        if let Some(registry) = registry {
            let collectors: [Box<dyn prometheus::core::Collector>; 3] = [
                Box::new(scrapes.clone()),
                Box::new(duration.clone()),
                Box::new(bytes.clone()),
            ];
            for c in collectors {
                if let Err(e) = registry.register(c) {
                    // A second server on the same registry: the first one's
                    // self-metrics stay exported; this one counts unexported.
                    tracing::warn!(error = %e, "metrics server self-metrics not registered");
                }
            }
        }
        SelfMetrics {
            scrapes,
            duration,
            bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gz(values: &[&'static str]) -> bool {
        let v: Vec<HeaderValue> = values.iter().map(|s| HeaderValue::from_static(s)).collect();
        accepts_gzip(&v)
    }

    #[test]
    fn accept_encoding_q_values() {
        assert!(gz(&["gzip"]));
        assert!(gz(&["identity, GZIP;q=0.5"]));
        assert!(gz(&["deflate", "gzip"]));
        assert!(gz(&["*"]));
        assert!(gz(&["x-gzip"]));
        assert!(!gz(&[]));
        assert!(!gz(&["identity"]));
        assert!(!gz(&["gzip;q=0"]));
        assert!(!gz(&["gzip;q=0.0, *;q=1"]), "explicit gzip wins over *");
        assert!(!gz(&["*;q=0"]));
        assert!(!gz(&["gzip;q=abc"]));
        assert!(gz(&["gzip ; q=0.001"]));
    }

    #[test]
    fn readiness_conditions() {
        let r = Readiness::new(["a", "b", "a"]);
        assert_eq!(r.not_ready(), ["a", "b"]);
        r.mark_ready("a");
        r.mark_ready("unknown");
        assert_eq!(r.not_ready(), ["b"]);
        r.clone().mark_ready("b");
        assert!(r.is_ready());
        r.set_not_ready("shutting down");
        r.set_not_ready("shutting down");
        assert_eq!(r.not_ready(), ["shutting down"]);
        assert!(Readiness::new(Vec::<String>::new()).is_ready());
    }
}
