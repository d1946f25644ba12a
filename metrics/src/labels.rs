//! Typed label sets and the closed enums that extra labels take values from.

use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The label set of one actor's series: `actor_id_gen`, `actor_key`, `envoy_key`.
///
/// Compared by full equality of the typed triple, never by a hash alone, so
/// actor `x` generation 1 with key `2y` and actor `x` generation 12 with key `y`
/// (both `x:12y` when naively joined) are two label sets.
#[derive(Debug, Clone)]
pub struct ActorLabels {
    actor_id_gen: Box<str>,
    actor_key: Box<str>,
    envoy_key: Arc<str>,
    truncated: u8,
}

impl ActorLabels {
    /// Builds the label set; `generation: None` formats `actor_id_gen` as `"{id}:"`.
    ///
    /// Values longer than `max_bytes` are cut at a char boundary; see
    /// [`ActorLabels::truncated_values`].
    pub fn new(
        actor_id: &str,
        generation: Option<u64>,
        actor_key: &str,
        envoy_key: Arc<str>,
        max_bytes: usize,
    ) -> Self {
        let mut id_gen = String::with_capacity(actor_id.len() + 12);
        id_gen.push_str(actor_id);
        id_gen.push(':');
        if let Some(g) = generation {
            // Writing to a String cannot fail.
            let _ = write!(id_gen, "{g}");
        }
        let mut truncated = 0;
        let actor_id_gen = truncate(id_gen, max_bytes, &mut truncated);
        let actor_key = truncate(actor_key.to_owned(), max_bytes, &mut truncated);
        ActorLabels {
            actor_id_gen: actor_id_gen.into_boxed_str(),
            actor_key: actor_key.into_boxed_str(),
            envoy_key,
            truncated,
        }
    }

    /// `"{actor_id}:{generation}"`, or `"{actor_id}:"` with no generation.
    pub fn actor_id_gen(&self) -> &str {
        &self.actor_id_gen
    }

    /// The actor's user key.
    pub fn actor_key(&self) -> &str {
        &self.actor_key
    }

    /// The host process identity.
    pub fn envoy_key(&self) -> &str {
        &self.envoy_key
    }

    /// How many of the values were cut to the configured maximum length.
    pub fn truncated_values(&self) -> u8 {
        self.truncated
    }

    /// The escaped label block `actor_id_gen="…",actor_key="…",envoy_key="…"`,
    /// built once at registration so a scrape only copies it.
    pub(crate) fn label_block(&self) -> Box<str> {
        let mut out = String::with_capacity(
            self.actor_id_gen.len() + self.actor_key.len() + self.envoy_key.len() + 40,
        );
        push_label(&mut out, "actor_id_gen", &self.actor_id_gen);
        out.push(',');
        push_label(&mut out, "actor_key", &self.actor_key);
        out.push(',');
        push_label(&mut out, "envoy_key", &self.envoy_key);
        out.into_boxed_str()
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

fn truncate(mut s: String, max_bytes: usize, count: &mut u8) -> String {
    if s.len() > max_bytes {
        let mut cut = max_bytes;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        *count += 1;
    }
    s
}

/// Appends `name="value"` with the value escaped exactly as the text format (and
/// `prometheus::TextEncoder`) escapes it: `\` → `\\`, `"` → `\"`, newline → `\n`.
pub(crate) fn push_label(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    escape_into(out, value);
    out.push('"');
}

/// Escapes a label value for the text format.
pub(crate) fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
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
    /// The label value.
    fn as_str(self) -> &'static str;
    /// Position in [`LabelEnum::ALL`].
    fn index(self) -> usize;
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
    fn truncates_at_char_boundary_and_counts() {
        let key = "é".repeat(200); // 400 bytes
        let l = ActorLabels::new("a", Some(1), &key, Arc::from("e"), 255);
        assert_eq!(l.actor_key().len(), 254);
        assert!(l.actor_key().chars().all(|c| c == 'é'));
        assert_eq!(l.truncated_values(), 1);
    }

    #[test]
    fn escaping_matches_text_format() {
        let mut s = String::new();
        escape_into(&mut s, "a\\b\"c\nd\te");
        assert_eq!(s, "a\\\\b\\\"c\\nd\te");
    }

    #[test]
    fn enum_indexes_follow_all() {
        for (i, k) in StatementKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
        assert_eq!(MutationReason::COUNT, 5);
    }
}
