//! Building a [`Host`]: its actor types, the data dir, the catalogue.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Weak};

use actor_metrics::Metrics;
use parking_lot::Mutex;
use tokio::sync::{Semaphore, watch};

use super::table::Table;
use super::{Host, HostInner, START_FAILURE_LOG_EVERY, TypeEntry};
use crate::actor::{Exit, ExitReport};
use crate::behaviour::Behaviour;
use crate::budget::HostBudget;
use crate::catalogue::{Catalogue, CatalogueError};
use crate::config::HostConfig;
use crate::context::ActorInfo;
use crate::lru::Lru;
use crate::throttle::LogThrottle;

/// Errors building a [`Host`].
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The data directory cannot be created or written.
    #[error("data directory {path} is not writable: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An actor type name is not `[a-z0-9_-]+` or is registered twice.
    #[error("bad actor type name {0:?}")]
    BadTypeName(String),
    /// No actor type was registered.
    #[error("no actor type registered; add one with HostBuilder::behaviour")]
    NoBehaviour,
    /// The catalogue cannot be opened.
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
}

/// Builds a [`Host`] from the actor types it is given.
pub struct HostBuilder {
    metrics: Metrics,
    config: HostConfig,
    behaviours: Vec<Arc<dyn Behaviour>>,
}

impl fmt::Debug for HostBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostBuilder")
            .field("config", &self.config)
            .field(
                "behaviours",
                &self.behaviours.iter().map(|b| b.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl HostBuilder {
    pub(super) fn new(metrics: Metrics, config: HostConfig) -> Self {
        HostBuilder {
            metrics,
            config,
            behaviours: Vec::new(),
        }
    }

    /// Registers an actor type.
    pub fn behaviour(mut self, behaviour: impl Behaviour) -> Self {
        self.behaviours.push(Arc::new(behaviour));
        self
    }

    /// Checks the types and the data directory, then takes and opens the
    /// catalogue (waiting up to [`HostConfig::data_dir_lock_timeout`] for
    /// another host to release it).
    ///
    /// ## Errors
    ///
    /// [`HostError`]: a bad or repeated type name, no type at all, a data
    /// directory that cannot be written, or a catalogue that is locked,
    /// damaged or missing next to existing actor databases. (Settings out of
    /// their bounds are refused by [`HostConfig`]'s setters.)
    pub async fn build(self) -> Result<Host, HostError> {
        let HostBuilder {
            metrics,
            config,
            behaviours,
        } = self;
        if behaviours.is_empty() {
            return Err(HostError::NoBehaviour);
        }
        let bulk = actor_sqlite_hooks::bulk_page_cache_pages();
        if bulk > 0 {
            tracing::warn!(
                pages = bulk,
                "SQLite was built with a bulk page-cache allocation: each live actor holds that many pages more than it uses (build inside the workspace, whose .cargo/config.toml turns it off)"
            );
        }
        let mut types = HashMap::new();
        for behaviour in behaviours {
            let name = behaviour.name();
            let valid = !name.is_empty()
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !valid || types.contains_key(name) {
                return Err(HostError::BadTypeName(name.to_owned()));
            }
            let ty = metrics.actor_type(name);
            let actions = behaviour
                .actions()
                .iter()
                .map(|a| (*a, ty.action(a)))
                .collect();
            check_writable(&config.data_dir.join(name))?;
            types.insert(
                name,
                TypeEntry {
                    behaviour,
                    metrics: ty,
                    actions,
                },
            );
        }
        let names: Vec<&'static str> = types.keys().copied().collect();
        let catalogue =
            Catalogue::open(&config.data_dir, &names, config.data_dir_lock_timeout).await?;
        let table = Table {
            slots: types.keys().map(|name| (*name, HashMap::new())).collect(),
            lru: Lru::default(),
            failed: HashMap::new(),
        };
        let budget = HostBudget::new(config.max_client_bytes, config.max_tasks);
        let inner = Arc::new_cyclic(|host: &Weak<HostInner>| {
            let host = host.clone();
            let report: ExitReport = Arc::new(move |info: &ActorInfo, exit: Exit| {
                if let Some(host) = host.upgrade() {
                    host.on_exit(info, exit);
                }
            });
            HostInner {
                permits: Arc::new(Semaphore::new(config.max_live_actors)),
                metrics,
                config,
                types,
                catalogue,
                table: Mutex::new(table),
                report,
                shutting_down: AtomicBool::new(false),
                deadline: watch::Sender::new(None),
                calls: AtomicU64::new(0),
                budget,
                queue_dropped: Arc::default(),
                start_failures: LogThrottle::new(START_FAILURE_LOG_EVERY),
            }
        });
        Ok(Host { inner })
    }
}

/// Creates `dir` and proves a file can be written there.
fn check_writable(dir: &std::path::Path) -> Result<(), HostError> {
    let err = |source| HostError::DataDir {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let probe = dir.join(".write-probe");
    let written = std::fs::write(&probe, b"ok");
    // A full disk creates the file and then fails to write it: remove it
    // either way, so a failed start-up leaves nothing behind.
    let removed = std::fs::remove_file(&probe);
    written.map_err(err)?;
    removed.map_err(err)?;
    Ok(())
}
