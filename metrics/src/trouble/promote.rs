//! The tick: each actor's figures taken and judged against its type, the
//! promoted set kept within `max_promoted`, and a log event per promotion and
//! demotion carrying the numbers that caused it.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::window::{CALLS, ERRORS, Figures, Reading, SECONDS, TypeWindow, alpha, ewma, micros};
use super::{Promotion, Reason};
use crate::native::{self, PER_OCTAVE};
use crate::store::{ActorEntry, EntryRef, Store};

/// The share of calls above a p99 line that puts the p99 above it.
const P99_SHARE: f64 = 0.01;

/// Over `max_promoted`, a newcomer takes a promoted actor's place only when
/// its score is at least this many times that actor's: among actors that
/// stand out about equally the promoted set does not change every tick (each
/// change is a series set started in the promoted job and one left stale,
/// and two log lines), while an actor clearly worse still gets in.
const DISPLACE_FACTOR: f64 = 2.0;

/// Why and how much an actor stands out: `score` is figure / threshold.
#[derive(Debug, Clone, Copy)]
struct Verdict {
    reason: Reason,
    /// Which rule: what `figure` and `threshold` measure.
    rule: &'static str,
    score: f64,
    figure: f64,
    threshold: f64,
    calls: f64,
}

/// One promoted actor.
struct Promoted {
    entry: EntryRef,
    reason: Reason,
    last_hot: Instant,
    /// Its score at the last tick (0 when it no longer stood out).
    score: f64,
}

/// The tick's state: baselines, type windows and the promoted set.
#[derive(Default)]
pub(crate) struct Watch {
    state: Mutex<WatchState>,
}

#[derive(Default)]
struct WatchState {
    last_tick: Option<Instant>,
    /// The last tick that took figures (the first one only takes baselines).
    figures_at: Option<Instant>,
    types: Vec<TypeWindow>,
    promoted: Vec<Promoted>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

/// When the last tick that took figures ran; `None` before the second tick
/// (the first takes baselines only).
pub(crate) fn figures_at(store: &Store) -> Option<Instant> {
    store.watch.state.lock().figures_at
}

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchReport {
    /// Actors whose figures were taken.
    pub actors: usize,
    /// Actors promoted by this tick.
    pub promoted: usize,
    /// Actors demoted by this tick (hold over, displaced, or removed).
    pub demoted: usize,
    /// Of those, actors that still stood out but gave their place to one at
    /// least twice as bad (an actor in its hold that no longer stands out
    /// gives its place to any newcomer, and is not counted here).
    pub displaced: usize,
    /// Actors promoted after this tick.
    pub promoted_now: usize,
    /// Actors that qualified but did not fit under `max_promoted`.
    pub over_budget: usize,
}

/// Takes every actor's figures and applies the rules at `now`.
pub(crate) fn tick(store: &Store, now: Instant) -> WatchReport {
    let cfg = &store.config.promotion;
    let windows = cfg.windows();
    let snapshot = store.snapshot(|e| !e.overflow());
    let mut state = store.watch.state.lock();
    let mut report = WatchReport {
        actors: snapshot.entries.len(),
        ..WatchReport::default()
    };
    let dt = state.last_tick.map(|t| now.saturating_duration_since(t));
    state.last_tick = Some(now);
    let primed = dt.is_some();
    let dt = match dt {
        Some(dt) if dt.is_zero() => return report,
        Some(dt) => dt,
        None => cfg.tick,
    };
    let alphas = windows.map(|w| alpha(dt, w));

    // The types first: every actor is judged against its type's figures.
    state
        .types
        .resize_with(snapshot.types.len(), TypeWindow::default);
    for (tw, t) in state.types.iter_mut().zip(&snapshot.types) {
        let now_counts = TypeWindow::read(&t.ty);
        if primed {
            tw.update(now_counts, dt, alphas);
        } else {
            (tw.last_calls, tw.last_errors, tw.last_counts) = now_counts;
        }
    }

    let mut verdicts: Vec<(usize, Verdict)> = Vec::new();
    let native = store.config.native_histograms;
    for (i, e) in snapshot.entries.iter().enumerate() {
        let reading = Reading::of(e);
        let mut f = e.window.read();
        let called = reading.calls as u32 != f.last_calls;
        if primed {
            advance(&mut f, &reading, dt, alphas);
        } else {
            f.last_calls = reading.calls as u32;
            f.last_errors = reading.errors as u32;
            f.last_busy = reading.busy as u32;
            f.last_micros = micros(reading.seconds);
        }
        let ty = state.types.get(e.ty.index);
        if native {
            follow_line(
                cfg,
                &mut f,
                e,
                ty,
                called,
                primed.then_some((dt, alphas[0])),
            );
        }
        let depth = reading.queue.max(reading.inbox);
        f.over_ticks = if depth > cfg.depth_threshold {
            f.over_ticks.saturating_add(1)
        } else {
            0
        };
        e.window.write(&f);
        if let Some(v) = judge(cfg, &f, &reading, ty, native) {
            verdicts.push((i, v));
        }
    }
    if cfg.max_promoted > 0 || !state.promoted.is_empty() {
        apply(
            store,
            &mut state,
            &snapshot.entries,
            &verdicts,
            now,
            &mut report,
        );
    }
    report.promoted_now = state.promoted.len();
    if primed {
        // Once the whole tick is done: figures and promotions.
        state.figures_at = Some(now);
    }
    report
}

/// One tick's update of an actor's rates.
fn advance(f: &mut Figures, r: &Reading, dt: Duration, alphas: [f64; 2]) {
    let secs = dt.as_secs_f64();
    let delta = |now: u64, last: u32| f64::from((now as u32).wrapping_sub(last)) / secs;
    let now_micros = micros(r.seconds);
    let samples = [
        delta(r.calls, f.last_calls),
        delta(r.errors, f.last_errors),
        f64::from(now_micros.wrapping_sub(f.last_micros)) / 1e6 / secs,
        delta(r.busy, f.last_busy),
    ];
    for (w, a) in alphas.into_iter().enumerate() {
        for (k, s) in samples.into_iter().enumerate() {
            f.rates[w][k] = ewma(f64::from(f.rates[w][k]), s, a) as f32;
        }
    }
    f.last_calls = r.calls as u32;
    f.last_errors = r.errors as u32;
    f.last_busy = r.busy as u32;
    f.last_micros = now_micros;
}

/// Keeps the rate of the actor's calls above its p99 line, `p99_factor ×`
/// the p99 of the rest of its type, from its native buckets. The line is a
/// bucket key, and it moves only when the type's p99 moved by more than half
/// an octave: the count read at the last tick must be above the same line to
/// give a rate (a moved line takes a new baseline, and the rate waits a tick).
/// `step` is `None` on the baseline tick. An actor not `called` since the
/// last tick has no new observation above any line: neither its buckets nor
/// its type's p99 are read, and its line moves when it is called again.
fn follow_line(
    cfg: &Promotion,
    f: &mut Figures,
    e: &ActorEntry,
    ty: Option<&TypeWindow>,
    called: bool,
    step: Option<(Duration, f64)>,
) {
    if !called {
        // Nothing new above any line: the rate decays, the line waits.
        if let Some((_, alpha)) = step {
            f.above_rate = ewma(f64::from(f.above_rate), 0.0, alpha) as f32;
        }
        return;
    }
    let own_calls = f64::from(f.rates[0][CALLS]);
    let Some(p99) = ty
        .and_then(|t| t.peer_p99(0, own_calls, f.ratio(0, SECONDS).unwrap_or(0.0)))
        .filter(|p| *p > 0.0)
    else {
        return;
    };
    let key = native::key(cfg.p99_factor * p99).clamp(-i32::from(i16::MAX), i32::from(i16::MAX));
    let moved = (key - i32::from(f.above_key)).abs() > PER_OCTAVE / 2;
    let line = if moved { key as i16 } else { f.above_key };
    let above = e
        .series
        .action_duration_seconds
        .native_above(i32::from(line)) as u32;
    if let Some((dt, alpha)) = step
        && !moved
    {
        let sample = f64::from(above.wrapping_sub(f.last_above)) / dt.as_secs_f64();
        f.above_rate = ewma(f64::from(f.above_rate), sample, alpha) as f32;
    }
    f.above_key = line;
    f.last_above = above;
}

/// The actor's worst reason and how far it is past that threshold, if any
/// figure reaches `release ×` its threshold (the promotion test is `score ≥ 1`).
fn judge(
    cfg: &Promotion,
    f: &Figures,
    r: &Reading,
    ty: Option<&TypeWindow>,
    native: bool,
) -> Option<Verdict> {
    let window = cfg.window;
    let calls = f.calls(0, window);
    let mut best: Option<Verdict> = None;
    let mut consider = |v: Verdict| {
        if v.score.is_finite() && best.is_none_or(|b| v.score > b.score) {
            best = Some(v);
        }
    };
    if calls >= cfg.min_calls as f64 {
        if let (Some(ratio), Some(ty)) = (f.ratio(0, ERRORS), ty) {
            // The rest of its type: its own calls taken out.
            let peer_calls = ty.rates[0][CALLS] - f64::from(f.rates[0][CALLS]);
            let peer_errors = (ty.rates[0][ERRORS] - f64::from(f.rates[0][ERRORS])).max(0.0);
            let peer_ratio = if peer_calls > 1e-9 {
                (peer_errors / peer_calls).min(1.0)
            } else {
                0.0
            };
            let threshold = cfg
                .error_ratio_floor
                .max(cfg.error_ratio_factor * peer_ratio);
            consider(Verdict {
                reason: Reason::ErrorRatio,
                rule: "error ratio against max(floor, factor × the rest of its type's)",
                score: ratio / threshold,
                figure: ratio,
                threshold,
                calls,
            });
        }
        let own_calls = f64::from(f.rates[0][CALLS]);
        if let Some(mean) = f.ratio(0, SECONDS)
            && let Some(p99) = ty.and_then(|t| t.peer_p99(0, own_calls, mean))
            && p99 > 0.0
        {
            let threshold = cfg.latency_factor * p99;
            consider(Verdict {
                reason: Reason::Latency,
                rule: "mean latency (s) against latency_factor × its type's p99",
                score: mean / threshold,
                figure: mean,
                threshold,
                calls,
            });
        }
    }
    if native && calls >= cfg.min_calls.max(Promotion::P99_MIN_CALLS) as f64 {
        // Its p99 is above the line when more than 1 % of its calls are.
        let share = f64::from(f.above_rate) / f64::from(f.rates[0][CALLS]);
        consider(Verdict {
            reason: Reason::Latency,
            rule: "share of calls above p99_factor × its type's p99, against 1 %",
            score: share / P99_SHARE,
            figure: share,
            threshold: P99_SHARE,
            calls,
        });
    }
    let threshold = cfg.depth_threshold as f64;
    for (reason, depth) in [(Reason::QueueDepth, r.queue), (Reason::InboxDepth, r.inbox)] {
        let score = depth as f64 / threshold;
        // Promotion needs the depth held for `depth_ticks`; standing out after
        // promotion needs only the release line.
        let held = f.over_ticks >= cfg.depth_ticks;
        consider(Verdict {
            reason,
            rule: "items against depth_threshold",
            score: if held { score } else { score.min(0.999) },
            figure: depth as f64,
            threshold,
            calls,
        });
    }
    best.filter(|v| v.score >= cfg.release)
}

/// The promoted set after one tick: keep whoever still stands out or is in
/// hold, add new qualifiers, keep the worst `max_promoted`, and say so.
fn apply(
    store: &Store,
    state: &mut WatchState,
    entries: &[EntryRef],
    verdicts: &[(usize, Verdict)],
    now: Instant,
    report: &mut WatchReport,
) {
    let cfg = &store.config.promotion;
    let by_entry: std::collections::HashMap<*const ActorEntry, Verdict> = verdicts
        .iter()
        .map(|(i, v)| (EntryRef::as_ptr(&entries[*i]), *v))
        .collect();
    let present: std::collections::HashSet<*const ActorEntry> =
        entries.iter().map(EntryRef::as_ptr).collect();

    let mut kept: Vec<Promoted> = Vec::with_capacity(state.promoted.len());
    for mut p in std::mem::take(&mut state.promoted) {
        let key = EntryRef::as_ptr(&p.entry);
        if !present.contains(&key) {
            demote(&p, "removed", report);
            continue;
        }
        match by_entry.get(&key) {
            Some(v) => {
                p.last_hot = now;
                p.score = v.score;
            }
            None => p.score = 0.0,
        }
        if now.saturating_duration_since(p.last_hot) >= cfg.hold {
            demote(&p, "hold over", report);
            continue;
        }
        kept.push(p);
    }
    let mut fresh: Vec<(Promoted, Verdict)> = Vec::new();
    for (i, v) in verdicts {
        let e = &entries[*i];
        if v.score >= 1.0 && !kept.iter().any(|p| EntryRef::ptr_eq(&p.entry, e)) {
            fresh.push((
                Promoted {
                    entry: e.clone(),
                    reason: v.reason,
                    last_hot: now,
                    score: v.score,
                },
                *v,
            ));
        }
    }
    // Over budget: the worst stay, and a newcomer must be `DISPLACE_FACTOR`
    // times worse than the promoted actor it displaces.
    let room = cfg.max_promoted;
    if kept.len() + fresh.len() > room {
        fresh.sort_by(|a, b| b.1.score.total_cmp(&a.1.score));
        kept.sort_by(|a, b| b.score.total_cmp(&a.score));
        while kept.len() + fresh.len() > room {
            let worst_fresh = fresh.last().map(|f| f.1.score);
            let worst_kept = kept.last().map(|p| p.score);
            match (worst_fresh, worst_kept) {
                (Some(f), Some(k)) if f >= DISPLACE_FACTOR * k => {
                    let p = kept.pop().expect("non-empty");
                    // A score of 0: it no longer stands out (only its hold
                    // kept it), so any newcomer takes its place.
                    if p.score > 0.0 {
                        report.displaced += 1;
                        demote(&p, "displaced by a worse actor", report);
                    } else {
                        demote(
                            &p,
                            "no longer stands out; a newcomer took its place",
                            report,
                        );
                    }
                }
                (Some(_), _) => {
                    fresh.pop();
                    report.over_budget += 1;
                }
                (None, Some(_)) => {
                    let p = kept.pop().expect("non-empty");
                    demote(&p, "over max_promoted", report);
                }
                (None, None) => break,
            }
        }
    }
    for (p, v) in fresh {
        p.entry
            .window
            .promoted
            .store(p.reason.code(), std::sync::atomic::Ordering::Relaxed);
        p.entry.ty.promotions[p.reason.index()].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        report.promoted += 1;
        tracing::warn!(
            actor_name = &*p.entry.ty.name,
            actor_key = p.entry.labels.actor_key(),
            actor_id_gen = p.entry.labels.actor_id_gen(),
            reason = p.reason.as_str(),
            rule = v.rule,
            figure = v.figure,
            threshold = v.threshold,
            calls_in_window = v.calls.round(),
            hold_secs = cfg.hold.as_secs(),
            "actor promoted to full detail: it stands out from its type"
        );
        kept.push(p);
    }
    state.promoted = kept;
}

fn demote(p: &Promoted, why: &'static str, report: &mut WatchReport) {
    p.entry
        .window
        .promoted
        .store(0, std::sync::atomic::Ordering::Relaxed);
    report.demoted += 1;
    tracing::info!(
        actor_name = &*p.entry.ty.name,
        actor_key = p.entry.labels.actor_key(),
        actor_id_gen = p.entry.labels.actor_id_gen(),
        reason = p.reason.as_str(),
        last_score = p.score,
        why,
        "actor demoted to default detail"
    );
}
