//! What a [`Config`] may not be: one error variant per cause.
//!
//! Each field's check is one function, used by its setter on [`Config`] and by
//! [`Config::validate`](crate::Config::validate).

use std::time::Duration;

use crate::labels::KEY_HASH_SUFFIX_BYTES;

/// Longest retention accepted: 365 days (`Config::MAX_RETENTION`).
pub(crate) const MAX_RETENTION: Duration = Duration::from_secs(365 * 24 * 3600);
/// Shortest sweep interval: 1 ms (`Config::MIN_SWEEP_INTERVAL`).
pub(crate) const MIN_SWEEP_INTERVAL: Duration = Duration::from_millis(1);
/// Smallest label value limit: 32 bytes (`Config::MIN_LABEL_VALUE_BYTES`).
pub(crate) const MIN_LABEL_VALUE_BYTES: usize = 32;

/// Why a [`Config`](crate::Config) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `max_retained` is 0: not even one actor could be retained.
    #[error("max_retained must be at least 1")]
    ZeroMaxRetained,
    /// `sweep_interval` is under [`Config::MIN_SWEEP_INTERVAL`](crate::Config::MIN_SWEEP_INTERVAL): the sweeper would spin.
    #[error("sweep_interval {given:?} is shorter than the minimum {min:?}")]
    SweepIntervalTooShort {
        /// The configured interval.
        given: std::time::Duration,
        /// The minimum.
        min: std::time::Duration,
    },
    /// `max_sweep_per_tick` is 0: nothing would ever be removed.
    #[error("max_sweep_per_tick must be at least 1")]
    ZeroMaxSweepPerTick,
    /// `retention` is past [`Config::MAX_RETENTION`](crate::Config::MAX_RETENTION).
    #[error("retention {given:?} is longer than the maximum {max:?}")]
    RetentionTooLong {
        /// The configured retention.
        given: std::time::Duration,
        /// The maximum.
        max: std::time::Duration,
    },
    /// `max_label_value_bytes` leaves no room for a cut key's hash suffix.
    #[error("max_label_value_bytes is {given}; it must be at least {min}")]
    LabelValueLimitTooSmall {
        /// The configured limit.
        given: usize,
        /// The minimum.
        min: usize,
    },
    /// `envoy_key` is empty: replicas' series would not be told apart.
    #[error("envoy_key is empty")]
    EmptyEnvoyKey,
    /// A [`Promotion`](crate::Promotion) field is out of its range.
    #[error("promotion.{field} is {given}; it must be {valid}")]
    Promotion {
        /// The field.
        field: &'static str,
        /// Its value, as written.
        given: String,
        /// Its range.
        valid: &'static str,
    },
    /// `envoy_key` is longer than `max_label_value_bytes`.
    #[error("envoy_key is {len} bytes; the label value limit is {max}")]
    EnvoyKeyTooLong {
        /// Its length in bytes.
        len: usize,
        /// `max_label_value_bytes`.
        max: usize,
    },
}

impl crate::trouble::Promotion {
    /// Checks every field; the first out of range is the error.
    ///
    /// # Errors
    /// [`ConfigError::Promotion`] naming the field and its range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use std::time::Duration;
        let bad = |field, given: String, valid| {
            Err(ConfigError::Promotion {
                field,
                given,
                valid,
            })
        };
        if self.window < Duration::from_secs(1) || self.window > Duration::from_secs(24 * 3600) {
            return bad("window", format!("{:?}", self.window), "from 1s to 24h");
        }
        if self.tick < Duration::from_millis(10) || self.tick > self.window {
            return bad(
                "tick",
                format!("{:?}", self.tick),
                "from 10ms to the window",
            );
        }
        if self.hold < self.tick || self.hold > MAX_RETENTION {
            return bad(
                "hold",
                format!("{:?}", self.hold),
                "from one tick to 365 days",
            );
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !(positive(self.error_ratio_floor) && self.error_ratio_floor <= 1.0) {
            return bad(
                "error_ratio_floor",
                self.error_ratio_floor.to_string(),
                "in (0, 1]",
            );
        }
        if !positive(self.error_ratio_factor) {
            return bad(
                "error_ratio_factor",
                self.error_ratio_factor.to_string(),
                "above 0",
            );
        }
        if !positive(self.latency_factor) {
            return bad("latency_factor", self.latency_factor.to_string(), "above 0");
        }
        if !positive(self.p99_factor) {
            return bad("p99_factor", self.p99_factor.to_string(), "above 0");
        }
        if self.depth_threshold == 0 {
            return bad("depth_threshold", "0".into(), "at least 1");
        }
        if self.depth_ticks == 0 {
            return bad("depth_ticks", "0".into(), "at least 1");
        }
        if !(positive(self.release) && self.release <= 1.0) {
            return bad("release", self.release.to_string(), "in (0, 1]");
        }
        Ok(())
    }
}

/// `sets` if at least one label set can be retained.
pub(crate) fn max_retained(sets: usize) -> Result<usize, ConfigError> {
    if sets == 0 {
        return Err(ConfigError::ZeroMaxRetained);
    }
    Ok(sets)
}

/// `interval` if it is at least [`Config::MIN_SWEEP_INTERVAL`](crate::Config::MIN_SWEEP_INTERVAL).
pub(crate) fn sweep_interval(interval: Duration) -> Result<Duration, ConfigError> {
    if interval < MIN_SWEEP_INTERVAL {
        return Err(ConfigError::SweepIntervalTooShort {
            given: interval,
            min: MIN_SWEEP_INTERVAL,
        });
    }
    Ok(interval)
}

/// `sets` if a tick can remove at least one label set.
pub(crate) fn max_sweep_per_tick(sets: usize) -> Result<usize, ConfigError> {
    if sets == 0 {
        return Err(ConfigError::ZeroMaxSweepPerTick);
    }
    Ok(sets)
}

/// `retention` if it is at most [`Config::MAX_RETENTION`](crate::Config::MAX_RETENTION).
pub(crate) fn retention(retention: Duration) -> Result<Duration, ConfigError> {
    if retention > MAX_RETENTION {
        return Err(ConfigError::RetentionTooLong {
            given: retention,
            max: MAX_RETENTION,
        });
    }
    Ok(retention)
}

/// `bytes` if a cut key still has room for its hash suffix.
pub(crate) fn max_label_value_bytes(bytes: usize) -> Result<usize, ConfigError> {
    const { assert!(MIN_LABEL_VALUE_BYTES > KEY_HASH_SUFFIX_BYTES) };
    if bytes < MIN_LABEL_VALUE_BYTES {
        return Err(ConfigError::LabelValueLimitTooSmall {
            given: bytes,
            min: MIN_LABEL_VALUE_BYTES,
        });
    }
    Ok(bytes)
}

/// Whether `key` is a usable `envoy_key` under the label value limit `max`.
pub(crate) fn envoy_key(key: &str, max: usize) -> Result<(), ConfigError> {
    if key.is_empty() {
        return Err(ConfigError::EmptyEnvoyKey);
    }
    if key.len() > max {
        return Err(ConfigError::EnvoyKeyTooLong {
            len: key.len(),
            max,
        });
    }
    Ok(())
}
