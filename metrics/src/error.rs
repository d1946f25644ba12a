//! Why a [`Metrics`](crate::Metrics) instance could not be built.

use crate::validate::ConfigError;

/// Errors building a [`Metrics`](crate::Metrics) instance.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A configuration value is out of range.
    #[error("invalid metrics configuration: {0}")]
    Config(#[from] ConfigError),
    /// Registering the self-metrics failed in the `prometheus` crate (a name
    /// clash in an injected registry).
    #[error("prometheus registry: {0}")]
    Prometheus(#[from] prometheus::Error),
}
