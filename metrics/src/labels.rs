//! Typed label sets, and the closed enums that extra labels take values from.
//!
//! Nothing here writes exposition text: escaping belongs to the renderer.
//!
//! # `actor_key` values: one value, one actor
//!
//! A label value has a length limit, and the overflow label set needs an
//! `actor_key` of its own, so some values are generated. `~` marks them, and a
//! real key's own `~` is doubled, so a generated value can never be spelt by a
//! real key:
//!
//! | key | `actor_key` value |
//! |---|---|
//! | no `~`, fits the limit | the key, byte for byte |
//! | has `~`, fits the limit once escaped | the key with each `~` doubled (`a~b` → `a~~b`) |
//! | too long once escaped | its escaped form cut at a char boundary (never between the two `~` of a pair), then `~` and 16 hex digits of FNV-1a 64 of the whole key |
//! | overflow set of type `T` | `T` escaped, then `~overflow` |
//!
//! Read from the left, every `~~` is one `~` of the key; the first `~` that is
//! not followed by another says the value is generated, and what follows it
//! (16 hex digits, or `overflow`) which kind. So a key's value equals neither
//! another key's cut form nor an overflow value, and two keys that both fit
//! never share a value. Two cut keys could share one only if they share the
//! escaped prefix and the 64-bit hash of the whole key. The property test
//! below proves it over generated keys, cut forms and overflow values.
//!
//! `?actor_key=` takes the key as the user knows it (unescaped, whole), and
//! maps it the same way.

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
/// long keys that share a prefix stay two values; a key's own `~` is doubled,
/// so no key spells another's cut form (see the [module docs](self)).
#[derive(Clone)]
pub struct ActorLabels {
    /// `actor_id_gen`, `actor_key` and `envoy_key` one after another, in one
    /// allocation: a label set costs one block, and cloning it (the map key
    /// and the entry share it) one reference count.
    text: Arc<str>,
    /// Where `actor_key` starts in `text`.
    key_at: u32,
    /// Where `envoy_key` starts in `text`; bit 31 set when the key was cut.
    envoy_at: u32,
}

/// Bytes the hash suffix of a cut key takes: `~` and 16 hex digits.
pub const KEY_HASH_SUFFIX_BYTES: usize = 17;

/// What ends the overflow label set's `actor_key`, after the escaped type name.
pub const OVERFLOW_KEY_SUFFIX: &str = "~overflow";

/// The bit of `envoy_at` that says the key was cut.
const TRUNCATED: u32 = 1 << 31;

impl ActorLabels {
    /// Builds the label set; `generation: None` formats `actor_id_gen` as `"{id}:"`.
    ///
    /// An `actor_key` longer than `max_key_bytes` is cut and made unique, and
    /// a `~` in it doubled (see the [module docs](self));
    /// [`ActorLabels::key_truncated`] says whether it was cut.
    ///
    /// # Panics
    ///
    /// If the three values together take 2 GiB or more.
    pub fn new(
        actor_id: &str,
        generation: Option<u64>,
        actor_key: &str,
        envoy_key: Arc<str>,
        max_key_bytes: usize,
    ) -> Self {
        let mut text = String::with_capacity(
            actor_id.len() + 21 + actor_key.len().min(max_key_bytes) + envoy_key.len(),
        );
        text.push_str(actor_id);
        text.push(':');
        if let Some(g) = generation {
            // Writing to a String cannot fail.
            let _ = write!(text, "{g}");
        }
        let key_at = text.len();
        let truncated = push_key_value(&mut text, actor_key, max_key_bytes);
        Self::finish(text, key_at, &envoy_key, truncated)
    }

    /// The label set every overflow registration of actor type `actor_name`
    /// shares: `actor_id_gen="overflow"`, `actor_key="{actor_name}~overflow"`.
    /// A real actor's `actor_id_gen` always holds a `:`, and no real key's
    /// `actor_key` ends in an unpaired `~overflow`, so no actor shares either
    /// value.
    pub(crate) fn overflow(actor_name: &str, envoy_key: Arc<str>) -> Self {
        let mut text = String::from("overflow");
        let key_at = text.len();
        text.push_str(&escape_key(actor_name));
        text.push_str(OVERFLOW_KEY_SUFFIX);
        Self::finish(text, key_at, &envoy_key, false)
    }

    /// Appends `envoy_key` to `text` (which holds `actor_id_gen` and then,
    /// from `key_at`, `actor_key`) and makes the label set of it.
    fn finish(mut text: String, key_at: usize, envoy_key: &str, truncated: bool) -> Self {
        let envoy_at = text.len();
        text.push_str(envoy_key);
        let offset = |n: usize| {
            u32::try_from(n)
                .ok()
                .filter(|n| n & TRUNCATED == 0 && text.len() < TRUNCATED as usize)
                .expect("a label set takes less than 2 GiB")
        };
        let (key_at, envoy_at) = (offset(key_at), offset(envoy_at));
        ActorLabels {
            key_at,
            envoy_at: envoy_at | if truncated { TRUNCATED } else { 0 },
            text: Arc::from(text),
        }
    }

    /// The three values one after another, as they are stored.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// `"{actor_id}:{generation}"`, or `"{actor_id}:"` with no generation.
    pub fn actor_id_gen(&self) -> &str {
        &self.text[..self.key_at as usize]
    }

    /// The actor's `actor_key` value: the user key, with `~` doubled, cut and
    /// suffixed with a hash when too long (see the [module docs](self)).
    pub fn actor_key(&self) -> &str {
        &self.text[self.key_at as usize..(self.envoy_at & !TRUNCATED) as usize]
    }

    /// The host process identity.
    pub fn envoy_key(&self) -> &str {
        &self.text[(self.envoy_at & !TRUNCATED) as usize..]
    }

    /// Whether the key was longer than the limit and was cut.
    pub fn key_truncated(&self) -> bool {
        self.envoy_at & TRUNCATED != 0
    }

    /// `(name, value)` of the three labels, in the order the exposition writes them.
    pub fn pairs(&self) -> [(&'static str, &str); 3] {
        [
            ("actor_id_gen", self.actor_id_gen()),
            ("actor_key", self.actor_key()),
            ("envoy_key", self.envoy_key()),
        ]
    }
}

impl std::fmt::Debug for ActorLabels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorLabels")
            .field("actor_id_gen", &self.actor_id_gen())
            .field("actor_key", &self.actor_key())
            .field("envoy_key", &self.envoy_key())
            .field("truncated", &self.key_truncated())
            .finish()
    }
}

impl PartialEq for ActorLabels {
    /// The same text cut at the same places: the same three values.
    fn eq(&self, other: &Self) -> bool {
        self.key_at == other.key_at
            && (self.envoy_at & !TRUNCATED) == (other.envoy_at & !TRUNCATED)
            && self.text == other.text
    }
}

impl Eq for ActorLabels {}

impl Hash for ActorLabels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The boundaries are part of the hash, as they are of equality.
        self.key_at.hash(state);
        (self.envoy_at & !TRUNCATED).hash(state);
        self.text.hash(state);
    }
}

/// A key with each `~` doubled; borrowed (no copy) when it has none.
fn escape_key(key: &str) -> std::borrow::Cow<'_, str> {
    if key.contains('~') {
        std::borrow::Cow::Owned(key.replace('~', "~~"))
    } else {
        std::borrow::Cow::Borrowed(key)
    }
}

/// Appends the `actor_key` value of `key` to `out`; returns whether it was
/// cut: the key escaped ([`escape_key`]), and when that is longer than
/// `max_bytes`, cut at a char boundary that splits no `~~` pair, to leave
/// room for `~{16 hex digits of FNV-1a 64 of the whole key}`.
fn push_key_value(out: &mut String, key: &str, max_bytes: usize) -> bool {
    let escaped = escape_key(key);
    if escaped.len() <= max_bytes {
        out.push_str(&escaped);
        return false;
    }
    let mut cut = max_bytes.saturating_sub(KEY_HASH_SUFFIX_BYTES);
    while !escaped.is_char_boundary(cut) {
        cut -= 1;
    }
    // The escaped key's `~` come in pairs: an odd run at the end of the
    // prefix means the cut split one.
    let tildes = escaped.as_bytes()[..cut]
        .iter()
        .rev()
        .take_while(|&&b| b == b'~')
        .count();
    if tildes % 2 == 1 {
        cut -= 1;
    }
    out.push_str(&escaped[..cut]);
    // Writing to a String cannot fail.
    let _ = write!(out, "~{:016x}", fnv1a64(key.as_bytes()));
    true
}

/// The `actor_key` value of `key`, and whether it was cut (see [`push_key_value`]).
#[cfg(test)]
fn key_value(key: &str, max_bytes: usize) -> (String, bool) {
    let mut out = String::new();
    let cut = push_key_value(&mut out, key, max_bytes);
    (out, cut)
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
        assert_eq!(overflow.actor_key(), "counter~overflow");
        for generation in [None, Some(0), Some(1)] {
            for key in ["counter", "counter~overflow", "counter~~overflow"] {
                let real = ActorLabels::new("overflow", generation, key, Arc::from("e"), 256);
                assert_ne!(real, overflow);
                assert_ne!(real.actor_key(), overflow.actor_key(), "{key}");
            }
        }
    }

    #[test]
    fn keys_without_a_tilde_keep_their_value_and_a_tilde_is_doubled() {
        assert_eq!(
            labels("a", Some(1), "plain key/é").actor_key(),
            "plain key/é"
        );
        assert_eq!(labels("a", Some(1), "").actor_key(), "");
        assert_eq!(labels("a", Some(1), "a~b~~").actor_key(), "a~~b~~~~");
        // A short key spelt as a long key's cut form is not that cut form.
        let long = labels("a", Some(1), &"x".repeat(300));
        let spelt = labels("a", Some(1), long.actor_key());
        assert!(long.key_truncated());
        assert_ne!(spelt.actor_key(), long.actor_key());
        let shorter = labels("a", Some(1), &long.actor_key()[200..]);
        assert_eq!(
            shorter.actor_key(),
            format!(
                "{}~{}",
                &long.actor_key()[200..239],
                &long.actor_key()[239..]
            )
        );
    }

    #[test]
    fn a_cut_never_splits_an_escaped_tilde() {
        // 20 bytes of room before the suffix: `a` then `~~` pairs; the cut
        // lands between the two `~` of a pair and steps back one.
        let key = format!("a{}", "~".repeat(40));
        let (value, cut) = key_value(&key, 38);
        assert!(cut);
        assert_eq!(
            value,
            format!("a{}~{:016x}", "~".repeat(20), fnv1a64(key.as_bytes()))
        );
        assert!(matches!(decode(&value), Decoded::Cut { .. }), "{value}");
    }

    /// What an `actor_key` value says it is, read by the module docs' rule.
    #[derive(Debug, PartialEq)]
    enum Decoded {
        /// A whole key.
        Key(String),
        /// A key cut to this (unescaped) prefix, with this hash.
        Cut { prefix: String, hash: u64 },
        /// The overflow set of this type.
        Overflow(String),
    }

    fn decode(value: &str) -> Decoded {
        let mut text = String::new();
        let mut chars = value.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c != '~' {
                text.push(c);
                continue;
            }
            if chars.next_if(|&(_, c)| c == '~').is_some() {
                text.push('~');
                continue;
            }
            let rest = &value[i + 1..];
            if rest == "overflow" {
                return Decoded::Overflow(text);
            }
            assert!(
                rest.len() == 16 && rest.bytes().all(|b| b.is_ascii_hexdigit()),
                "{value:?} is no value the mapping makes"
            );
            let hash = u64::from_str_radix(rest, 16).unwrap();
            return Decoded::Cut { prefix: text, hash };
        }
        Decoded::Key(text)
    }

    use proptest::prelude::*;

    /// Keys over a small alphabet (so keys share prefixes and `~` often),
    /// with a multi-byte char to test char boundaries.
    fn key() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec!['a', 'b', '~', 'é', '0', 'f']),
            0..48,
        )
        .prop_map(String::from_iter)
    }

    /// A key, and another made to look like it: its value spelt as a key
    /// (a cut form when it was cut), an overflow value, a variant, or any key.
    fn key_pair(max: usize) -> impl Strategy<Value = (String, String)> {
        (key(), key(), 0..5u8).prop_map(move |(a, other, how)| {
            let b = match how {
                0 => key_value(&a, max).0,
                1 => ActorLabels::overflow(&other, Arc::from("e"))
                    .actor_key()
                    .to_owned(),
                2 => format!("{other}~{:016x}", fnv1a64(a.as_bytes())),
                3 => format!("{a}~"),
                _ => other,
            };
            (a, b)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Each value decodes back to its key (whole, or its prefix and hash):
        /// the mapping loses nothing but what the cut drops.
        #[test]
        fn every_value_reads_back_as_its_key(k in key(), max in 18usize..40) {
            let (value, cut) = key_value(&k, max);
            match decode(&value) {
                Decoded::Key(whole) => {
                    prop_assert!(!cut && value.len() <= max, "{value:?}");
                    prop_assert_eq!(whole, k);
                }
                Decoded::Cut { prefix, hash } => {
                    prop_assert!(cut && value.len() <= max, "{value:?}");
                    prop_assert!(k.starts_with(&prefix), "{prefix:?} of {k:?}");
                    prop_assert_eq!(hash, fnv1a64(k.as_bytes()));
                }
                Decoded::Overflow(_) => prop_assert!(false, "{k:?} took an overflow value"),
            }
        }

        /// Two keys never share a value, nor does a key share one with any
        /// type's overflow set, however the second key was crafted.
        #[test]
        fn one_value_one_key((a, b) in key_pair(30), t in key(), max in 18usize..40) {
            let va = key_value(&a, max).0;
            let vb = key_value(&b, max).0;
            prop_assert!(a == b || va != vb, "{a:?} and {b:?} both {va:?}");
            let overflow = ActorLabels::overflow(&t, Arc::from("e"));
            prop_assert_ne!(&va, overflow.actor_key());
            prop_assert_ne!(&vb, overflow.actor_key());
            // Not even the type's own name, nor its overflow value, as a key.
            prop_assert_ne!(&key_value(&t, max).0, overflow.actor_key());
            prop_assert_ne!(&key_value(overflow.actor_key(), max).0, overflow.actor_key());
            prop_assert_eq!(decode(overflow.actor_key()), Decoded::Overflow(t));
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
