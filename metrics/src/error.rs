//! Why a [`Metrics`](crate::Metrics) instance could not be built, and how an
//! error repeats a client's value.

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

/// Bytes of a client's value an error message repeats.
const SHOWN: usize = 64;

/// `value` as an error message repeats it: whole up to 64 bytes, else its
/// start (cut at a char boundary) and how long it was, so a huge bad value
/// gets a short answer.
pub fn shown(value: &str) -> std::borrow::Cow<'_, str> {
    if value.len() <= SHOWN {
        return value.into();
    }
    let cut = (0..=SHOWN)
        .rev()
        .find(|&i| value.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}… ({} bytes)", &value[..cut], value.len()).into()
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn a_long_value_is_shown_cut_at_a_char_boundary_with_its_length() {
        assert_eq!(shown("short"), "short");
        let long = format!("{}é{}", "a".repeat(63), "b".repeat(1000));
        assert_eq!(shown(&long), format!("{}… (1065 bytes)", "a".repeat(63)));
    }
}
