//! The JSON app API (never the metrics port), routed by axum:
//!
//! | request | does |
//! |---|---|
//! | `POST /actors/{name}/{key}` | create or wake; `{actor_id, generation, ...}` |
//! | `POST /actors/{name}/{key}/actions/{action}` | call with a JSON body; `{result}` |
//! | `POST /actors/{name}/{key}/sleep` | put to sleep |
//! | `DELETE /actors/{name}/{key}` | destroy |
//! | `GET /actors` | live actors |
//!
//! Trace context: an action call honours the caller's W3C `traceparent`
//! (continuing its trace) and starts a trace when there is none, or when it
//! is invalid or repeated (never an error). The action runs in a `tracing`
//! span with the actor's labels and the trace (see [`actor_core::trace`]),
//! and every answer of the call route, errors included, carries two headers:
//! [`TRACEPARENT`], naming the host's span of the call (same trace id and
//! flags as the caller's, a new span id: what a client records as its
//! callee), and [`TRACE_ID`], the trace id alone, for a person or a `grep`
//! of the logs.
//!
//! Path segments are percent-decoded (any UTF-8 key; `%2F` is a `/` inside the
//! key). Every error is a JSON `{"error": ...}` with a 4xx/5xx status; a wrong
//! method is 405 with `Allow`.
//!
//! Keep-alive: hyper closes a connection whose request body was left unread,
//! and a client that already sent its next request on it sees that request fail
//! without knowing whether it ran. So every request's body is read before
//! routing (bounded by [`MAX_BODY_BYTES`] and [`BODY_TIMEOUT`]), whether or not
//! the route uses it; a body that is refused unread (too large, too slow) gets
//! its answer with `Connection: close`, so the client knows.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::BytesMut;
use futures::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use actor_core::Host;
use actor_core::Payload;
use actor_core::action::CallError;
use actor_core::budget::{Charge, LimitError};
use actor_core::throttle::LogThrottle;
use actor_core::{TraceContext, TraceOrigin};

/// The W3C Trace Context header read on a call, and returned naming the
/// host's span of it.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The response header with the call's trace id (32 lowercase hex digits).
pub const TRACE_ID: HeaderName = HeaderName::from_static("trace-id");

/// Largest request body accepted: 1 MiB.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send its request body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// First wait after a failed accept; it doubles on each failure in a row.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest wait after a failed accept.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// At most one "accept failed" line per this long.
const ACCEPT_FAILURE_LOG_EVERY: Duration = Duration::from_secs(5);

/// The app API's routes over `host`.
pub fn router(host: Host) -> Router {
    Router::new()
        .route("/actors", get(list).fallback(not_allowed("GET")))
        .route(
            "/actors/{name}/{key}",
            post(create)
                .delete(destroy)
                .fallback(not_allowed("POST, DELETE")),
        )
        .route(
            "/actors/{name}/{key}/sleep",
            post(sleep).fallback(not_allowed("POST")),
        )
        .route(
            "/actors/{name}/{key}/actions/{action}",
            post(call).fallback(not_allowed("POST")),
        )
        .fallback(|| async { Reject::new(StatusCode::NOT_FOUND, "no such route; see GET /actors") })
        .layer(middleware::from_fn_with_state(host.clone(), read_body))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(host)
}

/// Serves the app API on `listener` until `shutdown` completes, then stops
/// accepting, lets requests in flight finish for up to `grace`, and closes the
/// connections still open after it.
pub async fn serve(
    listener: TcpListener,
    host: Host,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let service = TowerToHyperService::new(router(host));
    let mut connections = tokio::task::JoinSet::new();
    let mut backoff = ACCEPT_BACKOFF_MIN;
    let accept_failures = LogThrottle::new(ACCEPT_FAILURE_LOG_EVERY);
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    backoff = ACCEPT_BACKOFF_MIN;
                    a
                }
                Err(e) => {
                    // Out of descriptors, most likely: wait longer each time
                    // instead of spinning, and say so once in a while.
                    if let Some(suppressed) = accept_failures.admit() {
                        tracing::warn!(error = %e, retry_in = %humantime::format_duration(backoff), suppressed, "app API accept failed (suppressed: failures not logged since the last line)");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = &mut shutdown => break,
                    }
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service.clone());
        let conn = graceful.watch(conn);
        connections.spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "app API connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!(
                open = connections.len(),
                "app API connections still open after the shutdown grace; closing them"
            );
        }
    }
    connections.shutdown().await;
}

/// Why a request was refused: a status, a message, for 405 the allowed methods,
/// and whether the connection must close (its body was left unread).
#[derive(Debug)]
pub struct Reject {
    status: StatusCode,
    message: String,
    allow: Option<&'static str>,
    close: bool,
}

impl Reject {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Reject {
            status,
            message: message.into(),
            allow: None,
            close: false,
        }
    }

    /// The status of this refusal.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The same refusal, closing the connection (its body was left unread).
    fn closing(self) -> Self {
        Reject {
            close: true,
            ..self
        }
    }
}

impl From<CallError> for Reject {
    fn from(e: CallError) -> Self {
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Reject::new(status, e.to_string())
    }
}

impl From<LimitError> for Reject {
    fn from(e: LimitError) -> Self {
        Reject::from(CallError::Limit(e))
    }
}

impl From<PathRejection> for Reject {
    fn from(_: PathRejection) -> Self {
        Reject::new(
            StatusCode::BAD_REQUEST,
            "path segments must be UTF-8 after percent-decoding",
        )
    }
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, json_body(&json!({ "error": self.message }))).into_response();
        let headers = response.headers_mut();
        if let Some(allow) = self.allow {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if self.close {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// A `200` with a JSON body.
struct Reply(Value);

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        (StatusCode::OK, json_body(&self.0)).into_response()
    }
}

fn json_body(value: &Value) -> ([(header::HeaderName, &'static str); 1], String) {
    let mut text = value.to_string();
    text.push('\n');
    ([(header::CONTENT_TYPE, "application/json")], text)
}

type Answer = Result<Reply, Reject>;

/// Reads the whole body (bounded in size and time, and charged to the host's
/// bytes for clients while the request lasts) before routing, so that no
/// route leaves it unread; refuses it with `Connection: close` otherwise.
async fn read_body(State(host): State<Host>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let too_large = || Reject {
        close: true,
        ..Reject::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large().into_response();
    }
    let declared = declared.map_or(0, |n| n as usize);
    let read = read_bounded(&host, body, declared);
    let (bytes, charge) = match tokio::time::timeout(BODY_TIMEOUT, read).await {
        Ok(Ok(read)) => read,
        Ok(Err(BodyError::TooLarge)) => return too_large().into_response(),
        // Read to its end and dropped: the connection stays usable.
        Ok(Err(BodyError::Limit(e))) => return Reject::from(e).into_response(),
        Ok(Err(BodyError::Broken)) => {
            return Reject::new(StatusCode::BAD_REQUEST, "the request body was cut off")
                .closing()
                .into_response();
        }
        Err(_) => {
            return Reject::new(
                StatusCode::REQUEST_TIMEOUT,
                format!("request body not received within {BODY_TIMEOUT:?}"),
            )
            .closing()
            .into_response();
        }
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    // The body is gone once the handler has answered.
    drop(charge);
    response
}

/// Why a body was not read whole.
enum BodyError {
    TooLarge,
    Limit(LimitError),
    Broken,
}

/// Reads `body` up to [`MAX_BODY_BYTES`], charging its buffer's capacity to
/// the host's bytes for clients as it grows. Past that budget, the rest is
/// read and dropped unbuffered, so the client gets its answer (503, naming
/// the limit) instead of a reset connection.
async fn read_bounded(
    host: &Host,
    body: Body,
    declared: usize,
) -> Result<(Bytes, Charge), BodyError> {
    let mut stream = body.into_data_stream();
    let mut kept = host
        .charge_client_bytes(declared)
        .map(|charge| (BytesMut::with_capacity(declared), charge));
    let mut read = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| BodyError::Broken)?;
        read += chunk.len();
        if read > MAX_BODY_BYTES {
            return Err(BodyError::TooLarge);
        }
        if let Ok((buf, charge)) = &mut kept {
            buf.reserve(chunk.len());
            match charge.grow(buf.capacity().saturating_sub(charge.amount())) {
                Ok(()) => buf.extend_from_slice(&chunk),
                Err(e) => kept = Err(e),
            }
        }
    }
    kept.map(|(buf, charge)| (buf.freeze(), charge))
        .map_err(BodyError::Limit)
}

/// A handler for a method the route does not take.
fn not_allowed(allow: &'static str) -> impl Fn() -> std::future::Ready<Reject> + Clone {
    move || {
        std::future::ready(Reject {
            allow: Some(allow),
            ..Reject::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method not allowed; allowed: {allow}"),
            )
        })
    }
}

/// A call's body as a [`Payload`]: a JSON object, validated but kept as its
/// text until the actor runs the call; an empty one means `{}`, and no content
/// type is required. Any other JSON value (`[1]`, `"x"`, `null`) is refused:
/// every action takes its arguments as named fields.
struct PayloadBody(Payload);

impl<S: Send + Sync> FromRequest<S> for PayloadBody {
    type Rejection = Reject;

    async fn from_request(req: Request, state: &S) -> Result<Self, Reject> {
        let body = Bytes::from_request(req, state).await.map_err(|e| {
            Reject::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body over {MAX_BODY_BYTES} bytes or unreadable: {e}"),
            )
        })?;
        Payload::from_json(body)
            .map(PayloadBody)
            .map_err(|e| Reject::new(StatusCode::BAD_REQUEST, e.to_string()))
    }
}

async fn list(State(host): State<Host>) -> Answer {
    Ok(Reply(json!({ "actors": host.list() })))
}

async fn create(
    State(host): State<Host>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Answer {
    let Path((name, key)) = path?;
    Ok(Reply(json!(host.create(&name, &key).await?)))
}

async fn destroy(
    State(host): State<Host>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Answer {
    let Path((name, key)) = path?;
    host.destroy(&name, &key).await?;
    Ok(Reply(json!({ "destroyed": true })))
}

async fn sleep(
    State(host): State<Host>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Answer {
    let Path((name, key)) = path?;
    host.sleep(&name, &key).await?;
    Ok(Reply(json!({ "asleep": true })))
}

async fn call(
    State(host): State<Host>,
    headers: HeaderMap,
    path: Result<Path<(String, String, String)>, PathRejection>,
    payload: Result<PayloadBody, Reject>,
) -> Response {
    let (trace, origin) = TraceContext::continue_or_start(
        headers
            .get_all(&TRACEPARENT)
            .iter()
            .map(HeaderValue::as_bytes),
    );
    if let TraceOrigin::Invalid(e) = origin {
        tracing::debug!(error = %e, trace_id = %trace.trace_id(), "invalid traceparent; started a new trace");
    }
    let answer: Answer = async {
        let Path((name, key, action)) = path?;
        let PayloadBody(payload) = payload?;
        let result = host
            .call_traced(&name, &key, &action, payload, trace)
            .await?;
        Ok(Reply(json!({ "result": result })))
    }
    .await;
    let mut response = answer.into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (TRACEPARENT, trace.traceparent().to_string()),
        (TRACE_ID, trace.trace_id().to_string()),
    ] {
        // Hex digits and dashes: always a valid header value.
        headers.insert(
            name,
            HeaderValue::try_from(value).expect("hex is a valid header value"),
        );
    }
    response
}
