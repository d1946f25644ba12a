//! What a scrape renders: [`MetricsSource`] and the sources that come with the
//! crate.

use std::sync::Arc;

use actor_metrics::{Format, ScrapeRequest};
use prometheus::Encoder as _;

/// A scrape's body, produced one chunk at a time as the client reads. Each call
/// of `next` runs on the blocking pool; dropping the iterator ends the render.
pub type Chunks = Box<dyn Iterator<Item = Vec<u8>> + Send>;

/// One scrape as a source started it: the format it writes, which the
/// response's `Content-Type` names, and its chunks.
pub struct Scraped {
    /// The format of `chunks`, whatever the request asked for.
    pub format: Format,
    /// The body.
    pub chunks: Chunks,
}

impl std::fmt::Debug for Scraped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scraped")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// What a scrape renders.
pub trait MetricsSource: Send + Sync + 'static {
    /// Starts one scrape of what `request` asks for (`request.format` is the
    /// negotiated format) and says which format it writes: a source that
    /// cannot write the one asked for writes another and says so. Called on
    /// the blocking pool. Sources without per-actor series ignore the
    /// request's selection.
    fn scrape(self: Arc<Self>, request: &ScrapeRequest) -> Scraped;

    /// The registry the server registers its own metrics in, if any (they then
    /// appear in the scrape through this source).
    fn registry(&self) -> Option<prometheus::Registry> {
        None
    }

    /// The metrics instance behind this source, if it is one: `/actors/top`
    /// and `/actors` rank its actors (404 without one).
    fn metrics(&self) -> Option<actor_metrics::Metrics> {
        None
    }
}

/// Every format, as asked.
impl MetricsSource for actor_metrics::Metrics {
    fn scrape(self: Arc<Self>, request: &ScrapeRequest) -> Scraped {
        let exposition = self.exposition(request);
        Scraped {
            format: exposition.format(),
            chunks: Box::new(exposition),
        }
    }
    fn registry(&self) -> Option<prometheus::Registry> {
        Some(actor_metrics::Metrics::registry(self).clone())
    }
    fn metrics(&self) -> Option<actor_metrics::Metrics> {
        Some(self.clone())
    }
}

/// The text format 0.0.4 (`TextEncoder`), whatever the request asks for.
impl MetricsSource for prometheus::Registry {
    fn scrape(self: Arc<Self>, _: &ScrapeRequest) -> Scraped {
        let chunks = Box::new(std::iter::once_with(move || {
            let mut buf = Vec::new();
            if let Err(e) = prometheus::TextEncoder::new().encode(&self.gather(), &mut buf) {
                tracing::error!(error = %e, "encoding the prometheus registry failed");
            }
            buf
        }));
        Scraped {
            format: Format::Text,
            chunks,
        }
    }
    fn registry(&self) -> Option<prometheus::Registry> {
        Some(self.clone())
    }
}

/// A closure that writes the whole scrape in the text format 0.0.4, as a
/// [`MetricsSource`] (no registry). Served as text whatever the request asks for.
pub struct FnSource<F>(pub F);

impl<F: Fn(&mut String) + Send + Sync + 'static> MetricsSource for FnSource<F> {
    fn scrape(self: Arc<Self>, _: &ScrapeRequest) -> Scraped {
        let chunks = Box::new(std::iter::once_with(move || {
            let mut out = String::new();
            (self.0)(&mut out);
            out.into_bytes()
        }));
        Scraped {
            format: Format::Text,
            chunks,
        }
    }
}
