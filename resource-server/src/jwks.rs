//! Local pre-check of RFC 9068 access tokens against the issuer's JWKS (ES256), so that
//! garbage and forged tokens are refused without an introspection call. The JWKS is fetched
//! lazily and again when a token names an unknown key (at most every few seconds). When the
//! JWKS cannot be fetched the check says `Unknown` and introspection decides.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use tokio::sync::RwLock;

const REFETCH_INTERVAL: Duration = Duration::from_secs(10);

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
    keys: HashMap<String, Vec<u8>>,
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
        let Some((kid, signing_input, sig)) = split(token) else {
            return PreCheck::Invalid;
        };
        if let Some(found) = self.verify_with(&kid, signing_input, &sig).await {
            return found;
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
        self.verify_with(&kid, signing_input, &sig)
            .await
            .unwrap_or(PreCheck::Invalid)
    }

    async fn verify_with(&self, kid: &str, input: &str, sig: &[u8]) -> Option<PreCheck> {
        let state = self.state.read().await;
        let key = state.keys.get(kid)?;
        Some(
            match UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key)
                .verify(input.as_bytes(), sig)
            {
                Ok(()) => PreCheck::Valid,
                Err(_) => PreCheck::Invalid,
            },
        )
    }

    async fn refresh(&self) -> Result<(), String> {
        let mut state = self.state.write().await;
        state.fetched = Some(Instant::now());
        let set: oauth_protocol::token::JwkSet = self
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
        state.keys = set
            .keys
            .into_iter()
            .filter(|k| k.kty == "EC" && k.crv == "P-256")
            .filter_map(|k| {
                let (x, y) = (B64.decode(&k.x).ok()?, B64.decode(&k.y).ok()?);
                let mut point = vec![4u8];
                point.extend(x);
                point.extend(y);
                Some((k.kid, point))
            })
            .collect();
        Ok(())
    }
}

/// `(kid, signing input, signature)` of a compact ES256 `at+jwt`.
fn split(token: &str) -> Option<(String, &str, Vec<u8>)> {
    let mut parts = token.split('.');
    let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: serde_json::Value = serde_json::from_slice(&B64.decode(h).ok()?).ok()?;
    if header.get("alg")?.as_str()? != "ES256" {
        return None;
    }
    let kid = header.get("kid")?.as_str()?.to_owned();
    let sig = B64.decode(s).ok()?;
    // Only the low-S form of a P-256 signature is accepted (no malleable twins).
    if !oauth_protocol::token::p256_low_s::is_low(&sig) {
        return None;
    }
    Some((kid, &token[..h.len() + 1 + p.len()], sig))
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
