//! Per-actor Prometheus series with refcounted retention.
//!
//! An actor host registers each actor once and gets an [`ActorMetrics`] handle
//! whose series were resolved at registration: recording is an atomic operation,
//! never a label lookup. The label set (`actor_id_gen`, `actor_key`,
//! `envoy_key`) stays exported while the actor runs and for a retention window
//! (default 10 minutes) after it stops, so the last values before a crash stay
//! visible; then a background sweeper removes every series of that actor at once.
//!
//! Why it is built this way:
//!
//! * **Expiry follows handle lifetime, not update recency.** A gauge set once and
//!   never changed is still valid while the actor lives; nothing expires while a
//!   registration is live, and removal happens whether or not anyone scrapes.
//! * **No scan on the lifecycle path.** Register is one map operation, stop is
//!   one map update plus one push onto a deadline-ordered queue; the sweeper pops
//!   due items. Nothing on an actor's lifecycle is O(retained actors).
//! * **One allocation per actor.** All of an actor's series live in one struct in
//!   `RETAINED_ACTORS` (an `scc::HashMap` keyed by the full typed label triple, so
//!   `["ab","c"]` and `["a","bc"]` never share a series). Removing an actor is
//!   removing one entry; nothing matches on library error strings.
//! * **Aggregates that never go back.** `actor_type_*` families (labelled by
//!   `actor_name`) are summed at scrape time from live and retained actors plus
//!   the final values of removed ones, so they stay exact while per-actor series
//!   come and go. Gauges count each registration's own contribution, so they stay
//!   exact when registrations share a label set.
//! * **A series budget.** Per-actor series are exported at a [`DetailLevel`]:
//!   `core` (the default) keeps what an operator reads per actor, histograms as
//!   `_sum`/`_count`; `full` adds every family with classic buckets. Recording is
//!   the same at every level.
//! * **Bounded.** A cap on retained label sets evicts the oldest expiring sets
//!   early, and past that records new actors under one overflow label set per
//!   type, counted in `actor_metrics_overflow_total`. A scrape is written in
//!   bounded chunks ([`Exposition`]).
//!
//! # Layout
//!
//! | file | concept |
//! |---|---|
//! | `families.rs` | the one declaration of every family; the actor's storage, [`Totals`](families::Totals) and the catalogue are generated from it |
//! | `cells.rs` | the atomics one series is stored in |
//! | `labels.rs` | typed label sets and the closed label enums ([`labels`]) |
//! | `buckets.rs`, `native.rs`, `lazy.rs` | bucket sets ([`buckets`]): classic bounds, and the sparse exponential buckets of native histograms (the first octave's span inline in its cell, in the words classic counts use; later spans allocated on first use through `lazy.rs`) |
//! | `config.rs`, `validate.rs` | [`Config`] (its defaults and bounds as associated consts, documented on its setters), [`DetailLevel`], and [`ConfigError`] |
//! | `clock.rs`, `error.rs` | the injected [`Clock`](clock::Clock); [`MetricsError`] |
//! | `query.rs` | a query string's pairs, decoded once for every route, and [`query::shown`], a client's value as an error repeats it |
//! | `store.rs` | `RETAINED_ACTORS`: register, stop, overflow, cap, snapshots |
//! | `slab.rs` | values of one type in slots of chunks outside malloc, and `SlotRef`, a counted reference to one; the store keeps its entries in one |
//! | `label_cache.rs` | the renderer's per-entry cache of label blocks: one format-blind slot per sink, held by the store's entries, read only by `render/` |
//! | `prefetch.rs` | the CPU prefetch hint that walks over scattered entries (totals, scrapes) use |
//! | `expiry.rs` | the deadline-ordered queue the store pushes and the sweeper pops |
//! | `sweeper.rs` | [`Metrics::sweep`] and the background task (which also runs the promotion tick) |
//! | `trouble/` | detail follows trouble: windowed figures per actor and type, the promotion rules and set ([`Promotion`], [`Metrics::watch`]), and [`Metrics::top`] |
//! | `actor.rs`, `record.rs` | the handles a host holds, on top of the store, and the recorders their accessors return ([`record`]) |
//! | `render/` | every byte of exposition: selection and chunking, promoted actors at `full` (`mod.rs`), one sink per format, each owning its escaping, label cache slot and content type: the text format (`text.rs`), OpenMetrics (`openmetrics.rs`), the protobuf format with native histograms (`proto.rs`, `client_model.rs`, the registry's families converted to it in `registry.rs`); and the promotion families (`promoted.rs`) |
//! | `exemplar/` | exemplars ([`exemplar`]): the ids and [`Exemplar`](exemplar::Exemplar) (`mod.rs`), a lock-free slot (a seqlock of atomics) that observers write and scrapes read and the lazily allocated slots of one histogram (`slot.rs`), the families that keep them and one actor's and one action's holders (`kept.rs`), and the thread's current call trace for recording sites that do not see the call (`current.rs`) |
//! | `layer.rs` | feature `tracing-layer`: `layer::ActionLayer`, a `tracing` layer that records action calls from the spans a runtime wraps them in |
//! | `self_metrics.rs` | the subsystem's report on itself |
//!
//! The sweeper and the renderer read the store; the store knows neither.
//!
//! ```
//! use actor_metrics::{Config, DetailLevel, Metrics};
//! use std::time::Duration;
//!
//! let metrics = Metrics::new(Config { retention: Duration::from_secs(60), ..Config::default() }).unwrap();
//! let counter = metrics.actor_type("counter");
//! let increment = counter.action("increment");
//! let actor = counter.register("a1", Some(1), "user-42");
//! actor.record_action(&increment, Duration::from_millis(3), true);
//! actor.stopped();
//! let text = metrics.render();
//! assert!(text.contains("actor_action_calls_total{actor_id_gen=\"a1:1\""));
//! assert!(text.contains("actor_type_action_calls_total{action=\"increment\",actor_name=\"counter\"} 1"));
//! assert!(text.contains("# TYPE actor_action_duration_seconds summary"), "core: _sum and _count");
//! ```

#![deny(missing_docs)]

mod actor;
pub mod buckets;
mod cells;
pub mod clock;
mod config;
mod error;
pub mod exemplar;
mod expiry;
pub mod families;
mod label_cache;
pub mod labels;
#[cfg(feature = "tracing-layer")]
pub mod layer;
mod lazy;
mod native;
mod prefetch;
pub mod query;
pub mod record;
mod render;
#[cfg(feature = "test-util")]
pub mod scrape;
mod self_metrics;
mod slab;
mod store;
mod sweeper;
#[cfg(feature = "test-util")]
pub mod testing;
mod trouble;
mod validate;

use std::sync::{Arc, LazyLock};

// The root holds what a host uses: the instance, its configuration and errors,
// the handles, and a scrape. The recorders an accessor returns are in
// [`record`], the clock a host may inject in [`clock`], and the catalogue with
// its totals in [`families`].
pub use actor::{ActionMetrics, ActorMetrics, ActorType};
pub use config::{Config, DetailLevel, UnknownDetailLevel};
pub use error::MetricsError;
pub use render::{Exposition, Format, ScrapeRequest};
pub use sweeper::SweepReport;
pub use trouble::{Promotion, Reason, TopBy, TopError, TopQuery, TopRow, WatchReport};
pub use validate::ConfigError;

/// One metrics world: its own registry, retained-actor map, expiry queue, clock
/// and configuration. [`METRICS`] is the process default; tests build their own.
#[derive(Clone, Debug)]
pub struct Metrics(Arc<store::Store>);

/// The process-wide default instance, with [`Config::default`].
pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    // The default configuration is valid and a fresh registry has no name
    // clashes, so construction cannot fail.
    Metrics::new(Config::default()).expect("default metrics configuration is valid")
});

impl Metrics {
    /// A new instance with its own registry and the tokio clock.
    ///
    /// # Errors
    /// [`MetricsError::Config`] when [`Config::validate`] refuses the configuration.
    pub fn new(config: Config) -> Result<Self, MetricsError> {
        Self::with_parts(
            config,
            Arc::new(clock::TokioClock),
            prometheus::Registry::new(),
        )
    }

    /// A new instance with an injected clock and registry (the registry gets the
    /// self-metrics; anything else registered there is appended to scrapes).
    ///
    /// # Errors
    /// [`MetricsError::Config`] for a refused configuration,
    /// [`MetricsError::Prometheus`] when the registry already holds a self-metric's name.
    pub fn with_parts(
        config: Config,
        clock: Arc<dyn clock::Clock>,
        registry: prometheus::Registry,
    ) -> Result<Self, MetricsError> {
        Ok(Metrics(Arc::new(store::Store::new(
            config, clock, registry,
        )?)))
    }

    /// The actor type named `name` (the `actor_name` label), created on first
    /// use. Resolve it once per type and keep it.
    pub fn actor_type(&self, name: &str) -> ActorType {
        ActorType::new(self.0.actor_type(name), self.0.clone())
    }

    /// Removes label sets whose retention ended at or before `now`, at most
    /// `max_sweep_per_tick` of them. For hosts without a runtime, and for tests.
    pub fn sweep(&self, now: tokio::time::Instant) -> SweepReport {
        sweeper::sweep(&self.0, now)
    }

    /// Takes every actor's windowed figures and applies the promotion rules
    /// at `now` (see [`Promotion`]). For hosts without a runtime, and for tests;
    /// the background task runs it every [`Promotion::tick`].
    pub fn watch(&self, now: tokio::time::Instant) -> WatchReport {
        trouble::tick(&self.0, now)
    }

    /// The actors that stand out most by `query.by`, worst first, from the
    /// figures of the last tick (queue and inbox depth read now). Reads every
    /// retained actor once and holds no lock an update or a scrape takes.
    ///
    /// # Errors
    /// [`TopError::UnknownWindow`] when `query.window` names no window kept.
    pub fn top(&self, query: &TopQuery) -> Result<Vec<TopRow>, TopError> {
        trouble::top(&self.0, query)
    }

    /// How old the figures [`Metrics::top`] ranks are: the time since the
    /// last tick that took them. `None` until there is one: the first tick
    /// (at the background task's start) takes baselines, the next one, a
    /// [`Promotion::tick`] later, the first figures.
    pub fn figures_age(&self) -> Option<std::time::Duration> {
        trouble::figures_at(&self.0).map(|t| self.0.clock.now().saturating_duration_since(t))
    }

    /// Spawns the background task on the current tokio runtime: every
    /// `sweep_interval` it runs [`Metrics::sweep`], and every
    /// [`Promotion::tick`] [`Metrics::watch`]. It ends when the instance is
    /// dropped; watch the handle (`is_finished`) to tell whether it still runs.
    pub fn spawn_sweeper(&self) -> tokio::task::JoinHandle<()> {
        sweeper::spawn(&self.0)
    }

    /// Starts one scrape: takes its snapshot now, and yields the text in chunks.
    pub fn exposition(&self, request: &ScrapeRequest) -> Exposition {
        Exposition::new(self.0.clone(), request)
    }

    /// Renders the whole default scrape (Prometheus text format 0.0.4) into one
    /// string. Servers stream [`Metrics::exposition`] instead.
    pub fn render(&self) -> String {
        self.render_with(&ScrapeRequest::default())
    }

    /// Renders the whole scrape `request` asks for into one string, in the
    /// text format whatever `request.format` says.
    pub fn render_with(&self, request: &ScrapeRequest) -> String {
        let text = ScrapeRequest {
            format: Format::Text,
            ..request.clone()
        };
        let bytes: Vec<u8> = self.exposition(&text).flatten().collect();
        // The text writers write UTF-8 only (label values are `str`).
        String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Every actor type's [`Totals`](families::Totals) (what its `actor_type_*` aggregates
    /// export), by `actor_name`. Reads every retained actor once: for progress
    /// lines and tools, not for a hot path, and far cheaper than a scrape.
    pub fn totals(&self) -> Vec<(String, families::Totals)> {
        let snapshot = self.0.snapshot(|_| true);
        let totals = snapshot.type_totals();
        snapshot
            .types
            .iter()
            .map(|t| t.ty.name.to_string())
            .zip(totals)
            .collect()
    }

    /// The registry whose contents are appended to every scrape.
    pub fn registry(&self) -> &prometheus::Registry {
        &self.0.registry
    }

    /// The configuration this instance was built with.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The clock this instance reads deadlines from.
    #[cfg(feature = "test-util")]
    pub fn now(&self) -> tokio::time::Instant {
        self.0.clock.now()
    }

    /// Retained label sets (live + expiring), overflow sets excluded; never above the cap.
    pub fn retained_len(&self) -> usize {
        self.0.retained_len()
    }
}
