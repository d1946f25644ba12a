//! The renderer's per-entry cache of a label set's written forms.
//!
//! A retained actor's label set never changes, so each exposition format
//! writes it once, on the first scrape in that format that needs it, and keeps
//! the bytes with the entry. The store holds one [`LabelCache`] per entry
//! without reading it, and knows no format: the cache is a row of [`SLOTS`]
//! empty cells, and each sink in `render/` uses one slot (its `LABEL_SLOT`; the
//! two text formats share theirs),
//! decides what goes in it (an escaped text block, encoded protobuf pairs) and
//! owns its escaping. Registering an entry stores empty cells only.

use std::sync::{Arc, OnceLock};

/// Slots per entry: one per written form (the text block, which the text
/// format and OpenMetrics share, and the protobuf pairs).
pub(crate) const SLOTS: usize = 2;

/// One written form of a label set.
#[derive(Debug, Clone)]
enum LabelForm {
    /// A UTF-8 block, written into a text exposition as it is.
    Str(Arc<str>),
    /// Encoded bytes, copied into a binary exposition as they are.
    Bytes(Arc<[u8]>),
}

/// One entry's label forms, each filled on first use by the sink that owns its slot.
#[derive(Debug, Default)]
pub(crate) struct LabelCache {
    slots: [OnceLock<LabelForm>; SLOTS],
}

impl LabelCache {
    /// The UTF-8 block in `slot`, built by `write` on first use.
    pub(crate) fn str(&self, slot: usize, write: impl FnOnce() -> Arc<str>) -> Arc<str> {
        match self.slots[slot].get_or_init(|| LabelForm::Str(write())) {
            LabelForm::Str(s) => s.clone(),
            // Only the slot's owner fills it, always with the same method.
            LabelForm::Bytes(_) => unreachable!("label slot {slot} holds bytes, not text"),
        }
    }

    /// The encoded bytes in `slot`, built by `encode` on first use.
    pub(crate) fn bytes(&self, slot: usize, encode: impl FnOnce() -> Arc<[u8]>) -> Arc<[u8]> {
        match self.slots[slot].get_or_init(|| LabelForm::Bytes(encode())) {
            LabelForm::Bytes(b) => b.clone(),
            // Only the slot's owner fills it, always with the same method.
            LabelForm::Str(_) => unreachable!("label slot {slot} holds text, not bytes"),
        }
    }
}
