//! The side-port exposition of `actor-metrics`: what Prometheus scrapes.
//!
//! Kept out of `actor-metrics` so that a library that only records metrics does
//! not link an HTTP stack. [`MetricsServer::bind`] serves, on its own port
//! (default [`DEFAULT_ADDR`]):
//!
//! | route | answer |
//! |---|---|
//! | `GET /metrics` | 200, in the format `Accept` prefers among text 0.0.4 (the default), OpenMetrics 1.0.0 (`application/openmetrics-text`, what Prometheus asks for first) and protobuf with native histograms (`application/vnd.google.protobuf`), with the `Content-Type` of the format the source wrote (a [`prometheus::Registry`] or [`FnSource`] writes text whatever is asked); streamed in chunks, gzip when the client accepts it; 401 without the bearer token when one is set; 400 for a bad `detail` |
//! | `GET /metrics?detail=off\|core\|full` | per-actor series at that level (default: the instance's `per_actor_detail`) |
//! | `GET /metrics?promoted=1` | only the actors promoted to full detail now (those `actor_detail_promoted` names in the default scrape), at `full`, with their exemplars; no aggregates; empty when the instance's level is `full` (the default scrape holds everyone in full); with `actor_key`/`actor_id_gen`, their union; 400 for a value other than `1`, `true`, `0`, `false` |
//! | `GET /metrics?actor_key=K&actor_id_gen=G` | only those actors' series, at `full` unless `detail` says otherwise (`detail=off`: an empty body); each parameter repeatable, and a value not UTF-8 once percent-decoded is a 400 |
//! | `GET /healthz` | 200 `ok` while every [`Health`] check passes, else 503 with one `unhealthy: {check}: {why}` line per failing check |
//! | `GET /readyz` | 200 `ready`, or 503 with one `not ready: {condition}` line per open condition of [`Readiness`] |
//! | `GET /actors/top?by=…&n=20&type=T&window=1m` | JSON rows, worst first, of the actors that stand out (`by`: `error_ratio`, `errors`, `calls`, `mean_latency`, `p99_latency`, `queue_depth`, `inbox_depth`, `sqlite_busy`), each with its labels, figure, calls in the window and whether it is promoted to full detail, and `scrape`, the path of its full scrape by `actor_id_gen`; 400 naming the valid values, or for a parameter given twice or a value not UTF-8; same token and scrape slots as `/metrics`; 404 for a source without per-actor figures |
//! | `GET /actors` | the same as an HTML page (no script, no external asset; sent `no-store`, `nosniff` and a CSP that allows only its inline style): top tables by error ratio, mean latency and queue depth, promoted actors marked, each key linking to its full scrape by `actor_id_gen` (never cut, unlike an exported `actor_key`) |
//! | other paths | 404 |
//! | other methods | 405 with `Allow: GET, HEAD` (`HEAD` answers as `GET` without a body) |
//!
//! Hardening: at most [`ServerOptions::max_connections`] connections (the
//! listener waits for a free slot before accepting), plus 16 probe slots used
//! only when those are all taken (one request each, `/healthz` and `/readyz`
//! only, 500 ms for the headers), so clients holding every ordinary slot cannot
//! make a probe wait; at most [`ServerOptions::max_scrapes`] scrapes at once
//! (more get 503 at once with `Connection: close`, so clients that never read
//! cannot take every slot from the probes), a client
//! that acknowledges nothing for [`ServerOptions::write_timeout`], or takes
//! longer than [`ServerOptions::max_delivery_time`] to take one response, is
//! cut (and a connection's close waits, under the same bounds, until the
//! client has the whole response), a header read timeout that
//! also cuts connections idling between requests, every request body read to its
//! end (bounded, 413 past [`ServerOptions::max_request_body`]) so kept-alive
//! connections stay usable, scrapes rendered a chunk at a time on the blocking
//! pool (at most one chunk per core at once) only as fast as the client reads,
//! so neither a large registry nor a slow client stalls the runtime or metric
//! updates, and accept errors (out of file descriptors) backed off rather than
//! spun on. [`ServerHandle::shutdown`] stops accepting, lets in-flight scrapes
//! finish within [`ServerOptions::shutdown_grace`], then closes what is left.
//!
//! Self-metrics, registered in the source's registry when it has one:
//! `actor_metrics_http_scrapes_total`, `actor_metrics_http_scrapes_aborted_total`,
//! `actor_metrics_http_connections_cut_total`,
//! `actor_metrics_http_scrape_duration_seconds` and
//! `actor_metrics_http_scrape_bytes_total` (uncompressed bytes).
//!
//! # Layout
//!
//! | file | concept |
//! |---|---|
//! | `options.rs`, `validate.rs` | [`ServerOptions`] and [`OptionsError`] |
//! | `probes.rs` | [`Readiness`] and [`Health`] |
//! | `source.rs` | [`MetricsSource`]: what a scrape renders |
//! | `actors.rs` | `/actors/top` and `/actors`: ranking and the page |
//! | `routes.rs` | one request: routing, body draining, auth, probes |
//! | `negotiate.rs` | the format from `Accept` (the one table of media ranges) and gzip from `Accept-Encoding`: one q-value list parser |
//! | `scrape.rs` | one scrape: the query string, the streamed body |
//! | `serve.rs` | [`MetricsServer`]: binding on this runtime ([`ServerHandle`]) or on a thread and runtime of its own ([`ServerThread`]); shutdown |
//! | `accept.rs`, `io.rs` | the accept loop: connection and probe slots, accept back-off, graceful close; writes that may stall only so long |
//! | `self_metrics.rs`, `error.rs` | `actor_metrics_http_*`; [`ServerError`] |

#![deny(missing_docs)]

mod accept;
mod actors;
mod error;
mod io;
mod negotiate;
mod options;
mod probes;
mod routes;
mod scrape;
mod self_metrics;
mod serve;
mod source;
mod validate;

pub use error::ServerError;
pub use options::{MAX_REQUEST_BODY, ServerOptions};
pub use probes::{Health, Readiness};
pub use serve::{MetricsServer, ServerHandle, ServerThread};
pub use source::{Chunks, FnSource, MetricsSource, Scraped};
pub use validate::OptionsError;

/// The default metrics address: loopback only, port 9091.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9091";

/// The `Content-Type` of the Prometheus text format.
pub const TEXT_FORMAT: &str = actor_metrics::Format::TEXT_CONTENT_TYPE;
/// The `Content-Type` of the OpenMetrics text format, served when a scrape's `Accept` prefers it.
pub const OPENMETRICS_FORMAT: &str = actor_metrics::Format::OPENMETRICS_CONTENT_TYPE;
/// The `Content-Type` of the protobuf format, served when a scrape's `Accept` prefers it.
pub const PROTOBUF_FORMAT: &str = actor_metrics::Format::PROTOBUF_CONTENT_TYPE;
