//! The bench actors: their ids, keys and labels (the same in ours and in both
//! peers), how many series each has, and the instance that holds ours.

use std::sync::Arc;
use std::time::Duration;

use actor_metrics::families::FAMILIES;
use actor_metrics::testing::Op;
use actor_metrics::{Config, DetailLevel, Metrics};
use prometheus::Registry;

use crate::clock::ManualClock;

/// `envoy_key` of every bench actor (ours and both peers').
pub const ENVOY: &str = "bench-host:4242";

/// The per-actor label names, in the order `TextEncoder` sorts them.
pub const ACTOR_LABELS: [&str; 3] = ["actor_id_gen", "actor_key", "envoy_key"];

/// A bench instance: manual clock, fixed `envoy_key`, the given retention and a
/// cap far above anything a bench retains (10M), so the cap never interferes.
pub fn bench_metrics(clock: Arc<ManualClock>, retention: Duration) -> Metrics {
    Metrics::with_parts(
        Config {
            retention,
            per_actor_detail: DetailLevel::Full,
            max_retained: 10_000_000,
            max_sweep_per_tick: 1_000_000,
            envoy_key: ENVOY.into(),
            ..Config::default()
        },
        clock,
        Registry::new(),
    )
    .expect("bench configuration is valid")
}

/// Actor id of bench actor `i` (generation 1).
pub fn actor_id(i: usize) -> String {
    format!("actor-{i:07}")
}

/// Actor key of bench actor `i`.
pub fn actor_key(i: usize) -> String {
    format!("user-{i}")
}

/// `actor_id_gen` of bench actor `i`, as the mirror labels it.
pub fn actor_id_gen(i: usize) -> String {
    format!("{}:1", actor_id(i))
}

/// Children per actor in the full catalogue (one per family and extra-label value).
pub fn series_per_actor() -> usize {
    FAMILIES.iter().map(|f| f.label_values.len().max(1)).sum()
}

/// One bench actor's series in a peer library (a baseline), written by [`populate`](fn@crate::populate).
pub trait PeerActor {
    /// Applies `op` to this actor's child of family `FAMILIES[fi]`, with
    /// `extra` the value of the family's extra label.
    ///
    /// # Panics
    /// When `op` does not fit the family's kind.
    fn apply(&self, fi: usize, extra: Option<&'static str>, op: Op);
}
