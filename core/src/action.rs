//! Action calls: what actor code returns, and what a caller of the host gets.

use serde_json::Value;

/// An error returned by an actor's own code for one action call. The actor keeps
/// running; the call counts in `actor_action_errors_total`.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The payload does not fit the action (a client error).
    #[error("bad payload: {0}")]
    BadPayload(String),
    /// The action ran and failed on purpose or by a rule of the actor (a client error).
    #[error("{0}")]
    Failed(String),
    /// The actor's database failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The actor's queue refused a message (full, or the message too large).
    #[error(transparent)]
    Queue(#[from] crate::context::QueueError),
    /// A bound of the host refused what the action asked for (a user task).
    #[error(transparent)]
    Limit(#[from] crate::budget::LimitError),
}

/// Why [`Host::call`](crate::Host::call) did not return a value.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No actor type with this name.
    #[error("unknown actor type {0:?}")]
    UnknownType(String),
    /// The actor type has no action with this name (not sent to the actor, not recorded).
    #[error("actor type {actor_name:?} has no action {action:?}")]
    UnknownAction {
        /// The actor type.
        actor_name: String,
        /// The action asked for.
        action: String,
    },
    /// No actor with this key exists (create it first).
    #[error("no actor {actor_name}/{key:?}; create it with POST /actors/{actor_name}/<key>")]
    NotFound {
        /// The actor type.
        actor_name: String,
        /// The key asked for.
        key: String,
    },
    /// The key is not acceptable (too long).
    #[error("bad actor key: {0}")]
    BadKey(String),
    /// The actor's code returned an error.
    #[error(transparent)]
    Action(#[from] ActionError),
    /// The actor's code panicked; the actor was stopped and its stop recorded.
    #[error("the actor panicked while handling {action:?} and was stopped")]
    Panicked {
        /// The action that panicked.
        action: String,
    },
    /// The actor's inbox is full.
    #[error("the actor's inbox is full")]
    Overloaded,
    /// A bound on what clients can make the host hold refused the call
    /// (the actor's inbox bytes, the host's bytes for clients); it was not sent.
    #[error(transparent)]
    Limit(#[from] crate::budget::LimitError),
    /// The actor stopped (slept, was destroyed or failed to start) before answering.
    #[error("the actor stopped before answering: {0}")]
    Stopped(String),
    /// The host is shutting down.
    #[error("the host is shutting down")]
    ShuttingDown,
    /// The action was still running at the host's shutdown deadline (the
    /// shutdown timeout after the shutdown began) and was cancelled; a
    /// transaction it had open was rolled back.
    #[error(
        "the host shut down: {action:?} was cancelled after running {after:?}, at the shutdown timeout; its uncommitted changes were rolled back"
    )]
    Cancelled {
        /// The action.
        action: String,
        /// How long it ran.
        after: std::time::Duration,
    },
    /// The actor could not start (for example its database file is corrupt).
    #[error("the actor could not start: {0}")]
    StartFailed(String),
    /// Every live actor is busy (running a call, or held awake by open
    /// connections, user tasks or queued messages), so none could be put to
    /// sleep to make room under the bound of live actors.
    #[error(
        "all {max} live actors are busy (running a call, or held awake by connections, user tasks or queued messages); none can sleep to make room"
    )]
    AtCapacity {
        /// The bound of live actors.
        max: usize,
    },
    /// The catalogue could not record or read the key.
    #[error(transparent)]
    Catalogue(#[from] crate::catalogue::CatalogueError),
    /// A destroyed actor's files could not be deleted.
    #[error("could not delete {}: {source}", path.display())]
    RemoveFiles {
        /// The database file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl CallError {
    /// The HTTP status the app API answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            CallError::UnknownType(_) | CallError::NotFound { .. } => 404,
            CallError::UnknownAction { .. } | CallError::BadKey(_) => 400,
            CallError::Action(ActionError::BadPayload(_)) => 400,
            CallError::Action(ActionError::Failed(_)) => 422,
            CallError::Action(ActionError::Queue(e)) => e.http_status(),
            CallError::Action(ActionError::Limit(e)) | CallError::Limit(e) => e.http_status(),
            // Out of ids is out of storage, not a fault: say so, as 507.
            CallError::Catalogue(crate::catalogue::CatalogueError::IdsExhausted { .. }) => 507,
            CallError::Action(ActionError::Sqlite(_))
            | CallError::Panicked { .. }
            | CallError::StartFailed(_)
            | CallError::Catalogue(_)
            | CallError::RemoveFiles { .. } => 500,
            CallError::Overloaded
            | CallError::Stopped(_)
            | CallError::ShuttingDown
            | CallError::Cancelled { .. }
            | CallError::AtCapacity { .. } => 503,
        }
    }
}

/// A reply to one action call.
pub type CallResult = Result<Value, CallError>;

/// Reads an optional unsigned field of a JSON payload.
pub fn u64_field(payload: &Value, field: &str) -> Result<Option<u64>, ActionError> {
    match payload.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            ActionError::BadPayload(format!("{field:?} must be an unsigned integer"))
        }),
    }
}
