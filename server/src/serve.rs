//! Serving: binding, the accept loop with its connection slots, and shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinSet;

use crate::error::ServerError;
use crate::io::TimedWrites;
use crate::options::ServerOptions;
use crate::probes::Readiness;
use crate::routes::{self, Shared};
use crate::self_metrics::SelfMetrics;
use crate::source::MetricsSource;

/// Starts metrics servers.
#[derive(Debug)]
pub struct MetricsServer;

impl MetricsServer {
    /// Binds `addr` and serves `source` on the current tokio runtime until the
    /// returned handle is shut down or dropped.
    ///
    /// # Errors
    /// [`ServerError::InvalidOptions`] when [`ServerOptions::validate`] refuses
    /// the options, [`ServerError::Bind`] naming the address when it cannot be
    /// bound.
    pub async fn bind(
        addr: SocketAddr,
        source: impl MetricsSource,
        options: ServerOptions,
    ) -> Result<ServerHandle, ServerError> {
        options.validate()?;
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
        let selfm = Arc::new(SelfMetrics::new(source.registry().as_ref()));
        let renders = std::thread::available_parallelism().map_or(2, |n| n.get());
        let shared = Arc::new(Shared {
            source: Arc::new(source),
            expected_token: options.bearer_token.as_ref().map(|t| t.as_bytes().to_vec()),
            selfm,
            renders: Arc::new(Semaphore::new(renders)),
            scrapes: Arc::new(Semaphore::new(options.max_scrapes)),
            options: options.clone(),
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, shared, stopped));
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

/// Connections accepted beyond `max_connections` to serve the probes: one
/// request each, `/healthz` or `/readyz` only, headers within
/// [`PROBE_HEADER_TIMEOUT`]. So clients holding every ordinary slot (scrapers
/// that never read, idle kept-alive connections) cannot make a probe wait.
const PROBE_SLOTS: usize = 16;
const PROBE_HEADER_TIMEOUT: Duration = Duration::from_millis(500);

const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    let options = shared.options.clone();
    let slots = Arc::new(Semaphore::new(options.max_connections));
    let probe_slots = Arc::new(Semaphore::new(PROBE_SLOTS));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        while connections.try_join_next().is_some() {}
        // An ordinary slot if one is free, else a probe slot.
        let (slot, probes_only) = tokio::select! {
            biased;
            _ = &mut stopped => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => (slot, false),
                Err(_) => break,
            },
            slot = probe_slots.clone().acquire_owned() => match slot {
                Ok(slot) => (slot, true),
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
        let service = hyper::service::service_fn(move |req| {
            let shared = shared.clone();
            async move {
                Ok::<_, std::convert::Infallible>(routes::handle(shared, req, probes_only).await)
            }
        });
        let header_timeout = if probes_only {
            options.header_read_timeout.min(PROBE_HEADER_TIMEOUT)
        } else {
            options.header_read_timeout
        };
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .keep_alive(!probes_only)
            .header_read_timeout(header_timeout)
            .serve_connection(
                TokioIo::new(TimedWrites::new(stream, options.write_timeout)),
                service,
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
