//! The renderer: what a scrape holds, written in bounded chunks.
//!
//! A scrape starts with a snapshot of the store (the selected entries, each
//! type's retired totals and actions; no lock is held after that), then writes
//! family by family: per-actor families at the requested [`DetailLevel`], the
//! `actor_type_*` aggregates, then `TextEncoder` output of whatever else is
//! registered in the instance's `prometheus::Registry`. [`Exposition`] yields
//! the text in chunks of about [`DEFAULT_CHUNK_BYTES`], so a scrape's memory
//! does not grow with the number of actors and a server can stop writing when
//! its client goes away.

pub(crate) mod text;

use std::sync::Arc;

use prometheus::Encoder as _;

use crate::config::DetailLevel;
use crate::families::{FAMILIES, FAMILY_COUNT, Totals};
use crate::labels::ActorLabels;
use crate::store::{ActorEntry, Snapshot, Store};
use text::{ACTOR_WRITERS, AGGREGATE_WRITERS, TypeText};

/// Default size a chunk of [`Exposition`] grows to before it is handed out: 64 KiB.
pub const DEFAULT_CHUNK_BYTES: usize = 64 * 1024;

/// What one scrape asks for (the `/metrics` query string, typed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrapeRequest {
    /// Per-actor detail; `None` means the instance's configured level, or
    /// `full` when actors are selected.
    pub detail: Option<DetailLevel>,
    /// Select the actors with one of these `actor_key` values (as the user knows
    /// the key: a key cut for length matches its whole form).
    pub actor_keys: Vec<String>,
    /// Select the actors with one of these `actor_id_gen` values.
    pub actor_id_gens: Vec<String>,
}

impl ScrapeRequest {
    /// Whether the scrape selects actors. A selecting scrape holds only the
    /// selected actors' series: no aggregates and no self-metrics, so a debug
    /// scrape job never duplicates what the main job already ingests.
    pub fn selects_actors(&self) -> bool {
        !self.actor_keys.is_empty() || !self.actor_id_gens.is_empty()
    }
}

/// Where a scrape is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Per-actor family `family`, next actor `next`.
    Actors {
        family: usize,
        next: usize,
    },
    /// Aggregate family `family`.
    Aggregates {
        family: usize,
    },
    /// The registry's own collectors.
    Registry,
    Done,
}

/// One scrape in progress: an iterator of text chunks.
///
/// ```
/// use actor_metrics::{Config, Metrics, ScrapeRequest};
/// let m = Metrics::new(Config::default()).unwrap();
/// let a = m.actor_type("counter").register("a1", Some(1), "user-42");
/// a.sqlite_commits_total().inc();
/// let mut text = Vec::new();
/// for chunk in m.exposition(&ScrapeRequest::default()) {
///     text.extend(chunk);
/// }
/// let text = String::from_utf8(text).unwrap();
/// assert!(text.contains("actor_sqlite_commits_total{actor_id_gen=\"a1:1\""));
/// ```
pub struct Exposition {
    store: Arc<Store>,
    snapshot: Snapshot,
    level: DetailLevel,
    aggregates: bool,
    chunk_bytes: usize,
    stage: Stage,
    totals: Vec<Totals>,
}

impl std::fmt::Debug for Exposition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exposition")
            .field("actors", &self.snapshot.entries.len())
            .field("level", &self.level)
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

impl Exposition {
    /// Takes the snapshot the scrape will write.
    pub(crate) fn new(store: Arc<Store>, request: &ScrapeRequest) -> Self {
        let (snapshot, level, aggregates) = if request.selects_actors() {
            let max = store.config.max_label_value_bytes;
            let keys: Vec<ActorLabels> = request
                .actor_keys
                .iter()
                // The key as the store holds it (cut the same way when too long).
                .map(|k| ActorLabels::new("", None, k, store.envoy_key.clone(), max))
                .collect();
            let snapshot = store.snapshot(|e| {
                !e.overflow
                    && (keys.iter().any(|k| k.actor_key() == e.labels.actor_key())
                        || request
                            .actor_id_gens
                            .iter()
                            .any(|g| g == e.labels.actor_id_gen()))
            });
            (snapshot, request.detail.unwrap_or(DetailLevel::Full), false)
        } else {
            let level = request.detail.unwrap_or(store.config.per_actor_detail);
            (store.snapshot(|_| true), level, true)
        };
        Exposition {
            store,
            snapshot,
            level,
            aggregates,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            stage: Stage::Actors { family: 0, next: 0 },
            totals: Vec::new(),
        }
    }

    /// Sets the size a chunk grows to before it is handed out (at least 1 byte;
    /// one actor's samples of one family are never split).
    pub fn with_chunk_bytes(mut self, bytes: usize) -> Self {
        self.chunk_bytes = bytes.max(1);
        self
    }

    /// The per-actor level this scrape writes.
    pub fn level(&self) -> DetailLevel {
        self.level
    }

    /// Actors in this scrape's snapshot.
    pub fn actors(&self) -> usize {
        self.snapshot.entries.len()
    }

    /// Appends the next part of the scrape to `out`, stopping once `out` holds at
    /// least the chunk size; returns false when the scrape is complete.
    pub fn write_chunk(&mut self, out: &mut String) -> bool {
        while out.len() < self.chunk_bytes {
            match self.stage {
                Stage::Actors { family, next } => self.write_actors(family, next, out),
                Stage::Aggregates { family } => self.write_aggregates(family, out),
                Stage::Registry => {
                    self.write_registry(out);
                    self.stage = Stage::Done;
                }
                Stage::Done => return false,
            }
        }
        self.stage != Stage::Done
    }

    fn write_actors(&mut self, family: usize, mut next: usize, out: &mut String) {
        if family == FAMILY_COUNT {
            self.stage = if self.aggregates {
                Stage::Aggregates { family: 0 }
            } else {
                Stage::Done
            };
            return;
        }
        let f = &FAMILIES[family];
        if self.level < f.level {
            self.stage = Stage::Actors {
                family: family + 1,
                next: 0,
            };
            return;
        }
        let shape = text::shape(family, self.level < DetailLevel::Full);
        if next == 0 {
            text::family_header(out, f, false, shape);
        }
        let write = ACTOR_WRITERS[family];
        let entries = &self.snapshot.entries;
        // At least one actor per call, so a header is never written twice.
        while let Some(e) = entries.get(next) {
            write(&e.series, label_block(e), shape, out);
            next += 1;
            if out.len() >= self.chunk_bytes {
                break;
            }
        }
        self.stage = if next < entries.len() {
            Stage::Actors { family, next }
        } else {
            Stage::Actors {
                family: family + 1,
                next: 0,
            }
        };
    }

    fn write_aggregates(&mut self, family: usize, out: &mut String) {
        if family == FAMILY_COUNT {
            self.stage = Stage::Registry;
            return;
        }
        if family == 0 {
            // Read the actors' values once, as late as possible.
            self.totals = self.snapshot.type_totals();
        }
        let f = &FAMILIES[family];
        let shape = text::shape(family, false);
        text::family_header(out, f, true, shape);
        let write = AGGREGATE_WRITERS[family];
        let mut block = String::new();
        let mut action_blocks = Vec::new();
        for (snap, totals) in self.snapshot.types.iter().zip(&self.totals) {
            block.clear();
            text::push_label(&mut block, "actor_name", &snap.ty.name);
            action_blocks.clear();
            if f.by_action {
                for (action, _) in &snap.actions {
                    // `action` sorts before `actor_name`, as TextEncoder orders label names.
                    let mut b = String::with_capacity(block.len() + action.len() + 12);
                    text::push_label(&mut b, "action", action);
                    b.push(',');
                    b.push_str(&block);
                    action_blocks.push(b);
                }
            }
            let t = TypeText {
                block: &block,
                totals,
                snapshot: snap,
                action_blocks: &action_blocks,
            };
            write(&t, shape, out);
        }
        self.stage = Stage::Aggregates { family: family + 1 };
    }

    fn write_registry(&self, out: &mut String) {
        let mut buf = Vec::new();
        match prometheus::TextEncoder::new().encode(&self.store.registry.gather(), &mut buf) {
            Ok(()) => out.push_str(&String::from_utf8_lossy(&buf)),
            // A collector registered by someone else broke: the actor families
            // are still written.
            Err(e) => tracing::error!(error = %e, "encoding the prometheus registry failed"),
        }
    }
}

impl Iterator for Exposition {
    type Item = Vec<u8>;

    /// The next chunk of text, or `None` when the scrape is complete.
    fn next(&mut self) -> Option<Vec<u8>> {
        if self.stage == Stage::Done {
            return None;
        }
        let mut out = String::with_capacity(self.chunk_bytes + self.chunk_bytes / 4);
        self.write_chunk(&mut out);
        (!out.is_empty()).then(|| out.into_bytes())
    }
}

/// The entry's escaped label block, built on the first scrape that needs it.
fn label_block(e: &ActorEntry) -> &str {
    e.text_labels
        .get_or_init(|| text::actor_label_block(&e.labels))
}
