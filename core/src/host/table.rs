//! The slot table: what the host holds of each key, live actors in LRU order,
//! recent failed starts; and sending to a live actor.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actor_metrics::ActorMetrics;
use actor_metrics::labels::{Inbox, ShutdownReason};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::actor::Msg;
use crate::budget::Account;
use crate::context::ActorInfo;
use crate::lru::{Lru, Tick};
use crate::payload::Payload;

/// Most keys whose failed start is remembered (for
/// [`HostConfig::start_retry_after`]); past it, expired ones are dropped, and
/// if none has expired a new failure is not remembered.
pub(super) const MAX_FAILED_STARTS: usize = 4096;

/// A live actor: where to send, its series for the inbox gauges, and its place
/// in the LRU order.
#[derive(Clone)]
pub(super) struct Live {
    pub(super) tx: mpsc::Sender<Msg>,
    pub(super) metrics: ActorMetrics,
    pub(super) info: ActorInfo,
    pub(super) idle: Arc<AtomicBool>,
    pub(super) tick: Tick,
    /// Bytes of the calls waiting in this generation's inbox.
    pub(super) inbox_bytes: Arc<Account>,
}

/// What the host holds of one key while anything is going on with it.
#[derive(Default)]
pub(super) struct Slot {
    /// Held across one lifecycle step (wake, sleep, destroy) of this key.
    pub(super) step: Arc<tokio::sync::Mutex<()>>,
    /// The generation that takes calls.
    pub(super) live: Option<Live>,
    /// The latest generation's task, until it reports its end.
    pub(super) task: Option<(u64, tokio::task::JoinHandle<()>)>,
}

impl Slot {
    /// Nothing runs and no step holds or waits for the key: the slot can go.
    pub(super) fn is_unused(&self) -> bool {
        self.live.is_none() && self.task.is_none() && Arc::strong_count(&self.step) == 1
    }
}

pub(super) type LruKey = (&'static str, Arc<str>);

pub(super) struct Table {
    /// Per actor type, per key.
    pub(super) slots: HashMap<&'static str, HashMap<Arc<str>, Slot>>,
    /// Every live actor, least recently used first.
    pub(super) lru: Lru<LruKey>,
    /// Keys whose last start failed: when, and why.
    pub(super) failed: HashMap<(&'static str, String), (Instant, String)>,
}

impl Table {
    pub(super) fn slot(&mut self, type_name: &'static str, key: &str) -> Option<&mut Slot> {
        self.slots.get_mut(type_name)?.get_mut(key)
    }

    pub(super) fn slot_or_insert(&mut self, type_name: &'static str, key: &str) -> &mut Slot {
        self.slots
            .entry(type_name)
            .or_default()
            .entry(Arc::from(key))
            .or_default()
    }

    /// The live generation of the key, marked as just used.
    pub(super) fn touch_live(&mut self, type_name: &'static str, key: &str) -> Option<Live> {
        let Table { slots, lru, .. } = self;
        let live = slots.get_mut(type_name)?.get_mut(key)?.live.as_mut()?;
        live.tick = lru.touch(live.tick);
        Some(live.clone())
    }

    /// Takes the key's live generation out of the table (it takes no more calls).
    pub(super) fn take_live(&mut self, type_name: &'static str, key: &str) -> Option<Live> {
        let live = self.slot(type_name, key)?.live.take()?;
        self.lru.remove(live.tick);
        Some(live)
    }

    /// Takes the least recently used idle live actor out of the table.
    pub(super) fn take_lru_idle(&mut self) -> Option<Live> {
        let (type_name, key) = self.lru.oldest_first().find_map(|(_, (t, k))| {
            let live = self.slots.get(t)?.get(&**k)?.live.as_ref()?;
            live.idle.load(Ordering::Relaxed).then(|| (*t, k.clone()))
        })?;
        self.take_live(type_name, &key)
    }

    /// Why the key's last start failed, if that was less than `window` ago.
    pub(super) fn recent_failure(
        &self,
        type_name: &'static str,
        key: &str,
        window: Duration,
    ) -> Option<String> {
        let (at, why) = self.failed.get(&(type_name, key.to_owned()))?;
        (at.elapsed() < window).then(|| why.clone())
    }

    /// Remembers a failed start, within [`MAX_FAILED_STARTS`].
    pub(super) fn record_failure(
        &mut self,
        type_name: &'static str,
        key: &str,
        window: Duration,
        why: &str,
    ) {
        if self.failed.len() >= MAX_FAILED_STARTS {
            self.failed.retain(|_, (at, _)| at.elapsed() < window);
        }
        if self.failed.len() < MAX_FAILED_STARTS {
            self.failed.insert(
                (type_name, key.to_owned()),
                (Instant::now(), why.to_owned()),
            );
        }
    }

    pub(super) fn forget_failure(&mut self, type_name: &'static str, key: &str) {
        if !self.failed.is_empty() {
            self.failed.remove(&(type_name, key.to_owned()));
        }
    }

    pub(super) fn remove_if_unused(&mut self, type_name: &'static str, key: &str) {
        if let Some(slots) = self.slots.get_mut(type_name)
            && slots.get(key).is_some_and(Slot::is_unused)
        {
            slots.remove(key);
        }
    }
}

/// Why a message did not get into an inbox.
pub(super) enum SendError {
    Overloaded,
    /// The inbox is closed; the call's payload comes back to be offered again.
    Closed(Payload),
}

/// Sends without waiting: a full inbox is an error the caller sees, not a stall.
pub(super) fn send(live: &Live, msg: Msg) -> Result<(), SendError> {
    let inbox: Inbox = msg.inbox();
    live.metrics.inbox_depth(inbox).inc();
    live.tx.try_send(msg).map_err(|e| {
        live.metrics.inbox_depth(inbox).dec();
        match e {
            mpsc::error::TrySendError::Full(_) => SendError::Overloaded,
            mpsc::error::TrySendError::Closed(msg) => SendError::Closed(match msg {
                Msg::Call { payload, .. } => payload,
                Msg::Stop { .. } => Payload::from(Value::Null),
            }),
        }
    })
}

/// Asks a live actor to stop; the returned receiver answers once it has ended.
pub(super) async fn request_stop(
    live: &Live,
    reason: ShutdownReason,
) -> Option<oneshot::Receiver<()>> {
    let (reply, done) = oneshot::channel();
    live.metrics.inbox_depth(Inbox::Lifecycle).inc();
    if live.tx.send(Msg::Stop { reason, reply }).await.is_err() {
        // The task is already closing (it panicked or went idle); its stop is its own.
        live.metrics.inbox_depth(Inbox::Lifecycle).dec();
        return None;
    }
    Some(done)
}

/// Asks a live actor to stop and waits until it has ended.
pub(super) async fn stop(live: &Live, reason: ShutdownReason) {
    if let Some(done) = request_stop(live, reason).await {
        // A dropped reply means the task ended another way; either way it stopped.
        let _ = done.await;
    }
}
