//! The `actor-host` demo on the [`actor_core`] engine: what the binary adds to
//! the engine, using only what any runtime could use.
//!
//! | module | what |
//! |---|---|
//! | [`counter`] | the `counter` actor type: a durable number and actions that exercise every instrumented event |
//! | [`app`] | the JSON app API (axum): create, call, sleep, destroy, list; request bodies bounded and charged to the host's budget |
//! | [`workload`] | the demo workload: paced calls and churn over a set of counter actors |
//! | `src/bin/actor-host/` | the binary: flags, logging, the metrics port, readiness, shutdown |
//!
//! The engine (`actor-core`) pulls no CLI, no HTTP server and no demo; a
//! runtime that embeds it registers its own [`Behaviour`](actor_core::Behaviour)s.

#![deny(missing_docs)]

pub mod app;
pub mod counter;
pub mod workload;
