//! Starts that fail or block, and the queue's bounds: a broken actor costs no
//! label set per retry, blocked starts stall no other actor, and a full queue
//! names its limit.

mod common;

use std::sync::Arc;
use std::time::Duration;

use actor_core::{CallError, HostConfig};
use serde_json::json;

use common::*;

/// Overwrites the database of the sleeping actor `id` with bytes SQLite refuses.
fn damage(dir: &std::path::Path, id: &str) {
    let db = dir.join("counter").join(format!("{id}.db"));
    std::fs::write(&db, vec![0x5a; 8192]).unwrap();
    let _ = std::fs::remove_file(dir.join("counter").join(format!("{id}.db-wal")));
}

#[tokio::test(start_paused = true)]
async fn a_broken_actor_retried_by_clients_leaves_no_label_set_and_is_not_restarted_per_call() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path(), Duration::from_secs(1)).await;
    let created = host.create("counter", "broken").await.unwrap();
    host.sleep("counter", "broken").await.unwrap();
    damage(dir.path(), &created.actor_id);
    // Generation 1 stays retained after its sleep, as any stopped actor's.
    assert_eq!(host.metrics().retained_len(), 1);

    // A client retrying at will: one start is tried, the rest fail fast.
    for _ in 0..100 {
        let err = host
            .call("counter", "broken", "get", json!({}))
            .await
            .unwrap_err();
        assert!(matches!(err, CallError::StartFailed(_)), "{err}");
        assert_eq!(err.http_status(), 500);
    }
    assert_eq!(
        host.metrics().retained_len(),
        1,
        "a start that failed leaves no label set"
    );
    // After the retry delay one more start is tried, and fails the same way.
    tokio::time::advance(Duration::from_millis(1100)).await;
    for _ in 0..10 {
        assert!(
            host.call("counter", "broken", "get", json!({}))
                .await
                .is_err()
        );
    }
    assert_eq!(host.metrics().retained_len(), 1);
    let s = scrape(&host);
    assert_eq!(s.sum("actor_active", &[("actor_key", "broken")]), 0.0);
    assert_eq!(s.sum("actor_type_active", &[]), 0.0);

    // Repaired (the damaged file moved away): the next start after the delay
    // works, and only two generations went to the failed starts.
    std::fs::remove_file(
        dir.path()
            .join("counter")
            .join(format!("{}.db", created.actor_id)),
    )
    .unwrap();
    tokio::time::advance(Duration::from_millis(1100)).await;
    let woken = host.create("counter", "broken").await.unwrap();
    assert_eq!(woken.generation, 4);
    assert_eq!(host.metrics().retained_len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_destroyed_broken_actor_can_be_created_again_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path(), Duration::from_secs(1)).await;
    let created = host.create("counter", "b").await.unwrap();
    host.sleep("counter", "b").await.unwrap();
    damage(dir.path(), &created.actor_id);
    assert!(host.call("counter", "b", "get", json!({})).await.is_err());
    host.destroy("counter", "b").await.unwrap();
    let again = host.create("counter", "b").await.unwrap();
    assert_ne!(again.actor_id, created.actor_id);
}

/// An actor type whose start blocks its thread (as SQLite does on a file
/// another process holds locked) until the test opens the gate.
struct Blocking {
    gate: Arc<std::sync::RwLock<()>>,
    /// One message per start that reached the gate.
    entered: std::sync::mpsc::Sender<()>,
}

impl actor_core::Behaviour for Blocking {
    fn name(&self) -> &'static str {
        "blocking"
    }

    fn actions(&self) -> &'static [&'static str] {
        &["get"]
    }

    fn load_state(&self, _: &mut actor_core::Context) -> Result<(), actor_core::ActionError> {
        let _ = self.entered.send(());
        drop(self.gate.read());
        Ok(())
    }

    fn call<'a>(
        &'a self,
        _: &'a mut actor_core::Context,
        _: &'static str,
        _: serde_json::Value,
    ) -> actor_core::BoxFuture<'a, Result<serde_json::Value, actor_core::ActionError>> {
        Box::pin(async { Ok(json!({})) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_that_block_in_sqlite_do_not_stall_the_other_actors() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(std::sync::RwLock::new(()));
    let (entered, starts_blocked) = std::sync::mpsc::channel();
    let blocking = Blocking {
        gate: gate.clone(),
        entered,
    };
    let host = build_with(HostConfig::new(dir.path()), blocking).await;
    host.create("counter", "healthy").await.unwrap();

    let closed = gate.write().unwrap();
    // As many blocked starts as the runtime has workers.
    let starts: Vec<_> = ["b1", "b2"]
        .map(|key| {
            let host = host.clone();
            tokio::spawn(async move { host.create("blocking", key).await })
        })
        .into();
    for _ in 0..2 {
        starts_blocked
            .recv_timeout(Duration::from_secs(30))
            .expect("the starts never began");
    }
    // This thread is not a runtime worker: it may block on a channel without
    // stalling them (and needs no runtime timer, which stalled workers would
    // not drive).
    let h = host.clone();
    let (answered, answer) = std::sync::mpsc::channel();
    tokio::spawn(async move {
        let _ = answered.send(h.call("counter", "healthy", "increment", json!({})).await);
    });
    let healthy = answer.recv_timeout(Duration::from_secs(10));
    drop(closed);
    let healthy = healthy.expect("a call to a live actor waited for two blocked starts");
    assert_eq!(healthy.unwrap()["value"], 1);
    for start in starts {
        start.await.unwrap().unwrap();
    }
    host.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_queue_is_bounded_in_messages_and_bytes_and_names_its_limits() {
    let dir = tempfile::tempdir().unwrap();
    let config = HostConfig::new(dir.path())
        .queue_max_messages(3)
        .unwrap()
        .queue_max_bytes(100)
        .unwrap();
    let host = build(config).await;
    host.create("counter", "q").await.unwrap();
    let enqueue = |message: serde_json::Value| {
        let host = host.clone();
        async move {
            host.call("counter", "q", "enqueue", json!({ "message": message }))
                .await
        }
    };
    for i in 0..3 {
        enqueue(json!(i)).await.unwrap();
    }
    let full = enqueue(json!(3)).await.unwrap_err();
    assert_eq!(full.http_status(), 503, "{full}");
    let text = full.to_string();
    assert!(
        text.contains("3 messages") && text.contains("100 bytes"),
        "{text}"
    );
    // One out, one in; the refused message was never queued.
    let first = host
        .call("counter", "q", "dequeue", json!({}))
        .await
        .unwrap();
    assert_eq!(first["message"], 0);
    enqueue(json!(4)).await.unwrap();

    // Bytes: a message that alone passes the limit is 413; one that does
    // not fit next to the others is 503.
    let huge = enqueue(json!("x".repeat(200))).await.unwrap_err();
    assert_eq!(huge.http_status(), 413, "{huge}");
    for _ in 0..3 {
        host.call("counter", "q", "dequeue", json!({}))
            .await
            .unwrap();
    }
    enqueue(json!("y".repeat(60))).await.unwrap();
    let no_room = enqueue(json!("z".repeat(60))).await.unwrap_err();
    assert_eq!(no_room.http_status(), 503, "{no_room}");
    let s = scrape(&host);
    assert_eq!(s.sum("actor_queue_depth", &[("actor_key", "q")]), 1.0);
    assert_eq!(
        s.sum("actor_queue_messages_sent_total", &[("actor_key", "q")]),
        5.0,
        "refused messages are not counted as sent"
    );
}
