//! Detail follows trouble: windowed figures per actor, the rules that promote
//! an actor that stands out from its own type to `full` detail, and the
//! promoted set.
//!
//! * **Off the hot path.** A periodic tick (every [`Promotion::tick`], run by
//!   the sweeper's task, or [`Metrics::watch`](crate::Metrics::watch)) reads
//!   the cells the hot path already writes (calls, errors, duration sum, busy
//!   retries, queue and inbox depth) and keeps, per actor, the counts it saw
//!   last and exponentially weighted rates over two windows: the promotion
//!   window (default 1 minute) and five times it. That is the load-average and
//!   Dropwizard `m1`/`m5` method: a rate "over 1 minute" weighs the last minute
//!   at 63 %, and costs a few floats per actor instead of a ring of samples.
//!   Recording is unchanged: every update stays one atomic op on a resolved
//!   cell. Per actor this is one 60-byte [`Window`] of atomics in its entry,
//!   its promotion byte included.
//! * **A tail, where native buckets exist.** The tick also counts the actor's
//!   observations above a line, `p99_factor ×` its type's p99, in its native
//!   buckets, and keeps their rate: its p99 is above the line when more than
//!   1 % of its calls are. No per-actor buckets are kept per window.
//! * **Against its own type.** Each tick also keeps the type's windowed call
//!   and error rates and its latency distribution (from the per-type action
//!   cells, classic buckets), so an actor is judged against its peers: its
//!   type's rates without its own, and the p99 of its type's latency without
//!   its own calls (placed at their mean, as no per-actor window of buckets is
//!   kept).
//! * **A fixed budget.** At most [`Promotion::max_promoted`] actors are
//!   promoted at once, the worst kept, so a scrape holds at most
//!   `core × retained + max_promoted × full` per-actor series. Over the
//!   budget a newcomer displaces a promoted actor only with at least twice
//!   its score, so actors that stand out about equally do not churn the set.
//! * **Hysteresis.** An actor is promoted when a figure reaches its threshold;
//!   it stays promoted while the figure stays above
//!   [`Promotion::release`] × threshold, and is demoted only after
//!   [`Promotion::hold`] without that. A figure near the line does not flap.
//!
//! The same figures answer [`Metrics::top`](crate::Metrics::top), on demand.
//!
//! | file | concept |
//! |---|---|
//! | `mod.rs` | [`Promotion`] (the rules' settings) and [`Reason`] |
//! | `window.rs` | one actor's and one type's windowed figures, and the quantile of classic buckets |
//! | `promote.rs` | the tick: judging each actor, the promoted set, its log events |
//! | `top.rs` | [`TopQuery`] and the ranking it answers |

mod promote;
mod top;
mod window;

use std::time::Duration;

pub use promote::WatchReport;
pub(crate) use promote::{Watch, figures_at, tick};
pub(crate) use top::top;
pub use top::{TopBy, TopError, TopQuery, TopRow};
pub(crate) use window::Window;

/// When an actor is promoted to `full` detail, and for how long.
///
/// Every field has a documented default ([`Promotion::default`]);
/// [`Config::validate`](crate::Config::validate) says what is out of range.
#[derive(Debug, Clone, PartialEq)]
pub struct Promotion {
    /// Most actors promoted at once; 0 turns promotion off (the windowed
    /// figures and [`Metrics::top`](crate::Metrics::top) still work).
    /// Default 64.
    pub max_promoted: usize,
    /// The window the rules read (the short window); the long window is five
    /// times it. Default 1 minute, at least 1 s.
    pub window: Duration,
    /// How often the figures are taken and the rules applied. Default 10 s,
    /// at least 10 ms and at most the window.
    pub tick: Duration,
    /// How long an actor stays promoted after it last stood out. Default 10
    /// minutes, at least one tick.
    pub hold: Duration,
    /// Fewest calls in the window before an error ratio or a latency counts,
    /// so a single failed call does not promote. Default 20.
    pub min_calls: u64,
    /// Error ratio promotes at `max(error_ratio_floor, error_ratio_factor × the
    /// ratio of the rest of its type)`. Defaults 0.05 and 10.
    pub error_ratio_floor: f64,
    /// See `error_ratio_floor`.
    pub error_ratio_factor: f64,
    /// Mean latency promotes at `latency_factor ×` its type's p99 over the
    /// window. Default 5.
    pub latency_factor: f64,
    /// With native buckets, also promotes when its p99 over the window is at
    /// least `p99_factor ×` its type's p99: more than 1 % of its calls above
    /// that line, over at least [`Promotion::P99_MIN_CALLS`] calls. Default 10.
    pub p99_factor: f64,
    /// Queue or inbox depth promotes above this many items, held for
    /// `depth_ticks` consecutive ticks. Defaults 100 and 2.
    pub depth_threshold: u64,
    /// See `depth_threshold`. At least 1.
    pub depth_ticks: u8,
    /// A promoted actor counts as still standing out while its figure is at
    /// least `release ×` the threshold. Default 0.5, in (0, 1].
    pub release: f64,
}

impl Default for Promotion {
    fn default() -> Self {
        Promotion {
            max_promoted: 64,
            window: Duration::from_secs(60),
            tick: Duration::from_secs(10),
            hold: Duration::from_secs(600),
            min_calls: 20,
            error_ratio_floor: 0.05,
            error_ratio_factor: 10.0,
            latency_factor: 5.0,
            p99_factor: 10.0,
            depth_threshold: 100,
            depth_ticks: 2,
            release: 0.5,
        }
    }
}

impl Promotion {
    /// Fewest calls in the window before the p99 rule counts: a p99 of fewer
    /// calls is their slowest one, and one slow call is no tail.
    pub const P99_MIN_CALLS: u64 = 100;

    /// The two windows figures are kept over: the rules' window and five times it.
    pub fn windows(&self) -> [Duration; 2] {
        [self.window, self.window.saturating_mul(5)]
    }

    /// A window's name as `/actors/top?window=` takes it: `1m`, `5m`, `30s`, `90s`.
    pub fn window_name(window: Duration) -> String {
        let s = window.as_secs();
        if window.subsec_nanos() != 0 || s == 0 {
            format!("{}ms", window.as_millis())
        } else if s.is_multiple_of(3600) {
            format!("{}h", s / 3600)
        } else if s.is_multiple_of(60) {
            format!("{}m", s / 60)
        } else {
            format!("{s}s")
        }
    }
}

/// Why an actor was promoted: the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Its error ratio over the window, against its type's.
    ErrorRatio,
    /// Its mean latency over the window against its type's p99, or (with
    /// native buckets) its p99 against its type's.
    Latency,
    /// Its queue depth, for consecutive ticks.
    QueueDepth,
    /// Its inbox depth, for consecutive ticks.
    InboxDepth,
}

impl Reason {
    /// Every reason, in label order.
    pub const ALL: [Reason; 4] = [
        Reason::ErrorRatio,
        Reason::Latency,
        Reason::QueueDepth,
        Reason::InboxDepth,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ErrorRatio => "error_ratio",
            Reason::Latency => "latency",
            Reason::QueueDepth => "queue_depth",
            Reason::InboxDepth => "inbox_depth",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The value an entry's `promoted` byte holds for this reason (0 is none).
    pub(crate) fn code(self) -> u8 {
        self as u8 + 1
    }

    pub(crate) fn from_code(code: u8) -> Option<Reason> {
        Reason::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_names() {
        assert_eq!(Promotion::window_name(Duration::from_secs(60)), "1m");
        assert_eq!(Promotion::window_name(Duration::from_secs(300)), "5m");
        assert_eq!(Promotion::window_name(Duration::from_secs(90)), "90s");
        assert_eq!(
            Promotion::window_name(Duration::from_millis(1500)),
            "1500ms"
        );
    }
}
