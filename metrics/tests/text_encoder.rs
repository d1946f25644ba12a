//! The renderer writes exactly what `prometheus::TextEncoder` writes for the same
//! families and events: same HELP/TYPE lines, label escaping, label order, `le`
//! formatting and number formatting. Checked line by line (order aside: the
//! encoder sorts series by label values, the renderer does not).

use std::time::Duration;

use actor_metrics::buckets::{ACTION_BUCKETS, TASK_BUCKETS};
use actor_metrics::families::FAMILIES;
use actor_metrics::labels::{MutationReason, TaskKind};
use actor_metrics::{Config, DetailLevel, Metrics};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

const KEYS: &[&str] = &[
    "plain",
    "quote\"q",
    "back\\slash",
    "new\nline",
    "tab\tand ✓ 🦀",
    "",
    "}{,=",
];

fn help(name: &str) -> &'static str {
    FAMILIES
        .iter()
        .find(|f| f.name == name)
        .expect("declared family")
        .help
}

/// Lines of one family's block (HELP, TYPE and samples), samples sorted.
fn block(text: &str, family: &str) -> Vec<String> {
    let mut header = Vec::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if line == format!("# HELP {family} {}", help(family))
            || line.starts_with(&format!("# TYPE {family} "))
        {
            header.push(line.to_owned());
        } else if let Some(rest) = line.strip_prefix(family)
            && (rest.starts_with('{')
                || rest.starts_with(' ')
                || rest.starts_with("_bucket")
                || rest.starts_with("_sum")
                || rest.starts_with("_count"))
            && !line.starts_with('#')
        {
            samples.push(line.to_owned());
        }
    }
    samples.sort();
    header.extend(samples);
    header
}

#[test]
fn renderer_output_equals_text_encoder_output() {
    let m = Metrics::new(Config {
        envoy_key: "env \"1\"".into(),
        per_actor_detail: DetailLevel::Full,
        ..Config::default()
    })
    .unwrap();
    let ty = m.actor_type("counter");
    let act = ty.action("increment");

    let labels = ["actor_id_gen", "actor_key", "envoy_key"];
    let reg = Registry::new();
    let sent = IntCounterVec::new(
        Opts::new(
            "actor_queue_messages_sent_total",
            help("actor_queue_messages_sent_total"),
        ),
        &labels,
    )
    .unwrap();
    let depth = IntGaugeVec::new(
        Opts::new("actor_queue_depth", help("actor_queue_depth")),
        &labels,
    )
    .unwrap();
    let calls = IntCounterVec::new(
        Opts::new("actor_action_calls_total", help("actor_action_calls_total")),
        &labels,
    )
    .unwrap();
    let dur = HistogramVec::new(
        HistogramOpts::new(
            "actor_action_duration_seconds",
            help("actor_action_duration_seconds"),
        )
        .buckets(ACTION_BUCKETS.bounds().to_vec()),
        &labels,
    )
    .unwrap();
    let task = HistogramVec::new(
        HistogramOpts::new(
            "actor_user_task_duration_seconds",
            help("actor_user_task_duration_seconds"),
        )
        .buckets(TASK_BUCKETS.bounds().to_vec()),
        &["actor_id_gen", "actor_key", "envoy_key", "kind"],
    )
    .unwrap();
    let mutations = IntCounterVec::new(
        Opts::new(
            "actor_state_mutations_total",
            help("actor_state_mutations_total"),
        ),
        &["actor_id_gen", "actor_key", "envoy_key", "reason"],
    )
    .unwrap();
    for c in [
        Box::new(sent.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(depth.clone()),
        Box::new(calls.clone()),
        Box::new(dur.clone()),
        Box::new(task.clone()),
        Box::new(mutations.clone()),
    ] {
        reg.register(c).unwrap();
    }

    let mut handles = Vec::new();
    for (i, key) in KEYS.iter().enumerate() {
        let a = ty.register(&format!("id{i}"), Some(i as u64), key);
        let id_gen = format!("id{i}:{i}");
        let l = [id_gen.as_str(), key, "env \"1\""];
        let n = (i as u64 + 1) * 1_000_003;
        a.queue_messages_sent_total().inc_by(n);
        sent.with_label_values(&l).inc_by(n);
        a.queue_depth().set(-(i as i64) * 7);
        depth.with_label_values(&l).set(-(i as i64) * 7);
        for j in 0..=i {
            let d = Duration::from_micros(300 + 997 * (j as u64) * (i as u64 + 1));
            a.record_action(&act, d, true);
            calls.with_label_values(&l).inc();
            dur.with_label_values(&l).observe(d.as_secs_f64());
            let t = 0.007 * (j as f64 + 1.0) * 13.0;
            a.user_task_duration_seconds(TaskKind::KeepAwake).observe(t);
            task.with_label_values(&[l[0], l[1], l[2], "keep_awake"])
                .observe(t);
        }
        a.state_mutations_total(MutationReason::Schedule).inc_by(3);
        mutations
            .with_label_values(&[l[0], l[1], l[2], "schedule"])
            .inc_by(3);
        handles.push(a);
    }
    // A huge value past 2^53 goes through the float path in both.
    handles[0].connections_total().inc_by(u64::MAX / 3);

    let ours = m.render();
    let mut buf = Vec::new();
    TextEncoder::new().encode(&reg.gather(), &mut buf).unwrap();
    let theirs = String::from_utf8(buf).unwrap();

    for family in [
        "actor_queue_messages_sent_total",
        "actor_queue_depth",
        "actor_action_calls_total",
        "actor_action_duration_seconds",
        "actor_user_task_duration_seconds",
        "actor_state_mutations_total",
    ] {
        let a = block(&ours, family);
        let b = block(&theirs, family);
        assert!(b.len() > 2, "{family}: mirror produced samples");
        assert_eq!(a, b, "{family}: renderer and TextEncoder differ");
    }
    let big = (u64::MAX / 3) as f64;
    assert!(
        ours.contains(&format!(" {big}\n")),
        "large counter written as TextEncoder writes an f64"
    );
}
