//! The ES256 signing keys of RFC 9068 access tokens: generation, rotation, the JWKS, and
//! signing and verifying our own tokens.
//!
//! Verifying an ECDSA signature is the most expensive step of an introspection, and the same
//! token is introspected again and again: a verified token's claims are kept (keyed by its
//! SHA-256, until it expires) and a second look costs a hash. Nothing about liveness is
//! kept; revocation is always read from the store.

use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use moka::future::Cache;
use oauth_protocol::jose::{self, Algorithm, Es256Signer, JoseError, VerifyingKey};
use oauth_protocol::token::{AccessTokenClaims, Jwk, JwkSet};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use sha2::{Digest, Sha256};

use crate::store::{SigningKeyRow, Store, StoreResult};

/// One P-256 key.
struct SigningKey {
    kid: String,
    signer: Es256Signer,
    public: Vec<u8>,
    verifying: VerifyingKey,
    created_at: i64,
    retired_at: Option<i64>,
}

impl SigningKey {
    fn from_row(row: &SigningKeyRow) -> anyhow::Result<Self> {
        let pkcs8 = B64.decode(&row.pkcs8)?;
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &pkcs8,
            &SystemRandom::new(),
        )
        .map_err(|e| anyhow::anyhow!("signing key {} is unreadable: {e}", row.kid))?;
        let public = pair.public_key().as_ref().to_vec();
        let (x, y) = public[1..].split_at(32);
        let verifying = VerifyingKey::es256(&row.kid, &B64.encode(x), &B64.encode(y))
            .map_err(|e| anyhow::anyhow!("signing key {} is unreadable: {e}", row.kid))?;
        let signer = Es256Signer::new(&pkcs8, &row.kid, jose::ACCESS_TOKEN_TYP)
            .map_err(|e| anyhow::anyhow!("signing key {} is unreadable: {e}", row.kid))?;
        Ok(Self {
            kid: row.kid.clone(),
            signer,
            public,
            verifying,
            created_at: row.created_at,
            retired_at: row.retired_at,
        })
    }

    fn jwk(&self) -> Jwk {
        let (x, y) = self.public[1..].split_at(32);
        Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: B64.encode(x),
            y: B64.encode(y),
            kid: self.kid.clone(),
            use_: "sig".into(),
            alg: "ES256".into(),
        }
    }
}

/// RFC 7638 thumbprint of a P-256 public key: a stable `kid`.
fn thumbprint(public: &[u8]) -> String {
    let (x, y) = public[1..].split_at(32);
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        B64.encode(x),
        B64.encode(y)
    );
    B64.encode(Sha256::digest(canonical.as_bytes()))
}

pub fn generate_key_row(now: i64) -> SigningKeyRow {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .expect("P-256 key generation failed");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .expect("a freshly generated key parses");
    SigningKeyRow {
        kid: thumbprint(pair.public_key().as_ref()),
        pkcs8: B64.encode(pkcs8.as_ref()),
        created_at: now,
        retired_at: None,
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("not a JWT")]
    Malformed,
    #[error("unknown key")]
    UnknownKey,
    #[error("bad signature")]
    Signature,
}

/// The signing keys: the newest signs, retired ones still verify until their last token
/// has expired. Reloaded from the store after a rotation.
#[derive(Clone)]
pub struct Keys {
    inner: Arc<RwLock<Vec<SigningKey>>>,
    access_token_ttl: i64,
    /// When the keys were last read from the store, to rate-limit reloads.
    loaded_at: Arc<std::sync::atomic::AtomicI64>,
    /// Claims of tokens whose signature verified, by SHA-256 of the token, with the `kid`
    /// that verified them (still loaded and published at each use, or verified again).
    verified: Cache<[u8; 32], (Arc<AccessTokenClaims>, Arc<str>)>,
    /// The JWKS document, for the key set (`version`, moved on by every reload that changes
    /// it) and the keys it published (a bit per position).
    jwks_body: Arc<RwLock<Option<(u64, u64, axum::body::Bytes)>>>,
    version: Arc<std::sync::atomic::AtomicU64>,
}

/// Tokens whose verified claims are kept; beyond it the least used are verified again.
const VERIFIED_CAPACITY: u64 = 100_000;

/// Shortest interval between two reloads triggered by an unknown `kid`.
const RELOAD_INTERVAL: i64 = 10;

impl Keys {
    /// Loads the keys, generating and persisting the first one on a new database.
    pub async fn load(store: &Store, access_token_ttl: i64, now: i64) -> anyhow::Result<Self> {
        let keys = Self::with_keys(Vec::new(), access_token_ttl);
        if store
            .signing_keys()
            .await?
            .iter()
            .all(|k| k.retired_at.is_some())
        {
            store
                .create_first_signing_key(&generate_key_row(now))
                .await?;
        }
        keys.reload(store).await?;
        Ok(keys)
    }

    fn with_keys(keys: Vec<SigningKey>, access_token_ttl: i64) -> Self {
        Self {
            inner: Arc::new(RwLock::new(keys)),
            access_token_ttl,
            loaded_at: Default::default(),
            verified: Cache::builder()
                .max_capacity(VERIFIED_CAPACITY)
                // No token outlives this; `exp` is checked on every use besides.
                .time_to_live(std::time::Duration::from_secs(
                    access_token_ttl.max(1) as u64
                ))
                .build(),
            jwks_body: Default::default(),
            version: Default::default(),
        }
    }

    pub async fn reload(&self, store: &Store) -> anyhow::Result<()> {
        let rows = store.signing_keys().await?;
        let keys = rows
            .iter()
            .map(SigningKey::from_row)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let changed = {
            let mut inner = self.inner.write().expect("key lock poisoned");
            let kids = |k: &[SigningKey]| {
                k.iter()
                    .map(|k| (k.kid.clone(), k.retired_at))
                    .collect::<Vec<_>>()
            };
            let changed = kids(&inner) != kids(&keys);
            *inner = keys;
            if changed {
                self.version
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            }
            changed
        };
        if changed {
            // A key removed from the store (a compromised one) verifies nothing any more,
            // and a retirement changes the JWKS.
            self.verified.invalidate_all();
            *self.jwks_body.write().expect("key lock poisoned") = None;
        }
        self.loaded_at.store(
            oauth_protocol::clock::Clock::now(&oauth_protocol::clock::SystemClock),
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    }

    /// Like `verify`, but a token signed by a key this instance has not seen yet (another
    /// instance rotated) triggers one reload from the store, at most every few seconds.
    pub async fn verify_fresh(
        &self,
        store: &Store,
        token: &str,
        now: i64,
    ) -> Result<Arc<AccessTokenClaims>, JwtError> {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some((claims, kid)) = self.verified.get(&hash).await
            && self.usable(&kid, now)
        {
            return Ok(claims);
        }
        let claims = Arc::new(self.verify_loaded(store, token, now).await?);
        if let Some(kid) = jose::header_kid(token) {
            self.verified
                .insert(hash, (claims.clone(), kid.into()))
                .await;
        }
        Ok(claims)
    }

    /// A key that is loaded and still published.
    fn usable(&self, kid: &str, now: i64) -> bool {
        let keys = self.inner.read().expect("key lock poisoned");
        keys.iter()
            .any(|k| k.kid == kid && self.is_published(k, now))
    }

    async fn verify_loaded(
        &self,
        store: &Store,
        token: &str,
        now: i64,
    ) -> Result<AccessTokenClaims, JwtError> {
        match self.verify(token, now) {
            Err(JwtError::UnknownKey)
                if now - self.loaded_at.load(std::sync::atomic::Ordering::Relaxed)
                    >= RELOAD_INTERVAL =>
            {
                if let Err(e) = self.reload(store).await {
                    tracing::error!(error = %e, "reloading signing keys failed");
                }
                self.verify(token, now)
            }
            other => other,
        }
    }

    /// Generates a new signing key; the old one stays published until its tokens expire.
    pub async fn rotate(store: &Store, now: i64) -> StoreResult<String> {
        let row = generate_key_row(now);
        store.rotate_signing_key(&row).await?;
        Ok(row.kid)
    }

    pub fn active_kid(&self) -> String {
        let keys = self.inner.read().expect("key lock poisoned");
        keys.iter()
            .find(|k| k.retired_at.is_none())
            .map(|k| k.kid.clone())
            .unwrap_or_default()
    }

    /// Keys that may still have live tokens.
    fn is_published(&self, key: &SigningKey, now: i64) -> bool {
        key.retired_at
            .is_none_or(|at| at + self.access_token_ttl > now)
    }

    /// The JWKS as served: encoded again only when the set of published keys changes.
    pub fn jwks_body(&self, now: i64) -> axum::body::Bytes {
        let (version, published) = {
            let keys = self.inner.read().expect("key lock poisoned");
            let version = self.version.load(std::sync::atomic::Ordering::Acquire);
            let mask = keys
                .iter()
                .enumerate()
                .filter(|(_, k)| self.is_published(k, now))
                .fold(0u64, |m, (i, _)| m | 1 << (i % 64));
            (version, mask)
        };
        if let Some((v, mask, body)) = &*self.jwks_body.read().expect("key lock poisoned")
            && (*v, *mask) == (version, published)
        {
            return body.clone();
        }
        let body = axum::body::Bytes::from(
            serde_json::to_vec(&self.jwks(now)).expect("a JWKS serialises"),
        );
        // Encoded from the keys as they are now: stored under the version read before, so a
        // reload in between leaves it unused.
        *self.jwks_body.write().expect("key lock poisoned") =
            Some((version, published, body.clone()));
        body
    }

    pub fn jwks(&self, now: i64) -> JwkSet {
        let keys = self.inner.read().expect("key lock poisoned");
        JwkSet {
            keys: keys
                .iter()
                .filter(|k| self.is_published(k, now))
                .map(SigningKey::jwk)
                .collect(),
        }
    }

    pub fn sign(&self, claims: &AccessTokenClaims) -> String {
        let keys = self.inner.read().expect("key lock poisoned");
        let key = keys
            .iter()
            .filter(|k| k.retired_at.is_none())
            .max_by_key(|k| k.created_at)
            .expect("an active signing key exists once Keys::load has run");
        key.signer.sign(claims).expect("the active key signs")
    }

    /// Verifies the signature of a token we issued and returns its claims. Expiry and
    /// revocation are the caller's to check.
    pub fn verify(&self, token: &str, now: i64) -> Result<AccessTokenClaims, JwtError> {
        let keys = self.inner.read().expect("key lock poisoned");
        jose::verify_with(
            token,
            &[Algorithm::ES256],
            Some(jose::ACCESS_TOKEN_TYP),
            |kid, alg| {
                keys.iter()
                    .find(|k| k.kid == kid && k.verifying.alg == alg && self.is_published(k, now))
                    .map(|k| &k.verifying)
            },
        )
        .map_err(|e| match e {
            JoseError::UnknownKey => JwtError::UnknownKey,
            JoseError::Signature => JwtError::Signature,
            _ => JwtError::Malformed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_round_trip() {
        let row = generate_key_row(100);
        let keys = Keys::with_keys(vec![SigningKey::from_row(&row).unwrap()], 60);
        let claims = AccessTokenClaims {
            iss: "https://as.example".into(),
            sub: "u1".into(),
            aud: "https://rs.example/mcp".into(),
            client_id: "c".into(),
            scope: "mcp:read".into(),
            iat: 100,
            exp: 160,
            jti: "j".into(),
        };
        let jwt = keys.sign(&claims);
        assert_eq!(keys.verify(&jwt, 120).unwrap(), claims);
        let mut tampered = jwt.clone();
        tampered.insert(jwt.find('.').unwrap() + 2, 'A');
        assert!(keys.verify(&tampered, 120).is_err());
        assert_eq!(keys.verify("a.b", 120), Err(JwtError::Malformed));
        // The same signature in its high-S form verifies with plain ECDSA but is refused.
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let mut high = B64.decode(sig).unwrap();
        assert!(oauth_protocol::token::p256_low_s::is_low(&high));
        oauth_protocol::token::p256_low_s::negate(&mut high);
        let flipped = format!("{input}.{}", B64.encode(&high));
        assert_eq!(keys.verify(&flipped, 120), Err(JwtError::Signature));
        for _ in 0..20 {
            let t = keys.sign(&claims);
            assert!(
                keys.verify(&t, 120).is_ok(),
                "every issued signature is low-S"
            );
        }
        assert_eq!(keys.jwks(120).keys[0].kid, row.kid);
    }
}
