//! The JSON app API (never the metrics port):
//!
//! | request | does |
//! |---|---|
//! | `POST /actors/{name}/{key}` | create or wake; `{actor_id, generation, ...}` |
//! | `POST /actors/{name}/{key}/actions/{action}` | call with a JSON body; `{result}` |
//! | `POST /actors/{name}/{key}/sleep` | put to sleep |
//! | `DELETE /actors/{name}/{key}` | destroy |
//! | `GET /actors` | live actors |
//!
//! Path segments are percent-decoded (any UTF-8 key; `%2F` is a `/` inside the
//! key). Every error is a JSON `{"error": ...}` with a 4xx/5xx status.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::action::CallError;
use crate::host::Host;

/// Largest request body accepted: 1 MiB.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves the app API on `listener` until `shutdown` completes, then stops
/// accepting and waits (up to 10 s) for requests in flight.
pub async fn serve(listener: TcpListener, host: Host, shutdown: impl Future<Output = ()>) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "app API accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let host = host.clone();
        let service = hyper::service::service_fn(move |req| {
            let host = host.clone();
            async move { Ok::<_, Infallible>(handle(&host, req).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "app API connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("app API requests still in flight after the shutdown grace period");
    }
}

/// Why a request was refused: a status, a message, and for 405 the allowed methods.
#[derive(Debug)]
pub struct Reject {
    status: StatusCode,
    message: String,
    allow: Option<&'static str>,
}

impl Reject {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Reject {
            status,
            message: message.into(),
            allow: None,
        }
    }

    fn not_allowed(allow: &'static str) -> Self {
        Reject {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: format!("method not allowed; allowed: {allow}"),
            allow: Some(allow),
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

/// Answers one request.
pub async fn handle(host: &Host, req: Request<Incoming>) -> Response<Full<Bytes>> {
    match route(host, req).await {
        Ok(body) => respond(StatusCode::OK, &body, None),
        Err(r) => respond(r.status, &json!({ "error": r.message }), r.allow),
    }
}

/// Routes one request to the host.
async fn route(host: &Host, req: Request<Incoming>) -> Result<Value, Reject> {
    let segments = req
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
        })
        .collect::<Result<Vec<String>, _>>()
        .map_err(|_| {
            Reject::new(
                StatusCode::BAD_REQUEST,
                "path segments must be UTF-8 after percent-decoding",
            )
        })?;
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = req.method().clone();
    match (seg.as_slice(), &method) {
        (["actors"], &Method::GET) => Ok(json!({ "actors": host.list() })),
        (["actors"], _) => Err(Reject::not_allowed("GET")),
        (["actors", name, key], &Method::POST) => {
            nonempty_key(key)?;
            Ok(json!(host.create(name, key).await?))
        }
        (["actors", name, key], &Method::DELETE) => {
            nonempty_key(key)?;
            host.destroy(name, key).await?;
            Ok(json!({ "destroyed": true }))
        }
        (["actors", _, _], _) => Err(Reject::not_allowed("POST, DELETE")),
        (["actors", name, key, "sleep"], &Method::POST) => {
            nonempty_key(key)?;
            host.sleep(name, key).await?;
            Ok(json!({ "asleep": true }))
        }
        (["actors", _, _, "sleep"], _) => Err(Reject::not_allowed("POST")),
        (["actors", name, key, "actions", action], &Method::POST) => {
            nonempty_key(key)?;
            let (name, key, action) = (name.to_string(), key.to_string(), action.to_string());
            let payload = read_json(req).await?;
            let result = host.call(&name, &key, &action, payload).await?;
            Ok(json!({ "result": result }))
        }
        (["actors", _, _, "actions", _], _) => Err(Reject::not_allowed("POST")),
        _ => Err(Reject::new(
            StatusCode::NOT_FOUND,
            "no such route; see GET /actors",
        )),
    }
}

/// Reads a JSON body (empty means `{}`), bounded by [`MAX_BODY_BYTES`].
async fn read_json(req: Request<Incoming>) -> Result<Value, Reject> {
    let body = Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|_| {
            Reject::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body over {MAX_BODY_BYTES} bytes or unreadable"),
            )
        })?
        .to_bytes();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(&body)
        .map_err(|e| Reject::new(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
}

fn nonempty_key(key: &str) -> Result<(), Reject> {
    if key.is_empty() {
        return Err(Reject::new(
            StatusCode::BAD_REQUEST,
            "the actor key is empty",
        ));
    }
    Ok(())
}

fn respond(status: StatusCode, body: &Value, allow: Option<&'static str>) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "application/json");
    if let Some(allow) = allow {
        builder = builder.header(hyper::header::ALLOW, allow);
    }
    let mut text = body.to_string();
    text.push('\n');
    builder
        .body(Full::new(Bytes::from(text)))
        .unwrap_or_else(|_| {
            Response::new(Full::new(Bytes::from_static(b"{\"error\":\"internal\"}\n")))
        })
}
