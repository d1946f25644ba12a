//! Shared helpers for the benches and the memory measurement (see BENCHMARKS.md).
//!
//! * [`ManualClock`]: a [`Clock`] the benches move by hand, so retention and
//!   sweeps are driven without a runtime and without sleeping.
//! * [`populate`]: writes the *full catalogue* into one actor (every family,
//!   every value of its enum label, one action), and/or the same values into
//!   the peers, the baselines of the scrape, memory and hot-path benches:
//!   [`Mirror`], the same series built as `prometheus` `MetricVec`s, and
//!   [`ClientMirror`] (in `client.rs`), the same series as `prometheus-client`
//!   `Family`s.
//! * [`assert_same_per_actor_samples`]: parses two scrapes with a real parser
//!   and checks that every per-actor series reads back the same value; a peer's
//!   OpenMetrics text is read through [`TextFormat::OpenMetrics`].
//!
//! The catalogue is walked from [`FAMILIES`], and our side records through
//! `actor_metrics::testing::apply`, which is generated from the same
//! declaration: a new family is populated here with no edit.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actor_metrics::clock::Clock;
use actor_metrics::families::Kind;
use actor_metrics::families::{FAMILIES, FamilyInfo};
use actor_metrics::scrape::Scrape;
pub use actor_metrics::testing::Op;
use actor_metrics::{ActionMetrics, ActorMetrics, Config, DetailLevel, Metrics};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

mod client;
pub use client::{ActorLabels, ClientActor, ClientMirror, ExtraLabels, openmetrics_name};

/// `envoy_key` of every bench actor (ours and both peers').
pub const ENVOY: &str = "bench-host:4242";

/// The per-actor label names, in the order `TextEncoder` sorts them.
pub const ACTOR_LABELS: [&str; 3] = ["actor_id_gen", "actor_key", "envoy_key"];

/// A clock the bench moves by hand: a fixed base plus an offset in nanoseconds.
#[derive(Debug)]
pub struct ManualClock {
    base: tokio::time::Instant,
    offset_nanos: AtomicU64,
}

impl ManualClock {
    /// A clock standing at its base instant.
    pub fn new() -> Arc<Self> {
        Arc::new(ManualClock {
            base: tokio::time::Instant::now(),
            offset_nanos: AtomicU64::new(0),
        })
    }

    /// The instant `offset` after the base.
    pub fn at(&self, offset: Duration) -> tokio::time::Instant {
        self.base + offset
    }

    /// Moves the clock to `offset` after the base.
    pub fn set(&self, offset: Duration) {
        let nanos = u64::try_from(offset.as_nanos()).expect("bench offsets fit in u64 nanos");
        self.offset_nanos.store(nanos, Ordering::SeqCst);
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).expect("bench offsets fit in u64 nanos");
        self.offset_nanos.fetch_add(nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> tokio::time::Instant {
        self.base + Duration::from_nanos(self.offset_nanos.load(Ordering::SeqCst))
    }
}

/// A bench instance: manual clock, fixed `envoy_key`, the given retention and a
/// cap far above anything a bench retains (10M), so the cap never interferes.
pub fn bench_metrics(clock: Arc<ManualClock>, retention: Duration) -> Metrics {
    Metrics::with_parts(
        Config {
            retention,
            per_actor_detail: DetailLevel::Full,
            max_retained: 10_000_000,
            max_sweep_per_tick: 1_000_000,
            envoy_key: ENVOY.into(),
            ..Config::default()
        },
        clock,
        Registry::new(),
    )
    .expect("bench configuration is valid")
}

/// Actor id of bench actor `i` (generation 1).
pub fn actor_id(i: usize) -> String {
    format!("actor-{i:07}")
}

/// Actor key of bench actor `i`.
pub fn actor_key(i: usize) -> String {
    format!("user-{i}")
}

/// `actor_id_gen` of bench actor `i`, as the mirror labels it.
pub fn actor_id_gen(i: usize) -> String {
    format!("{}:1", actor_id(i))
}

/// Children per actor in the full catalogue (one per family and extra-label value).
pub fn series_per_actor() -> usize {
    FAMILIES.iter().map(|f| f.label_values.len().max(1)).sum()
}

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
    /// peer, for [`populate`].
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

/// One bench actor's series in a peer library (a baseline), written by [`populate`].
pub trait PeerActor {
    /// Applies `op` to this actor's child of family `FAMILIES[fi]`, with
    /// `extra` the value of the family's extra label.
    ///
    /// # Panics
    /// When `op` does not fit the family's kind.
    fn apply(&self, fi: usize, extra: Option<&'static str>, op: Op);
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

/// Index in [`FAMILIES`] of the family `name`.
fn family_index(name: &str) -> usize {
    FAMILIES
        .iter()
        .position(|f| f.name == name)
        .unwrap_or_else(|| panic!("{name} is in the catalogue"))
}

/// Writes the full catalogue for bench actor `i` into our handle and/or each
/// peer, with the same values: every counter, gauge and histogram of every
/// family, every extra-label value, `actor_active` (1, from the live
/// registration), and one action called twice (one success, one error). One
/// walk over [`FAMILIES`] feeds every target, so a new family reaches all of them.
pub fn populate(i: usize, ours: Option<(&ActorMetrics, &ActionMetrics)>, peers: &[&dyn PeerActor]) {
    for (fi, f) in FAMILIES.iter().enumerate() {
        if f.by_action {
            continue; // recorded together by record_action below
        }
        if f.name == "actor_active" {
            for p in peers {
                p.apply(fi, None, Op::Set(1));
            }
            continue;
        }
        let values = f.label_values;
        for slot in 0..values.len().max(1) {
            let slot = (!values.is_empty()).then_some(slot);
            let k = i.wrapping_mul(31) + fi * 7 + slot.unwrap_or(0);
            let op = match f.kind {
                Kind::Counter => Op::Inc(1 + (k % 1000) as u64),
                Kind::Gauge => Op::Set(1 + (k % 50) as i64),
                Kind::Histogram => {
                    let b = f.buckets.expect("histograms declare buckets").bounds();
                    Op::Observe(b[k % b.len()] * 0.75)
                }
            };
            if let Some((a, _)) = ours {
                actor_metrics::testing::apply(a, f, slot, op)
                    .unwrap_or_else(|e| panic!("populating {}: {e}", f.name));
            }
            for p in peers {
                p.apply(fi, slot.map(|s| values[s]), op);
            }
        }
    }
    let ok = Duration::from_micros(300 + (i % 5000) as u64);
    let failed = Duration::from_millis(1 + (i % 3000) as u64);
    if let Some((a, act)) = ours {
        a.record_action(act, ok, true);
        a.record_action(act, failed, false);
    }
    let calls = family_index("actor_action_calls_total");
    let errors = family_index("actor_action_errors_total");
    let duration = family_index("actor_action_duration_seconds");
    for p in peers {
        p.apply(calls, None, Op::Inc(2));
        p.apply(errors, None, Op::Inc(1));
        p.apply(duration, None, Op::Observe(ok.as_secs_f64()));
        p.apply(duration, None, Op::Observe(failed.as_secs_f64()));
    }
}

/// Registers `n` bench actors of type `counter` in `m`, each with the full
/// catalogue populated, and returns their live handles.
pub fn build_ours(m: &Metrics, n: usize) -> Vec<ActorMetrics> {
    let ty = m.actor_type("counter");
    let act = ty.action("increment");
    (0..n)
        .map(|i| {
            let a = ty.register(&actor_id(i), Some(1), &actor_key(i));
            populate(i, Some((&a, &act)), &[]);
            a
        })
        .collect()
}

/// The mirror of [`build_ours`]: the same `n` actors' series as `MetricVec` children.
pub fn build_mirror(n: usize) -> Mirror {
    let m = Mirror::new();
    for i in 0..n {
        let (id_gen, key) = (actor_id_gen(i), actor_key(i));
        populate(i, None, &[&m.actor([&id_gen, &key, ENVOY])]);
    }
    m
}

/// Bench actor `i`'s labels as `prometheus-client` keys them.
pub fn client_labels(i: usize) -> ActorLabels {
    ActorLabels {
        actor_id_gen: actor_id_gen(i),
        actor_key: actor_key(i),
        envoy_key: ENVOY.into(),
    }
}

/// The same `n` actors' series as `prometheus-client` `Family` children.
pub fn build_client(n: usize) -> ClientMirror {
    let c = ClientMirror::new();
    for i in 0..n {
        populate(i, None, &[&c.actor(client_labels(i))]);
    }
    c
}

/// The `# HELP name …` block of one family (up to the next `# HELP`).
fn family_block<'a>(text: &'a str, name: &str) -> &'a str {
    let pat = format!("# HELP {name} ");
    let Some((start, _)) = text
        .match_indices(&pat)
        .find(|(i, _)| *i == 0 || text.as_bytes()[i - 1] == b'\n')
    else {
        return "";
    };
    let end = text[start + 1..]
        .find("\n# HELP ")
        .map_or(text.len(), |e| start + 1 + e + 1);
    &text[start..end]
}

type SeriesKey = (String, BTreeMap<String, String>);

/// How a scrape is written, for [`assert_same_per_actor_samples`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFormat {
    /// Prometheus text format 0.0.4: ours and `prometheus::TextEncoder`.
    Prometheus,
    /// OpenMetrics text as `prometheus_client::encoding::text::encode` writes
    /// it: a counter family's `# HELP`/`# TYPE` name lacks the `_total` its
    /// samples carry, the text ends with `# EOF`, and whole-number bounds keep
    /// their fraction (`le="1.0"` where 0.0.4 writers print `le="1"`).
    OpenMetrics,
}

/// The `# TYPE` word of a kind.
fn type_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
        Kind::Histogram => "histogram",
    }
}

/// The samples of family `f` in `text`, keyed by name and labels, with `le`
/// in one canonical spelling (the formats print the same bound differently).
fn parse_block(text: &str, f: &FamilyInfo, format: TextFormat) -> HashMap<SeriesKey, f64> {
    let parsed = match format {
        TextFormat::Prometheus => Scrape::parse(family_block(text, f.name)),
        TextFormat::OpenMetrics => {
            // Check the header as OpenMetrics writes it, then state it the 0.0.4
            // way (named like the samples) so the same parser reads the samples.
            let name = openmetrics_name(f);
            let block = family_block(text, name);
            let typed = format!("\n# TYPE {name} {}\n", type_word(f.kind));
            assert!(block.contains(&typed), "{}: no {typed:?}", f.name);
            let mut restated = format!("# TYPE {} {}\n", f.name, type_word(f.kind));
            for line in block.lines().filter(|l| !l.starts_with('#')) {
                restated.push_str(line);
                restated.push('\n');
            }
            Scrape::parse(&restated)
        }
    };
    let parsed = parsed.unwrap_or_else(|e| panic!("{format:?} {}: {e}", f.name));
    parsed
        .samples()
        .iter()
        .map(|s| {
            let mut labels = s.labels.clone();
            if let Some(le) = labels.get_mut("le") {
                let bound: f64 = le.parse().unwrap_or_else(|_| panic!("le={le:?}"));
                *le = bound.to_string();
            }
            ((s.name.clone(), labels), s.value)
        })
        .collect()
}

/// Parses both scrapes family by family (to bound memory) with
/// [`Scrape::parse`] and asserts that every per-actor family has exactly the same
/// series with exactly the same values in both (`ours` in the 0.0.4 format,
/// `theirs` in `format`). Returns the samples compared.
pub fn assert_same_per_actor_samples(ours: &str, theirs: &str, format: TextFormat) -> usize {
    let mut compared = 0;
    for f in &FAMILIES {
        let a = parse_block(ours, f, TextFormat::Prometheus);
        let b = parse_block(theirs, f, format);
        assert!(!a.is_empty(), "{}: our scrape has samples", f.name);
        assert_eq!(a.len(), b.len(), "{}: same number of samples", f.name);
        for (key, v) in &b {
            let mine = a
                .get(key)
                .unwrap_or_else(|| panic!("{}: ours lacks {key:?}", f.name));
            assert_eq!(mine.to_bits(), v.to_bits(), "{}: {key:?}", f.name);
        }
        compared += a.len();
    }
    compared
}

/// Resident set size of this process, from `/proc/self/statm`.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm (Linux)");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm has a resident field");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).expect("page size is positive")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The peers hold what we hold: the benches' equivalence check, on a few actors.
    #[test]
    fn both_peers_read_back_our_per_actor_samples() {
        let m = bench_metrics(ManualClock::new(), Duration::from_secs(600));
        let _live = build_ours(&m, 3);
        let ours = m.render();

        let mut prom = Vec::new();
        build_mirror(3).encode_into(&mut prom);
        let prom = String::from_utf8(prom).expect("UTF-8");
        let expected = assert_same_per_actor_samples(&ours, &prom, TextFormat::Prometheus);

        let mut om = String::new();
        build_client(3).encode_into(&mut om);
        assert!(om.ends_with("# EOF\n"), "OpenMetrics text");
        assert_eq!(
            assert_same_per_actor_samples(&ours, &om, TextFormat::OpenMetrics),
            expected
        );
    }
}
