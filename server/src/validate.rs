//! What [`ServerOptions`] may not be: one error variant per cause.

use crate::options::ServerOptions;

/// Why [`ServerOptions`] were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// `max_connections` is 0: nothing could ever be served.
    #[error("max_connections must be at least 1")]
    ZeroMaxConnections,
    /// `header_read_timeout` is zero: every connection would be cut at once.
    #[error("header_read_timeout must be positive")]
    ZeroHeaderReadTimeout,
    /// `max_scrapes` is 0: every scrape would be refused.
    #[error("max_scrapes must be at least 1")]
    ZeroMaxScrapes,
    /// `write_timeout` is zero: every response would be cut.
    #[error("write_timeout must be positive")]
    ZeroWriteTimeout,
    /// `max_delivery_time` is zero: every response would be cut.
    #[error("max_delivery_time must be positive")]
    ZeroMaxDeliveryTime,
    /// `bearer_token` is set but empty: `Bearer ` alone would be the secret.
    #[error("bearer_token is empty")]
    EmptyBearerToken,
    /// `bearer_token` holds a byte a header value cannot carry.
    #[error("bearer_token must be visible ASCII without spaces")]
    BadBearerToken,
}

impl ServerOptions {
    /// Checks every option; the first one out of range is the error.
    pub fn validate(&self) -> Result<(), OptionsError> {
        if self.max_connections == 0 {
            return Err(OptionsError::ZeroMaxConnections);
        }
        if self.header_read_timeout.is_zero() {
            return Err(OptionsError::ZeroHeaderReadTimeout);
        }
        if self.max_scrapes == 0 {
            return Err(OptionsError::ZeroMaxScrapes);
        }
        if self.write_timeout.is_zero() {
            return Err(OptionsError::ZeroWriteTimeout);
        }
        if self.max_delivery_time.is_zero() {
            return Err(OptionsError::ZeroMaxDeliveryTime);
        }
        match self.bearer_token.as_deref() {
            Some("") => Err(OptionsError::EmptyBearerToken),
            Some(t) if !t.bytes().all(|b| b.is_ascii_graphic()) => {
                Err(OptionsError::BadBearerToken)
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn each_cause_has_its_variant() {
        let ok = ServerOptions::default();
        assert_eq!(ok.validate(), Ok(()));
        let cases = [
            (
                ServerOptions {
                    max_connections: 0,
                    ..ok.clone()
                },
                OptionsError::ZeroMaxConnections,
            ),
            (
                ServerOptions {
                    header_read_timeout: Duration::ZERO,
                    ..ok.clone()
                },
                OptionsError::ZeroHeaderReadTimeout,
            ),
            (
                ServerOptions {
                    max_scrapes: 0,
                    ..ok.clone()
                },
                OptionsError::ZeroMaxScrapes,
            ),
            (
                ServerOptions {
                    write_timeout: Duration::ZERO,
                    ..ok.clone()
                },
                OptionsError::ZeroWriteTimeout,
            ),
            (
                ServerOptions {
                    max_delivery_time: Duration::ZERO,
                    ..ok.clone()
                },
                OptionsError::ZeroMaxDeliveryTime,
            ),
            (
                ServerOptions {
                    bearer_token: Some(String::new()),
                    ..ok.clone()
                },
                OptionsError::EmptyBearerToken,
            ),
            (
                ServerOptions {
                    bearer_token: Some("a b".into()),
                    ..ok.clone()
                },
                OptionsError::BadBearerToken,
            ),
        ];
        for (options, want) in cases {
            assert_eq!(options.validate(), Err(want));
        }
    }
}
