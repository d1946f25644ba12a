//! What a [`Config`] may not be: one error variant per cause.

use crate::config::{Config, MAX_RETENTION};
use crate::labels::KEY_HASH_SUFFIX_BYTES;

/// Smallest `max_label_value_bytes`: room for a readable prefix and the hash suffix.
pub const MIN_LABEL_VALUE_BYTES: usize = 32;
/// Shortest `sweep_interval`: 1 ms (an interval of nanoseconds keeps a core busy
/// sweeping an empty queue).
pub const MIN_SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_millis(1);

/// Why a [`Config`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `max_retained` is 0: not even one actor could be retained.
    #[error("max_retained must be at least 1")]
    ZeroMaxRetained,
    /// `sweep_interval` is under [`MIN_SWEEP_INTERVAL`]: the sweeper would spin.
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
    /// `retention` is past [`MAX_RETENTION`].
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

impl Config {
    /// Checks every field; the first field out of range is the error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        const { assert!(MIN_LABEL_VALUE_BYTES > KEY_HASH_SUFFIX_BYTES) };
        if self.max_retained == 0 {
            return Err(ConfigError::ZeroMaxRetained);
        }
        if self.sweep_interval < MIN_SWEEP_INTERVAL {
            return Err(ConfigError::SweepIntervalTooShort {
                given: self.sweep_interval,
                min: MIN_SWEEP_INTERVAL,
            });
        }
        if self.max_sweep_per_tick == 0 {
            return Err(ConfigError::ZeroMaxSweepPerTick);
        }
        if self.retention > MAX_RETENTION {
            return Err(ConfigError::RetentionTooLong {
                given: self.retention,
                max: MAX_RETENTION,
            });
        }
        if self.max_label_value_bytes < MIN_LABEL_VALUE_BYTES {
            return Err(ConfigError::LabelValueLimitTooSmall {
                given: self.max_label_value_bytes,
                min: MIN_LABEL_VALUE_BYTES,
            });
        }
        if self.envoy_key.is_empty() {
            return Err(ConfigError::EmptyEnvoyKey);
        }
        if self.envoy_key.len() > self.max_label_value_bytes {
            return Err(ConfigError::EnvoyKeyTooLong {
                len: self.envoy_key.len(),
                max: self.max_label_value_bytes,
            });
        }
        self.promotion.validate()
    }
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
        if self.hold < self.tick || self.hold > crate::config::MAX_RETENTION {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

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
                    min: MIN_SWEEP_INTERVAL,
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
                    max: MAX_RETENTION,
                },
            ),
            (
                Config {
                    max_label_value_bytes: 8,
                    ..ok.clone()
                },
                ConfigError::LabelValueLimitTooSmall {
                    given: 8,
                    min: MIN_LABEL_VALUE_BYTES,
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
