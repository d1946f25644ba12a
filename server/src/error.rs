//! Why a server could not start.

use std::net::SocketAddr;

use crate::validate::OptionsError;

/// Errors of [`MetricsServer::bind`](crate::MetricsServer::bind).
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
    InvalidOptions(#[from] OptionsError),
    /// Reading the bound address back failed.
    #[error("metrics listener: {0}")]
    Io(#[from] std::io::Error),
}
