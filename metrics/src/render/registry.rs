//! What else a scrape holds in protobuf: the families of the instance's
//! `prometheus::Registry` (the self-metrics and anything a host registered),
//! converted from the `prometheus` crate's message types to this crate's
//! `client_model` ones, so one encoder writes the whole scrape.
//!
//! A family converts in two phases: its type ([`metric_type`]), then each
//! metric, which is its label pairs plus the one value field of that type
//! ([`metric`]). Values, labels and order are taken as they are.

use prometheus::proto::{self as prom, MetricType as T};

use super::client_model::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType, Quantile,
    Summary, Untyped, classic, empty, family, pair,
};

/// A family gathered from a `prometheus::Registry`, as a message.
pub(super) fn from_registry(f: &prom::MetricFamily) -> MetricFamily {
    let t = f.get_field_type();
    let metric = f.get_metric().iter().map(|m| metric(t, m)).collect();
    family(f.name(), f.help(), metric_type(t), metric)
}

/// The `client_model` type of a `prometheus` family type.
fn metric_type(t: T) -> MetricType {
    match t {
        T::COUNTER => MetricType::Counter,
        T::GAUGE => MetricType::Gauge,
        T::HISTOGRAM => MetricType::Histogram,
        T::SUMMARY => MetricType::Summary,
        T::UNTYPED => MetricType::Untyped,
    }
}

/// One metric of a family of type `t`: its label pairs and its value.
fn metric(t: T, m: &prom::Metric) -> Metric {
    let mut out = empty(labels_of(m));
    match t {
        T::COUNTER => {
            out.counter = Some(Counter {
                value: Some(m.get_counter().get_value()),
                exemplar: None,
            });
        }
        T::GAUGE => {
            out.gauge = Some(Gauge {
                value: Some(m.get_gauge().get_value()),
            });
        }
        T::HISTOGRAM => out.histogram = Some(histogram(m.get_histogram())),
        T::SUMMARY => out.summary = Some(summary(m.get_summary())),
        // The only reader of an untyped value is the deprecated protobuf accessor.
        #[allow(deprecated)]
        T::UNTYPED => {
            out.untyped = Some(Untyped {
                value: Some(m.get_untyped().get_value()),
            });
        }
    }
    out
}

/// A classic histogram, its cumulative buckets as they are.
fn histogram(h: &prom::Histogram) -> Histogram {
    classic(
        h.get_sample_count(),
        h.get_sample_sum(),
        h.get_bucket()
            .iter()
            .map(|b| Bucket {
                cumulative_count: Some(b.cumulative_count()),
                upper_bound: Some(b.upper_bound()),
                exemplar: None,
            })
            .collect(),
    )
}

/// A summary with its quantiles.
fn summary(s: &prom::Summary) -> Summary {
    Summary {
        sample_count: Some(s.sample_count()),
        sample_sum: Some(s.sample_sum()),
        quantile: s
            .get_quantile()
            .iter()
            .map(|q| Quantile {
                quantile: Some(q.quantile()),
                value: Some(q.value()),
            })
            .collect(),
    }
}

fn labels_of(m: &prom::Metric) -> Vec<LabelPair> {
    m.get_label()
        .iter()
        .map(|l| pair(l.name(), l.value()))
        .collect()
}
