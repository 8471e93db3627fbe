//! Shared application state handed to every handler.

use std::sync::Arc;

use crate::cimd::MetadataDocuments;
use crate::clients::Client;
use crate::config::Config;
use crate::crypto::Keys;
use crate::store::{Store, StoreError};

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub keys: Keys,
    pub config: Arc<Config>,
    pub documents: MetadataDocuments,
}

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
