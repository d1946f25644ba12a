//! The host in-process, on a paused tokio clock: shutdown timeouts, panics, and
//! the inbox under many concurrent callers, with exact counts.

use std::sync::Arc;
use std::time::Duration;

use actor_core::counter::Counter;
use actor_core::{CallError, Host, HostConfig};
use actor_metrics::scrape::Scrape;
use actor_metrics::{Config, DetailLevel, Metrics, ScrapeRequest};
use serde_json::json;

async fn host(dir: &std::path::Path, shutdown_timeout: Duration) -> Host {
    let mut config = HostConfig::new(dir);
    config.shutdown_timeout = shutdown_timeout;
    build(config).await
}

async fn build(config: HostConfig) -> Host {
    let metrics = Metrics::new(Config::default()).unwrap();
    Host::builder(metrics, config)
        .behaviour(Counter)
        .build()
        .await
        .unwrap()
}

/// A host with the `counter` type and one more.
async fn build_with(config: HostConfig, other: impl actor_core::Behaviour) -> Host {
    let metrics = Metrics::new(Config::default()).unwrap();
    Host::builder(metrics, config)
        .behaviour(Counter)
        .behaviour(other)
        .build()
        .await
        .unwrap()
}

/// A scrape at `full`, so every family the host records is in it.
fn scrape(host: &Host) -> Scrape {
    let full = ScrapeRequest {
        detail: Some(DetailLevel::Full),
        ..ScrapeRequest::default()
    };
    Scrape::parse(&host.metrics().render_with(&full)).unwrap()
}

#[tokio::test(start_paused = true)]
async fn host_shutdown_counts_a_user_task_that_outlives_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path(), Duration::from_secs(2)).await;
    host.create("counter", "quick").await.unwrap();
    host.create("counter", "stuck").await.unwrap();
    // One task that ends within the timeout, one that never would.
    host.call(
        "counter",
        "quick",
        "spawn_task",
        json!({"kind": "background", "ms": 500}),
    )
    .await
    .unwrap();
    host.call(
        "counter",
        "stuck",
        "spawn_task",
        json!({"kind": "keep_awake", "ms": 600_000}),
    )
    .await
    .unwrap();

    let t0 = tokio::time::Instant::now();
    host.shutdown().await;
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(3),
        "{waited:?}"
    );

    let s = scrape(&host);
    let reason = [("actor_name", "counter"), ("reason", "host_shutdown")];
    assert_eq!(s.sum("actor_type_shutdown_timeouts_total", &reason), 1.0);
    assert_eq!(
        s.sum("actor_type_shutdown_wait_seconds_count", &reason),
        2.0
    );
    assert_eq!(
        s.sum("actor_shutdown_timeouts_total", &[("actor_key", "stuck")]),
        1.0
    );
    assert_eq!(
        s.sum("actor_shutdown_timeouts_total", &[("actor_key", "quick")]),
        0.0
    );
    // The quick task finished and was observed; the stuck one was aborted.
    assert_eq!(
        s.sum(
            "actor_user_task_duration_seconds_count",
            &[("actor_key", "quick")]
        ),
        1.0
    );
    assert_eq!(s.sum("actor_type_user_tasks_active", &[]), 0.0);
    assert_eq!(s.sum("actor_type_active", &[]), 0.0);
    assert!(matches!(
        host.create("counter", "late").await,
        Err(CallError::ShuttingDown)
    ));
}

#[tokio::test(start_paused = true)]
async fn calls_queued_behind_a_panic_are_answered_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path(), Duration::from_secs(1)).await;
    host.create("counter", "p").await.unwrap();
    // A slow call holds the actor while a panic and two more calls queue behind it.
    let h = host.clone();
    let slow =
        tokio::spawn(async move { h.call("counter", "p", "slow", json!({"ms": 100})).await });
    tokio::task::yield_now().await;
    let h = host.clone();
    let panic = tokio::spawn(async move { h.call("counter", "p", "panic", json!({})).await });
    tokio::task::yield_now().await;
    let later: Vec<_> = (0..2)
        .map(|_| {
            let h = host.clone();
            tokio::spawn(async move { h.call("counter", "p", "increment", json!({})).await })
        })
        .collect();

    assert!(slow.await.unwrap().is_ok());
    assert!(matches!(
        panic.await.unwrap(),
        Err(CallError::Panicked { .. })
    ));
    for call in later {
        // Either answered "stopped" by the dying generation or served by the next one.
        match call.await.unwrap() {
            Ok(_) | Err(CallError::Stopped(_)) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    let s = scrape(&host);
    assert_eq!(
        s.sum(
            "actor_type_shutdown_wait_seconds_count",
            &[("reason", "panic")]
        ),
        1.0
    );
    assert_eq!(
        s.sum("actor_type_inbox_depth", &[]),
        0.0,
        "no inbox gauge left up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_on_one_actor_give_exact_counts() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path(), Duration::from_secs(5)).await;
    let created = host.create("counter", "hot").await.unwrap();
    let callers = 16;
    let per_caller = 50;
    let ok = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let (host, ok) = (host.clone(), ok.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_caller {
                match host.call("counter", "hot", "increment", json!({})).await {
                    Ok(_) => {
                        ok.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(CallError::Overloaded) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let ok = ok.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        ok,
        callers * per_caller,
        "an inbox of 1024 never fills here"
    );
    let value = host.call("counter", "hot", "get", json!({})).await.unwrap();
    assert_eq!(value["value"], ok);
    let s = scrape(&host);
    let id_gen = format!("{}:{}", created.actor_id, created.generation);
    let sel = [("actor_id_gen", id_gen.as_str())];
    assert_eq!(s.sum("actor_action_calls_total", &sel), (ok + 1) as f64);
    assert_eq!(s.sum("actor_inbox_depth", &sel), 0.0);
    assert_eq!(
        s.sum(
            "actor_sqlite_rows_changed_total",
            &[("actor_id_gen", id_gen.as_str()), ("op", "update")]
        ),
        ok as f64
    );
    host.shutdown().await;
    assert_eq!(scrape(&host).sum("actor_type_active", &[]), 0.0);
}

/// Lets spawned actor tasks run until `done` holds (a bounded number of
/// scheduler turns; paused time does not move while tasks are runnable).
async fn settle(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never settled: {what}");
}

fn live_keys(host: &Host) -> Vec<String> {
    host.list().into_iter().map(|a| a.key).collect()
}

#[tokio::test(start_paused = true)]
async fn an_idle_actor_sleeps_at_the_timeout_and_never_while_held_awake() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HostConfig::new(dir.path());
    config.idle_timeout = Some(Duration::from_secs(10));
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
    let mut config = HostConfig::new(dir.path());
    config.idle_timeout = None;
    config.max_live_actors = 3;
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
    let mut config = HostConfig::new(dir.path());
    config.idle_timeout = None;
    config.max_live_actors = 8;
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
    let mut config = HostConfig::new(dir.path());
    config.queue_max_messages = 3;
    config.queue_max_bytes = 100;
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

#[tokio::test(start_paused = true)]
async fn a_queued_message_keeps_its_actor_awake_through_idle_and_lru() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HostConfig::new(dir.path());
    config.idle_timeout = Some(Duration::from_secs(10));
    config.max_live_actors = 1;
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

/// An actor type whose `write` action opens a transaction, writes, and waits
/// for as long as it is asked before it commits.
struct Writer;

impl actor_core::Behaviour for Writer {
    fn name(&self) -> &'static str {
        "writer"
    }

    fn actions(&self) -> &'static [&'static str] {
        &["write"]
    }

    fn load_state(&self, ctx: &mut actor_core::Context) -> Result<(), actor_core::ActionError> {
        ctx.db()
            .execute_batch("CREATE TABLE IF NOT EXISTS t (v INTEGER)")?;
        Ok(())
    }

    fn call<'a>(
        &'a self,
        ctx: &'a mut actor_core::Context,
        _: &'static str,
        payload: serde_json::Value,
    ) -> actor_core::BoxFuture<'a, Result<serde_json::Value, actor_core::ActionError>> {
        Box::pin(async move {
            let ms = payload["ms"].as_u64().unwrap_or(0);
            ctx.db().execute_batch("BEGIN; INSERT INTO t VALUES (1);")?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ctx.db().execute_batch("COMMIT")?;
            Ok(json!({}))
        })
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_cancels_an_action_at_the_timeout_and_rolls_its_transaction_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HostConfig::new(dir.path());
    config.shutdown_timeout = Duration::from_secs(2);
    let host = build_with(config, Writer).await;
    let w = host.create("writer", "w").await.unwrap();
    host.call("writer", "w", "write", json!({"ms": 0}))
        .await
        .unwrap();
    host.create("counter", "s").await.unwrap();
    host.create("counter", "s2").await.unwrap();
    let spawn = |name: &'static str, key: &'static str, action: &'static str, ms: u64| {
        let host = host.clone();
        tokio::spawn(async move { host.call(name, key, action, json!({ "ms": ms })).await })
    };
    // Two actions far longer than the timeout, a short one, and a call
    // waiting in the inbox behind the slow one.
    let slow = spawn("counter", "s", "slow", 600_000);
    let write = spawn("writer", "w", "write", 600_000);
    let quick = spawn("counter", "s2", "slow", 500);
    tokio::task::yield_now().await;
    let queued = spawn("counter", "s", "get", 0);
    settle("the calls are in flight", || host.live_count() == 3).await;
    tokio::time::sleep(Duration::from_millis(10)).await;

    let t0 = tokio::time::Instant::now();
    host.shutdown().await;
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(3),
        "{took:?}"
    );
    for (what, call) in [("slow", slow), ("write", write)] {
        let err = call.await.unwrap().unwrap_err();
        assert!(matches!(err, CallError::Cancelled { .. }), "{what}: {err}");
        assert_eq!(err.http_status(), 503);
    }
    assert!(quick.await.unwrap().is_ok(), "finished within the timeout");
    let err = queued.await.unwrap().unwrap_err();
    assert!(matches!(err, CallError::ShuttingDown), "{err}");

    // The cancelled write was rolled back: only the first write is there.
    let db = dir.path().join("writer").join(format!("{}.db", w.actor_id));
    let conn = rusqlite::Connection::open(db).unwrap();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
    let s = scrape(&host);
    assert_eq!(s.sum("actor_type_active", &[]), 0.0);
    assert_eq!(s.sum("actor_type_inbox_depth", &[]), 0.0);
}

#[tokio::test]
async fn an_idle_timeout_under_the_minimum_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HostConfig::new(dir.path());
    config.idle_timeout = Some(Duration::ZERO);
    let err = Host::builder(Metrics::new(Config::default()).unwrap(), config)
        .behaviour(Counter)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(err, actor_core::HostError::IdleTimeoutTooShort { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("100ms"), "{err}");
}
