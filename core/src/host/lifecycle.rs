//! The lifecycle steps on one key: resolve, wake (admitting past the live
//! bound), step under the key's lock, and the end of an actor task.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actor_metrics::labels::ShutdownReason;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use super::table::{Live, stop};
use super::{HostInner, check_key, not_found};
use crate::action::CallError;
use crate::actor::{self, Exit, Start};
use crate::budget::{Account, Bound};
use crate::catalogue::Entry;
use crate::context::{ActorInfo, Limits, QueueLimits};
use crate::database;

impl HostInner {
    /// The registered type name for `name`, with `key` checked.
    pub(super) fn resolve(&self, name: &str, key: &str) -> Result<&'static str, CallError> {
        check_key(key)?;
        self.type_name(name)
    }

    pub(super) fn type_name(&self, name: &str) -> Result<&'static str, CallError> {
        self.types
            .get_key_value(name)
            .map(|(n, _)| *n)
            .ok_or_else(|| CallError::UnknownType(name.to_owned()))
    }

    /// The key's live generation, woken (or, with `create`, created) if there is
    /// none. Returns once it has started.
    pub(super) async fn wake(
        &self,
        type_name: &'static str,
        key: &str,
        create: bool,
    ) -> Result<Live, CallError> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(CallError::ShuttingDown);
        }
        if let Some(live) = self.table.lock().touch_live(type_name, key) {
            return Ok(live);
        }
        self.stepped(type_name, key, async || {
            let retry_after = self.config.start_retry_after;
            {
                let mut table = self.table.lock();
                if let Some(live) = table.touch_live(type_name, key) {
                    return Ok(live);
                }
                if let Some(why) = table.recent_failure(type_name, key, retry_after) {
                    return Err(CallError::StartFailed(format!(
                        "{why} (not tried again until {} after the failed start)",
                        humantime::format_duration(retry_after)
                    )));
                }
            }
            // Looked up before a live slot is taken: a call to an unknown key
            // never puts another actor to sleep to make room.
            if !create {
                self.known(type_name, key).await?;
            }
            let permit = self.admit().await?;
            let entry = self
                .catalogue
                .wake(type_name, key, create)
                .await?
                .ok_or_else(|| not_found(type_name, key))?;
            let (live, started) = self.spawn_generation(type_name, key, entry, permit)?;
            self.started(type_name, key, live, started).await
        })
        .await
    }

    /// Starts the task of a new generation of the key and makes it the
    /// key's live one; the receiver answers once it has started (or failed to).
    fn spawn_generation(
        &self,
        type_name: &'static str,
        key: &str,
        entry: Entry,
        permit: OwnedSemaphorePermit,
    ) -> Result<(Live, oneshot::Receiver<Result<(), String>>), CallError> {
        let ty = &self.types[type_name];
        let info = ActorInfo {
            actor_name: type_name.to_owned(),
            key: key.to_owned(),
            actor_id: entry.id.to_string(),
            generation: entry.generation,
        };
        let (tx, inbox) = mpsc::channel(self.config.inbox_capacity);
        let (started_tx, started) = oneshot::channel();
        let idle = Arc::new(AtomicBool::new(false));
        let mut table = self.table.lock();
        // Checked under the lock that shutdown takes everything under.
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(CallError::ShuttingDown);
        }
        let metrics = ty
            .metrics
            .register(&info.actor_id, Some(info.generation), key);
        let tick = table.lru.insert((type_name, Arc::from(key)));
        let slot = table.slot_or_insert(type_name, key);
        let start = Start {
            behaviour: ty.behaviour.clone(),
            info: info.clone(),
            metrics: metrics.clone(),
            db_path: database::path(&self.config.data_dir, type_name, entry.id),
            db: self.config.sqlite.clone(),
            shutdown_timeout: self.config.shutdown_timeout,
            limits: self.limits(),
            idle_timeout: self.config.idle_timeout,
            inbox,
            previous: slot.task.take().map(|(_, task)| task),
            started: started_tx,
            report: self.report.clone(),
            idle: idle.clone(),
            permit,
            shutdown: self.deadline.subscribe(),
        };
        slot.task = Some((info.generation, tokio::spawn(actor::run(start))));
        let live = Live {
            tx,
            metrics,
            info,
            idle,
            tick,
            inbox_bytes: Account::new(Bound::InboxBytes, self.config.inbox_max_bytes),
        };
        slot.live = Some(live.clone());
        Ok((live, started))
    }

    /// The bounds an actor's code works within.
    fn limits(&self) -> Limits {
        Limits {
            queue: QueueLimits {
                max_messages: self.config.queue_max_messages,
                max_bytes: self.config.queue_max_bytes,
            },
            max_tasks: self.config.max_tasks_per_actor,
            host: self.budget.clone(),
            queue_dropped: self.queue_dropped.clone(),
        }
    }

    /// Waits for a new generation's start: the live actor, or the failure,
    /// remembered for `start_retry_after` and logged (rate-limited).
    async fn started(
        &self,
        type_name: &'static str,
        key: &str,
        live: Live,
        started: oneshot::Receiver<Result<(), String>>,
    ) -> Result<Live, CallError> {
        let retry_after = self.config.start_retry_after;
        let failed = match started.await {
            Ok(Ok(())) => {
                self.table.lock().forget_failure(type_name, key);
                return Ok(live);
            }
            Ok(Err(reason)) => reason,
            Err(_) => "the actor task ended while starting".to_owned(),
        };
        self.table
            .lock()
            .record_failure(type_name, key, retry_after, &failed);
        if let Some(suppressed) = self.start_failures.admit() {
            tracing::error!(
                actor = %live.info,
                error = %failed,
                retry_after = %humantime::format_duration(retry_after),
                suppressed,
                "actor failed to start; calls to it get this error until retry_after has passed (suppressed: lines left out since the last one)"
            );
        }
        Err(CallError::StartFailed(failed))
    }

    /// A live-actor permit; at the bound, puts the least recently used idle
    /// actor to sleep to free one.
    pub(super) async fn admit(&self) -> Result<OwnedSemaphorePermit, CallError> {
        loop {
            if let Ok(permit) = self.permits.clone().try_acquire_owned() {
                return Ok(permit);
            }
            let victim = self.table.lock().take_lru_idle();
            match victim {
                // Its permit comes back when its database is closed, before its stop returns.
                Some(victim) => stop(&victim, ShutdownReason::Sleep).await,
                None => {
                    return Err(CallError::AtCapacity {
                        max: self.config.max_live_actors,
                    });
                }
            }
        }
    }

    /// `Ok` if the catalogue knows the key, else not found.
    pub(super) async fn known(&self, type_name: &'static str, key: &str) -> Result<(), CallError> {
        match self.catalogue.lookup(type_name, key).await? {
            Some(_) => Ok(()),
            None => Err(not_found(type_name, key)),
        }
    }

    /// Runs one lifecycle step on the key under its step lock, then drops the
    /// key's slot if nothing else holds it.
    pub(super) async fn stepped<T>(
        &self,
        type_name: &'static str,
        key: &str,
        step: impl AsyncFnOnce() -> Result<T, CallError>,
    ) -> Result<T, CallError> {
        let lock = self
            .table
            .lock()
            .slot_or_insert(type_name, key)
            .step
            .clone();
        let result = {
            let _held = lock.lock().await;
            step().await
        };
        drop(lock);
        self.table.lock().remove_if_unused(type_name, key);
        result
    }

    /// An actor task's report of its own end.
    pub(super) fn on_exit(&self, info: &ActorInfo, exit: Exit) {
        let Ok(type_name) = self.type_name(&info.actor_name) else {
            return;
        };
        let mut table = self.table.lock();
        let Some(slot) = table.slot(type_name, &info.key) else {
            return;
        };
        let live_is_this = slot
            .live
            .as_ref()
            .is_some_and(|l| l.info.generation == info.generation);
        if exit == Exit::Ended
            && slot
                .task
                .as_ref()
                .is_some_and(|(g, _)| *g == info.generation)
        {
            slot.task = None;
        }
        if live_is_this {
            table.take_live(type_name, &info.key);
        }
        table.remove_if_unused(type_name, &info.key);
    }
}
