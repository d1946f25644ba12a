//! The server's report on itself, registered in the source's registry.

use prometheus::{Histogram, HistogramOpts, IntCounter};

/// `actor_metrics_http_*`.
pub(crate) struct SelfMetrics {
    /// Scrapes whose body was written to its last byte (into the socket: the
    /// client may still be cut, or reset, before it has them all).
    pub(crate) scrapes: IntCounter,
    /// Scrapes whose client went away before the body was complete.
    pub(crate) aborted: IntCounter,
    /// Time from the request until the last byte was handed to the socket.
    pub(crate) duration: Histogram,
    /// Uncompressed bytes of completed scrapes.
    pub(crate) bytes: IntCounter,
    /// Connections cut because the client's acknowledgements did not advance
    /// for the write timeout, or it took longer than the longest delivery
    /// time to take a response: mid-response or while the close waited.
    pub(crate) cut: IntCounter,
}

impl SelfMetrics {
    pub(crate) fn new(registry: Option<&prometheus::Registry>) -> Self {
        // Names and help are constants: construction cannot fail.
        let scrapes = IntCounter::new(
            "actor_metrics_http_scrapes_total",
            "Scrapes of /metrics whose body was written to the last byte (into the socket; a client cut or reset before it had them all counts here too).",
        )
        .expect("valid counter");
        let aborted = IntCounter::new(
            "actor_metrics_http_scrapes_aborted_total",
            "Scrapes of /metrics whose client went away before the body was complete; rendering stopped there.",
        )
        .expect("valid counter");
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "actor_metrics_http_scrape_duration_seconds",
                "Time to render, compress and send one scrape of /metrics.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )
        .expect("valid histogram");
        let bytes = IntCounter::new(
            "actor_metrics_http_scrape_bytes_total",
            "Bytes of /metrics text rendered for completed scrapes, before compression.",
        )
        .expect("valid counter");
        let cut = IntCounter::new(
            "actor_metrics_http_connections_cut_total",
            "Metrics-port connections cut (reset) because the client's acknowledgements did not advance for the write timeout, or it took longer than the longest delivery time to take one response (mid-response, or while the close waited for it to have the whole response).",
        )
        .expect("valid counter");
        if let Some(registry) = registry {
            let collectors: [Box<dyn prometheus::core::Collector>; 5] = [
                Box::new(scrapes.clone()),
                Box::new(aborted.clone()),
                Box::new(duration.clone()),
                Box::new(bytes.clone()),
                Box::new(cut.clone()),
            ];
            for c in collectors {
                if let Err(e) = registry.register(c) {
                    // A second server on the same registry: the first one's
                    // self-metrics stay exported; this one counts unexported.
                    tracing::warn!(error = %e, "metrics server self-metrics not registered");
                }
            }
        }
        SelfMetrics {
            scrapes,
            aborted,
            duration,
            bytes,
            cut,
        }
    }
}
