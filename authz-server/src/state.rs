//! Shared application state handed to every handler.

use std::sync::Arc;

use crate::cimd::MetadataDocuments;
use crate::clients::Client;
use crate::config::{Config, ResourceServer};
use crate::crypto::Keys;
use crate::store::{AuditEvent, Store, StoreError, StoreResult};

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub keys: Keys,
    pub config: Arc<Config>,
    pub documents: MetadataDocuments,
    pub metrics: observe::Metrics,
    /// Resource servers from the configuration and from the database.
    pub resources: Arc<std::sync::RwLock<Vec<ResourceServer>>>,
    /// Headless mode: the user every authorization request is approved as.
    pub headless_user_id: Option<String>,
    /// Failed sign-ins per username in the current window, to slow down password guessing.
    pub login_failures: moka::future::Cache<String, u32>,
}

/// Failed sign-ins allowed per username, each within `LOGIN_WINDOW` of the previous one,
/// before further attempts are refused (for `LOGIN_WINDOW`) without checking the password.
pub const MAX_LOGIN_FAILURES: u32 = 10;
pub const LOGIN_WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Current Unix time in seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AppState {
    /// The resource server a requested `resource` names, compared after RFC 8707
    /// normalisation; tokens carry its registered spelling.
    pub fn resource_server(&self, requested: &str) -> Option<ResourceServer> {
        let want = oauth_protocol::uri::normalize_resource(requested).ok()?;
        let list = self.resources.read().expect("resource lock poisoned");
        list.iter()
            .find(|rs| {
                oauth_protocol::uri::normalize_resource(&rs.resource).is_ok_and(|k| k == want)
            })
            .cloned()
    }

    /// RFC 8707 leaves a missing `resource` to policy: with exactly one resource server,
    /// that one is meant (several MCP clients omit the parameter).
    pub fn only_resource_server(&self) -> Option<ResourceServer> {
        match self
            .resources
            .read()
            .expect("resource lock poisoned")
            .as_slice()
        {
            [only] => Some(only.clone()),
            _ => None,
        }
    }

    pub fn resource_server_by_client(&self, client_id: &str) -> Option<ResourceServer> {
        let list = self.resources.read().expect("resource lock poisoned");
        list.iter().find(|rs| rs.client_id == client_id).cloned()
    }

    /// Re-reads the resource servers added with the admin command.
    pub async fn reload_resource_servers(&self) -> StoreResult<()> {
        let rows = self.store.list_resource_servers().await?;
        let mut list = self.config.resource_servers.clone();
        for row in rows {
            if list.iter().any(|rs| rs.resource == row.resource) {
                continue;
            }
            list.push(ResourceServer {
                resource: row.resource,
                name: row.name,
                client_id: row.client_id,
                client_secret: oauth_protocol::secret::Secret::new(""),
                secret_digest: Some(row.secret_hash),
            });
        }
        *self.resources.write().expect("resource lock poisoned") = list;
        Ok(())
    }

    /// Records a security event; a failure is logged, never fatal to the request.
    pub async fn audit(
        &self,
        kind: &str,
        user_id: Option<&str>,
        client_id: Option<&str>,
        detail: &str,
    ) {
        let event = AuditEvent {
            id: crate::crypto::new_id(),
            at: now(),
            kind: kind.to_owned(),
            user_id: user_id.map(str::to_owned),
            client_id: client_id.map(str::to_owned),
            detail: detail.to_owned(),
        };
        if let Err(e) = self.store.audit(&event).await {
            tracing::error!(error = %e, kind, "writing an audit event failed");
        }
    }

    /// Finds a client: registered ones in the store, URL-formatted client IDs through their
    /// client ID metadata document. `Ok(None)` for anything unknown or unusable.
    pub async fn client(&self, client_id: &str) -> Result<Option<Client>, LookupError> {
        if self.documents.handles(client_id) {
            return Ok(self
                .documents
                .resolve(client_id)
                .await
                .map(|c| (*c).clone()));
        }
        Ok(self
            .store
            .client(client_id)
            .await?
            .and_then(|row| Client::from_row(&row)))
    }
}
