//! Local pre-check of RFC 9068 access tokens against the issuer's JWKS, so that garbage and
//! forged tokens are refused without an introspection call. The JWKS is fetched lazily and
//! again when a token names an unknown key (at most every few seconds). When the JWKS cannot
//! be fetched the check says `Unknown` and introspection decides. Tokens are read by the
//! protocol crate's `jose`, the same rules the authorization server applies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use oauth_protocol::jose::{self, Algorithm, JoseError, VerifyingKey};
use tokio::sync::RwLock;

const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Our authorization server signs access tokens with ES256 only.
const ALLOWED: &[Algorithm] = &[Algorithm::ES256];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreCheck {
    /// Signed by a published key; introspection still decides about revocation.
    Valid,
    /// Not one of the issuer's tokens.
    Invalid,
    /// The JWKS is not available; no opinion.
    Unknown,
}

#[derive(Default)]
struct State {
    keys: Vec<VerifyingKey>,
    fetched: Option<Instant>,
}

#[derive(Clone)]
pub struct Jwks {
    uri: String,
    http: reqwest::Client,
    state: Arc<RwLock<State>>,
}

impl Jwks {
    pub fn new(uri: String, http: reqwest::Client) -> Self {
        Self {
            uri,
            http,
            state: Arc::default(),
        }
    }

    pub async fn check(&self, token: &str) -> PreCheck {
        // The header rules come before the key look-up, so only a well-formed token naming
        // an unknown key can cause a fetch.
        match self.verify(token).await {
            Err(JoseError::UnknownKey) => {}
            Ok(()) => return PreCheck::Valid,
            Err(_) => return PreCheck::Invalid,
        }
        let stale = self
            .state
            .read()
            .await
            .fetched
            .is_none_or(|t| t.elapsed() >= REFETCH_INTERVAL);
        if stale && self.refresh().await.is_err() {
            return PreCheck::Unknown;
        }
        match self.verify(token).await {
            Ok(()) => PreCheck::Valid,
            Err(_) => PreCheck::Invalid,
        }
    }

    async fn verify(&self, token: &str) -> Result<(), JoseError> {
        let state = self.state.read().await;
        jose::verify::<serde_json::Value>(token, &state.keys, ALLOWED, Some(jose::ACCESS_TOKEN_TYP))
            .map(|_| ())
    }

    async fn refresh(&self) -> Result<(), String> {
        let mut state = self.state.write().await;
        state.fetched = Some(Instant::now());
        let doc: serde_json::Value = self
            .http
            .get(&self.uri)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .error_for_status()
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        state.keys = VerifyingKey::from_jwks(&doc);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn garbage_is_invalid_without_any_fetch() {
        crate::install_crypto_provider();
        let j = Jwks::new(
            "http://127.0.0.1:1/jwks.json".into(),
            reqwest::Client::new(),
        );
        for t in ["", "abc", "a.b.c", "a.b.c.d"] {
            assert_eq!(j.check(t).await, PreCheck::Invalid, "{t}");
        }
        assert!(j.state.read().await.fetched.is_none());
    }
}
