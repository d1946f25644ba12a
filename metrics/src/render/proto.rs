//! The protobuf exposition: length-delimited `io.prometheus.client.MetricFamily`
//! messages (the types in `client_model.rs`, encoded by `prost`), with native
//! histograms.
//!
//! A family of many actors is written as several consecutive messages of the
//! same name (at most [`BATCH`] metrics each), so a message never has to be
//! held whole and a chunk stays bounded; Prometheus reads each message on its
//! own. Per actor below `full`, a histogram is sent as its native buckets only
//! (one series in Prometheus); at `full`, and for aggregates, with its classic
//! buckets too.
//!
//! Exemplars ride on the classic buckets and the counters that keep them
//! (`Bucket.exemplar`, `Counter.exemplar`), where OpenMetrics writes them: a
//! histogram sent as native buckets only carries none. The `+Inf` bucket,
//! implicit otherwise, is sent when it has an exemplar.

use std::sync::{Arc, OnceLock};

use prost::Message as _;

use super::client_model::{
    Bucket, BucketSpan, Counter, EncodedFamily, Exemplar as ExemplarMessage, Gauge, Histogram,
    LabelPair, Metric, MetricFamily, MetricType, Summary, Timestamp, classic, empty, family, pair,
};
use crate::buckets::{SCHEMA, ZERO_THRESHOLD};
use crate::cells::{Cell, HistogramTotal, Kind};
use crate::exemplar::{Carrier, Exemplar, Kept};
use crate::families::{ActorSeries, FAMILIES, FAMILY_COUNT, FamilyInfo, for_families};

use crate::labels::{ActorLabels, LabelEnum};
use crate::render::{Actors, Sink, Style, TypeView, collect_labels, registry};
use crate::store::ActorEntry;

/// The `Content-Type` of the format (and what a scrape's `Accept` names to get it).
pub(crate) const CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// This format's slot in each entry's label cache.
const LABEL_SLOT: usize = 1;

/// Most metrics in one `MetricFamily` message.
const BATCH: usize = 256;

fn actor_pairs(labels: &ActorLabels) -> Vec<LabelPair> {
    labels.pairs().iter().map(|(n, v)| pair(n, v)).collect()
}

/// An entry's label pairs as encoded `Metric.label` fields, encoded on the
/// entry's first protobuf scrape and kept with it (like the text label block).
fn label_block(e: &ActorEntry) -> Arc<[u8]> {
    e.label_cache.bytes(LABEL_SLOT, || {
        Arc::from(empty(actor_pairs(&e.labels)).encode_to_vec())
    })
}

/// One `Metric` message's bytes: the actor's encoded label pairs, then `m`
/// (the extra label, if any, and the value) appended to them.
fn with_labels(labels: &[u8], m: &Metric) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(labels.len() + m.encoded_len());
    bytes.extend_from_slice(labels);
    // Encoding into a Vec cannot fail (it grows as needed).
    let _ = m.encode(&mut bytes);
    bytes
}

/// An exemplar as its message.
fn exemplar_message(e: &Exemplar) -> ExemplarMessage {
    ExemplarMessage {
        label: vec![
            pair("trace_id", &e.trace_id.to_string()),
            pair("span_id", &e.span_id.to_string()),
        ],
        value: Some(e.value),
        // A clock before 1970 (timestamp 0) sends no time.
        timestamp: (e.timestamp_ns > 0).then_some(Timestamp {
            seconds: (e.timestamp_ns / 1_000_000_000) as i64,
            nanos: (e.timestamp_ns % 1_000_000_000) as i32,
        }),
    }
}

/// A total of family `fi` as one `Metric`, with the exemplars `kept` for it.
trait AsMetric {
    fn as_metric(&self, fi: usize, style: Style, label: Vec<LabelPair>, kept: Kept<'_>) -> Metric;
}

fn number(fi: usize, v: f64, label: Vec<LabelPair>, kept: Kept<'_>) -> Metric {
    let mut m = empty(label);
    match FAMILIES[fi].kind {
        Kind::Counter => {
            m.counter = Some(Counter {
                value: Some(v),
                exemplar: kept.counter().as_ref().map(exemplar_message),
            })
        }
        _ => m.gauge = Some(Gauge { value: Some(v) }),
    }
    m
}

impl AsMetric for u64 {
    fn as_metric(&self, fi: usize, _: Style, label: Vec<LabelPair>, kept: Kept<'_>) -> Metric {
        number(fi, *self as f64, label, kept)
    }
}

impl AsMetric for i64 {
    fn as_metric(&self, fi: usize, _: Style, label: Vec<LabelPair>, kept: Kept<'_>) -> Metric {
        number(fi, *self as f64, label, kept)
    }
}

impl AsMetric for HistogramTotal {
    fn as_metric(&self, fi: usize, style: Style, label: Vec<LabelPair>, kept: Kept<'_>) -> Metric {
        let buckets = FAMILIES[fi].buckets;
        let classic_buckets = || match buckets {
            Some(b) => classic_buckets(&self.classic_counts(b), b.bounds(), self.count(), kept),
            None => Vec::new(),
        };
        let mut m = empty(label);
        match style.native {
            true => {
                let native = self.native();
                let (spans, deltas) = native.spans_and_deltas();
                m.histogram = Some(Histogram {
                    // The native buckets' own count: Prometheus holds it to them.
                    sample_count: Some(native.count()),
                    sample_sum: Some(self.sum),
                    bucket: if style.summarise {
                        Vec::new()
                    } else {
                        classic_buckets()
                    },
                    schema: Some(SCHEMA),
                    zero_threshold: Some(ZERO_THRESHOLD),
                    zero_count: Some(native.zero),
                    positive_span: spans
                        .into_iter()
                        .map(|(offset, length)| BucketSpan {
                            offset: Some(offset),
                            length: Some(length),
                        })
                        .collect(),
                    positive_delta: deltas,
                });
            }
            _ if style.summarise => {
                m.summary = Some(Summary {
                    sample_count: Some(self.count()),
                    sample_sum: Some(self.sum),
                    quantile: Vec::new(),
                });
            }
            _ => m.histogram = Some(classic(self.count(), self.sum, classic_buckets())),
        }
        m
    }
}

/// Cumulative classic buckets with their exemplars; `+Inf` (the count) is
/// left implicit unless it has an exemplar.
fn classic_buckets(counts: &[u64], bounds: &[f64], count: u64, kept: Kept<'_>) -> Vec<Bucket> {
    let mut cumulative = 0u64;
    let mut buckets: Vec<Bucket> = bounds
        .iter()
        .zip(counts)
        .enumerate()
        .map(|(i, (b, n))| {
            cumulative += n;
            Bucket {
                cumulative_count: Some(cumulative),
                upper_bound: Some(*b),
                exemplar: kept.bucket(i).as_ref().map(exemplar_message),
            }
        })
        .collect();
    if let Some(e) = kept.bucket(bounds.len()) {
        buckets.push(Bucket {
            cumulative_count: Some(count),
            upper_bound: Some(f64::INFINITY),
            exemplar: Some(exemplar_message(&e)),
        });
    }
    buckets
}

/// The `TYPE` of family `f` written in `style`.
fn metric_type(f: &FamilyInfo, style: Style) -> MetricType {
    match f.kind {
        Kind::Counter => MetricType::Counter,
        Kind::Gauge => MetricType::Gauge,
        Kind::Histogram if style.summarise && !style.native => MetricType::Summary,
        Kind::Histogram => MetricType::Histogram,
    }
}

/// Writes one actor's metrics of family `fi` into `out`, each as a `Metric`
/// message's bytes,
/// given the actor's encoded label pairs and its exemplars of the family.
type ActorWriter = fn(usize, &ActorSeries, &[u8], Style, Kept<'_>, &mut Vec<Vec<u8>>);
/// Writes one type's metrics of aggregate family `fi` into `out`, with the
/// exemplars of `Carrier` when the family keeps them.
type AggregateWriter = fn(usize, &TypeView<'_>, Style, Option<Carrier>, &mut Vec<Metric>);

/// Reads one cell into a total of its kind.
fn read<C: Cell>(cell: &C) -> C::Total {
    let mut t = C::Total::default();
    cell.add_to(&mut t);
    t
}

for_families! {
    $ scalar(sf, scell, sb, slevel, sname, shelp)
    labelled(lf, lcell, lb, le, llevel, lname, lhelp)
    action(af, acell, ab, alevel, aname, ahelp) => {
        /// Per-actor writers, indexed like [`FAMILIES`].
        static ACTOR_WRITERS: [ActorWriter; FAMILY_COUNT] = [
            $(|fi, s, labels, style, kept, out| {
                out.push(with_labels(labels, &read(&s.$sf).as_metric(fi, style, Vec::new(), kept)));
            },)*
            $(|fi, s, labels, style, _, out| {
                // The extra label's pair for each value, built once per process.
                static EXTRA: OnceLock<Vec<LabelPair>> = OnceLock::new();
                let extra = EXTRA.get_or_init(|| {
                    <$le as LabelEnum>::VALUES
                        .iter()
                        .map(|v| pair(<$le as LabelEnum>::LABEL, v))
                        .collect()
                });
                for (i, c) in s.$lf.used() {
                    let m = read(c).as_metric(fi, style, vec![extra[i].clone()], Kept::None);
                    out.push(with_labels(labels, &m));
                }
            },)*
            $(|fi, s, labels, style, kept, out| {
                out.push(with_labels(labels, &read(&s.$af).as_metric(fi, style, Vec::new(), kept)));
            },)*
        ];

        /// Aggregate writers, indexed like [`FAMILIES`]; every label value, at 0 until used.
        static AGGREGATE_WRITERS: [AggregateWriter; FAMILY_COUNT] = [
            $(|fi, t, style, carrier, out| {
                let kept = match carrier {
                    Some(Carrier::CommitDuration) => Kept::Buckets(&t.snapshot.ty.commit_exemplars),
                    _ => Kept::None,
                };
                out.push(t.totals.$sf.as_metric(fi, style, vec![pair("actor_name", t.name)], kept));
            },)*
            $(|fi, t, style, _, out| {
                for (i, v) in t.totals.$lf.iter().enumerate() {
                    let label = vec![
                        pair("actor_name", t.name),
                        pair(<$le as LabelEnum>::LABEL, <$le as LabelEnum>::VALUES[i]),
                    ];
                    out.push(v.as_metric(fi, style, label, Kept::None));
                }
            },)*
            $(|fi, t, style, carrier, out| {
                for (action, cells) in &t.snapshot.actions {
                    let label = vec![pair("action", action), pair("actor_name", t.name)];
                    let kept = carrier.map_or(Kept::None, |c| cells.exemplars.kept(c));
                    out.push(read(&cells.$af).as_metric(fi, style, label, kept));
                }
            },)*
        ];
    }
}

/// The protobuf format's writer: chunks of length-delimited messages, and
/// its label blocks of the scrape's actors.
pub(crate) struct ProtoSink {
    out: Vec<u8>,
    labels: Vec<Arc<[u8]>>,
    /// Histograms carry their native buckets.
    native: bool,
}

impl ProtoSink {
    pub(crate) fn new(native: bool) -> Self {
        ProtoSink {
            out: Vec::new(),
            labels: Vec::new(),
            native,
        }
    }

    fn emit(&mut self, f: MetricFamily) {
        // Encoding into a Vec cannot fail (it grows as needed).
        let _ = f.encode_length_delimited(&mut self.out);
    }

    /// One family message of already encoded metrics.
    fn emit_encoded(&mut self, f: &FamilyInfo, t: MetricType, metric: Vec<Vec<u8>>) {
        let family = EncodedFamily {
            name: Some(f.name.to_owned()),
            help: Some(f.help.to_owned()),
            r#type: Some(t as i32),
            metric,
        };
        // Encoding into a Vec cannot fail (it grows as needed).
        let _ = family.encode_length_delimited(&mut self.out);
    }
}

impl Sink for ProtoSink {
    fn len(&self) -> usize {
        self.out.len()
    }

    fn reserve(&mut self, bytes: usize) {
        self.out.reserve(bytes);
    }

    fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    fn native(&self) -> bool {
        self.native
    }

    fn actors(
        &mut self,
        fi: usize,
        style: Style,
        actors: &Actors<'_>,
        mut next: usize,
        limit: usize,
    ) -> usize {
        let f = &FAMILIES[fi];
        let t = metric_type(f, style);
        let write = ACTOR_WRITERS[fi];
        let carrier = Carrier::of(fi);
        collect_labels(&mut self.labels, actors, label_block);
        let mut metric = Vec::new();
        while let (Some(e), Some(labels)) = (actors.entries.get(next), self.labels.get(next)) {
            actors.prefetch_ahead(fi, next, |i| self.labels.get(i).map(|b| &b[..]));
            // Only an actor that keeps exemplars has any.
            let kept = match (carrier, e.kept_exemplars(actors.all_keep_exemplars)) {
                (Some(c), Some(kept)) => kept.kept(c),
                _ => Kept::None,
            };
            write(fi, &e.series, labels, style, kept, &mut metric);
            next += 1;
            if metric.len() >= BATCH {
                self.emit_encoded(f, t, std::mem::take(&mut metric));
                if self.out.len() >= limit {
                    break;
                }
            }
        }
        if !metric.is_empty() {
            self.emit_encoded(f, t, metric);
        }
        next
    }

    fn aggregates(&mut self, fi: usize, style: Style, types: &[TypeView<'_>]) {
        let f = &FAMILIES[fi];
        let write = AGGREGATE_WRITERS[fi];
        let carrier = Carrier::of(fi);
        let mut metric = Vec::new();
        for view in types {
            write(fi, view, style, carrier, &mut metric);
        }
        if !metric.is_empty() {
            self.emit(family(
                f.aggregate_name,
                f.help,
                metric_type(f, style),
                metric,
            ));
        }
    }

    fn registry(&mut self, families: &[prometheus::proto::MetricFamily]) {
        for f in families {
            self.emit(registry::from_registry(f));
        }
    }
}
