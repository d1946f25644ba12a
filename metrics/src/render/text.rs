//! The Prometheus text format 0.0.4: every byte of text exposition, escaping
//! included. Pure writers into a `String`, the per-family writers generated from
//! the families declaration, and the [`TextSink`] the renderer drives.
//!
//! The output is what `prometheus::TextEncoder` writes for the same families
//! (HELP escaping, label escaping and order, `le` and number formatting), which
//! `tests/text_encoder.rs` checks. OpenMetrics (`openmetrics.rs`) writes the
//! same sample lines under its own headers, through [`write_actors`] and
//! [`write_aggregates`].

use std::fmt::Write as _;
use std::sync::{Arc, LazyLock};

use crate::buckets::Buckets;
use crate::cells::{ActiveCell, Cell, CounterCell, GaugeCell, HistogramCell, HistogramTotal, Kind};
use crate::exemplar::{Carrier, Exemplar, Kept};
use crate::families::{ActorSeries, FAMILIES, FAMILY_COUNT, FamilyInfo, for_families};
use crate::label_cache::LabelCache;
use crate::labels::{ActorLabels, LabelEnum};
use crate::render::{Actors, Sink, Style, TypeView, collect_labels};

/// The `Content-Type` of the format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The text formats' slot in each entry's [`LabelCache`]: the text format
/// and OpenMetrics write the same label block, so a host scraped in both
/// keeps one copy per actor ([`TextBody`]).
const LABEL_SLOT: usize = 0;

/// How a value is written.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape<'a> {
    /// One sample.
    Plain,
    /// A classic histogram: cumulative `_bucket{le}` lines (the `le` values of
    /// the family's buckets), `_sum`, `_count`.
    Histogram(&'a [Box<str>], &'static Buckets),
    /// A summary with no quantiles: `_sum` and `_count` only.
    Summary,
}

/// The `# TYPE` word of a family written in `shape`.
pub(crate) fn type_word(kind: Kind, shape: Shape<'_>) -> &'static str {
    match (kind, shape) {
        (Kind::Counter, _) => "counter",
        (Kind::Gauge, _) => "gauge",
        (Kind::Histogram, Shape::Summary) => "summary",
        (Kind::Histogram, _) => "histogram",
    }
}

/// Writes one exemplar after a sample's value, in the syntax of a format
/// that carries exemplars (OpenMetrics owns it).
pub(crate) type ExemplarSyntax = fn(&mut String, &Exemplar);

/// What the lines of one series carry after their values: the exemplars
/// kept for it, in the syntax of the format that carries them; nothing for
/// the text format 0.0.4 (no syntax) or a series that keeps none.
#[derive(Clone, Copy, Default)]
pub(crate) struct LineExemplars<'a> {
    kept: Kept<'a>,
    syntax: Option<ExemplarSyntax>,
}

impl<'a> LineExemplars<'a> {
    /// `kept`, written with `syntax` (when the format has one).
    pub(crate) fn new(kept: Kept<'a>, syntax: Option<ExemplarSyntax>) -> Self {
        LineExemplars { kept, syntax }
    }

    /// Writes bucket `i`'s exemplar, if any, and marks it exported.
    fn bucket(self, out: &mut String, i: usize) {
        if let Some(write) = self.syntax
            && let Some(e) = self.kept.bucket(i)
        {
            write(out, &e);
        }
    }

    /// Writes the counter's exemplar, if any, and marks it exported.
    fn counter(self, out: &mut String) {
        if let Some(write) = self.syntax
            && let Some(e) = self.kept.counter()
        {
            write(out, &e);
        }
    }
}

/// Appends a label value escaped as the text format escapes it:
/// `\` → `\\`, `"` → `\"`, newline → `\n`.
pub(crate) fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Appends `name="value"`, the value escaped.
pub(crate) fn push_label(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    escape_into(out, value);
    out.push('"');
}

/// `actor_id_gen="…",actor_key="…",envoy_key="…"`, escaped.
pub(crate) fn actor_label_block(labels: &ActorLabels) -> Arc<str> {
    let pairs = labels.pairs();
    let mut out = String::with_capacity(pairs.iter().map(|(_, v)| v.len() + 16).sum());
    for (i, (name, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_label(&mut out, name, value);
    }
    out.into()
}

/// `# HELP` (backslash and newline escaped) and `# TYPE` lines.
pub(crate) fn header(out: &mut String, name: &str, help: &str, type_word: &str) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(type_word);
    out.push('\n');
}

/// Writes `name{suffix}{labels[,le="…"]} ` (up to the value).
fn sample(out: &mut String, name: &str, suffix: &str, labels: &str, le: Option<&str>) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        out.push_str(labels);
        if let Some(le) = le {
            if !labels.is_empty() {
                out.push(',');
            }
            out.push_str("le=\"");
            out.push_str(le);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
}

/// Largest integer that `f64` holds exactly; below it, integer and float
/// formatting agree, so the fast integer path writes what `TextEncoder` writes.
const EXACT_F64_INT: u64 = 1 << 53;

pub(crate) fn push_u64(out: &mut String, v: u64) {
    if v < EXACT_F64_INT {
        out.push_str(itoa::Buffer::new().format(v));
    } else {
        push_f64(out, v as f64);
    }
}

pub(crate) fn push_i64(out: &mut String, v: i64) {
    if v.unsigned_abs() < EXACT_F64_INT {
        out.push_str(itoa::Buffer::new().format(v));
    } else {
        push_f64(out, v as f64);
    }
}

/// `f64` as `TextEncoder` writes it (`Display`, so `1` not `1.0`; `+Inf`/`-Inf`/`NaN`).
pub(crate) fn push_f64(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        // Writing to a String cannot fail.
        let _ = write!(out, "{v}");
    }
}

/// A total that can be written as samples.
pub(crate) trait TextValue {
    fn write(
        &self,
        out: &mut String,
        name: &str,
        labels: &str,
        shape: Shape<'_>,
        ex: LineExemplars<'_>,
    );
}

impl TextValue for u64 {
    fn write(
        &self,
        out: &mut String,
        name: &str,
        labels: &str,
        _: Shape<'_>,
        ex: LineExemplars<'_>,
    ) {
        sample(out, name, "", labels, None);
        push_u64(out, *self);
        ex.counter(out);
        out.push('\n');
    }
}

impl TextValue for i64 {
    fn write(
        &self,
        out: &mut String,
        name: &str,
        labels: &str,
        _: Shape<'_>,
        _: LineExemplars<'_>,
    ) {
        sample(out, name, "", labels, None);
        push_i64(out, *self);
        out.push('\n');
    }
}

impl TextValue for HistogramTotal {
    fn write(
        &self,
        out: &mut String,
        name: &str,
        labels: &str,
        shape: Shape<'_>,
        ex: LineExemplars<'_>,
    ) {
        let count = match shape {
            Shape::Histogram(le, buckets) => {
                let counts = self.classic_counts(buckets);
                let finite = le.len().saturating_sub(1);
                let mut cumulative = 0u64;
                for (i, le) in le.iter().enumerate() {
                    cumulative += if i < finite {
                        counts[i]
                    } else {
                        // +Inf also holds anything counted past the declared bounds.
                        counts[finite..].iter().sum()
                    };
                    sample(out, name, "_bucket", labels, Some(le));
                    push_u64(out, cumulative);
                    ex.bucket(out, i);
                    out.push('\n');
                }
                cumulative
            }
            Shape::Summary | Shape::Plain => self.count(),
        };
        sum_and_count(out, name, labels, self.sum, count);
    }
}

/// The `_sum` and `_count` lines every histogram and summary ends with.
fn sum_and_count(out: &mut String, name: &str, labels: &str, sum: f64, count: u64) {
    sample(out, name, "_sum", labels, None);
    push_f64(out, sum);
    out.push('\n');
    sample(out, name, "_count", labels, None);
    push_u64(out, count);
    out.push('\n');
}

/// `le` label values of each family's buckets, as `TextEncoder` formats them
/// (`f64` Display), then `+Inf`; empty for families without buckets.
static LE: LazyLock<[Box<[Box<str>]>; FAMILY_COUNT]> = LazyLock::new(|| {
    std::array::from_fn(|i| {
        FAMILIES[i]
            .buckets
            .map(|b| {
                b.bounds()
                    .iter()
                    .map(|b| b.to_string().into_boxed_str())
                    .chain(std::iter::once(Box::from("+Inf")))
                    .collect()
            })
            .unwrap_or_default()
    })
});

/// The shape family `fi` is written in: classic buckets, or (per actor, below
/// `full`) a summary with no quantiles.
pub(crate) fn shape(fi: usize, summarise: bool) -> Shape<'static> {
    match FAMILIES[fi].kind {
        Kind::Histogram if summarise => Shape::Summary,
        Kind::Histogram => match FAMILIES[fi].buckets {
            Some(b) => Shape::Histogram(&LE[fi], b),
            // The families declaration gives every histogram its buckets.
            None => Shape::Summary,
        },
        _ => Shape::Plain,
    }
}

/// Appends `,{label}="{value}"` of an extra label to `block` into `out`.
fn extra_labels(out: &mut String, block: &str, label: &str, value: &str) {
    out.clear();
    out.push_str(block);
    if !block.is_empty() {
        out.push(',');
    }
    push_label(out, label, value);
}

/// A cell written straight from its atomics.
trait WriteCell {
    fn write_cell(
        &self,
        out: &mut String,
        name: &str,
        labels: &str,
        shape: Shape<'_>,
        ex: LineExemplars<'_>,
    );
}

/// Counters and gauges: read, write.
macro_rules! write_read {
    ($($cell:ty),*) => {$(
        impl WriteCell for $cell {
            fn write_cell(&self, out: &mut String, name: &str, labels: &str, shape: Shape<'_>, ex: LineExemplars<'_>) {
                let mut t = Default::default();
                self.add_to(&mut t);
                TextValue::write(&t, out, name, labels, shape, ex);
            }
        }
    )*};
}
write_read!(CounterCell, GaugeCell, ActiveCell);

impl WriteCell for HistogramCell {
    fn write_cell(
        &self,
        out: &mut String,
        name: &str,
        labels: &str,
        shape: Shape<'_>,
        ex: LineExemplars<'_>,
    ) {
        if let Shape::Summary = shape {
            // `_sum` and `_count` need no bucket: skip collecting them.
            let (count, sum) = self.count_and_sum();
            sum_and_count(out, name, labels, sum, count);
            return;
        }
        let mut t = HistogramTotal::default();
        self.add_to(&mut t);
        t.write(out, name, labels, shape, ex);
    }
}

/// Writes one actor's samples of one family: `(series, label block, shape,
/// its exemplars, out)`.
pub(crate) type ActorWriter = fn(&ActorSeries, &str, Shape<'_>, LineExemplars<'_>, &mut String);

/// Writes one type's samples of one aggregate family.
pub(crate) type AggregateWriter = fn(&TypeText<'_>, Shape<'_>, &mut String);

/// One type as the aggregate writers see it, with its label blocks.
pub(crate) struct TypeText<'a> {
    pub(crate) view: &'a TypeView<'a>,
    /// `actor_name="…"`.
    pub(crate) block: &'a str,
    /// `action="…",actor_name="…"` per action, in the snapshot's action order.
    pub(crate) action_blocks: &'a [String],
    /// The family's exemplars and their syntax, when the format writes them.
    pub(crate) exemplars: Option<(Carrier, ExemplarSyntax)>,
}

impl TypeText<'_> {
    /// The type's own exemplars of the family (the commit buckets).
    fn type_exemplars(&self) -> LineExemplars<'_> {
        match self.exemplars {
            Some((Carrier::CommitDuration, syntax)) => LineExemplars::new(
                Kept::Buckets(&self.view.snapshot.ty.commit_exemplars),
                Some(syntax),
            ),
            _ => LineExemplars::default(),
        }
    }

    /// One action's exemplars of the family.
    fn action_exemplars<'c>(&self, cells: &'c crate::families::ActionCells) -> LineExemplars<'c> {
        match self.exemplars {
            Some((carrier, syntax)) => {
                LineExemplars::new(cells.exemplars.kept(carrier), Some(syntax))
            }
            None => LineExemplars::default(),
        }
    }
}

for_families! {
    $ scalar(sf, scell, sb, slevel, sname, shelp)
    labelled(lf, lcell, lb, le, llevel, lname, lhelp)
    action(af, acell, ab, alevel, aname, ahelp) => {
        /// Per-actor writers, indexed like [`FAMILIES`].
        pub(crate) static ACTOR_WRITERS: [ActorWriter; FAMILY_COUNT] = [
            $(|s, block, shape, ex, out| {
                s.$sf.write_cell(out, concat!("actor_", $sname), block, shape, ex);
            },)*
            $(|s, block, shape, _, out| {
                let mut labels = String::new();
                for (i, c) in s.$lf.used() {
                    extra_labels(&mut labels, block, <$le as LabelEnum>::LABEL, <$le as LabelEnum>::VALUES[i]);
                    c.write_cell(out, concat!("actor_", $lname), &labels, shape, LineExemplars::default());
                }
            },)*
            $(|s, block, shape, ex, out| {
                s.$af.write_cell(out, concat!("actor_", $aname), block, shape, ex);
            },)*
        ];

        /// Aggregate writers, indexed like [`FAMILIES`]. Every label value of a
        /// type's labelled families is written, at 0 until used, so `increase()`
        /// sees the first event.
        pub(crate) static AGGREGATE_WRITERS: [AggregateWriter; FAMILY_COUNT] = [
            $(|t, shape, out| {
                t.view.totals.$sf.write(out, concat!("actor_type_", $sname), t.block, shape, t.type_exemplars());
            },)*
            $(|t, shape, out| {
                let mut labels = String::new();
                for (i, v) in t.view.totals.$lf.iter().enumerate() {
                    extra_labels(&mut labels, t.block, <$le as LabelEnum>::LABEL, <$le as LabelEnum>::VALUES[i]);
                    v.write(out, concat!("actor_type_", $lname), &labels, shape, LineExemplars::default());
                }
            },)*
            $(|t, shape, out| {
                for ((_, cells), block) in t.view.snapshot.actions.iter().zip(t.action_blocks) {
                    let mut v = Default::default();
                    cells.$af.add_to(&mut v);
                    v.write(out, concat!("actor_type_", $aname), block, shape, t.action_exemplars(cells));
                }
            },)*
        ];
    }
}

/// The HELP/TYPE header of family `f`, per actor or aggregate.
fn family_header(out: &mut String, f: &FamilyInfo, aggregate: bool, shape: Shape<'_>) {
    let name = if aggregate { f.aggregate_name } else { f.name };
    header(out, name, f.help, type_word(f.kind, shape));
}

/// The escaped label block of an entry whose cache is `cache`, built in
/// `slot` on the first scrape that needs it (each text format owns a slot).
pub(crate) fn cached_label_block(
    cache: &LabelCache,
    slot: usize,
    labels: &ActorLabels,
) -> Arc<str> {
    cache.str(slot, || actor_label_block(labels))
}

/// Writes family `fi` of the actors from `next` (see [`Sink::actors`]),
/// `labels` holding their blocks; `header` writes the family's header in
/// the shape it is typed as, before the first actor.
// `Sink::actors`' five arguments plus the calling sink's own state (its
// buffer, its label blocks, its header).
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_actors(
    out: &mut String,
    fi: usize,
    style: Style,
    actors: &Actors<'_>,
    labels: &[Arc<str>],
    mut next: usize,
    limit: usize,
    syntax: Option<ExemplarSyntax>,
    header: impl FnOnce(&mut String, Shape<'static>),
) -> usize {
    let plain = shape(fi, style.summarise);
    if next == 0 {
        header(out, plain);
    }
    let write = ACTOR_WRITERS[fi];
    let carrier = syntax.and(Carrier::of(fi));
    // At least one actor per call, so a header is never written twice.
    while let (Some(e), Some(block)) = (actors.entries.get(next), labels.get(next)) {
        actors.prefetch_ahead(fi, next, |i| labels.get(i).map(|b| b.as_bytes()));
        // Only an actor that keeps exemplars has any: one null check for the others.
        let ex = match (carrier, e.kept_exemplars(actors.all_keep_exemplars)) {
            (Some(c), Some(kept)) => LineExemplars::new(kept.kept(c), syntax),
            _ => LineExemplars::default(),
        };
        write(&e.series, block, plain, ex, out);
        next += 1;
        if out.len() >= limit {
            break;
        }
    }
    next
}

/// Writes aggregate family `fi` of every type, after `header`.
pub(crate) fn write_aggregates(
    out: &mut String,
    fi: usize,
    types: &[TypeView<'_>],
    syntax: Option<ExemplarSyntax>,
    header: impl FnOnce(&mut String, Shape<'static>),
) {
    let f = &FAMILIES[fi];
    let shape = shape(fi, false);
    header(out, shape);
    let write = AGGREGATE_WRITERS[fi];
    let mut block = String::new();
    let mut action_blocks = Vec::new();
    for view in types {
        block.clear();
        push_label(&mut block, "actor_name", view.name);
        action_blocks.clear();
        if f.by_action {
            for (action, _) in &view.snapshot.actions {
                // `action` sorts before `actor_name`, as TextEncoder orders label names.
                let mut b = String::with_capacity(block.len() + action.len() + 12);
                push_label(&mut b, "action", action);
                b.push(',');
                b.push_str(&block);
                action_blocks.push(b);
            }
        }
        let t = TypeText {
            view,
            block: &block,
            action_blocks: &action_blocks,
            exemplars: syntax.and_then(|s| Carrier::of(fi).map(|c| (c, s))),
        };
        write(&t, shape, out);
    }
}

/// What both text formats (this one and OpenMetrics) write into: chunks of
/// text, and the label blocks of the scrape's actors, which they share (one
/// cache slot, the same bytes). Each format gives its own family headers.
#[derive(Default)]
pub(crate) struct TextBody {
    out: String,
    labels: Vec<Arc<str>>,
    /// How the format writes exemplars, if it carries them.
    exemplars: Option<ExemplarSyntax>,
}

impl TextBody {
    /// A body whose lines carry their exemplars, written by `syntax`.
    pub(crate) fn with_exemplars(syntax: ExemplarSyntax) -> Self {
        TextBody {
            exemplars: Some(syntax),
            ..TextBody::default()
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.out.len()
    }

    pub(crate) fn reserve(&mut self, bytes: usize) {
        self.out.reserve(bytes);
    }

    pub(crate) fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out).into_bytes()
    }

    pub(crate) fn push_str(&mut self, s: &str) {
        self.out.push_str(s);
    }

    pub(crate) fn out(&mut self) -> &mut String {
        &mut self.out
    }

    /// Family `fi` of the actors from `next` (see [`Sink::actors`]), headed by `header`.
    pub(crate) fn actors(
        &mut self,
        fi: usize,
        style: Style,
        actors: &Actors<'_>,
        (next, limit): (usize, usize),
        header: impl FnOnce(&mut String, Shape<'static>),
    ) -> usize {
        collect_labels(&mut self.labels, actors, |e| {
            cached_label_block(&e.label_cache, LABEL_SLOT, &e.labels)
        });
        write_actors(
            &mut self.out,
            fi,
            style,
            actors,
            &self.labels,
            next,
            limit,
            self.exemplars,
            header,
        )
    }

    /// Aggregate family `fi` of every type, headed by `header`.
    pub(crate) fn aggregates(
        &mut self,
        fi: usize,
        types: &[TypeView<'_>],
        header: impl FnOnce(&mut String, Shape<'static>),
    ) {
        write_aggregates(&mut self.out, fi, types, self.exemplars, header);
    }
}

/// The text format's writer.
#[derive(Default)]
pub(crate) struct TextSink(TextBody);

impl Sink for TextSink {
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

    fn registry(&mut self, families: &[prometheus::proto::MetricFamily]) {
        use prometheus::Encoder as _;
        let mut buf = Vec::new();
        match prometheus::TextEncoder::new().encode(families, &mut buf) {
            Ok(()) => self.0.push_str(&String::from_utf8_lossy(&buf)),
            // A collector registered by someone else broke: the actor families
            // are still written.
            Err(e) => tracing::error!(error = %e, "encoding the prometheus registry failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_formatting_matches_f64_display() {
        for v in [0u64, 1, 42, 1 << 52, (1 << 53) - 1, 1 << 53, u64::MAX] {
            let mut s = String::new();
            push_u64(&mut s, v);
            assert_eq!(s, (v as f64).to_string(), "value {v}");
        }
        for v in [-1i64, -(1 << 53), i64::MIN] {
            let mut s = String::new();
            push_i64(&mut s, v);
            assert_eq!(s, (v as f64).to_string(), "value {v}");
        }
    }

    #[test]
    fn escaping_matches_text_format() {
        let mut s = String::new();
        escape_into(&mut s, "a\\b\"c\nd\te");
        assert_eq!(s, "a\\\\b\\\"c\\nd\te");
    }

    #[test]
    fn a_histogram_writes_cumulative_buckets_and_a_summary_only_sum_and_count() {
        let fi = FAMILIES
            .iter()
            .position(|f| f.name == "actor_action_duration_seconds")
            .unwrap();
        // Observed in both modes, the same text.
        for native in [false, true] {
            let cell = crate::cells::HistogramCell::default();
            for v in [0.0005, 0.001, 0.2, 100.0] {
                cell.observe(&crate::buckets::ACTION_BUCKETS, v, native);
            }
            let mut t = HistogramTotal::default();
            cell.add_to(&mut t);
            let mut out = String::new();
            t.write(
                &mut out,
                "h",
                "a=\"1\"",
                shape(fi, false),
                LineExemplars::default(),
            );
            assert!(
                out.starts_with("h_bucket{a=\"1\",le=\"0.001\"} 2\n"),
                "{out}"
            );
            assert!(out.contains("h_bucket{a=\"1\",le=\"0.25\"} 3\n"), "{out}");
            assert!(out.contains("h_bucket{a=\"1\",le=\"+Inf\"} 4\n"), "{out}");
            assert!(out.ends_with("h_sum{a=\"1\"} 100.2015\nh_count{a=\"1\"} 4\n"));
            let mut out = String::new();
            t.write(
                &mut out,
                "h",
                "a=\"1\"",
                shape(fi, true),
                LineExemplars::default(),
            );
            assert_eq!(out, "h_sum{a=\"1\"} 100.2015\nh_count{a=\"1\"} 4\n");
            assert_eq!(type_word(Kind::Histogram, shape(fi, true)), "summary");
        }
    }
}
