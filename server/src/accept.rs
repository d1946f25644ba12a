//! The accept loop: a connection slot (ordinary, or a probe slot when those
//! are all taken), an accept with back-off on errors, one hyper connection per
//! socket on its own task, and the graceful close at shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulConnection, GracefulShutdown};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::task::JoinSet;

use crate::io::{Bounds, TimedWrites};
use crate::routes::{self, Shared};

/// Connections accepted beyond `max_connections` to serve the probes: one
/// request each, `/healthz` or `/readyz` only, headers within
/// [`PROBE_HEADER_TIMEOUT`]. So clients holding every ordinary slot (scrapers
/// that never read, idle kept-alive connections) cannot make a probe wait.
const PROBE_SLOTS: usize = 16;
const PROBE_HEADER_TIMEOUT: Duration = Duration::from_millis(500);

const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Accepts and serves connections until `stopped` fires (or its sender is
/// dropped), then closes them within the shutdown grace.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    let slots = Slots::new(shared.options.max_connections);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        while connections.try_join_next().is_some() {}
        let Some(slot) = slots.acquire(&mut stopped).await else {
            break;
        };
        let (stream, peer) = match accept(&listener, &mut backoff, &mut stopped).await {
            Accepted::Connection(stream, peer) => (stream, peer),
            Accepted::Retry => continue,
            Accepted::Stopped => break,
        };
        let conn = graceful.watch(connection(&shared, stream, slot.probes_only));
        connections.spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "metrics connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    close(graceful, connections, shared.options.shutdown_grace).await;
}

/// The ordinary connection slots and the probe slots.
struct Slots {
    ordinary: Arc<Semaphore>,
    probes: Arc<Semaphore>,
}

/// A connection's place, held until the connection ends.
struct Slot {
    _permit: OwnedSemaphorePermit,
    /// A probe slot: one request, `/healthz` and `/readyz` only.
    probes_only: bool,
}

impl Slots {
    fn new(max_connections: usize) -> Self {
        Slots {
            ordinary: Arc::new(Semaphore::new(max_connections)),
            probes: Arc::new(Semaphore::new(PROBE_SLOTS)),
        }
    }

    /// An ordinary slot if one is free, else a probe slot, whichever comes
    /// first; `None` once `stopped` fires.
    async fn acquire(&self, stopped: &mut oneshot::Receiver<()>) -> Option<Slot> {
        let (permit, probes_only) = tokio::select! {
            biased;
            _ = stopped => return None,
            slot = self.ordinary.clone().acquire_owned() => (slot.ok()?, false),
            slot = self.probes.clone().acquire_owned() => (slot.ok()?, true),
        };
        Some(Slot {
            _permit: permit,
            probes_only,
        })
    }
}

/// What one accept gave.
enum Accepted {
    Connection(TcpStream, SocketAddr),
    /// The accept failed and the back-off has been waited: try again.
    Retry,
    Stopped,
}

/// Accepts one connection. An error (out of descriptors, a connection reset
/// before accept) is logged and waited out for `backoff`, which doubles up to
/// [`ACCEPT_BACKOFF_MAX`] and starts again from [`ACCEPT_BACKOFF_MIN`] at the
/// next success, so the loop neither spins nor stops serving.
async fn accept(
    listener: &TcpListener,
    backoff: &mut Duration,
    stopped: &mut oneshot::Receiver<()>,
) -> Accepted {
    tokio::select! {
        _ = &mut *stopped => Accepted::Stopped,
        accepted = listener.accept() => match accepted {
            Ok((stream, peer)) => {
                *backoff = ACCEPT_BACKOFF_MIN;
                Accepted::Connection(stream, peer)
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "metrics server accept failed");
                tokio::select! {
                    _ = &mut *stopped => return Accepted::Stopped,
                    _ = tokio::time::sleep(*backoff) => {}
                }
                *backoff = (*backoff * 2).min(ACCEPT_BACKOFF_MAX);
                Accepted::Retry
            }
        },
    }
}

/// The HTTP/1 connection serving `stream`: no keep-alive and a header timeout
/// of at most [`PROBE_HEADER_TIMEOUT`] on a probe slot, the client cut when it
/// acknowledges nothing for the write timeout or takes a response longer than
/// the longest delivery time, half-closes answered.
fn connection(
    shared: &Arc<Shared>,
    stream: TcpStream,
    probes_only: bool,
) -> impl GracefulConnection<Error = hyper::Error> + Send + 'static {
    let _ = stream.set_nodelay(true);
    let options = &shared.options;
    let header_timeout = if probes_only {
        options.header_read_timeout.min(PROBE_HEADER_TIMEOUT)
    } else {
        options.header_read_timeout
    };
    let io = TokioIo::new(TimedWrites::new(
        stream,
        Bounds {
            write_timeout: options.write_timeout,
            max_delivery: options.max_delivery_time,
        },
        shared.selfm.cut.clone(),
    ));
    let shared = shared.clone();
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, std::convert::Infallible>(routes::handle(shared, req, probes_only).await) }
    });
    hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .keep_alive(!probes_only)
        // A client that shuts its sending side after a request (`nc -N`)
        // still gets the answer; the write bounds hold the connection as any.
        .half_close(true)
        .header_read_timeout(header_timeout)
        .serve_connection(io, service)
}

/// Waits up to `grace` for the open connections to finish after the listener
/// closed, then closes what is left.
async fn close(graceful: GracefulShutdown, mut connections: JoinSet<()>, grace: Duration) {
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(grace) => {
            // Only the connections still running: ended ones stay in the set
            // until joined.
            while connections.try_join_next().is_some() {}
            tracing::warn!(
                open = connections.len(),
                "metrics connections still open after the shutdown grace; closing them"
            );
        }
    }
    connections.shutdown().await;
}
