//! What every handler of the resource server shares.

use std::sync::Arc;

use moka::future::Cache;

use crate::config::Config;
use crate::introspection::Introspector;
use crate::store::Store;

/// Cheap to clone: axum clones the state for every layer and handler of every request.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

#[derive(Clone)]
pub struct Shared {
    pub config: Arc<Config>,
    pub introspector: Introspector,
    pub store: Store,
    /// MCP session id → the `sub` that created it.
    pub sessions: Cache<String, String>,
    pub metrics: observe::Metrics,
    pub clock: Arc<dyn oauth_protocol::clock::Clock>,
    /// For `/readyz`: the authorization server's metadata URL and a client to ask it.
    pub http: reqwest::Client,
    /// A gateway endpoint's permissions; `None` for this server's own tools.
    pub policy: Option<Arc<crate::gateway::policy::Policy>>,
}
