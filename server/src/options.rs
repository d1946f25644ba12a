//! How a server behaves: [`ServerOptions`] and its documented defaults.

use std::time::Duration;

use crate::probes::{Health, Readiness};

/// Default largest request body read (and discarded): 64 KiB; a larger body
/// gets 413 and the connection is closed.
pub const MAX_REQUEST_BODY: u64 = 64 * 1024;

/// How the server behaves. `Default` gives the documented defaults;
/// [`ServerOptions::validate`] says what is out of range.
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
    /// between requests of a kept-alive one, and then its body; then the
    /// connection is closed. Default 5 s.
    pub header_read_timeout: Duration,
    /// Largest request body read (and discarded); a larger one gets 413 and the
    /// connection is closed. Default 64 KiB.
    pub max_request_body: u64,
    /// Scrapes of `/metrics` in flight at once; one more gets 503 with
    /// `Retry-After` at once. Keeps connection slots for `/healthz` and
    /// `/readyz` whatever scrapers do. Default 32.
    pub max_scrapes: usize,
    /// How long the client may acknowledge nothing of a response before the
    /// connection is cut, freeing its slot and its scrape; the close of a
    /// connection also waits, under this bound, until the client has
    /// acknowledged the whole response. Default 30 s.
    pub write_timeout: Duration,
    /// The longest a response may take to reach the client, however steadily
    /// it reads: a connection whose send queue has held bytes, without
    /// emptying, for this long is cut. So a client acknowledging a trickle
    /// cannot hold a scrape slot for hours. Default 5 min.
    pub max_delivery_time: Duration,
    /// What `/readyz` reports. Default: one open condition, `not marked ready`.
    pub readiness: Readiness,
    /// What `/healthz` checks. Default: no checks (healthy while it serves).
    pub health: Health,
    /// How long [`ServerHandle::shutdown`](crate::ServerHandle::shutdown) lets
    /// in-flight requests finish before it closes their connections. Default 10 s.
    pub shutdown_grace: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            bearer_token: None,
            max_connections: 256,
            header_read_timeout: Duration::from_secs(5),
            max_request_body: MAX_REQUEST_BODY,
            max_scrapes: 32,
            write_timeout: Duration::from_secs(30),
            max_delivery_time: Duration::from_secs(300),
            readiness: Readiness::new(["not marked ready"]),
            health: Health::default(),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}
