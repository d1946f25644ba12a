//! Routing one request: `/metrics`, `/healthz`, `/readyz`, `/actors/top` and
//! `/actors` (`actors.rs`), 404 and 405.
//!
//! Every request's body is read (bounded, with a deadline) and discarded
//! before the answer, so a kept-alive connection stays usable whatever the
//! client sent; a body over the limit, or one that never arrives, gets its
//! error status with `Connection: close`.

use std::sync::Arc;
use std::time::Instant;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::negotiate;
use crate::options::ServerOptions;
use crate::scrape::{self, Body, Render};
use crate::self_metrics::SelfMetrics;
use crate::source::{MetricsSource, Scraped};
use actor_metrics::ScrapeRequest;

type Resp = Response<Body>;

/// What every connection of one server shares.
pub(crate) struct Shared {
    pub(crate) source: Arc<dyn MetricsSource>,
    pub(crate) options: ServerOptions,
    /// The bearer token, compared in constant time.
    pub(crate) expected_token: Option<Vec<u8>>,
    pub(crate) selfm: Arc<SelfMetrics>,
    /// Chunks rendered at once across all scrapes (one per core).
    pub(crate) renders: Arc<Semaphore>,
    /// Scrapes in flight; a scrape holds a permit until its body is done.
    pub(crate) scrapes: Arc<Semaphore>,
}

enum Route {
    Metrics,
    Health,
    Ready,
    Actors(crate::actors::Route),
}

/// Answers one request. `probes_only`: the connection came in on a probe slot
/// (every ordinary slot was taken), so only `/healthz` and `/readyz` are served.
pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Incoming>, probes_only: bool) -> Resp {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    if let Err(resp) = drain(&shared, &parts.headers, body).await {
        return resp;
    }
    let route = match parts.uri.path() {
        "/metrics" => Route::Metrics,
        "/healthz" => Route::Health,
        "/readyz" => Route::Ready,
        path => match crate::actors::route(path) {
            Some(f) => Route::Actors(f),
            None => return text(StatusCode::NOT_FOUND, "not found\n"),
        },
    };
    if parts.method != Method::GET && parts.method != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match route {
        Route::Metrics | Route::Actors(_) if probes_only => closing(text(
            StatusCode::SERVICE_UNAVAILABLE,
            "every connection slot is taken; this one serves /healthz and /readyz only\n",
        )),
        Route::Health => {
            let failing = shared.options.health.failing();
            if failing.is_empty() {
                text(StatusCode::OK, "ok\n")
            } else {
                let body: String = failing
                    .iter()
                    .map(|(name, why)| format!("unhealthy: {name}: {why}\n"))
                    .collect();
                text(StatusCode::SERVICE_UNAVAILABLE, body)
            }
        }
        Route::Ready => {
            let open = shared.options.readiness.not_ready();
            if open.is_empty() {
                text(StatusCode::OK, "ready\n")
            } else {
                let body: String = open.iter().map(|c| format!("not ready: {c}\n")).collect();
                text(StatusCode::SERVICE_UNAVAILABLE, body)
            }
        }
        Route::Metrics => metrics(shared, &parts, started).await,
        Route::Actors(f) => actors(shared, &parts, f).await,
    }
}

/// The page's only own asset is its inline style.
const ACTORS_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// `/actors/top` and `/actors`: the token and a scrape slot, like `/metrics`.
async fn actors(
    shared: Arc<Shared>,
    parts: &hyper::http::request::Parts,
    f: crate::actors::Route,
) -> Resp {
    if let Some(refused) = unauthorized(&shared, parts) {
        return refused;
    }
    let Ok(_permit) = shared.scrapes.clone().try_acquire_owned() else {
        return busy();
    };
    let (status, content_type, body) = crate::actors::answer(
        shared.source.clone(),
        f,
        parts.uri.query().map(str::to_owned),
    )
    .await;
    let mut r = text(status, body);
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The figures are of now, and the page is ours alone: no cache keeps
    // them, no other site frames the page, no script or outside asset runs
    // in it (it has none; the policy says so to the browser), and no
    // browser reads a body as another type than it is sent as.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(ACTORS_CSP),
    );
    if parts.method == Method::HEAD {
        *r.body_mut() = scrape::full("");
    }
    r
}

/// The 401 answer when a token is required and the request lacks it.
fn unauthorized(shared: &Shared, parts: &hyper::http::request::Parts) -> Option<Resp> {
    let expected = shared.expected_token.as_ref()?;
    // `Bearer {token}`: the scheme is case-insensitive (RFC 7235), the
    // token is compared in constant time.
    let given = parts
        .headers
        .get(header::AUTHORIZATION)
        .map_or(&[][..], |v| v.as_bytes());
    let token = match given.split_at_checked(7) {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case(b"bearer ") => token,
        _ => &[][..],
    };
    if bool::from(token.ct_eq(expected)) {
        return None;
    }
    let mut r = text(StatusCode::UNAUTHORIZED, "unauthorized\n");
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"metrics\""),
    );
    Some(r)
}

/// Every scrape slot is taken.
fn busy() -> Resp {
    // Closing: a refused scraper that keeps its connection idle would hold a
    // connection slot for the header timeout, and enough of them leave none
    // for the probes.
    let mut r = closing(text(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many scrapes in flight; retry shortly\n",
    ));
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// Reads the request body to its end and drops it; `Err` is the answer when
/// the body is too large, never arrives, or is malformed.
async fn drain(shared: &Shared, headers: &hyper::HeaderMap, body: Incoming) -> Result<(), Resp> {
    let limit = shared.options.max_request_body;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let too_large = || {
        closing(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large\n",
        ))
    };
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let read = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX)).collect();
    match tokio::time::timeout(shared.options.header_read_timeout, read).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(_)) => Err(closing(text(
            StatusCode::BAD_REQUEST,
            "malformed request body\n",
        ))),
        Err(_) => Err(closing(text(
            StatusCode::REQUEST_TIMEOUT,
            "request body not received in time\n",
        ))),
    }
}

async fn metrics(
    shared: Arc<Shared>,
    parts: &hyper::http::request::Parts,
    started: Instant,
) -> Resp {
    if let Some(refused) = unauthorized(&shared, parts) {
        return refused;
    }
    let mut request = match scrape::parse_query(parts.uri.query()) {
        Ok(r) => r,
        Err(why) => return text(StatusCode::BAD_REQUEST, format!("{why}\n")),
    };
    request.format = negotiate::format(parts.headers.get_all(header::ACCEPT));
    let gzip = negotiate::accepts_gzip(parts.headers.get_all(header::ACCEPT_ENCODING));
    // Held by the body until it is done (or dropped with the connection).
    let Ok(permit) = shared.scrapes.clone().try_acquire_owned() else {
        return busy();
    };
    let Some(scraped) = start(&shared, request).await else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "starting the scrape failed\n",
        );
    };
    // What the source wrote, which need not be what was asked for.
    let content_type = scraped.format.content_type();
    let body = if parts.method == Method::HEAD {
        scrape::full("")
    } else {
        let render = Render::new(scraped.chunks, gzip, started, shared.selfm.clone(), permit);
        scrape::body(render, shared.renders.clone())
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::VARY,
        HeaderValue::from_static("accept, accept-encoding"),
    );
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

/// Starts the scrape on the blocking pool (it takes the snapshot), in one of
/// the render slots every chunk takes; `None` when the server is shutting
/// down or the source panicked.
async fn start(shared: &Shared, request: ScrapeRequest) -> Option<Scraped> {
    let slot = shared.renders.clone().acquire_owned().await.ok()?;
    let source = shared.source.clone();
    let started = tokio::task::spawn_blocking(move || {
        let scraped = source.scrape(&request);
        drop(slot);
        scraped
    })
    .await;
    started
        .inspect_err(|e| tracing::error!(error = %e, "starting the scrape failed"))
        .ok()
}

fn text(status: StatusCode, body: impl Into<bytes::Bytes>) -> Resp {
    let mut r = Response::new(scrape::full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Says the connection closes after this answer (its body was not read).
fn closing(mut r: Resp) -> Resp {
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}
