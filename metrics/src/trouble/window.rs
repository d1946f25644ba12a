//! Windowed figures: one actor's (in its entry) and one type's (in the
//! watch), as exponentially weighted rates, and the quantile of classic buckets.

use std::time::Duration;

use parking_lot::Mutex;

use crate::buckets::{ACTION_BUCKETS, MAX_BUCKETS};
use crate::cells::{Cell, HistogramTotal};
use crate::store::ActorEntry;

/// Figures per window: calls, errors, seconds of action time, busy retries.
pub(super) const CALLS: usize = 0;
pub(super) const ERRORS: usize = 1;
pub(super) const SECONDS: usize = 2;
pub(super) const BUSY: usize = 3;

/// One actor's windowed figures: 64 bytes in its entry, written by the tick,
/// read by the tick and by [`Metrics::top`](crate::Metrics::top).
#[derive(Debug, Default)]
pub(crate) struct Window(pub(super) Mutex<Figures>);

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Figures {
    /// The duration sum the last tick read.
    pub(super) last_seconds: f64,
    /// Per window (short, long): calls, errors, seconds, busy retries, per second.
    pub(super) rates: [[f32; 4]; 2],
    /// The low 32 bits of the counts the last tick read: a tick's delta is
    /// their wrapping difference (far fewer than 2^32 events per tick).
    pub(super) last_calls: u32,
    pub(super) last_errors: u32,
    pub(super) last_busy: u32,
    /// Consecutive ticks over the depth threshold.
    pub(super) over_ticks: u8,
}

impl Figures {
    pub(super) fn calls(&self, w: usize, window: Duration) -> f64 {
        f64::from(self.rates[w][CALLS]) * window.as_secs_f64()
    }

    pub(super) fn ratio(&self, w: usize, what: usize) -> Option<f64> {
        let calls = f64::from(self.rates[w][CALLS]);
        (calls > 0.0).then(|| f64::from(self.rates[w][what]) / calls)
    }
}

/// `rate += alpha × (sample − rate)`.
pub(super) fn ewma(rate: f64, sample: f64, alpha: f64) -> f64 {
    rate + alpha * (sample - rate)
}

/// The weight a tick of `dt` gets in a window of `window`.
pub(super) fn alpha(dt: Duration, window: Duration) -> f64 {
    1.0 - (-dt.as_secs_f64() / window.as_secs_f64()).exp()
}

/// What an entry's cells say now.
pub(super) struct Reading {
    pub(super) calls: u64,
    pub(super) errors: u64,
    pub(super) seconds: f64,
    pub(super) busy: u64,
    pub(super) queue: u64,
    pub(super) inbox: u64,
}

impl Reading {
    pub(super) fn of(e: &ActorEntry) -> Reading {
        let s = &e.series;
        Reading {
            calls: s.action_calls_total.get(),
            errors: s.action_errors_total.get(),
            seconds: s.action_duration_seconds.sum(),
            busy: s.sqlite_busy_total.get(),
            queue: Reading::queue(e),
            inbox: Reading::inbox(e),
        }
    }

    /// Messages in the actor's queue now.
    pub(super) fn queue(e: &ActorEntry) -> u64 {
        u64::try_from(e.series.queue_depth.get()).unwrap_or(0)
    }

    /// Items in the actor's inboxes now.
    pub(super) fn inbox(e: &ActorEntry) -> u64 {
        e.series
            .inbox_depth
            .used()
            .map(|(_, c)| u64::try_from(c.get()).unwrap_or(0))
            .sum()
    }
}

/// One type's windowed figures, from its per-action cells.
#[derive(Debug, Clone)]
pub(super) struct TypeWindow {
    pub(super) last_calls: u64,
    pub(super) last_errors: u64,
    pub(super) last_counts: [u64; MAX_BUCKETS + 1],
    /// Per window: calls and errors per second.
    pub(super) rates: [[f64; 2]; 2],
    /// Per window: classic action-duration bucket increments per second.
    pub(super) buckets: [[f64; MAX_BUCKETS + 1]; 2],
}

impl Default for TypeWindow {
    fn default() -> Self {
        TypeWindow {
            last_calls: 0,
            last_errors: 0,
            last_counts: [0; MAX_BUCKETS + 1],
            rates: [[0.0; 2]; 2],
            buckets: [[0.0; MAX_BUCKETS + 1]; 2],
        }
    }
}

impl TypeWindow {
    /// The type's action calls, errors and duration buckets now.
    pub(super) fn read(ty: &crate::store::TypeInner) -> (u64, u64, [u64; MAX_BUCKETS + 1]) {
        let mut calls = 0;
        let mut errors = 0;
        let mut hist = HistogramTotal::default();
        for (_, cells) in ty.actions.read().iter() {
            cells.action_calls_total.add_to(&mut calls);
            cells.action_errors_total.add_to(&mut errors);
            cells.action_duration_seconds.add_to(&mut hist);
        }
        (calls, errors, hist.classic_counts(&ACTION_BUCKETS))
    }

    pub(super) fn update(
        &mut self,
        now: (u64, u64, [u64; MAX_BUCKETS + 1]),
        dt: Duration,
        alphas: [f64; 2],
    ) {
        let secs = dt.as_secs_f64();
        let (calls, errors, counts) = now;
        let d_calls = calls.saturating_sub(self.last_calls) as f64 / secs;
        let d_errors = errors.saturating_sub(self.last_errors) as f64 / secs;
        for (w, a) in alphas.into_iter().enumerate() {
            self.rates[w][CALLS] = ewma(self.rates[w][CALLS], d_calls, a);
            self.rates[w][ERRORS] = ewma(self.rates[w][ERRORS], d_errors, a);
            for (rate, (&n, &last)) in self.buckets[w]
                .iter_mut()
                .zip(counts.iter().zip(&self.last_counts))
            {
                *rate = ewma(*rate, n.saturating_sub(last) as f64 / secs, a);
            }
        }
        self.last_calls = calls;
        self.last_errors = errors;
        self.last_counts = counts;
    }

    /// The p99 action latency over window `w` of the rest of the type: the
    /// type's buckets without `own_calls` per second at `own_mean` (the actor's
    /// own calls, placed at their mean: a slow actor with many calls does not
    /// raise its own bar). `None` when the rest saw no calls.
    pub(super) fn peer_p99(&self, w: usize, own_calls: f64, own_mean: f64) -> Option<f64> {
        let mut b = self.buckets[w];
        let own = &mut b[ACTION_BUCKETS.index_of(own_mean)];
        *own = (*own - own_calls).max(0.0);
        quantile(0.99, &b, ACTION_BUCKETS.bounds())
    }
}

/// The `q` quantile of classic bucket weights (non-cumulative, `+Inf` last),
/// interpolated linearly inside its bucket as `histogram_quantile` does; a rank
/// in `+Inf` answers the highest finite bound.
pub(crate) fn quantile(q: f64, weights: &[f64], bounds: &[f64]) -> Option<f64> {
    let total: f64 = weights.iter().take(bounds.len() + 1).sum();
    if total <= 0.0 || !total.is_finite() {
        return None;
    }
    let rank = q * total;
    let mut below = 0.0;
    for (i, &w) in weights.iter().take(bounds.len() + 1).enumerate() {
        if below + w >= rank && w > 0.0 {
            let Some(&upper) = bounds.get(i) else {
                return bounds.last().copied();
            };
            let lower = if i == 0 { 0.0 } else { bounds[i - 1] };
            return Some(lower + (upper - lower) * ((rank - below) / w));
        }
        below += w;
    }
    bounds.last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_64_bytes() {
        assert!(size_of::<Window>() <= 64, "{} bytes", size_of::<Window>());
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let bounds = [0.001, 0.01, 0.1];
        // 100 observations in (0.001, 0.01]: p99 at 99 % of that bucket.
        let w = [0.0, 100.0, 0.0, 0.0];
        let p = quantile(0.99, &w, &bounds).unwrap();
        assert!((p - (0.001 + 0.009 * 0.99)).abs() < 1e-12, "{p}");
        assert_eq!(quantile(0.99, &[0.0; 4], &bounds), None);
        // All past the last bound: the highest finite bound.
        assert_eq!(quantile(0.5, &[0.0, 0.0, 0.0, 5.0], &bounds), Some(0.1));
    }
}
