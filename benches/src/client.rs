//! The second peer: the per-actor families in the official Rust client,
//! `prometheus-client`, written as its documentation shows: one
//! [`Family`] per catalogue family, keyed by a derived [`EncodeLabelSet`]
//! struct, registered in a [`Registry`] and scraped with
//! [`prometheus_client::encoding::text::encode`] (OpenMetrics text).

use actor_metrics::families::Kind;
use actor_metrics::families::{FAMILIES, FamilyInfo};
use actor_metrics::testing::Op;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::TypedMetric;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};

use crate::actors::{ENVOY, PeerActor, actor_id_gen, actor_key};

/// The three per-actor labels, as a `prometheus-client` label set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActorLabels {
    /// `"{actor_id}:{generation}"`.
    pub actor_id_gen: String,
    /// The actor's user key.
    pub actor_key: String,
    /// The host process's identity.
    pub envoy_key: String,
}

/// The per-actor labels plus a family's extra enum label.
///
/// The extra label's *name* differs by family (`inbox`, `kind`, `reason`,
/// `phase`, `op`), so it is carried as data (the catalogue's `&'static str`)
/// rather than as a field name: one struct serves every labelled family.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExtraLabels {
    /// `actor_id_gen`, `actor_key`, `envoy_key`.
    #[prometheus(flatten)]
    pub actor: ActorLabels,
    /// `[(label name, value)]`.
    #[prometheus(flatten)]
    pub extra: [(&'static str, &'static str); 1],
}

/// Builds a family's histograms with the catalogue's buckets.
#[derive(Clone, Copy, Debug)]
struct Bounds(&'static [f64]);

impl MetricConstructor<Histogram> for Bounds {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// One catalogue family: keyed by the actor labels alone, or with the extra label.
#[derive(Debug)]
enum ByLabels<M, C = fn() -> M> {
    Actor(Family<ActorLabels, M, C>),
    Extra(Family<ExtraLabels, M, C>),
}

impl<M, C> ByLabels<M, C>
where
    M: EncodeMetric + TypedMetric + std::fmt::Debug + Send + Sync + 'static,
    C: MetricConstructor<M> + Clone + Send + Sync + 'static,
{
    /// The family of `f`, registered in `registry` under its OpenMetrics name.
    fn new(f: &FamilyInfo, constructor: C, registry: &mut Registry) -> Self {
        fn registered<S, M, C>(f: &FamilyInfo, c: C, registry: &mut Registry) -> Family<S, M, C>
        where
            S: Clone + std::hash::Hash + Eq,
            Family<S, M, C>: Metric + Clone,
        {
            let family = Family::new_with_constructor(c);
            registry.register(openmetrics_name(f), f.help, family.clone());
            family
        }
        match f.extra_label {
            None => ByLabels::Actor(registered(f, constructor, registry)),
            Some(_) => ByLabels::Extra(registered(f, constructor, registry)),
        }
    }

    /// Runs `op` on the child for `labels` (+ `extra`), creating it if needed.
    fn with(
        &self,
        labels: &ActorLabels,
        extra: Option<(&'static str, &'static str)>,
        op: impl FnOnce(&M),
    ) {
        match (self, extra) {
            (ByLabels::Actor(f), None) => op(&f.get_or_create(labels)),
            (ByLabels::Extra(f), Some(e)) => op(&f.get_or_create(&ExtraLabels {
                actor: labels.clone(),
                extra: [e],
            })),
            _ => panic!("extra label {extra:?} does not fit the family's label set"),
        }
    }
}

#[derive(Debug)]
enum ClientFamily {
    Counter(ByLabels<Counter>),
    Gauge(ByLabels<Gauge>),
    Histogram(ByLabels<Histogram, Bounds>),
}

/// The per-actor families as `prometheus-client` [`Family`]s in one
/// [`Registry`]: same sample names, help, label names and buckets as the
/// catalogue. No `actor_type_*` aggregates.
#[derive(Debug)]
pub struct ClientMirror {
    /// The registry every family is registered in.
    pub registry: Registry,
    /// Indexed like [`FAMILIES`].
    families: Vec<ClientFamily>,
}

impl Default for ClientMirror {
    fn default() -> Self {
        Self::new()
    }
}

/// The name a counter family is registered under: OpenMetrics names the family
/// without `_total` and the encoder appends it to the sample.
///
/// # Panics
/// When a counter family's name does not end in `_total`: its samples could not
/// have the same name as ours, so the peer would not mirror it.
pub fn openmetrics_name(family: &FamilyInfo) -> &'static str {
    match family.kind {
        Kind::Counter => family.name.strip_suffix("_total").unwrap_or_else(|| {
            panic!(
                "{}: a counter without `_total` has no OpenMetrics twin",
                family.name
            )
        }),
        Kind::Gauge | Kind::Histogram => family.name,
    }
}

impl ClientMirror {
    /// Builds and registers one family per catalogue family.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let families = FAMILIES
            .iter()
            // No wildcard: a new `Kind` does not compile here until it is mirrored.
            .map(|f| match f.kind {
                Kind::Counter => {
                    ClientFamily::Counter(ByLabels::new(f, Counter::default, &mut registry))
                }
                Kind::Gauge => ClientFamily::Gauge(ByLabels::new(f, Gauge::default, &mut registry)),
                Kind::Histogram => {
                    let b = f.buckets.expect("histograms declare buckets").bounds();
                    ClientFamily::Histogram(ByLabels::new(f, Bounds(b), &mut registry))
                }
            })
            .collect();
        ClientMirror { registry, families }
    }

    /// Bench actor `labels` in this peer, for [`populate`](fn@crate::populate).
    pub fn actor(&self, labels: ActorLabels) -> ClientActor<'_> {
        ClientActor {
            client: self,
            labels,
        }
    }

    /// `encoding::text::encode` (OpenMetrics text, `# EOF` included), appended to `out`.
    pub fn encode_into(&self, out: &mut String) {
        prometheus_client::encoding::text::encode(out, &self.registry)
            .expect("encoding to a String cannot fail");
    }
}

/// One bench actor's series in a [`ClientMirror`].
#[derive(Debug)]
pub struct ClientActor<'a> {
    client: &'a ClientMirror,
    labels: ActorLabels,
}

impl PeerActor for ClientActor<'_> {
    fn apply(&self, fi: usize, extra: Option<&'static str>, op: Op) {
        let f = &FAMILIES[fi];
        let extra = extra.map(|v| (f.extra_label.expect("a value needs a label"), v));
        match (&self.client.families[fi], op) {
            (ClientFamily::Counter(c), Op::Inc(n)) => c.with(&self.labels, extra, |c| {
                c.inc_by(n);
            }),
            (ClientFamily::Gauge(g), Op::Set(x)) => g.with(&self.labels, extra, |g| {
                g.set(x);
            }),
            (ClientFamily::Histogram(h), Op::Observe(x)) => {
                h.with(&self.labels, extra, |h| h.observe(x))
            }
            _ => panic!("{}: op {op:?} does not fit the kind", f.name),
        }
    }
}

/// Bench actor `i`'s labels as `prometheus-client` keys them.
pub fn client_labels(i: usize) -> ActorLabels {
    ActorLabels {
        actor_id_gen: actor_id_gen(i),
        actor_key: actor_key(i),
        envoy_key: ENVOY.into(),
    }
}
