//! The one configuration struct, with documented defaults, and the detail levels.
//!
//! Each default and bound is an associated const of [`Config`], and each
//! setter states its default, its bounds and its `# Errors`; the checks
//! themselves are in `validate.rs`, shared by the setters and
//! [`Config::validate`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::validate::{self, ConfigError};

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
/// Every field has a documented default (see [`Config::default`] and the
/// associated consts); a host builds this from its CLI flags, never from
/// scattered environment variables. The setters refuse a value out of range
/// when it is set; [`Config::validate`] (run by [`Metrics::new`](crate::Metrics::new))
/// checks the whole, fields set directly included.
///
/// ```
/// use actor_metrics::{Config, ConfigError, DetailLevel};
/// use std::time::Duration;
///
/// let config = Config::default()
///     .retention(Duration::from_secs(60))?
///     .max_retained(10_000)?
///     .per_actor_detail(DetailLevel::Full);
/// assert_eq!(config.sweep_interval, Config::DEFAULT_SWEEP_INTERVAL);
/// assert_eq!(
///     Config::default().max_retained(0).unwrap_err(),
///     ConfigError::ZeroMaxRetained
/// );
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// How long an actor's series stay visible after it stops. Default
    /// [`Config::DEFAULT_RETENTION`], at most [`Config::MAX_RETENTION`].
    pub retention: Duration,
    /// How often the background sweeper looks for expired label sets. Default
    /// [`Config::DEFAULT_SWEEP_INTERVAL`], at least [`Config::MIN_SWEEP_INTERVAL`].
    pub sweep_interval: Duration,
    /// Cap on retained label sets (live + expiring). At the cap the oldest
    /// expiring sets are evicted early; if every set is live, new actors share one
    /// overflow label set per actor type. Default [`Config::DEFAULT_MAX_RETAINED`].
    pub max_retained: usize,
    /// Most label sets one sweep tick removes; the rest wait for the next tick.
    /// Bounds the work (and latency) of a tick. Default
    /// [`Config::DEFAULT_MAX_SWEEP_PER_TICK`].
    pub max_sweep_per_tick: usize,
    /// Longest `actor_key` label value in bytes; a longer key (its `~` doubled
    /// first) is cut and ends in `~` and a hash of the whole key, counted in
    /// `actor_metrics_label_values_truncated_total`.
    /// `actor_id_gen` and `envoy_key` are never cut. Default
    /// [`Config::DEFAULT_MAX_LABEL_VALUE_BYTES`], at least [`Config::MIN_LABEL_VALUE_BYTES`].
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
    /// series. Default [`Config::default_envoy_key`].
    pub envoy_key: String,
    /// Detail follows trouble: which actors are promoted to `full` detail in
    /// default scrapes, and the windows [`Metrics::top`](crate::Metrics::top)
    /// ranks over. See [`Promotion`](crate::Promotion) for every default.
    pub promotion: crate::trouble::Promotion,
}

impl Config {
    /// Default retention window after an actor's last handle drops: 10 minutes.
    pub const DEFAULT_RETENTION: Duration = Duration::from_secs(600);
    /// Longest retention accepted: 365 days.
    pub const MAX_RETENTION: Duration = validate::MAX_RETENTION;
    /// Default interval between background sweeps: 10 seconds.
    pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(10);
    /// Shortest `sweep_interval`: 1 ms (an interval of nanoseconds keeps a core busy
    /// sweeping an empty queue).
    pub const MIN_SWEEP_INTERVAL: Duration = validate::MIN_SWEEP_INTERVAL;
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
    /// Smallest `max_label_value_bytes`: room for a readable prefix and the hash suffix.
    pub const MIN_LABEL_VALUE_BYTES: usize = validate::MIN_LABEL_VALUE_BYTES;

    /// `"{hostname}:{pid}"` when the hostname can be read, else `"pid-{pid}"`:
    /// the default `envoy_key`.
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

    /// How long an actor's series stay visible after it stops. Default
    /// [`Config::DEFAULT_RETENTION`] (10 minutes).
    ///
    /// # Errors
    ///
    /// [`ConfigError::RetentionTooLong`] past [`Config::MAX_RETENTION`] (365 days).
    pub fn retention(mut self, retention: Duration) -> Result<Self, ConfigError> {
        self.retention = validate::retention(retention)?;
        Ok(self)
    }

    /// How often the background sweeper looks for expired label sets. Default
    /// [`Config::DEFAULT_SWEEP_INTERVAL`] (10 s).
    ///
    /// # Errors
    ///
    /// [`ConfigError::SweepIntervalTooShort`] under [`Config::MIN_SWEEP_INTERVAL`] (1 ms).
    pub fn sweep_interval(mut self, interval: Duration) -> Result<Self, ConfigError> {
        self.sweep_interval = validate::sweep_interval(interval)?;
        Ok(self)
    }

    /// Cap on retained label sets (live + expiring). Default
    /// [`Config::DEFAULT_MAX_RETAINED`] (80,000).
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroMaxRetained`] for 0.
    pub fn max_retained(mut self, sets: usize) -> Result<Self, ConfigError> {
        self.max_retained = validate::max_retained(sets)?;
        Ok(self)
    }

    /// Most label sets one sweep tick removes. Default
    /// [`Config::DEFAULT_MAX_SWEEP_PER_TICK`] (100,000).
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroMaxSweepPerTick`] for 0.
    pub fn max_sweep_per_tick(mut self, sets: usize) -> Result<Self, ConfigError> {
        self.max_sweep_per_tick = validate::max_sweep_per_tick(sets)?;
        Ok(self)
    }

    /// Longest `actor_key` label value in bytes. Default
    /// [`Config::DEFAULT_MAX_LABEL_VALUE_BYTES`] (256).
    ///
    /// # Errors
    ///
    /// [`ConfigError::LabelValueLimitTooSmall`] under
    /// [`Config::MIN_LABEL_VALUE_BYTES`] (32). The `envoy_key` is checked
    /// against the limit by [`Config::envoy_key`] and [`Config::validate`].
    pub fn max_label_value_bytes(mut self, bytes: usize) -> Result<Self, ConfigError> {
        self.max_label_value_bytes = validate::max_label_value_bytes(bytes)?;
        Ok(self)
    }

    /// Per-actor detail a scrape exports unless it asks for another level.
    /// Default [`DetailLevel::Core`].
    pub fn per_actor_detail(mut self, level: DetailLevel) -> Self {
        self.per_actor_detail = level;
        self
    }

    /// Whether histograms also record native buckets. Default on.
    pub fn native_histograms(mut self, on: bool) -> Self {
        self.native_histograms = on;
        self
    }

    /// Identity of this host process (the `envoy_key` label). Default
    /// [`Config::default_envoy_key`].
    ///
    /// # Errors
    ///
    /// [`ConfigError::EmptyEnvoyKey`] for `""`; [`ConfigError::EnvoyKeyTooLong`]
    /// past the current `max_label_value_bytes`.
    pub fn envoy_key(mut self, key: impl Into<String>) -> Result<Self, ConfigError> {
        let key = key.into();
        validate::envoy_key(&key, self.max_label_value_bytes)?;
        self.envoy_key = key;
        Ok(self)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            retention: Self::DEFAULT_RETENTION,
            sweep_interval: Self::DEFAULT_SWEEP_INTERVAL,
            max_retained: Self::DEFAULT_MAX_RETAINED,
            max_sweep_per_tick: Self::DEFAULT_MAX_SWEEP_PER_TICK,
            max_label_value_bytes: Self::DEFAULT_MAX_LABEL_VALUE_BYTES,
            per_actor_detail: DetailLevel::default(),
            native_histograms: true,
            envoy_key: Self::default_envoy_key(),
            promotion: crate::trouble::Promotion::default(),
        }
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

impl Config {
    /// Checks every field; the first field out of range is the error.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] of the first field out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate::max_retained(self.max_retained)?;
        validate::sweep_interval(self.sweep_interval)?;
        validate::max_sweep_per_tick(self.max_sweep_per_tick)?;
        validate::retention(self.retention)?;
        validate::max_label_value_bytes(self.max_label_value_bytes)?;
        validate::envoy_key(&self.envoy_key, self.max_label_value_bytes)?;
        self.promotion.validate()
    }
}

#[cfg(test)]
mod validation_tests {
    use super::*;
    use crate::validate::ConfigError;

    #[test]
    fn each_cause_has_its_variant() {
        let ok = Config {
            envoy_key: "e".into(),
            ..Config::default()
        };
        assert_eq!(ok.validate(), Ok(()));
        let cases: Vec<(Config, ConfigError)> = vec![
            (
                Config {
                    max_retained: 0,
                    ..ok.clone()
                },
                ConfigError::ZeroMaxRetained,
            ),
            (
                Config {
                    sweep_interval: Duration::from_nanos(1),
                    ..ok.clone()
                },
                ConfigError::SweepIntervalTooShort {
                    given: Duration::from_nanos(1),
                    min: Config::MIN_SWEEP_INTERVAL,
                },
            ),
            (
                Config {
                    max_sweep_per_tick: 0,
                    ..ok.clone()
                },
                ConfigError::ZeroMaxSweepPerTick,
            ),
            (
                Config {
                    retention: Duration::MAX,
                    ..ok.clone()
                },
                ConfigError::RetentionTooLong {
                    given: Duration::MAX,
                    max: Config::MAX_RETENTION,
                },
            ),
            (
                Config {
                    max_label_value_bytes: 8,
                    ..ok.clone()
                },
                ConfigError::LabelValueLimitTooSmall {
                    given: 8,
                    min: Config::MIN_LABEL_VALUE_BYTES,
                },
            ),
            (
                Config {
                    envoy_key: String::new(),
                    ..ok.clone()
                },
                ConfigError::EmptyEnvoyKey,
            ),
            (
                Config {
                    envoy_key: "x".repeat(300),
                    ..ok.clone()
                },
                ConfigError::EnvoyKeyTooLong { len: 300, max: 256 },
            ),
        ];
        for (config, want) in cases {
            assert_eq!(config.validate(), Err(want));
        }
    }
}
