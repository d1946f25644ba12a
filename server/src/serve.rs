//! Starting and stopping a server: [`MetricsServer`] binds and serves on the
//! current runtime ([`ServerHandle`]) or on its own OS thread and
//! single-threaded runtime ([`ServerThread`]), so that an application whose
//! runtime is busy or wedged still answers scrapes and health probes (and
//! `/healthz` can say the application runtime is stuck).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};

use crate::accept::accept_loop;
use crate::error::ServerError;
use crate::options::ServerOptions;
use crate::probes::Readiness;
use crate::routes::Shared;
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

    /// Binds `addr` and serves `source` on a new thread named `metrics-server`
    /// with its own tokio runtime. Returns once the port is bound.
    ///
    /// # Errors
    /// What [`MetricsServer::bind`] returns, and [`ServerError::Io`] when the
    /// thread or its runtime cannot be started.
    pub fn spawn_thread(
        addr: SocketAddr,
        source: impl MetricsSource,
        options: ServerOptions,
    ) -> Result<ServerThread, ServerError> {
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("metrics-server".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = bound_tx.send(Err(ServerError::Io(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let server = match MetricsServer::bind(addr, source, options).await {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = bound_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = bound_tx.send(Ok((server.local_addr(), server.readiness().clone())));
                    // A dropped handle stops as a send would.
                    let _ = stopped.await;
                    server.shutdown().await;
                });
            })?;
        match bound_rx.recv() {
            Ok(Ok((local_addr, readiness))) => Ok(ServerThread {
                local_addr,
                readiness,
                stop: Some(stop),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            // The thread ended without a word: it panicked.
            Err(_) => Err(ServerError::Io(std::io::Error::other(
                "the metrics server thread ended while starting",
            ))),
        }
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

/// A running server on its own thread. Dropping it stops the server without
/// waiting; [`ServerThread::shutdown`] lets in-flight scrapes finish.
#[derive(Debug)]
#[must_use = "the server stops when its handle is dropped"]
pub struct ServerThread {
    local_addr: SocketAddr,
    readiness: Readiness,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerThread {
    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The readiness this server reports on `/readyz`.
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// Stops accepting, lets in-flight requests finish within the shutdown
    /// grace, and joins the thread. Blocks the calling thread: from async code,
    /// call it through `spawn_blocking`.
    pub fn shutdown(mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the metrics server thread panicked");
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        // Dropping the sender ends the server's wait; the thread is not joined.
        self.stop.take();
    }
}
