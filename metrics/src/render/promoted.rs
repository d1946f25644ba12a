//! The two families that say which actors are promoted to `full` detail:
//! `actor_detail_promoted` (1 per promoted actor, with its `reason` and its
//! type's `actor_name`: the one per-actor series that names the type, so that
//! alerts can, at no series cost) and
//! `actor_type_detail_promotions_total` (per type and reason, at 0 from the
//! type's registration). Written after the aggregates, in the default scrape
//! only, through the same path as the registry's families. The promoted
//! actors' detail itself is the `?promoted=1` scrape's.

use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};

use crate::store::Snapshot;
use crate::trouble::Reason;

/// Per-actor family name.
pub(crate) const PROMOTED: &str = "actor_detail_promoted";
/// Per-type family name.
pub(crate) const PROMOTIONS: &str = "actor_type_detail_promotions_total";

fn pair(name: &str, value: &str) -> LabelPair {
    let mut p = LabelPair::default();
    p.set_name(name.to_owned());
    p.set_value(value.to_owned());
    p
}

fn family(name: &str, help: &str, t: MetricType, metric: Vec<Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_owned());
    f.set_help(help.to_owned());
    f.set_field_type(t);
    f.set_metric(metric);
    f
}

/// The families for `snapshot` (a default scrape, at whatever level: at
/// `full` the gauge still names the actors that stand out).
pub(crate) fn families(snapshot: &Snapshot) -> Vec<MetricFamily> {
    let promoted: Vec<Metric> = snapshot
        .entries
        .iter()
        .filter_map(|e| {
            let reason = e.window.promoted()?;
            let mut m = Metric::default();
            let l = &e.labels;
            m.set_label(vec![
                pair("actor_id_gen", l.actor_id_gen()),
                pair("actor_key", l.actor_key()),
                pair("actor_name", &e.ty.name),
                pair("envoy_key", l.envoy_key()),
                pair("reason", reason.as_str()),
            ]);
            let mut g = Gauge::default();
            g.set_value(1.0);
            m.set_gauge(g);
            Some(m)
        })
        .collect();
    let mut totals = Vec::new();
    for t in &snapshot.types {
        for reason in Reason::ALL {
            let mut m = Metric::default();
            m.set_label(vec![
                pair("actor_name", &t.ty.name),
                pair("reason", reason.as_str()),
            ]);
            let mut c = Counter::default();
            let n = t.ty.promotions[reason as usize].load(std::sync::atomic::Ordering::Relaxed);
            c.set_value(n as f64);
            m.set_counter(c);
            totals.push(m);
        }
    }
    let mut out = Vec::with_capacity(2);
    if !promoted.is_empty() {
        out.push(family(
            PROMOTED,
            "1 while the actor is promoted to full detail because it stands out from its type; reason says how.",
            MetricType::GAUGE,
            promoted,
        ));
    }
    if !totals.is_empty() {
        out.push(family(
            PROMOTIONS,
            "Promotions of the type's actors to full detail, by reason.",
            MetricType::COUNTER,
            totals,
        ));
    }
    out
}
