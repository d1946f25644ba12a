//! Typed label sets, and the closed enums that extra labels take values from.
//!
//! Nothing here writes exposition text: escaping belongs to the renderer.

use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The label set of one actor's series: `actor_id_gen`, `actor_key`, `envoy_key`.
///
/// Compared by full equality of the typed triple, never by a hash alone, so
/// actor `x` generation 1 with key `2y` and actor `x` generation 12 with key `y`
/// (both `x:12y` when naively joined) are two label sets.
///
/// Length limits never merge two actors: `actor_id_gen` is kept whole (it tells
/// generations apart), and an `actor_key` longer than the limit is cut at a char
/// boundary and ends in `~` and 16 hex digits of a hash of the whole key, so two
/// long keys that share a prefix stay two values.
#[derive(Debug, Clone)]
pub struct ActorLabels {
    actor_id_gen: Box<str>,
    actor_key: Box<str>,
    envoy_key: Arc<str>,
    truncated: bool,
}

/// Bytes the hash suffix of a cut key takes: `~` and 16 hex digits.
pub const KEY_HASH_SUFFIX_BYTES: usize = 17;

impl ActorLabels {
    /// Builds the label set; `generation: None` formats `actor_id_gen` as `"{id}:"`.
    ///
    /// An `actor_key` longer than `max_key_bytes` is cut and made unique (see the
    /// type's docs); [`ActorLabels::key_truncated`] then says so.
    pub fn new(
        actor_id: &str,
        generation: Option<u64>,
        actor_key: &str,
        envoy_key: Arc<str>,
        max_key_bytes: usize,
    ) -> Self {
        let mut id_gen = String::with_capacity(actor_id.len() + 12);
        id_gen.push_str(actor_id);
        id_gen.push(':');
        if let Some(g) = generation {
            // Writing to a String cannot fail.
            let _ = write!(id_gen, "{g}");
        }
        let (actor_key, truncated) = match cut_key(actor_key, max_key_bytes) {
            Some(cut) => (cut, true),
            None => (actor_key.to_owned(), false),
        };
        ActorLabels {
            actor_id_gen: id_gen.into_boxed_str(),
            actor_key: actor_key.into_boxed_str(),
            envoy_key,
            truncated,
        }
    }

    /// The label set every overflow registration of actor type `actor_name`
    /// shares: `actor_id_gen="overflow"`. A real actor's `actor_id_gen` always
    /// holds a `:`, so no actor can land here by its id and key.
    pub(crate) fn overflow(actor_name: &str, envoy_key: Arc<str>) -> Self {
        ActorLabels {
            actor_id_gen: "overflow".into(),
            actor_key: actor_name.into(),
            envoy_key,
            truncated: false,
        }
    }

    /// `"{actor_id}:{generation}"`, or `"{actor_id}:"` with no generation.
    pub fn actor_id_gen(&self) -> &str {
        &self.actor_id_gen
    }

    /// The actor's user key (cut and suffixed with a hash when it was too long).
    pub fn actor_key(&self) -> &str {
        &self.actor_key
    }

    /// The host process identity.
    pub fn envoy_key(&self) -> &str {
        &self.envoy_key
    }

    /// Whether the key was longer than the limit and was cut.
    pub fn key_truncated(&self) -> bool {
        self.truncated
    }

    /// `(name, value)` of the three labels, in the order the exposition writes them.
    pub fn pairs(&self) -> [(&'static str, &str); 3] {
        [
            ("actor_id_gen", &self.actor_id_gen),
            ("actor_key", &self.actor_key),
            ("envoy_key", &self.envoy_key),
        ]
    }
}

impl PartialEq for ActorLabels {
    fn eq(&self, other: &Self) -> bool {
        self.actor_id_gen == other.actor_id_gen
            && self.actor_key == other.actor_key
            && self.envoy_key == other.envoy_key
    }
}

impl Eq for ActorLabels {}

impl Hash for ActorLabels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // `str`'s Hash writes a terminator, so field boundaries are part of the hash.
        self.actor_id_gen.hash(state);
        self.actor_key.hash(state);
        self.envoy_key.hash(state);
    }
}

/// `None` when `key` fits; else the key cut at a char boundary to leave room for
/// `~{16 hex digits of FNV-1a 64 of the whole key}`, `max_bytes` long at most.
fn cut_key(key: &str, max_bytes: usize) -> Option<String> {
    if key.len() <= max_bytes {
        return None;
    }
    let mut cut = max_bytes.saturating_sub(KEY_HASH_SUFFIX_BYTES);
    while !key.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = String::with_capacity(cut + KEY_HASH_SUFFIX_BYTES);
    out.push_str(&key[..cut]);
    // Writing to a String cannot fail.
    let _ = write!(out, "~{:016x}", fnv1a64(key.as_bytes()));
    Some(out)
}

/// FNV-1a, 64 bit: stable across Rust versions and processes (the std hasher is
/// not promised to be), so a cut key reads the same after a restart.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A closed set of values for one extra label. Each per-actor family with an
/// extra label takes its values from one of these, so an actor's series count is
/// bounded and known.
pub trait LabelEnum: Copy + Send + Sync + 'static {
    /// The label name, for example `kind`.
    const LABEL: &'static str;
    /// Number of variants.
    const COUNT: usize;
    /// Every variant, in index order.
    const ALL: &'static [Self];
    /// Every label value, in index order.
    const VALUES: &'static [&'static str];
    /// The label value.
    fn as_str(self) -> &'static str;
    /// Position in [`LabelEnum::ALL`].
    fn index(self) -> usize;
    /// The variant whose label value is `value`.
    fn from_label(value: &str) -> Option<Self> {
        Self::VALUES
            .iter()
            .position(|v| *v == value)
            .map(|i| Self::ALL[i])
    }
}

macro_rules! label_enum {
    ($(#[$doc:meta])* $name:ident, $label:literal { $($(#[$vdoc:meta])* $variant:ident = $value:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl LabelEnum for $name {
            const LABEL: &'static str = $label;
            const COUNT: usize = [$($name::$variant),+].len();
            const ALL: &'static [Self] = &[$($name::$variant),+];
            const VALUES: &'static [&'static str] = &[$($value),+];
            fn as_str(self) -> &'static str {
                match self { $($name::$variant => $value),+ }
            }
            fn index(self) -> usize {
                self as usize
            }
        }
    };
}

label_enum!(
    /// Which of an actor's inboxes (`inbox` label).
    Inbox, "inbox" {
        /// Action calls waiting to run.
        Action = "action",
        /// Queue messages waiting to be received.
        Queue = "queue",
        /// Lifecycle events (sleep, destroy) waiting to be handled.
        Lifecycle = "lifecycle",
    }
);

label_enum!(
    /// Kind of user task (`kind` label).
    TaskKind, "kind" {
        /// A background task spawned by actor code.
        Background = "background",
        /// Work that keeps the actor awake until it finishes.
        KeepAwake = "keep_awake",
        /// A scheduled (alarm) task.
        Scheduled = "scheduled",
        /// A task serving a connection.
        Connection = "connection",
    }
);

label_enum!(
    /// Why actor state was mutated (`reason` label).
    MutationReason, "reason" {
        /// An action changed the state.
        Action = "action",
        /// A user task changed the state.
        Task = "task",
        /// A connection event changed the state.
        Connection = "connection",
        /// A scheduled event changed the state.
        Schedule = "schedule",
        /// The runtime itself changed the state (load, migration).
        Internal = "internal",
    }
);

label_enum!(
    /// Why an actor is shutting down (`reason` label).
    ShutdownReason, "reason" {
        /// The actor goes to sleep; its state stays on disk.
        Sleep = "sleep",
        /// The actor is destroyed.
        Destroy = "destroy",
        /// The whole host is shutting down.
        HostShutdown = "host_shutdown",
        /// The actor's code panicked.
        Panic = "panic",
    }
);

label_enum!(
    /// Startup phase (`phase` label).
    StartupPhase, "phase" {
        /// Opening the actor's database.
        OpenDb = "open_db",
        /// Loading persisted state.
        LoadState = "load_state",
        /// Running the actor's start hook.
        OnStart = "on_start",
    }
);

label_enum!(
    /// Row operation reported by SQLite's update hook (`op` label).
    SqliteOp, "op" {
        /// `INSERT`.
        Insert = "insert",
        /// `UPDATE`.
        Update = "update",
        /// `DELETE`.
        Delete = "delete",
    }
);

label_enum!(
    /// Statement class (`kind` label).
    StatementKind, "kind" {
        /// `SELECT` and other read-only statements.
        Read = "read",
        /// `INSERT`, `UPDATE`, `DELETE`, `REPLACE`.
        Write = "write",
        /// `CREATE`, `DROP`, `ALTER`.
        Ddl = "ddl",
        /// `BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, `RELEASE`.
        Transaction = "transaction",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(id: &str, generation: Option<u64>, key: &str) -> ActorLabels {
        ActorLabels::new(id, generation, key, Arc::from("e"), 256)
    }

    #[test]
    fn id_gen_format() {
        assert_eq!(labels("a", Some(3), "k").actor_id_gen(), "a:3");
        assert_eq!(labels("a", None, "k").actor_id_gen(), "a:");
    }

    #[test]
    fn naive_concatenation_collision_is_two_label_sets() {
        let a = labels("x", Some(1), "2y");
        let b = labels("x", Some(12), "y");
        assert_eq!(
            format!("{}{}", a.actor_id_gen(), a.actor_key()),
            format!("{}{}", b.actor_id_gen(), b.actor_key())
        );
        assert_ne!(a, b);
    }

    #[test]
    fn a_long_key_is_cut_at_a_char_boundary_and_made_unique() {
        let base = "é".repeat(200); // 400 bytes
        let a = ActorLabels::new("a", Some(1), &format!("{base}x"), Arc::from("e"), 255);
        let b = ActorLabels::new("a", Some(1), &format!("{base}y"), Arc::from("e"), 255);
        for l in [&a, &b] {
            assert!(l.key_truncated());
            assert!(l.actor_key().len() <= 255, "{}", l.actor_key().len());
            let (head, hash) = l.actor_key().rsplit_once('~').unwrap();
            assert!(head.chars().all(|c| c == 'é'));
            assert_eq!(hash.len(), 16);
        }
        assert_ne!(a.actor_key(), b.actor_key(), "same prefix, different keys");
        assert_ne!(a, b);
        let again = ActorLabels::new("a", Some(1), &format!("{base}x"), Arc::from("e"), 255);
        assert_eq!(a, again, "the cut is deterministic");
        assert!(!labels("a", Some(1), "short").key_truncated());
    }

    #[test]
    fn actor_id_gen_is_never_cut() {
        let id = "i".repeat(1000);
        let l = ActorLabels::new(&id, Some(7), "k", Arc::from("e"), 64);
        assert_eq!(l.actor_id_gen(), format!("{id}:7"));
    }

    #[test]
    fn no_real_actor_shares_the_overflow_label_set() {
        let overflow = ActorLabels::overflow("counter", Arc::from("e"));
        for generation in [None, Some(0), Some(1)] {
            let real = ActorLabels::new("overflow", generation, "counter", Arc::from("e"), 256);
            assert_ne!(real, overflow);
        }
    }

    #[test]
    fn enum_indexes_and_values_follow_all() {
        for (i, k) in StatementKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
            assert_eq!(k.as_str(), StatementKind::VALUES[i]);
            assert_eq!(StatementKind::from_label(k.as_str()), Some(*k));
        }
        assert_eq!(MutationReason::COUNT, 5);
        assert_eq!(TaskKind::from_label("nope"), None);
    }
}
