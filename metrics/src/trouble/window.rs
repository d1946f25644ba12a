//! Windowed figures: one actor's (in its entry) and one type's (in the
//! watch), as exponentially weighted rates, and the quantile of classic buckets.

use std::time::Duration;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicI16, AtomicU8, AtomicU32};

use crate::buckets::{ACTION_BUCKETS, MAX_BUCKETS};
use crate::cells::{Cell, HistogramTotal};
use crate::store::ActorEntry;

/// Figures per window: calls, errors, seconds of action time, busy retries.
pub(super) const CALLS: usize = 0;
pub(super) const ERRORS: usize = 1;
pub(super) const SECONDS: usize = 2;
pub(super) const BUSY: usize = 3;

/// One actor's windowed figures and its promotion: 60 bytes of atomics in
/// its entry. The tick is the only writer (it holds the watch's lock); `top`
/// and the renderer read without a lock. A reader may see one tick's rates
/// next to the previous tick's for another figure: each is a ranking figure,
/// never a total.
#[derive(Debug, Default)]
pub(crate) struct Window {
    /// Per window (short, long): calls, errors, seconds, busy retries per
    /// second, as `f32` bits.
    rates: [[AtomicU32; 4]; 2],
    /// The low 32 bits of the counts the last tick read (calls, errors, busy
    /// retries) and of the duration sum in microseconds: a tick's delta is
    /// their wrapping difference (far fewer than 2^32 events, and 4,295 s of
    /// action time, per tick).
    last: [AtomicU32; 4],
    /// Calls above the p99 line per second (short window), as `f32` bits.
    above_rate: AtomicU32,
    /// The low 32 bits of the observations above the line the last tick read.
    last_above: AtomicU32,
    /// The native bucket key of the p99 line `last_above` was read at (0, the
    /// 1 s bucket, for a new entry: nothing was above any line then).
    above_key: AtomicI16,
    /// Consecutive ticks over the depth threshold.
    over_ticks: AtomicU8,
    /// Why the actor is promoted to `full` detail
    /// ([`Reason::code`](super::Reason::code)), 0 when it is not.
    pub(crate) promoted: AtomicU8,
}

/// A [`Window`] read at one moment, or about to be written by the tick.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Figures {
    /// Per window (short, long): calls, errors, seconds, busy retries, per second.
    pub(super) rates: [[f32; 4]; 2],
    /// Low 32 bits of calls, errors, busy retries and duration microseconds
    /// at the last tick.
    pub(super) last_calls: u32,
    pub(super) last_errors: u32,
    pub(super) last_busy: u32,
    pub(super) last_micros: u32,
    /// Calls above the p99 line per second over the short window.
    pub(super) above_rate: f32,
    pub(super) last_above: u32,
    pub(super) above_key: i16,
    /// Consecutive ticks over the depth threshold.
    pub(super) over_ticks: u8,
}

impl Window {
    /// Every figure, each read on its own.
    pub(super) fn read(&self) -> Figures {
        let f32_of = |a: &AtomicU32| f32::from_bits(a.load(Relaxed));
        let [calls, errors, busy, micros] = self.last.each_ref().map(|a| a.load(Relaxed));
        Figures {
            rates: self.rates.each_ref().map(|w| w.each_ref().map(f32_of)),
            last_calls: calls,
            last_errors: errors,
            last_busy: busy,
            last_micros: micros,
            above_rate: f32_of(&self.above_rate),
            last_above: self.last_above.load(Relaxed),
            above_key: self.above_key.load(Relaxed),
            over_ticks: self.over_ticks.load(Relaxed),
        }
    }

    /// Stores what the tick computed (the tick is the only writer).
    pub(super) fn write(&self, f: &Figures) {
        for (w, rates) in self.rates.iter().zip(&f.rates) {
            for (a, r) in w.iter().zip(rates) {
                a.store(r.to_bits(), Relaxed);
            }
        }
        for (a, v) in
            self.last
                .iter()
                .zip([f.last_calls, f.last_errors, f.last_busy, f.last_micros])
        {
            a.store(v, Relaxed);
        }
        self.above_rate.store(f.above_rate.to_bits(), Relaxed);
        self.last_above.store(f.last_above, Relaxed);
        self.above_key.store(f.above_key, Relaxed);
        self.over_ticks.store(f.over_ticks, Relaxed);
    }

    /// The promotion reason, if any.
    pub(crate) fn promoted(&self) -> Option<super::Reason> {
        super::Reason::from_code(self.promoted.load(Relaxed))
    }
}

/// The low 32 bits of a duration sum in microseconds.
pub(super) fn micros(seconds: f64) -> u32 {
    (seconds * 1e6) as u64 as u32
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
    fn a_window_with_its_promotion_is_at_most_60_bytes() {
        assert!(size_of::<Window>() <= 60, "{} bytes", size_of::<Window>());
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
