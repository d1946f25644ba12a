//! The one configuration struct, with documented defaults, and the detail levels.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Default retention window after an actor's last handle drops: 10 minutes.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(600);
/// Default interval between background sweeps: 10 seconds.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// Default cap on retained label sets (live + expiring): 80,000.
///
/// Sized so one target at the default level ([`DetailLevel::Core`]) stays under
/// 2M series at the cap even if every actor used every label value of every
/// `core` family (23 series per actor, 1.84M); a typical actor costs 14.
pub const DEFAULT_MAX_RETAINED: usize = 80_000;
/// Default most label sets removed by one sweep tick: 100,000.
pub const DEFAULT_MAX_SWEEP_PER_TICK: usize = 100_000;
/// Default longest `actor_key` label value, in bytes: 256.
pub const DEFAULT_MAX_LABEL_VALUE_BYTES: usize = 256;
/// Longest retention accepted: 365 days.
pub const MAX_RETENTION: Duration = Duration::from_secs(365 * 24 * 3600);

/// How much per-actor detail a scrape exports. Aggregates (`actor_type_*`) are
/// exported at every level, with classic buckets.
///
/// | level | per actor |
/// |---|---|
/// | `off` | nothing |
/// | `core` | what an operator reads per actor; histograms as `_sum` and `_count` only |
/// | `full` | every family, classic buckets |
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum DetailLevel {
    /// No per-actor series.
    Off,
    /// The `core` families; each histogram as a summary with no quantiles.
    #[default]
    Core,
    /// Every family, histograms with their classic buckets.
    Full,
}

impl DetailLevel {
    /// Every level, lowest first.
    pub const ALL: [DetailLevel; 3] = [DetailLevel::Off, DetailLevel::Core, DetailLevel::Full];

    /// The level's name: `off`, `core` or `full`.
    pub fn as_str(self) -> &'static str {
        match self {
            DetailLevel::Off => "off",
            DetailLevel::Core => "core",
            DetailLevel::Full => "full",
        }
    }
}

impl fmt::Display for DetailLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A detail level name that is not `off`, `core` or `full`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown detail level {0:?}; valid levels: off, core, full")]
pub struct UnknownDetailLevel(pub String);

impl FromStr for DetailLevel {
    type Err = UnknownDetailLevel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DetailLevel::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| UnknownDetailLevel(s.to_owned()))
    }
}

/// How a [`Metrics`](crate::Metrics) instance behaves.
///
/// Every field has a documented default (see [`Config::default`]); a host builds
/// this from its CLI flags, never from scattered environment variables.
/// [`Config::validate`] says what is out of range.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long an actor's series stay visible after it stops. Default 10 minutes,
    /// at most [`MAX_RETENTION`].
    pub retention: Duration,
    /// How often the background sweeper looks for expired label sets. Default
    /// 10 s, at least 1 ms.
    pub sweep_interval: Duration,
    /// Cap on retained label sets (live + expiring). At the cap the oldest
    /// expiring sets are evicted early; if every set is live, new actors share one
    /// overflow label set per actor type. Default [`DEFAULT_MAX_RETAINED`].
    pub max_retained: usize,
    /// Most label sets one sweep tick removes; the rest wait for the next tick.
    /// Bounds the work (and latency) of a tick. Default 100,000.
    pub max_sweep_per_tick: usize,
    /// Longest `actor_key` label value in bytes; a longer key (its `~` doubled
    /// first) is cut and ends in `~` and a hash of the whole key, counted in
    /// `actor_metrics_label_values_truncated_total`.
    /// `actor_id_gen` and `envoy_key` are never cut. Default 256, at least 32.
    pub max_label_value_bytes: usize,
    /// Per-actor detail a scrape exports unless it asks for another level
    /// (`?detail=`). Recording is the same at every level. Default [`DetailLevel::Core`].
    pub per_actor_detail: DetailLevel,
    /// Whether histograms also record native (exponential) buckets, which a
    /// scrape in the protobuf format carries: a per-actor latency distribution in
    /// one series. Costs one more atomic add per observation and the buckets'
    /// memory (BENCHMARKS.md). Default on.
    pub native_histograms: bool,
    /// Identity of this host process, the `envoy_key` label of every per-actor
    /// series. Default: `"{hostname}:{pid}"` where available, else `"pid-{pid}"`.
    pub envoy_key: String,
    /// Detail follows trouble: which actors are promoted to `full` detail in
    /// default scrapes, and the windows [`Metrics::top`](crate::Metrics::top)
    /// ranks over. See [`Promotion`](crate::Promotion) for every default.
    pub promotion: crate::trouble::Promotion,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            retention: DEFAULT_RETENTION,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            max_retained: DEFAULT_MAX_RETAINED,
            max_sweep_per_tick: DEFAULT_MAX_SWEEP_PER_TICK,
            max_label_value_bytes: DEFAULT_MAX_LABEL_VALUE_BYTES,
            per_actor_detail: DetailLevel::default(),
            native_histograms: true,
            envoy_key: default_envoy_key(),
            promotion: crate::trouble::Promotion::default(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_levels_parse_print_and_order() {
        for l in DetailLevel::ALL {
            assert_eq!(l.as_str().parse::<DetailLevel>(), Ok(l));
        }
        assert!(DetailLevel::Off < DetailLevel::Core && DetailLevel::Core < DetailLevel::Full);
        let e = "everything".parse::<DetailLevel>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown detail level \"everything\"; valid levels: off, core, full"
        );
        assert_eq!(DetailLevel::default(), DetailLevel::Core);
    }
}
