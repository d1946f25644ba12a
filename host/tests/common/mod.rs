//! Helpers shared by the host tests: hosts with the `counter` type (and one
//! more), a full scrape, and waiting for spawned tasks on a paused clock.

#![allow(dead_code)] // each test file uses its own subset

use std::time::Duration;

use actor_core::{Host, HostConfig};
use actor_host::counter::Counter;
use actor_metrics::scrape::Scrape;
use actor_metrics::{Config, DetailLevel, Metrics, ScrapeRequest};

pub async fn host(dir: &std::path::Path, shutdown_timeout: Duration) -> Host {
    let config = HostConfig::new(dir).shutdown_timeout(shutdown_timeout);
    build(config).await
}

pub async fn build(config: HostConfig) -> Host {
    let metrics = Metrics::new(Config::default()).unwrap();
    Host::builder(metrics, config)
        .behaviour(Counter)
        .build()
        .await
        .unwrap()
}

/// A host with the `counter` type and one more.
pub async fn build_with(config: HostConfig, other: impl actor_core::Behaviour) -> Host {
    let metrics = Metrics::new(Config::default()).unwrap();
    Host::builder(metrics, config)
        .behaviour(Counter)
        .behaviour(other)
        .build()
        .await
        .unwrap()
}

/// A scrape at `full`, so every family the host records is in it.
pub fn scrape(host: &Host) -> Scrape {
    let full = ScrapeRequest {
        detail: Some(DetailLevel::Full),
        ..ScrapeRequest::default()
    };
    Scrape::parse(&host.metrics().render_with(&full)).unwrap()
}

/// Lets spawned actor tasks run until `done` holds (a bounded number of
/// scheduler turns; paused time does not move while tasks are runnable).
pub async fn settle(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never settled: {what}");
}

pub fn live_keys(host: &Host) -> Vec<String> {
    host.list().into_iter().map(|a| a.key).collect()
}
