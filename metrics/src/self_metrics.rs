//! The subsystem's report on itself, registered in the instance's registry.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, IntGaugeVec, Opts, Registry};

use crate::buckets::SWEEP_BUCKETS;

/// Self-metrics; each is registered in the instance's `prometheus::Registry`.
#[derive(Debug)]
pub(crate) struct SelfMetrics {
    pub(crate) live: IntGauge,
    pub(crate) expiring: IntGauge,
    pub(crate) max: IntGauge,
    pub(crate) sweeps: IntCounter,
    pub(crate) removed: IntCounter,
    pub(crate) sweep_duration: Histogram,
    pub(crate) evicted_early: IntCounter,
    pub(crate) overflow: IntCounter,
    pub(crate) truncated: IntCounter,
    pub(crate) last_sweep: IntGauge,
}

impl SelfMetrics {
    pub(crate) fn register(registry: &Registry, max_retained: usize) -> prometheus::Result<Self> {
        let sets = IntGaugeVec::new(
            Opts::new(
                "actor_metrics_retained_label_sets",
                "Actor label sets held, by state: live (a registration is running) or expiring (stopped, waiting for the sweeper).",
            ),
            &["state"],
        )?;
        let counter = |name: &str, help: &str| -> prometheus::Result<IntCounter> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let gauge = |name: &str, help: &str| -> prometheus::Result<IntGauge> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        registry.register(Box::new(sets.clone()))?;
        let sweep_duration = Histogram::with_opts(
            HistogramOpts::new(
                "actor_metrics_sweep_duration_seconds",
                "Duration of one sweeper tick.",
            )
            .buckets(SWEEP_BUCKETS.bounds().to_vec()),
        )?;
        registry.register(Box::new(sweep_duration.clone()))?;
        let m = SelfMetrics {
            live: sets.with_label_values(&["live"]),
            expiring: sets.with_label_values(&["expiring"]),
            max: gauge(
                "actor_metrics_retained_label_sets_max",
                "Configured cap on retained actor label sets.",
            )?,
            sweeps: counter("actor_metrics_sweeps_total", "Sweeper ticks run.")?,
            removed: counter(
                "actor_metrics_series_removed_total",
                "Expired actor label sets removed; each removal drops every series of that actor at once.",
            )?,
            sweep_duration,
            evicted_early: counter(
                "actor_metrics_evicted_early_total",
                "Expiring actor label sets removed before their retention ended because the cap was reached.",
            )?,
            overflow: counter(
                "actor_metrics_overflow_total",
                "Actor registrations recorded under their type's overflow label set because every retained label set was live.",
            )?,
            truncated: counter(
                "actor_metrics_label_values_truncated_total",
                "Actor keys cut to the label value limit (each ends in a hash of the whole key).",
            )?,
            last_sweep: gauge(
                "actor_metrics_last_sweep_timestamp_seconds",
                "Unix time of the last completed sweep.",
            )?,
        };
        m.max.set(i64::try_from(max_retained).unwrap_or(i64::MAX));
        Ok(m)
    }
}
