//! The host in-process, on a paused tokio clock: shutdown timeouts, panics, and
//! the inbox under many concurrent callers, with exact counts.

mod common;

use std::sync::Arc;
use std::time::Duration;

use actor_core::{CallError, HostConfig};
use serde_json::json;

use common::*;

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
    let config = HostConfig::new(dir.path()).shutdown_timeout(Duration::from_secs(2));
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
