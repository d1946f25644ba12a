//! The renderer's per-entry cache of a label set's written forms.
//!
//! A retained actor's label set never changes, so each format writes it once,
//! on the first scrape that needs it, and keeps the bytes with the entry. The
//! store holds one [`LabelCache`] per entry without reading it; what goes in a
//! slot (the escaped text block, the encoded protobuf pairs) is decided by that
//! format's writer in `render/`, which owns its escaping.

use std::sync::{Arc, OnceLock};

/// One entry's label block in each format, filled on first use.
#[derive(Debug, Default)]
pub(crate) struct LabelCache {
    /// The escaped text label block (`actor_id_gen="…",…`).
    text: OnceLock<Arc<str>>,
    /// The label pairs as encoded protobuf `Metric.label` fields.
    proto: OnceLock<Arc<[u8]>>,
}

impl LabelCache {
    /// The text block, built by `write` on first use.
    pub(crate) fn text(&self, write: impl FnOnce() -> Arc<str>) -> Arc<str> {
        self.text.get_or_init(write).clone()
    }

    /// The encoded protobuf pairs, built by `encode` on first use.
    pub(crate) fn proto(&self, encode: impl FnOnce() -> Arc<[u8]>) -> Arc<[u8]> {
        self.proto.get_or_init(encode).clone()
    }
}
