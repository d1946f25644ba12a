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
//!   come and go, and gauges of stopped actors count 0.
//! * **No stuck gauges, no resurrection.** Stop zeroes the actor's gauges; a
//!   removed label set never reappears unless the actor registers again.
//! * **Bounded.** A cap on retained label sets evicts the oldest expiring sets
//!   early, and past that records new actors under one overflow label set per
//!   type, counted in `actor_metrics_overflow_total`.
//!
//! ```
//! use actor_metrics::{Config, Metrics};
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
//! ```

#![deny(missing_docs)]

mod actor;
mod cells;
mod config;
mod families;
mod labels;
mod retention;
pub mod scrape;
mod self_metrics;

use std::sync::{Arc, LazyLock};

pub use actor::{
    ActionMetrics, ActiveRef, ActorMetrics, ActorType, CounterRef, GaugeRef, HistogramRef,
};
pub use cells::{
    ACTION_BUCKETS, Buckets, HistogramTotal, MAX_BUCKETS, SHUTDOWN_BUCKETS, SQLITE_BUCKETS,
    STARTUP_BUCKETS, SWEEP_BUCKETS, TASK_BUCKETS,
};
pub use config::{
    Config, DEFAULT_MAX_LABEL_VALUE_BYTES, DEFAULT_MAX_RETAINED, DEFAULT_MAX_SWEEP_PER_TICK,
    DEFAULT_RETENTION, DEFAULT_SWEEP_INTERVAL, default_envoy_key,
};
pub use families::{FAMILIES, FamilyInfo};
pub use labels::{
    ActorLabels, Inbox, LabelEnum, MutationReason, ShutdownReason, SqliteOp, StartupPhase,
    StatementKind, TaskKind,
};
pub use retention::SweepReport;

/// Time source for retention deadlines. The default reads
/// `tokio::time::Instant::now()`, so tests pause and advance tokio time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> tokio::time::Instant;
}

/// [`Clock`] backed by `tokio::time::Instant::now()` (the real clock outside a
/// runtime, the paused clock in a paused test runtime).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> tokio::time::Instant {
        tokio::time::Instant::now()
    }
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A configuration value is out of range.
    #[error("invalid metrics configuration: {0}")]
    InvalidConfig(&'static str),
    /// Registering or encoding the self-metrics failed in the `prometheus` crate.
    #[error("prometheus registry: {0}")]
    Prometheus(#[from] prometheus::Error),
}

/// One metrics world: its own registry, retained-actor map, expiry queue, clock
/// and configuration. [`METRICS`] is the process default; tests build their own.
#[derive(Clone, Debug)]
pub struct Metrics(Arc<retention::Inner>);

/// The process-wide default instance, with [`Config::default`].
pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    // The default configuration is valid and a fresh registry has no name
    // clashes, so construction cannot fail.
    Metrics::new(Config::default()).expect("default metrics configuration is valid")
});

impl Metrics {
    /// A new instance with its own registry and the tokio clock.
    pub fn new(config: Config) -> Result<Self, MetricsError> {
        Self::with_parts(config, Arc::new(TokioClock), prometheus::Registry::new())
    }

    /// A new instance with an injected clock and registry (the registry gets the
    /// self-metrics; anything else registered there is appended to scrapes).
    pub fn with_parts(
        config: Config,
        clock: Arc<dyn Clock>,
        registry: prometheus::Registry,
    ) -> Result<Self, MetricsError> {
        Ok(Metrics(Arc::new(retention::Inner::new(
            config, clock, registry,
        )?)))
    }

    /// The actor type named `name` (the `actor_name` label), created on first
    /// use. Resolve it once per type and keep it.
    pub fn actor_type(&self, name: &str) -> ActorType {
        self.0.actor_type(name)
    }

    /// Removes label sets whose retention ended at or before `now`, at most
    /// `max_sweep_per_tick` of them. For hosts without a runtime, and for tests.
    pub fn sweep(&self, now: tokio::time::Instant) -> SweepReport {
        self.0.sweep(now)
    }

    /// Spawns the background sweeper on the current tokio runtime: every
    /// `sweep_interval` it runs [`Metrics::sweep`]. It ends when the instance is dropped.
    pub fn spawn_sweeper(&self) -> tokio::task::JoinHandle<()> {
        self.0.spawn_sweeper()
    }

    /// Renders the whole scrape (Prometheus text format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out);
        out
    }

    /// Appends the whole scrape to `out`. If encoding the registry part fails
    /// (a collector registered by someone else broke), the actor families are
    /// still written and the error is logged.
    pub fn render_into(&self, out: &mut String) {
        if let Err(e) = self.0.render_into(out) {
            tracing::error!(error = %e, "encoding the prometheus registry failed");
        }
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
    pub fn now(&self) -> tokio::time::Instant {
        self.0.clock.now()
    }

    /// Retained label sets (live + expiring), overflow sets excluded; never above the cap.
    pub fn retained_len(&self) -> usize {
        self.0.retained_len()
    }
}
