//! Shared helpers for the benches and the memory measurement (see BENCHMARKS.md).
//!
//! * [`ManualClock`]: a [`Clock`] the benches move by hand, so retention and
//!   sweeps are driven without a runtime and without sleeping.
//! * [`populate`]: writes the *full catalogue* into one actor (every family,
//!   every value of its enum label, one action), and/or the same values into
//!   [`Mirror`], the same series built as `prometheus` `MetricVec`s, which is the
//!   baseline of the scrape bench and of the memory measurement.
//! * [`assert_same_per_actor_samples`]: parses both scrapes with a real parser
//!   and checks that every per-actor series reads back the same value.
//!
//! The catalogue is walked from [`FAMILIES`], and our side records through
//! `actor_metrics::testing::apply`, which is generated from the same
//! declaration: a new family is populated here with no edit.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actor_metrics::families::FAMILIES;
use actor_metrics::scrape::Scrape;
pub use actor_metrics::testing::Op;
use actor_metrics::{ActionMetrics, ActorMetrics, Clock, Config, DetailLevel, Kind, Metrics};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// `envoy_key` of every bench actor (ours and the mirror's).
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

    /// Applies `op` to the child of family `fi` (index into [`FAMILIES`]).
    pub fn apply(&self, fi: usize, labels: [&str; 3], extra: Option<&str>, op: Op) {
        let mut vals = [labels[0], labels[1], labels[2], ""];
        let vals: &[&str] = match extra {
            Some(e) => {
                vals[3] = e;
                &vals
            }
            None => &vals[..3],
        };
        match (&self.vecs[fi], op) {
            (MirrorVec::Counter(v), Op::Inc(n)) => v.with_label_values(vals).inc_by(n),
            (MirrorVec::Gauge(v), Op::Set(x)) => v.with_label_values(vals).set(x),
            (MirrorVec::Histogram(v), Op::Observe(x)) => v.with_label_values(vals).observe(x),
            _ => panic!("{}: op {op:?} does not fit the kind", FAMILIES[fi].name),
        }
    }

    fn apply_named(&self, name: &str, labels: [&str; 3], op: Op) {
        let fi = FAMILIES
            .iter()
            .position(|f| f.name == name)
            .unwrap_or_else(|| panic!("{name} is in the catalogue"));
        self.apply(fi, labels, None, op);
    }

    /// `registry.gather()` then `TextEncoder::encode`, appended to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        TextEncoder::new()
            .encode(&self.registry.gather(), out)
            .expect("encoding to a Vec cannot fail");
    }
}

/// Writes the full catalogue for bench actor `i` into our handle and/or the
/// mirror (labels `[actor_id_gen, actor_key, envoy_key]`), with the same values:
/// every counter, gauge and histogram of every family, every extra-label value,
/// `actor_active` (1, from the live registration), and one action called twice
/// (one success, one error).
pub fn populate(
    i: usize,
    ours: Option<(&ActorMetrics, &ActionMetrics)>,
    mirror: Option<(&Mirror, [&str; 3])>,
) {
    for (fi, f) in FAMILIES.iter().enumerate() {
        if f.by_action {
            continue; // recorded together by record_action below
        }
        if f.name == "actor_active" {
            if let Some((m, l)) = mirror {
                m.apply(fi, l, None, Op::Set(1));
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
            if let Some((m, l)) = mirror {
                m.apply(fi, l, slot.map(|s| values[s]), op);
            }
        }
    }
    let ok = Duration::from_micros(300 + (i % 5000) as u64);
    let failed = Duration::from_millis(1 + (i % 3000) as u64);
    if let Some((a, act)) = ours {
        a.record_action(act, ok, true);
        a.record_action(act, failed, false);
    }
    if let Some((m, l)) = mirror {
        m.apply_named("actor_action_calls_total", l, Op::Inc(2));
        m.apply_named("actor_action_errors_total", l, Op::Inc(1));
        m.apply_named(
            "actor_action_duration_seconds",
            l,
            Op::Observe(ok.as_secs_f64()),
        );
        m.apply_named(
            "actor_action_duration_seconds",
            l,
            Op::Observe(failed.as_secs_f64()),
        );
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
            populate(i, Some((&a, &act)), None);
            a
        })
        .collect()
}

/// The mirror of [`build_ours`]: the same `n` actors' series as `MetricVec` children.
pub fn build_mirror(n: usize) -> Mirror {
    let m = Mirror::new();
    for i in 0..n {
        let (id_gen, key) = (actor_id_gen(i), actor_key(i));
        populate(i, None, Some((&m, [&id_gen, &key, ENVOY])));
    }
    m
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

fn parse_block(text: &str, name: &str, which: &str) -> HashMap<SeriesKey, f64> {
    let block = family_block(text, name);
    let parsed = Scrape::parse(block).unwrap_or_else(|e| panic!("{which} {name}: {e}"));
    parsed
        .samples()
        .iter()
        .map(|s| ((s.name.clone(), s.labels.clone()), s.value))
        .collect()
}

/// Parses both scrapes family by family (to bound memory) with
/// [`Scrape::parse`] and asserts that every per-actor family has exactly the same
/// series with exactly the same values in both. Returns the samples compared.
pub fn assert_same_per_actor_samples(ours: &str, theirs: &str) -> usize {
    let mut compared = 0;
    for f in &FAMILIES {
        let a = parse_block(ours, f.name, "ours");
        let b = parse_block(theirs, f.name, "prometheus");
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
