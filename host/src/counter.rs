//! The built-in `counter` actor type: a number kept in the actor's own SQLite
//! database, and actions that exercise every instrumented event.
//!
//! | action | payload | does |
//! |---|---|---|
//! | `increment` | `{"by": n}` (default 1) | adds to the durable counter; `{value}` |
//! | `get` | | `{value}` |
//! | `fail` | | an action error (422), on purpose |
//! | `slow` | `{"ms": n}` (default 100, at most 600,000) | sleeps inside the call |
//! | `spawn_task` | `{"kind", "ms"}` | a user task the actor's stop drains; 429 past the task bounds |
//! | `connect`, `disconnect` | | opens / closes a connection (held awake while open) |
//! | `enqueue` | `{"message": any JSON}` | queues the message; 503 when the queue is full, 413 when it alone passes the byte limit |
//! | `dequeue` | | `{message}`, the oldest, or `null` |
//! | `panic` | | panics: the actor stops, the call gets 500 |
//!
//! The queue is in memory (see [`Context::send_queue`](actor_core::Context::send_queue)): bounded by
//! [`HostConfig::queue_max_messages`](actor_core::HostConfig::queue_max_messages)
//! and [`HostConfig::queue_max_bytes`](actor_core::HostConfig::queue_max_bytes); a
//! non-empty queue keeps the actor awake; its messages are lost on destroy,
//! an explicit sleep, a panic, or a host stop or restart. The counter's value
//! is durable.

use std::time::Duration;

use actor_metrics::labels::{MutationReason, TaskKind};
use serde_json::{Value, json};

use actor_core::Context;
use actor_core::action::{ActionError, u64_field};
use actor_core::behaviour::{Behaviour, BoxFuture};

/// Longest `slow`/`spawn_task` duration accepted: 10 minutes.
const MAX_MS: u64 = 600_000;

/// The `counter` actor type.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counter;

/// Every action of `counter`.
pub const ACTIONS: &[&str] = &[
    "increment",
    "get",
    "fail",
    "slow",
    "spawn_task",
    "connect",
    "disconnect",
    "enqueue",
    "dequeue",
    "panic",
];

impl Behaviour for Counter {
    fn name(&self) -> &'static str {
        "counter"
    }

    fn actions(&self) -> &'static [&'static str] {
        ACTIONS
    }

    fn load_state(&self, ctx: &mut Context) -> Result<(), ActionError> {
        let db = ctx.db();
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);",
        )?;
        let inserted = db.execute(
            "INSERT OR IGNORE INTO counter (id, value) VALUES (1, 0)",
            [],
        )?;
        if inserted > 0 {
            ctx.mutated(MutationReason::Internal);
        }
        Ok(())
    }

    fn call<'a>(
        &'a self,
        ctx: &'a mut Context,
        action: &'static str,
        payload: Value,
    ) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            match action {
                "increment" => {
                    let by = u64_field(&payload, "by")?.unwrap_or(1);
                    let by = i64::try_from(by).map_err(|_| {
                        ActionError::BadPayload(format!("\"by\" is at most {}", i64::MAX))
                    })?;
                    // Checked in Rust: SQLite turns an overflowing integer sum into
                    // a REAL, which would break every later read of the counter.
                    let value = read_value(ctx)?;
                    let next = value.checked_add(by).ok_or_else(|| {
                        ActionError::Failed(format!(
                            "the counter is {value}; adding {by} would pass its limit of {}",
                            i64::MAX
                        ))
                    })?;
                    let tx = ctx.db().transaction()?;
                    tx.execute("UPDATE counter SET value = ?1 WHERE id = 1", [next])?;
                    tx.commit()?;
                    ctx.mutated(MutationReason::Action);
                    Ok(json!({ "value": next }))
                }
                "get" => Ok(json!({ "value": read_value(ctx)? })),
                "fail" => {
                    // A line inside the action: in a traced call it carries the trace.
                    tracing::debug!("failing as asked");
                    Err(ActionError::Failed("the action failed as asked".into()))
                }
                "slow" => {
                    let ms = bounded_ms(&payload, 100)?;
                    tracing::debug!(ms, "sleeping as asked");
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Ok(json!({ "slept_ms": ms }))
                }
                "spawn_task" => {
                    let ms = bounded_ms(&payload, 100)?;
                    let kind = task_kind(&payload)?;
                    ctx.spawn_task(kind, async move {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    })?;
                    Ok(
                        json!({ "spawned": actor_metrics::labels::LabelEnum::as_str(kind), "ms": ms }),
                    )
                }
                "connect" => {
                    let open = ctx.accept_connection();
                    ctx.mutated(MutationReason::Connection);
                    Ok(json!({ "connections": open }))
                }
                "disconnect" => {
                    let open = ctx
                        .close_connection()
                        .ok_or_else(|| ActionError::Failed("no connection is open".into()))?;
                    ctx.mutated(MutationReason::Connection);
                    Ok(json!({ "connections": open }))
                }
                "enqueue" => {
                    let mut payload = payload;
                    let message = payload.get_mut("message").map_or(Value::Null, Value::take);
                    ctx.send_queue(message)?;
                    Ok(json!({ "queued": true }))
                }
                "dequeue" => Ok(json!({ "message": ctx.receive_queue() })),
                "panic" => panic!("the counter actor was asked to panic"),
                other => Err(ActionError::Failed(format!("unhandled action {other:?}"))),
            }
        })
    }
}

fn read_value(ctx: &mut Context) -> Result<i64, ActionError> {
    Ok(ctx
        .db()
        .query_row("SELECT value FROM counter WHERE id = 1", [], |row| {
            row.get(0)
        })?)
}

fn bounded_ms(payload: &Value, default: u64) -> Result<u64, ActionError> {
    let ms = u64_field(payload, "ms")?.unwrap_or(default);
    if ms > MAX_MS {
        return Err(ActionError::BadPayload(format!(
            "\"ms\" is at most {MAX_MS}"
        )));
    }
    Ok(ms)
}

fn task_kind(payload: &Value) -> Result<TaskKind, ActionError> {
    use actor_metrics::labels::LabelEnum;
    match payload.get("kind") {
        None | Some(Value::Null) => Ok(TaskKind::Background),
        Some(Value::String(s)) => TaskKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                ActionError::BadPayload(format!(
                    "\"kind\" must be one of {:?}",
                    TaskKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>()
                ))
            }),
        Some(_) => Err(ActionError::BadPayload("\"kind\" must be a string".into())),
    }
}
