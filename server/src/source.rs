//! What a scrape renders: [`MetricsSource`] and the sources that come with the
//! crate.

use std::sync::Arc;

use actor_metrics::ScrapeRequest;
use prometheus::Encoder as _;

/// A scrape's body, produced one chunk at a time as the client reads. Each call
/// of `next` runs on the blocking pool; dropping the iterator ends the render.
pub type Chunks = Box<dyn Iterator<Item = Vec<u8>> + Send>;

/// What a scrape renders.
pub trait MetricsSource: Send + Sync + 'static {
    /// Starts one scrape of what `request` asks for, in the text format 0.0.4.
    /// Called on the blocking pool. Sources without per-actor series ignore the
    /// request's selection.
    fn scrape(self: Arc<Self>, request: &ScrapeRequest) -> Chunks;

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

impl MetricsSource for actor_metrics::Metrics {
    fn scrape(self: Arc<Self>, request: &ScrapeRequest) -> Chunks {
        Box::new(self.exposition(request))
    }
    fn registry(&self) -> Option<prometheus::Registry> {
        Some(actor_metrics::Metrics::registry(self).clone())
    }
    fn metrics(&self) -> Option<actor_metrics::Metrics> {
        Some(self.clone())
    }
}

impl MetricsSource for prometheus::Registry {
    fn scrape(self: Arc<Self>, _: &ScrapeRequest) -> Chunks {
        Box::new(std::iter::once_with(move || {
            let mut buf = Vec::new();
            if let Err(e) = prometheus::TextEncoder::new().encode(&self.gather(), &mut buf) {
                tracing::error!(error = %e, "encoding the prometheus registry failed");
            }
            buf
        }))
    }
    fn registry(&self) -> Option<prometheus::Registry> {
        Some(self.clone())
    }
}

/// A closure that writes the whole scrape, as a [`MetricsSource`] (no registry).
pub struct FnSource<F>(pub F);

impl<F: Fn(&mut String) + Send + Sync + 'static> MetricsSource for FnSource<F> {
    fn scrape(self: Arc<Self>, _: &ScrapeRequest) -> Chunks {
        Box::new(std::iter::once_with(move || {
            let mut out = String::new();
            (self.0)(&mut out);
            out.into_bytes()
        }))
    }
}
