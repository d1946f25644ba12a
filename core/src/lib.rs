//! A small but real actor host on tokio, instrumented end to end.
//!
//! Every metric of the catalogue is fed here by a real event: an actor is a tokio
//! task with an inbox; its code (a [`Behaviour`], registered with the host by
//! whoever builds it) runs actions, sends queue messages, accepts connections,
//! spawns user tasks, mutates state and writes to its own SQLite database,
//! instrumented through `actor-sqlite-hooks`.
//!
//! The layout follows an actor's life, one concept per file, no import cycle
//! (the host knows the actor task; the task knows neither the host nor any
//! actor type):
//!
//! * [`behaviour`]: the [`Behaviour`] trait, what an actor type is;
//! * [`context`]: who an actor is ([`ActorInfo`]) and what its code works
//!   through ([`Context`]);
//! * [`host`]: the [`Host`] and its builder: every actor by `(name, key)`;
//!   wake, sleep, destroy, shutdown; the bound on live actors;
//! * [`config`]: [`HostConfig`], how a host behaves, with its defaults;
//! * [`catalogue`]: the durable record of each key's stable id and generation;
//! * [`database`]: an actor's SQLite files, opened lean;
//! * `actor`: the actor task (start phases, inbox loop, idle timer, stop),
//!   which reports its end through a callback;
//! * `lru`: live actors in order of last use;
//! * [`action`]: action calls and their errors;
//! * [`task`]: user tasks with a kind, tracked for the shutdown drain;
//! * [`budget`]: the bounds on what clients make the host hold (bytes, tasks),
//!   per actor and per host; [`payload`]: a call's payload kept as received
//!   text, charged for what it takes once parsed;
//! * [`shutdown`]: draining user tasks with a timeout, recording why and how long;
//! * [`health`]: liveness checks for `/healthz` (a task that must not end,
//!   the host runtime's heartbeat);
//! * [`throttle`]: a rate limit for log lines a client can repeat at will;
//! * [`trace`]: the W3C trace context a call runs in (its `traceparent`
//!   read or a trace started), the `tracing` span of a traced action, and the
//!   ids and time an exemplar of the call records.
//!
//! The engine pulls no CLI, no HTTP server and no demo: the `actor-host`
//! crate (`host/`) holds the demo `counter` type, its JSON app API and
//! workload, and the binary.
//!
//! Why stop is explicit: an actor's end is recorded with
//! [`ActorMetrics::stopped`](actor_metrics::ActorMetrics::stopped) at a known
//! point of the task's exit (also after a panic), never left to `Drop` of the
//! last handle. Actor tasks hold the host only weakly (in their exit callback),
//! so a forgotten clone cannot leave a gauge stuck.

#![deny(missing_docs)]

pub mod action;
mod actor;
pub mod behaviour;
pub mod budget;
pub mod catalogue;
pub mod config;
pub mod context;
pub mod database;
pub mod health;
pub mod host;
mod lru;
pub mod payload;
pub mod shutdown;
pub mod task;
pub mod throttle;
pub mod trace;

pub use action::{ActionError, CallError};
pub use behaviour::{Behaviour, BoxFuture};
pub use budget::LimitError;
pub use catalogue::CatalogueError;
pub use config::HostConfig;
pub use context::{ActorInfo, Context, QueueError, QueueLimits};
pub use host::{Host, HostBuilder, HostError};
pub use payload::{Payload, PayloadError};
pub use trace::{TraceContext, TraceOrigin};
