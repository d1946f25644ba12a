//! The renderer: what a scrape holds, written in bounded chunks, in the text,
//! OpenMetrics or protobuf format.
//!
//! A scrape starts with a snapshot of the store (the selected entries, each
//! type's retired totals and actions; no lock is held after that), then writes
//! family by family: per-actor families at the requested [`DetailLevel`], the
//! `actor_type_*` aggregates, then whatever else is registered in the
//! instance's `prometheus::Registry`. [`Exposition`] yields the bytes in chunks
//! of about [`Exposition::DEFAULT_CHUNK_BYTES`], so a scrape's memory does not grow with the
//! number of actors and a server can stop writing when its client goes away.
//!
//! Which families and actors a scrape holds is decided here, once, for every
//! format; how they are written is a [`Sink`], one file per format, which owns
//! its escaping, its slot in each entry's label cache and its content type:
//! `text.rs` (format 0.0.4), `openmetrics.rs` (OpenMetrics 1.0.0: the text
//! format's samples under its own metadata) or `proto.rs` (length-delimited
//! `MetricFamily` messages, with native histograms; the registry's own
//! families converted by `registry.rs`). Adding a format is its file, a
//! [`Format`] variant and its row in the server's negotiation table.

pub(crate) mod client_model;
mod openmetrics;
mod promoted;
mod proto;
mod registry;
pub(crate) mod text;

use std::sync::Arc;

use crate::config::DetailLevel;
use crate::families::{FAMILIES, FAMILY_COUNT, SERIES_OFFSETS, Totals};
use crate::labels::ActorLabels;
use crate::prefetch::{PREFETCH_AHEAD, prefetch};
use crate::store::{ActorEntry, EntryRef, Snapshot, Store, TypeSnapshot};

/// The exposition format of a scrape. Each is one sink in `render/` (its own
/// file), which owns its escaping, its label cache slot and its content type;
/// one match in the renderer maps a format to its sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Prometheus text format 0.0.4 (classic histograms only, no exemplars).
    #[default]
    Text,
    /// OpenMetrics text 1.0.0: the text format's samples under OpenMetrics
    /// metadata (counter families named without `_total`, `# UNIT`), ending
    /// in `# EOF`.
    OpenMetrics,
    /// Length-delimited `io.prometheus.client.MetricFamily` messages; histograms
    /// also carry their native buckets.
    Protobuf,
}

impl Format {
    /// Every format, in the order content negotiation prefers them on a tie
    /// (text first: what a client that names no preference gets).
    pub const ALL: [Format; 3] = [Format::Text, Format::OpenMetrics, Format::Protobuf];
    /// The `Content-Type` of the text format.
    pub const TEXT_CONTENT_TYPE: &str = text::CONTENT_TYPE;
    /// The `Content-Type` of the OpenMetrics text format.
    pub const OPENMETRICS_CONTENT_TYPE: &str = openmetrics::CONTENT_TYPE;
    /// The `Content-Type` of the protobuf format (and what a scrape's `Accept` names to get it).
    pub const PROTOBUF_CONTENT_TYPE: &str = proto::CONTENT_TYPE;

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => Self::TEXT_CONTENT_TYPE,
            Format::OpenMetrics => Self::OPENMETRICS_CONTENT_TYPE,
            Format::Protobuf => Self::PROTOBUF_CONTENT_TYPE,
        }
    }

    /// The sink that writes this format; `native`: histograms carry native
    /// buckets where the format has them.
    fn sink(self, native: bool) -> Box<dyn Sink> {
        match self {
            Format::Text => Box::new(text::TextSink::default()),
            Format::OpenMetrics => Box::new(openmetrics::OpenMetricsSink::default()),
            Format::Protobuf => Box::new(proto::ProtoSink::new(native)),
        }
    }
}

/// What one scrape asks for (the `/metrics` query string and `Accept`, typed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrapeRequest {
    /// Per-actor detail; `None` means the instance's configured level, or
    /// `full` when actors are selected.
    pub detail: Option<DetailLevel>,
    /// Select the actors with one of these keys (as the user knows the key: a
    /// key cut for length or with `~` escaped in its `actor_key` value matches
    /// its whole, unescaped form).
    pub actor_keys: Vec<String>,
    /// Select the actors with one of these `actor_id_gen` values.
    pub actor_id_gens: Vec<String>,
    /// Select the actors promoted to `full` detail now (detail follows
    /// trouble): what the shipped `actor-host-promoted` scrape job reads.
    /// None is while the instance's own level is `full` (the default scrape
    /// then holds every actor in full). With keys or ids, their union.
    pub promoted: bool,
    /// The format to write.
    pub format: Format,
}

impl ScrapeRequest {
    /// Whether the scrape selects actors. A selecting scrape holds only the
    /// selected actors' series: no aggregates and no self-metrics, so a debug
    /// scrape job never duplicates what the main job already ingests.
    pub fn selects_actors(&self) -> bool {
        self.promoted || !self.actor_keys.is_empty() || !self.actor_id_gens.is_empty()
    }
}

/// How a family's histograms are written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    /// Per actor below `full`: no classic buckets (text: a summary with
    /// `_sum`/`_count`; protobuf: the native buckets, or a summary without them).
    pub(crate) summarise: bool,
    /// Protobuf only: send native buckets.
    pub(crate) native: bool,
}

/// The actors a scrape writes. Each sink keeps their label blocks in its own
/// form, collected once per scrape (see [`collect_labels`]), so each family's
/// pass reads a compact array instead of one more cache line of every entry.
pub(crate) struct Actors<'a> {
    pub(crate) entries: &'a [EntryRef],
    /// Every actor keeps its own exemplars (the store is at `full`); else
    /// only the promoted ones do ([`ActorEntry::kept_exemplars`]).
    pub(crate) all_keep_exemplars: bool,
}

/// A sink's label blocks of `actors`, from each entry's cache: collected on
/// the first family the sink writes (the entries are the same for the whole
/// scrape), kept for the rest.
pub(crate) fn collect_labels<L>(
    labels: &mut Vec<L>,
    actors: &Actors<'_>,
    block: impl Fn(&ActorEntry) -> L,
) {
    if labels.len() != actors.entries.len() {
        *labels = actors.entries.iter().map(|e| block(e)).collect();
    }
}

impl Actors<'_> {
    /// Starts loading, for the entry [`PREFETCH_AHEAD`] places after `next`,
    /// the line of family `fi`'s cells and the entry's label block (`labels`:
    /// the sink's blocks as bytes), so the walk does not wait on each entry's
    /// cache miss. One line of the entry, not the whole entry: more would fill
    /// the CPU's miss queue with lines this pass does not read.
    #[inline]
    pub(crate) fn prefetch_ahead<'l>(
        &self,
        fi: usize,
        next: usize,
        labels: impl FnOnce(usize) -> Option<&'l [u8]>,
    ) {
        let ahead = next + PREFETCH_AHEAD;
        if let Some(e) = self.entries.get(ahead) {
            let cells = std::ptr::addr_of!(e.series)
                .cast::<u8>()
                .wrapping_add(SERIES_OFFSETS[fi]);
            prefetch(cells, 64);
        }
        if let Some(b) = labels(ahead) {
            prefetch(b.as_ptr(), b.len());
        }
    }
}

/// One type as the aggregate writers see it.
pub(crate) struct TypeView<'a> {
    pub(crate) name: &'a str,
    pub(crate) totals: &'a Totals,
    pub(crate) snapshot: &'a TypeSnapshot,
}

/// Where a scrape's bytes go: one implementation per format, kept for the
/// whole scrape (with its label blocks); chunks are taken out of it.
pub(crate) trait Sink: Send {
    /// Bytes in the chunk so far.
    fn len(&self) -> usize;
    /// Makes room for a chunk of about `bytes`.
    fn reserve(&mut self, bytes: usize);
    /// Hands out the chunk so far and starts an empty one.
    fn take(&mut self) -> Vec<u8>;
    /// Whether histograms carry native buckets.
    fn native(&self) -> bool {
        false
    }
    /// Writes family `fi` of the actors from `next`, stopping after the actor
    /// that fills the chunk to `limit` (never before the first); returns the
    /// next actor to write. `next == 0` starts the family.
    fn actors(
        &mut self,
        fi: usize,
        style: Style,
        actors: &Actors<'_>,
        next: usize,
        limit: usize,
    ) -> usize;
    /// Writes aggregate family `fi` of every type.
    fn aggregates(&mut self, fi: usize, style: Style, types: &[TypeView<'_>]);
    /// Writes what the registry's collectors gathered.
    fn registry(&mut self, families: &[prometheus::proto::MetricFamily]);
    /// Writes what closes a complete scrape, if the format has it.
    fn end(&mut self) {}
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
    /// What closes the body in the sink's format.
    End,
    Done,
}

/// One scrape in progress: an iterator of chunks.
///
/// ```
/// use actor_metrics::{Config, Metrics, ScrapeRequest};
/// let m = Metrics::new(Config::default()).unwrap();
/// let a = m.actor_type("counter").register("a1", Some(1), "user-42");
/// a.sqlite_commits_total().inc();
/// let text: Vec<u8> = m.exposition(&ScrapeRequest::default()).flatten().collect();
/// let text = String::from_utf8(text).unwrap();
/// assert!(text.contains("actor_sqlite_commits_total{actor_id_gen=\"a1:1\""));
/// ```
pub struct Exposition {
    store: Arc<Store>,
    snapshot: Snapshot,
    level: DetailLevel,
    format: Format,
    aggregates: bool,
    chunk_bytes: usize,
    stage: Stage,
    totals: Vec<Totals>,
    /// The format's writer, with its label blocks of this scrape's entries.
    sink: Box<dyn Sink>,
}

impl std::fmt::Debug for Exposition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exposition")
            .field("actors", &self.snapshot.entries.len())
            .field("level", &self.level)
            .field("format", &self.format)
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

impl Exposition {
    /// Default size a chunk grows to before it is handed out: 64 KiB.
    pub const DEFAULT_CHUNK_BYTES: usize = 64 * 1024;

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
            // At `full` the default scrape holds every actor in full already.
            let promoted = request.promoted && store.config.per_actor_detail < DetailLevel::Full;
            let snapshot = store.snapshot(|e| {
                !e.overflow()
                    && ((promoted && e.window.promoted().is_some())
                        || keys.iter().any(|k| k.actor_key() == e.labels.actor_key())
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
        // Which actors are promoted is said in the default scrape, at any
        // level (`promoted::families`, after the aggregates); their detail
        // is in a scrape of its own (`?promoted=1`), so that every family of
        // the default scrape is written at one level: an OpenMetrics
        // histogram whose promoted actors had buckets and the others
        // `_sum`/`_count` only would be invalid (a `+Inf` bucket is required
        // in each), and the `+Inf` bucket for everyone would cost each actor
        // one more series per histogram family.
        let sink = request.format.sink(store.config.native_histograms);
        Exposition {
            store,
            snapshot,
            level,
            format: request.format,
            aggregates,
            chunk_bytes: Self::DEFAULT_CHUNK_BYTES,
            stage: Stage::Actors { family: 0, next: 0 },
            totals: Vec::new(),
            sink,
        }
    }

    /// Sets the size a chunk grows to before it is handed out. Default
    /// [`Exposition::DEFAULT_CHUNK_BYTES`] (64 KiB); 0 counts as 1 byte; one
    /// actor's samples of one family are never split.
    pub fn with_chunk_bytes(mut self, bytes: usize) -> Self {
        self.chunk_bytes = bytes.max(1);
        self
    }

    /// The per-actor level this scrape writes.
    pub fn level(&self) -> DetailLevel {
        self.level
    }

    /// The format this scrape writes.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Actors in this scrape's snapshot.
    pub fn actors(&self) -> usize {
        self.snapshot.entries.len()
    }

    /// Writes into the sink until it holds a chunk or the scrape is complete.
    fn fill(&mut self) {
        while self.sink.len() < self.chunk_bytes {
            match self.stage {
                Stage::Actors { family, next } => self.write_actors(family, next),
                Stage::Aggregates { family } => self.write_aggregates(family),
                Stage::Registry => {
                    let sink = &mut self.sink;
                    sink.registry(&promoted::families(&self.snapshot));
                    sink.registry(&self.store.registry.gather());
                    self.stage = Stage::End;
                }
                Stage::End => {
                    self.sink.end();
                    self.stage = Stage::Done;
                }
                Stage::Done => return,
            }
        }
    }

    fn write_actors(&mut self, family: usize, next: usize) {
        let after = |family: usize| Stage::Actors {
            family: family + 1,
            next: 0,
        };
        if family == FAMILY_COUNT {
            self.stage = if self.aggregates {
                Stage::Aggregates { family: 0 }
            } else {
                Stage::End
            };
            return;
        }
        if self.level < FAMILIES[family].level {
            self.stage = after(family);
            return;
        }
        let style = Style {
            summarise: self.level < DetailLevel::Full,
            native: self.sink.native(),
        };
        let entries = &self.snapshot.entries;
        let actors = Actors {
            entries,
            all_keep_exemplars: self.store.config.per_actor_detail == DetailLevel::Full,
        };
        let next = self
            .sink
            .actors(family, style, &actors, next, self.chunk_bytes);
        self.stage = if next < entries.len() {
            Stage::Actors { family, next }
        } else {
            after(family)
        };
    }

    fn write_aggregates(&mut self, family: usize) {
        if family == FAMILY_COUNT {
            self.stage = Stage::Registry;
            return;
        }
        if family == 0 {
            // Read the actors' values once, as late as possible.
            self.totals = self.snapshot.type_totals();
        }
        let types: Vec<TypeView<'_>> = self
            .snapshot
            .types
            .iter()
            .zip(&self.totals)
            .map(|(snap, totals)| TypeView {
                name: &snap.ty.name,
                totals,
                snapshot: snap,
            })
            .collect();
        let style = Style {
            summarise: false,
            native: self.sink.native(),
        };
        self.sink.aggregates(family, style, &types);
        self.stage = Stage::Aggregates { family: family + 1 };
    }
}

impl Iterator for Exposition {
    type Item = Vec<u8>;

    /// The next chunk, or `None` when the scrape is complete.
    fn next(&mut self) -> Option<Vec<u8>> {
        if self.stage == Stage::Done {
            return None;
        }
        let capacity = self.chunk_bytes.min(1 << 24) + self.chunk_bytes.min(1 << 24) / 4;
        self.sink.reserve(capacity);
        self.fill();
        let out = self.sink.take();
        (!out.is_empty()).then_some(out)
    }
}
