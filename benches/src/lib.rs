//! Shared helpers for the benches and the memory measurement (see BENCHMARKS.md).
//!
//! * [`ManualClock`]: a [`Clock`](actor_metrics::clock::Clock) the benches move by
//!   hand, so retention and sweeps are driven without a runtime and without
//!   sleeping.
//! * [`populate`](fn@populate): writes the *full catalogue* into one actor (every family,
//!   every value of its enum label, one action), and/or the same values into
//!   the peers, the baselines of the scrape, memory and hot-path benches:
//!   [`Mirror`], the same series built as `prometheus` `MetricVec`s, and
//!   [`ClientMirror`], the same series as `prometheus-client` `Family`s.
//! * [`assert_same_per_actor_samples`]: parses two scrapes with a real parser
//!   and checks that every per-actor series reads back the same value; a peer's
//!   OpenMetrics text is read through [`TextFormat::OpenMetrics`].
//!
//! The catalogue is walked from
//! [`FAMILIES`](actor_metrics::families::FAMILIES), and our side records
//! through `actor_metrics::testing::apply`, which is generated from the same
//! declaration: a new family is populated here with no edit.
//!
//! # Layout
//!
//! | file | concept |
//! |---|---|
//! | `clock.rs` | [`ManualClock`] |
//! | `actors.rs` | the bench actors' ids, keys and labels; [`bench_metrics`], the instance that holds ours; [`PeerActor`], what a peer library implements |
//! | `populate.rs` | [`populate`](fn@populate) one actor, ours and through [`PeerActor`]; `build_*`, `n` actors in ours or a peer |
//! | `mirror.rs` | the `prometheus` peer: [`Mirror`] |
//! | `client.rs` | the `prometheus-client` peer: [`ClientMirror`], [`client_labels`] |
//! | `compare.rs` | [`assert_same_per_actor_samples`]: ours and a peer's scrape read back the same |
//! | `rss.rs` | [`rss_bytes`] |

mod actors;
mod client;
mod clock;
mod compare;
mod mirror;
mod populate;
mod rss;

pub use actor_metrics::testing::Op;
pub use actors::{
    ACTOR_LABELS, ENVOY, PeerActor, actor_id, actor_id_gen, actor_key, bench_metrics,
    series_per_actor,
};
pub use client::{
    ActorLabels, ClientActor, ClientMirror, ExtraLabels, client_labels, openmetrics_name,
};
pub use clock::ManualClock;
pub use compare::{TextFormat, assert_same_per_actor_samples};
pub use mirror::{Mirror, MirrorActor};
pub use populate::{build_client, build_mirror, build_ours, populate};
pub use rss::rss_bytes;
