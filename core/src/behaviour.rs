//! What an actor type is: the [`Behaviour`] trait that a host is given by
//! registration ([`HostBuilder::behaviour`](crate::HostBuilder::behaviour)).
//! The host knows no actor type of its own.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

use crate::action::ActionError;
use crate::context::Context;

/// A boxed future, as actor code returns from [`Behaviour::call`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The code of one actor type. One value serves every actor of the type; an
/// actor's own state lives in its [`Context`] (its database, queue, connections).
pub trait Behaviour: Send + Sync + 'static {
    /// The type name (`actor_name` label); `[a-z0-9_-]+`.
    fn name(&self) -> &'static str;

    /// Every action this type handles. Calls to other names are refused before
    /// they reach the actor, so they never create a label value.
    fn actions(&self) -> &'static [&'static str];

    /// Start phase `load_state`: migrate and read persisted state.
    fn load_state(&self, ctx: &mut Context) -> Result<(), ActionError> {
        let _ = ctx;
        Ok(())
    }

    /// Start phase `on_start`: anything the actor does once it is loaded.
    fn on_start(&self, ctx: &mut Context) -> Result<(), ActionError> {
        let _ = ctx;
        Ok(())
    }

    /// Handles one action call. `action` is one of [`Behaviour::actions`].
    fn call<'a>(
        &'a self,
        ctx: &'a mut Context,
        action: &'static str,
        payload: Value,
    ) -> BoxFuture<'a, Result<Value, ActionError>>;
}
