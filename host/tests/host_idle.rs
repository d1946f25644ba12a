//! Idle sleep and the bound on live actors, on a paused clock: when an actor
//! sleeps, which one is put to sleep for room, and what keeps one awake.

mod common;

use std::time::Duration;

use actor_core::{CallError, HostConfig};
use serde_json::json;

use common::*;

#[tokio::test(start_paused = true)]
async fn an_idle_actor_sleeps_at_the_timeout_and_never_while_held_awake() {
    let dir = tempfile::tempdir().unwrap();
    let config = HostConfig::new(dir.path())
        .idle_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let host = build(config).await;
    let created = host.create("counter", "a").await.unwrap();
    host.call("counter", "a", "increment", json!({}))
        .await
        .unwrap();

    // Idle from the last call: still live just before the timeout, asleep after.
    tokio::time::sleep(Duration::from_millis(9_900)).await;
    assert_eq!(live_keys(&host), ["a"]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    settle("a sleeps", || host.live_count() == 0).await;
    let s = scrape(&host);
    let g1 = format!("{}:{}", created.actor_id, created.generation);
    assert_eq!(s.sum("actor_active", &[("actor_id_gen", &g1)]), 0.0);
    assert_eq!(
        s.sum(
            "actor_shutdown_wait_seconds_count",
            &[("actor_id_gen", &g1), ("reason", "sleep")]
        ),
        1.0,
        "series retained, the sleep recorded"
    );

    // A call wakes it (new generation, same data); an open connection keeps it up.
    let woken = host
        .call("counter", "a", "connect", json!({}))
        .await
        .unwrap();
    assert_eq!(woken["connections"], 1);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(live_keys(&host), ["a"], "a connection holds it awake");
    host.call("counter", "a", "disconnect", json!({}))
        .await
        .unwrap();
    // A user task holds it awake too; the idle time counts from the task's end.
    host.call(
        "counter",
        "a",
        "spawn_task",
        json!({"kind": "background", "ms": 30_000}),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(39)).await;
    assert_eq!(live_keys(&host), ["a"], "task ended at 30 s, idle for 9 s");
    tokio::time::sleep(Duration::from_secs(2)).await;
    settle("a sleeps again", || host.live_count() == 0).await;
    let value = host.call("counter", "a", "get", json!({})).await.unwrap();
    assert_eq!(value["value"], 1);
    assert_eq!(host.list()[0].generation, 3);
}

#[tokio::test(start_paused = true)]
async fn at_the_bound_a_wake_sleeps_the_least_recently_used_idle_actor() {
    let dir = tempfile::tempdir().unwrap();
    let config = HostConfig::new(dir.path())
        .idle_timeout(None)
        .unwrap()
        .max_live_actors(3)
        .unwrap();
    let host = build(config).await;
    for key in ["a", "b", "c"] {
        host.create("counter", key).await.unwrap();
        host.call("counter", key, "increment", json!({}))
            .await
            .unwrap();
    }
    // a is used last and held awake by a connection: b is the oldest idle one.
    host.call("counter", "a", "connect", json!({}))
        .await
        .unwrap();
    host.create("counter", "d").await.unwrap();
    assert_eq!(live_keys(&host), ["a", "c", "d"]);
    host.create("counter", "e").await.unwrap();
    assert_eq!(live_keys(&host), ["a", "d", "e"]);

    // Everyone busy: the wake is refused, nothing is put to sleep.
    for key in ["d", "e"] {
        host.call("counter", key, "connect", json!({}))
            .await
            .unwrap();
    }
    let refused = host.create("counter", "f").await.unwrap_err();
    assert!(
        matches!(refused, CallError::AtCapacity { max: 3 }),
        "{refused}"
    );
    assert_eq!(refused.http_status(), 503);
    assert_eq!(live_keys(&host), ["a", "d", "e"]);

    // One frees up: the slept actors kept their data.
    host.call("counter", "e", "disconnect", json!({}))
        .await
        .unwrap();
    let b = host.call("counter", "b", "get", json!({})).await.unwrap();
    assert_eq!(b["value"], 1);
    assert_eq!(live_keys(&host), ["a", "b", "d"]);
    assert_eq!(host.live_count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_callers_over_more_keys_than_live_slots_lose_no_increment() {
    let dir = tempfile::tempdir().unwrap();
    let config = HostConfig::new(dir.path())
        .idle_timeout(None)
        .unwrap()
        .max_live_actors(8)
        .unwrap();
    let host = build(config).await;
    let keys = 40;
    let callers = 6;
    let per_caller = 150;
    for k in 0..keys {
        host.create("counter", &format!("k{k}")).await.unwrap();
    }
    let mut tasks = Vec::new();
    for c in 0..callers {
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_caller {
                let key = format!("k{}", (c * 7 + i * 13) % keys);
                host.call("counter", &key, "increment", json!({}))
                    .await
                    .unwrap_or_else(|e| panic!("{key}: {e}"));
                assert!(host.live_count() <= 8, "{}", host.live_count());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut total = 0;
    for k in 0..keys {
        let v = host
            .call("counter", &format!("k{k}"), "get", json!({}))
            .await
            .unwrap();
        total += v["value"].as_u64().unwrap();
    }
    assert_eq!(total, (callers * per_caller) as u64);
    assert!(host.live_count() <= 8);
    host.shutdown().await;
    assert_eq!(scrape(&host).sum("actor_type_active", &[]), 0.0);
}

#[tokio::test(start_paused = true)]
async fn a_queued_message_keeps_its_actor_awake_through_idle_and_lru() {
    let dir = tempfile::tempdir().unwrap();
    let config = HostConfig::new(dir.path())
        .idle_timeout(Some(Duration::from_secs(10)))
        .unwrap()
        .max_live_actors(1)
        .unwrap();
    let host = build(config).await;
    host.create("counter", "q").await.unwrap();
    host.call("counter", "q", "enqueue", json!({"message": "kept"}))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(live_keys(&host), ["q"], "not idle while a message waits");
    // At the bound, it is not put to sleep to make room.
    let refused = host.create("counter", "other").await.unwrap_err();
    assert!(
        matches!(refused, CallError::AtCapacity { max: 1 }),
        "{refused}"
    );
    assert!(refused.to_string().contains("queued messages"), "{refused}");
    let got = host
        .call("counter", "q", "dequeue", json!({}))
        .await
        .unwrap();
    assert_eq!(got["message"], "kept");
    // Empty again: idle, and it sleeps at the timeout.
    tokio::time::sleep(Duration::from_secs(11)).await;
    settle("q sleeps", || host.live_count() == 0).await;
    host.create("counter", "other").await.unwrap();
}

#[tokio::test]
async fn an_idle_timeout_under_the_minimum_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = HostConfig::new(dir.path())
        .idle_timeout(Some(Duration::ZERO))
        .unwrap_err();
    assert!(
        matches!(
            err,
            actor_core::config::HostConfigError::IdleTimeoutTooShort { .. }
        ),
        "{err}"
    );
    assert!(HostConfig::new(dir.path()).max_live_actors(0).is_err());
    assert!(HostConfig::new(dir.path()).max_client_bytes(0).is_err());
}
