//! OpenMetrics text 1.0.0: the format Prometheus asks for first (unless it
//! wants native histograms over protobuf).
//!
//! Its sample lines are the text format's, byte for byte (same names, label
//! escaping, label order, number formatting, `le` values), so a Prometheus
//! that switches between the two keeps every series; only the metadata and
//! the end differ, and those are this file's:
//!
//! * a counter family is named without `_total` in `# HELP`/`# TYPE` (its
//!   samples keep it); a counter whose name lacks `_total` (only a registry
//!   collector can have one) is typed `unknown`, so its series keep their name;
//! * `# UNIT` when the family name ends in a base unit (`_seconds`, `_bytes`),
//!   never otherwise;
//! * `"` is escaped in `# HELP` too;
//! * no `_created` series (Prometheus 2.42 would ingest each as a series of
//!   its own, outside the budget);
//! * the body ends with `# EOF`, so a cut scrape is never a valid one.
//!
//! `le` values are written as the text format writes them (`le="1"`), not in
//! OpenMetrics' recommended canonical form (`le="1.0"`, a SHOULD in the spec):
//! Prometheus 2.42 stores `le` as sent, and the canonical form would rename
//! every whole-number bucket series of a host that moves from text to
//! OpenMetrics. The reference parser accepts both.
//!
//! Exemplars: the one thing a sample line carries here and not in the text
//! format. After the value of a `_bucket` line of a family that keeps them
//! (action and commit durations) and of an action-error `_total` line, the
//! series' kept exemplar, if it has one: `… 3 # {trace_id="…",span_id="…"}
//! 0.7 1733400000.123` (its value, then when it was observed, in seconds with
//! millisecond precision, which is what Prometheus stores). The text
//! writers take this syntax ([`push_exemplar`]) from the sink, so it is
//! written here only. Each export marks the exemplar read, so a bucket's next
//! exemplar is the slowest call of the next scrape interval (see
//! [`crate::exemplar`]).

use prometheus::proto::{self as prom, MetricType as T};

use crate::exemplar::Exemplar;
use crate::families::{FAMILIES, FamilyInfo};
use crate::render::text::{Shape, TextBody, push_f64, push_label, push_u64, type_word};
use crate::render::{Actors, Sink, Style, TypeView};

/// The `Content-Type` of the format.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Base units a family name may end in, each then declared by `# UNIT`.
const UNITS: [&str; 2] = ["seconds", "bytes"];

/// The family name and `# TYPE` word of a family whose samples are named
/// `name`: a counter's family drops `_total`; a counter without it is `unknown`.
pub(crate) fn family_name<'a>(name: &'a str, type_word: &'a str) -> (&'a str, &'a str) {
    match type_word {
        "counter" => match name.strip_suffix("_total") {
            Some(family) => (family, "counter"),
            None => (name, "unknown"),
        },
        "untyped" => (name, "unknown"),
        t => (name, t),
    }
}

/// The unit family `name` ends in, if it is a base unit.
pub(crate) fn unit_of(name: &str) -> Option<&'static str> {
    UNITS
        .into_iter()
        .find(|u| name.strip_suffix(u).is_some_and(|rest| rest.ends_with('_')))
}

/// `# HELP`, `# TYPE` and, when the name ends in a unit, `# UNIT` lines of the
/// family whose samples are named `name`.
pub(crate) fn header(out: &mut String, name: &str, help: &str, type_word: &str) {
    let (name, type_word) = family_name(name, type_word);
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(type_word);
    out.push('\n');
    if let Some(unit) = unit_of(name) {
        out.push_str("# UNIT ");
        out.push_str(name);
        out.push(' ');
        out.push_str(unit);
        out.push('\n');
    }
}

/// The header of catalogue family `f`, per actor or aggregate, typed as `shape`.
fn family_header(out: &mut String, f: &FamilyInfo, aggregate: bool, shape: Shape<'_>) {
    let name = if aggregate { f.aggregate_name } else { f.name };
    header(out, name, f.help, type_word(f.kind, shape));
}

/// Writes ` # {trace_id="…",span_id="…"} <value> <seconds>` after a sample's
/// value. An exemplar with no time (a clock before 1970) is written without.
pub(crate) fn push_exemplar(out: &mut String, e: &Exemplar) {
    use std::fmt::Write as _;
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        " # {{trace_id=\"{}\",span_id=\"{}\"}} ",
        e.trace_id, e.span_id
    );
    push_f64(out, e.value);
    if e.timestamp_ns > 0 {
        let (secs, ms) = (
            e.timestamp_ns / 1_000_000_000,
            e.timestamp_ns % 1_000_000_000 / 1_000_000,
        );
        let _ = write!(out, " {secs}.{ms:03}");
    }
}

/// The OpenMetrics writer: the text format's body and label blocks, its own
/// family headers, and exemplars.
pub(crate) struct OpenMetricsSink(TextBody);

impl Default for OpenMetricsSink {
    fn default() -> Self {
        OpenMetricsSink(TextBody::with_exemplars(push_exemplar))
    }
}

impl Sink for OpenMetricsSink {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn reserve(&mut self, bytes: usize) {
        self.0.reserve(bytes);
    }

    fn take(&mut self) -> Vec<u8> {
        self.0.take()
    }

    fn actors(
        &mut self,
        fi: usize,
        style: Style,
        actors: &Actors<'_>,
        next: usize,
        limit: usize,
    ) -> usize {
        self.0
            .actors(fi, style, actors, (next, limit), |out, shape| {
                family_header(out, &FAMILIES[fi], false, shape)
            })
    }

    fn aggregates(&mut self, fi: usize, _: Style, types: &[TypeView<'_>]) {
        self.0.aggregates(fi, types, |out, shape| {
            family_header(out, &FAMILIES[fi], true, shape)
        });
    }

    fn registry(&mut self, families: &[prom::MetricFamily]) {
        for f in families {
            registry_family(self.0.out(), f);
        }
    }

    fn end(&mut self) {
        self.0.push_str("# EOF\n");
    }
}

/// One family gathered from a `prometheus::Registry`, as `TextEncoder` would
/// write its samples, under OpenMetrics metadata.
fn registry_family(out: &mut String, f: &prom::MetricFamily) {
    let t = f.get_field_type();
    let word = match t {
        T::COUNTER => "counter",
        T::GAUGE => "gauge",
        T::HISTOGRAM => "histogram",
        T::SUMMARY => "summary",
        T::UNTYPED => "untyped",
    };
    let name = f.name();
    header(out, name, f.help(), word);
    let mut labels = String::new();
    for m in f.get_metric() {
        labels.clear();
        for (i, l) in m.get_label().iter().enumerate() {
            if i > 0 {
                labels.push(',');
            }
            push_label(&mut labels, l.name(), l.value());
        }
        let ts = m.timestamp_ms();
        let sample = |out: &mut String, suffix: &str, extra: Option<(&str, &str)>| {
            out.push_str(name);
            out.push_str(suffix);
            if !labels.is_empty() || extra.is_some() {
                out.push('{');
                out.push_str(&labels);
                if let Some((n, v)) = extra {
                    if !labels.is_empty() {
                        out.push(',');
                    }
                    push_label(out, n, v);
                }
                out.push('}');
            }
            out.push(' ');
        };
        // OpenMetrics timestamps are in seconds.
        let end = |out: &mut String| {
            if ts != 0 {
                out.push(' ');
                push_f64(out, ts as f64 / 1000.0);
            }
            out.push('\n');
        };
        match t {
            T::COUNTER => {
                sample(out, "", None);
                push_f64(out, m.get_counter().get_value());
                end(out);
            }
            T::GAUGE => {
                sample(out, "", None);
                push_f64(out, m.get_gauge().get_value());
                end(out);
            }
            #[allow(deprecated)]
            T::UNTYPED => {
                sample(out, "", None);
                push_f64(out, m.get_untyped().get_value());
                end(out);
            }
            T::HISTOGRAM => {
                let h = m.get_histogram();
                let mut inf = false;
                for b in h.get_bucket() {
                    let le = b.upper_bound();
                    inf |= le == f64::INFINITY;
                    sample(out, "_bucket", Some(("le", &float_label(le))));
                    push_u64(out, b.cumulative_count());
                    end(out);
                }
                if !inf {
                    sample(out, "_bucket", Some(("le", "+Inf")));
                    push_u64(out, h.get_sample_count());
                    end(out);
                }
                sample(out, "_sum", None);
                push_f64(out, h.get_sample_sum());
                end(out);
                sample(out, "_count", None);
                push_u64(out, h.get_sample_count());
                end(out);
            }
            T::SUMMARY => {
                let s = m.get_summary();
                for q in s.get_quantile() {
                    sample(out, "", Some(("quantile", &float_label(q.quantile()))));
                    push_f64(out, q.value());
                    end(out);
                }
                sample(out, "_sum", None);
                push_f64(out, s.sample_sum());
                end(out);
                sample(out, "_count", None);
                push_u64(out, s.sample_count());
                end(out);
            }
        }
    }
}

/// A bound or quantile as a label value, as `TextEncoder` writes it.
fn float_label(v: f64) -> String {
    let mut s = String::new();
    push_f64(&mut s, v);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::Kind;

    #[test]
    fn counters_are_named_without_total_and_units_only_when_the_name_ends_in_one() {
        assert_eq!(
            family_name("a_calls_total", "counter"),
            ("a_calls", "counter")
        );
        assert_eq!(family_name("a_calls", "counter"), ("a_calls", "unknown"));
        assert_eq!(family_name("a", "untyped"), ("a", "unknown"));
        assert_eq!(family_name("a_total", "gauge"), ("a_total", "gauge"));
        assert_eq!(unit_of("a_duration_seconds"), Some("seconds"));
        assert_eq!(unit_of("a_scrape_bytes"), Some("bytes"));
        assert_eq!(unit_of("seconds"), None);
        assert_eq!(unit_of("a_microseconds"), None);
        assert_eq!(unit_of("a_wal_pages"), None);
        let mut out = String::new();
        header(&mut out, "x_bytes_total", "A \"b\"\\\n", "counter");
        assert_eq!(
            out,
            "# HELP x_bytes A \\\"b\\\"\\\\\\n\n# TYPE x_bytes counter\n# UNIT x_bytes bytes\n"
        );
    }

    #[test]
    fn an_exemplar_is_written_with_its_ids_value_and_time_in_seconds() {
        use crate::exemplar::{SpanId, TraceId};
        let mut e = Exemplar {
            trace_id: TraceId([0xab; 16]),
            span_id: SpanId([0x01; 8]),
            value: 0.7,
            timestamp_ns: 1_733_400_000_123_456_789,
        };
        let mut out = String::new();
        push_exemplar(&mut out, &e);
        assert_eq!(
            out,
            format!(
                " # {{trace_id=\"{}\",span_id=\"0101010101010101\"}} 0.7 1733400000.123",
                "ab".repeat(16)
            )
        );
        e.timestamp_ns = 0;
        e.value = 1.0;
        out.clear();
        push_exemplar(&mut out, &e);
        assert!(out.ends_with("} 1"), "{out}");
    }

    #[test]
    fn every_catalogue_counter_ends_in_total() {
        for f in &FAMILIES {
            if f.kind == Kind::Counter {
                assert!(f.name.ends_with("_total"), "{}", f.name);
                assert!(f.aggregate_name.ends_with("_total"), "{}", f.name);
            }
        }
    }
}
