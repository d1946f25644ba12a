//! [`populate`](fn@populate): the full catalogue written into one bench actor, ours and/or
//! the peers', with the same values; and `build_*`, `n` such actors in ours,
//! in the [`Mirror`] and in the [`ClientMirror`].

use std::time::Duration;

use actor_metrics::families::FAMILIES;
use actor_metrics::families::Kind;
use actor_metrics::testing::Op;
use actor_metrics::{ActionMetrics, ActorMetrics, Metrics};

use crate::actors::{ENVOY, PeerActor, actor_id, actor_id_gen, actor_key};
use crate::client::{ClientMirror, client_labels};
use crate::mirror::Mirror;

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

/// The same `n` actors' series as `prometheus-client` `Family` children.
pub fn build_client(n: usize) -> ClientMirror {
    let c = ClientMirror::new();
    for i in 0..n {
        populate(i, None, &[&c.actor(client_labels(i))]);
    }
    c
}
