//! The first peer: the per-actor families as `prometheus` `MetricVec`s
//! ([`Mirror`]), one bench actor's children of them ([`MirrorActor`]).

use actor_metrics::families::FAMILIES;
use actor_metrics::families::Kind;
use actor_metrics::testing::Op;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::actors::{ACTOR_LABELS, PeerActor};

/// The per-actor families as `prometheus` `MetricVec`s in one `Registry`: same
/// names, help, label names (`actor_id_gen`, `actor_key`, `envoy_key` and the
/// extra label) and buckets as the catalogue. No `actor_type_*` aggregates.
pub struct Mirror {
    /// The registry every vec is registered in.
    pub registry: Registry,
    /// Indexed like [`FAMILIES`].
    vecs: Vec<MirrorVec>,
}

enum MirrorVec {
    Counter(IntCounterVec),
    Gauge(IntGaugeVec),
    Histogram(HistogramVec),
}

impl Default for Mirror {
    fn default() -> Self {
        Self::new()
    }
}

impl Mirror {
    /// Builds and registers one vec per catalogue family.
    pub fn new() -> Self {
        let registry = Registry::new();
        let vecs = FAMILIES
            .iter()
            .map(|f| {
                let mut labels = ACTOR_LABELS.to_vec();
                labels.extend(f.extra_label);
                let opts = Opts::new(f.name, f.help);
                let v = match f.kind {
                    Kind::Counter => MirrorVec::Counter(IntCounterVec::new(opts, &labels).unwrap()),
                    Kind::Gauge => MirrorVec::Gauge(IntGaugeVec::new(opts, &labels).unwrap()),
                    Kind::Histogram => {
                        let b = f.buckets.expect("histograms declare buckets").bounds();
                        let h = HistogramOpts::from(opts).buckets(b.to_vec());
                        MirrorVec::Histogram(HistogramVec::new(h, &labels).unwrap())
                    }
                };
                let c: Box<dyn prometheus::core::Collector> = match &v {
                    MirrorVec::Counter(v) => Box::new(v.clone()),
                    MirrorVec::Gauge(v) => Box::new(v.clone()),
                    MirrorVec::Histogram(v) => Box::new(v.clone()),
                };
                registry.register(c).expect("catalogue names are unique");
                v
            })
            .collect();
        Mirror { registry, vecs }
    }

    /// Bench actor `labels` (`[actor_id_gen, actor_key, envoy_key]`) in this
    /// peer, for [`populate`](fn@crate::populate).
    pub fn actor<'a>(&'a self, labels: [&'a str; 3]) -> MirrorActor<'a> {
        MirrorActor {
            mirror: self,
            labels,
        }
    }

    /// `registry.gather()` then `TextEncoder::encode`, appended to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        TextEncoder::new()
            .encode(&self.registry.gather(), out)
            .expect("encoding to a Vec cannot fail");
    }
}

/// One bench actor's series in a [`Mirror`].
#[derive(Clone, Copy)]
pub struct MirrorActor<'a> {
    mirror: &'a Mirror,
    labels: [&'a str; 3],
}

impl PeerActor for MirrorActor<'_> {
    fn apply(&self, fi: usize, extra: Option<&'static str>, op: Op) {
        let l = self.labels;
        let mut vals = [l[0], l[1], l[2], ""];
        let vals: &[&str] = match extra {
            Some(e) => {
                vals[3] = e;
                &vals
            }
            None => &vals[..3],
        };
        match (&self.mirror.vecs[fi], op) {
            (MirrorVec::Counter(v), Op::Inc(n)) => v.with_label_values(vals).inc_by(n),
            (MirrorVec::Gauge(v), Op::Set(x)) => v.with_label_values(vals).set(x),
            (MirrorVec::Histogram(v), Op::Observe(x)) => v.with_label_values(vals).observe(x),
            _ => panic!("{}: op {op:?} does not fit the kind", FAMILIES[fi].name),
        }
    }
}
