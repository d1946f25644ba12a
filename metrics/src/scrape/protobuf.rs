//! The protobuf format: length-delimited `MetricFamily` messages.

use std::collections::{BTreeMap, HashSet};

use super::{ExemplarSample, NativeSample, Sample, Scrape, ScrapeError};
use crate::render::client_model::{self, MetricType};

impl Scrape {
    /// Parses the protobuf format: length-delimited `MetricFamily` messages.
    /// Counters, gauges, summaries and classic histograms become the samples the
    /// text format would have (`_sum`, `_count`, `_bucket{le}`); native buckets
    /// become [`NativeSample`]s. A family may span several messages.
    pub fn parse_protobuf(mut bytes: &[u8]) -> Result<Scrape, ScrapeError> {
        use prost::Message as _;
        let mut s = Scrape::default();
        let mut seen = HashSet::new();
        let mut n = 0;
        while !bytes.is_empty() {
            n += 1;
            let err = |what: String| ScrapeError { line: n, what };
            let f = client_model::MetricFamily::decode_length_delimited(&mut bytes)
                .map_err(|e| err(format!("not a MetricFamily: {e}")))?;
            s.read_family(f, &mut seen).map_err(err)?;
        }
        Ok(s)
    }

    /// One `MetricFamily` message: its `TYPE` and `HELP`, then each metric's
    /// samples. `seen` holds the series of the messages read so far.
    fn read_family(
        &mut self,
        f: client_model::MetricFamily,
        seen: &mut HashSet<(String, BTreeMap<String, String>)>,
    ) -> Result<(), String> {
        let name = f.name.clone().unwrap_or_default();
        let t = MetricType::try_from(f.r#type.unwrap_or(0))
            .map_err(|_| format!("{name}: unknown type"))?;
        self.declare(&name, t, f.help.clone().unwrap_or_default())?;
        for m in f.metric {
            let labels: BTreeMap<String, String> = m
                .label
                .iter()
                .map(|l| {
                    (
                        l.name.clone().unwrap_or_default(),
                        l.value.clone().unwrap_or_default(),
                    )
                })
                .collect();
            if !seen.insert((name.clone(), labels.clone())) {
                return Err(format!("duplicate series {name}{labels:?}"));
            }
            self.read_metric(&name, t, labels, m)?;
        }
        Ok(())
    }

    /// Records family `name`'s type and help; a family that spans several
    /// messages must keep its type.
    fn declare(&mut self, name: &str, t: MetricType, help: String) -> Result<(), String> {
        let word = match t {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Summary => "summary",
            MetricType::Histogram | MetricType::GaugeHistogram => "histogram",
            MetricType::Untyped => "untyped",
        };
        if let Some(prev) = self.types.insert(name.to_owned(), word.to_owned())
            && prev != word
        {
            return Err(format!("{name}: type {prev} then {word}"));
        }
        self.helps.insert(name.to_owned(), help);
        Ok(())
    }

    /// One metric of family `name`: the samples the text format would have,
    /// and its native buckets, if it has any.
    fn read_metric(
        &mut self,
        name: &str,
        t: MetricType,
        labels: BTreeMap<String, String>,
        m: client_model::Metric,
    ) -> Result<(), String> {
        let exemplars = &mut self.exemplars;
        let mut push_exemplar = |sample: &Sample, e: &client_model::Exemplar| {
            exemplars.push(ExemplarSample {
                name: sample.name.clone(),
                labels: sample.labels.clone(),
                exemplar: e
                    .label
                    .iter()
                    .map(|l| {
                        (
                            l.name.clone().unwrap_or_default(),
                            l.value.clone().unwrap_or_default(),
                        )
                    })
                    .collect(),
                value: e.value.unwrap_or(0.0),
                timestamp: e
                    .timestamp
                    .as_ref()
                    .map(|t| t.seconds as f64 + f64::from(t.nanos) / 1e9),
            });
        };
        let samples = &mut self.samples;
        let mut push = |suffix: &str,
                        extra: Option<(&str, String)>,
                        value: f64,
                        exemplar: Option<&client_model::Exemplar>| {
            let mut labels = labels.clone();
            if let Some((k, v)) = extra {
                labels.insert(k.to_owned(), v);
            }
            let sample = Sample {
                name: format!("{name}{suffix}"),
                labels,
                value,
            };
            if let Some(e) = exemplar {
                push_exemplar(&sample, e);
            }
            samples.push(sample);
        };
        match t {
            MetricType::Counter => {
                let c = m.counter.unwrap_or_default();
                push("", None, c.value.unwrap_or(0.0), c.exemplar.as_ref());
            }
            MetricType::Gauge => push("", None, m.gauge.and_then(|g| g.value).unwrap_or(0.0), None),
            MetricType::Untyped => push(
                "",
                None,
                m.untyped.and_then(|u| u.value).unwrap_or(0.0),
                None,
            ),
            MetricType::Summary => {
                let sm = m.summary.unwrap_or_default();
                push("_sum", None, sm.sample_sum.unwrap_or(0.0), None);
                push("_count", None, sm.sample_count.unwrap_or(0) as f64, None);
            }
            MetricType::Histogram | MetricType::GaugeHistogram => {
                let h = m.histogram.unwrap_or_default();
                let count = h.sample_count.unwrap_or(0);
                let sum = h.sample_sum.unwrap_or(0.0);
                if !h.bucket.is_empty() {
                    // `+Inf` is implicit, or sent when it carries an exemplar.
                    let mut inf = None;
                    for b in &h.bucket {
                        let le = b.upper_bound.unwrap_or(f64::INFINITY);
                        if le == f64::INFINITY {
                            inf = b.exemplar.as_ref();
                            continue;
                        }
                        push(
                            "_bucket",
                            Some(("le", fmt_le(le))),
                            b.cumulative_count.unwrap_or(0) as f64,
                            b.exemplar.as_ref(),
                        );
                    }
                    push("_bucket", Some(("le", "+Inf".into())), count as f64, inf);
                    push("_sum", None, sum, None);
                    push("_count", None, count as f64, None);
                }
                if let Some(schema) = h.schema {
                    let buckets = native_buckets(&h).map_err(|what| format!("{name}: {what}"))?;
                    self.natives.push(NativeSample {
                        name: name.to_owned(),
                        labels,
                        schema,
                        zero_threshold: h.zero_threshold.unwrap_or(0.0),
                        zero_count: h.zero_count.unwrap_or(0),
                        count,
                        sum,
                        buckets,
                    });
                }
            }
        }
        Ok(())
    }
}

/// A native histogram's `(bucket key, count)` pairs, read from its positive
/// spans (key offsets) and deltas (count differences).
fn native_buckets(h: &client_model::Histogram) -> Result<Vec<(i32, u64)>, &'static str> {
    let mut buckets = Vec::new();
    let (mut key, mut value) = (0i32, 0i64);
    let mut deltas = h.positive_delta.iter();
    for (i, span) in h.positive_span.iter().enumerate() {
        let offset = span.offset.unwrap_or(0);
        key = if i == 0 { offset } else { key + offset };
        for _ in 0..span.length.unwrap_or(0) {
            value += deltas
                .next()
                .copied()
                .ok_or("fewer deltas than spans say")?;
            buckets.push((
                key,
                u64::try_from(value).map_err(|_| "negative bucket count")?,
            ));
            key += 1;
        }
    }
    Ok(buckets)
}

/// An `le` value as the text format writes it.
fn fmt_le(le: f64) -> String {
    if le.is_infinite() {
        "+Inf".into()
    } else {
        le.to_string()
    }
}
