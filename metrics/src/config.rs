//! The one configuration struct, with documented defaults.

use std::time::Duration;

/// Default retention window after an actor's last handle drops: 10 minutes.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(600);
/// Default interval between background sweeps: 10 seconds.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// Default cap on retained label sets (live + expiring): 100,000.
pub const DEFAULT_MAX_RETAINED: usize = 100_000;
/// Default most label sets removed by one sweep tick: 100,000.
pub const DEFAULT_MAX_SWEEP_PER_TICK: usize = 100_000;
/// Default longest label value, in bytes; longer values are truncated at a char boundary.
pub const DEFAULT_MAX_LABEL_VALUE_BYTES: usize = 256;

/// How a [`Metrics`](crate::Metrics) instance behaves.
///
/// Every field has a documented default (see [`Config::default`]); a host builds
/// this from its CLI flags, never from scattered environment variables.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long an actor's series stay visible after it stops. Default 10 minutes.
    pub retention: Duration,
    /// How often the background sweeper looks for expired label sets. Default 10 s.
    pub sweep_interval: Duration,
    /// Cap on retained label sets (live + expiring). At the cap the oldest
    /// expiring sets are evicted early; if every set is live, new actors share one
    /// overflow label set per actor type. Default 100,000.
    pub max_retained: usize,
    /// Most label sets one sweep tick removes; the rest wait for the next tick.
    /// Bounds the work (and latency) of a tick. Default 100,000.
    pub max_sweep_per_tick: usize,
    /// Longest label value in bytes; longer values are truncated at a char
    /// boundary and counted in `actor_metrics_label_values_truncated_total`. Default 256.
    pub max_label_value_bytes: usize,
    /// Whether per-actor series are exported. Aggregates (`actor_type_*`) are
    /// always exported. Default on.
    pub per_actor_detail: bool,
    /// Identity of this host process, the `envoy_key` label of every per-actor
    /// series. Default: `"{hostname}:{pid}"` where available, else `"pid-{pid}"`.
    pub envoy_key: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            retention: DEFAULT_RETENTION,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            max_retained: DEFAULT_MAX_RETAINED,
            max_sweep_per_tick: DEFAULT_MAX_SWEEP_PER_TICK,
            max_label_value_bytes: DEFAULT_MAX_LABEL_VALUE_BYTES,
            per_actor_detail: true,
            envoy_key: default_envoy_key(),
        }
    }
}

/// `"{hostname}:{pid}"` when the hostname can be read, else `"pid-{pid}"`.
pub fn default_envoy_key() -> String {
    let pid = std::process::id();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty());
    match host {
        Some(h) => format!("{h}:{pid}"),
        None => format!("pid-{pid}"),
    }
}
