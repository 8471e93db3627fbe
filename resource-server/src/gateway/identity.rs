//! Who is calling, as an upstream is told: never the caller's token. An HTTP upstream gets a
//! short-lived ES256 JWT (`iss` this server, `aud` the upstream's URL, `sub`, `client_id`,
//! `scope`, at most 60 seconds) signed with a key published at `/.well-known/jwks.json`; a
//! stdio upstream gets the same facts in request `_meta` under [`META_KEY`].

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use oauth_protocol::token::{Jwk, JwkSet};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::Serialize;

use crate::introspection::Principal;
use crate::store::Store;

/// The `_meta` member that carries the caller's identity to a stdio upstream. A copy the
/// client sent is always replaced.
pub const META_KEY: &str = "mcp-authz/identity";

/// Lifetime of an identity token.
pub const TOKEN_TTL: i64 = 60;

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    client_id: &'a str,
    scope: String,
    iat: i64,
    exp: i64,
    jti: String,
}

/// The gateway's signing key, the same on every instance (kept in the database).
#[derive(Clone)]
pub struct Signer {
    signer: Arc<oauth_protocol::jose::Es256Signer>,
    jwks: Arc<JwkSet>,
    issuer: String,
}

impl Signer {
    /// Loads the key, creating it on the first start.
    pub async fn load(store: &Store, issuer: String, now: i64) -> anyhow::Result<Self> {
        let (kid, pkcs8) = match store.gateway_key().await? {
            Some(found) => found,
            None => {
                let rng = SystemRandom::new();
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| anyhow::anyhow!("P-256 key generation failed"))?;
                let kid = crate::gateway::new_id();
                // Another instance may have stored one meanwhile: the stored one wins.
                store
                    .insert_gateway_key(&kid, &B64.encode(pkcs8.as_ref()), now)
                    .await?;
                store
                    .gateway_key()
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("the gateway key was not stored"))?
            }
        };
        let pkcs8 = B64.decode(pkcs8)?;
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &pkcs8,
            &SystemRandom::new(),
        )
        .map_err(|_| anyhow::anyhow!("the stored gateway key does not parse"))?;
        // An uncompressed point: 0x04 || x || y.
        let public = pair.public_key().as_ref();
        let jwk = Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: B64.encode(&public[1..33]),
            y: B64.encode(&public[33..65]),
            kid: kid.clone(),
            use_: "sig".into(),
            alg: "ES256".into(),
        };
        let signer = oauth_protocol::jose::Es256Signer::new(&pkcs8, &kid, "JWT")
            .map_err(|_| anyhow::anyhow!("the stored gateway key does not parse"))?;
        Ok(Self {
            signer: Arc::new(signer),
            jwks: Arc::new(JwkSet { keys: vec![jwk] }),
            issuer,
        })
    }

    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// A token saying who `p` is, for the upstream at `audience`.
    pub fn token(&self, p: &Principal, audience: &str, now: i64) -> String {
        let claims = Claims {
            iss: &self.issuer,
            aud: audience,
            sub: &p.sub,
            client_id: &p.client_id,
            scope: p.scope.to_string(),
            iat: now,
            exp: now + TOKEN_TTL,
            jti: crate::gateway::new_id(),
        };
        self.signer
            .sign(&claims)
            .expect("signing with a parsed key")
    }
}

/// The identity facts a stdio upstream reads from `_meta`.
pub fn meta(p: &Principal) -> serde_json::Value {
    serde_json::json!({
        "sub": p.sub,
        "username": p.username,
        "email": p.email,
        "client_id": p.client_id,
        "scope": p.scope.to_string(),
    })
}
