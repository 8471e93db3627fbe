//! The provider's side of a sign-in: the code exchange, the id_token's verification
//! (signature by the provider's keys, issuer, audience, `azp`, expiry, nonce) and userinfo.

use oauth_protocol::jose::{self, Algorithm};
use serde::Deserialize;

use super::{FederationError, callback_uri};
use crate::config::Upstream;
use crate::state::AppState;
use crate::upstream::{Provider, UpstreamError};

/// Clock skew tolerated on `exp` and `iat`.
const LEEWAY: i64 = 60;

#[derive(Deserialize)]
pub(super) struct TokenAnswer {
    pub(super) id_token: Option<String>,
    #[serde(default)]
    pub(super) access_token: Option<String>,
}

/// OpenID Connect Core §5.3 claims a userinfo endpoint adds.
#[derive(Deserialize)]
pub(super) struct UserInfo {
    pub(super) sub: String,
    #[serde(default)]
    pub(super) email: Option<String>,
    #[serde(default)]
    pub(super) email_verified: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) preferred_username: Option<String>,
    #[serde(default)]
    pub(super) name: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct IdClaims {
    pub(super) iss: String,
    pub(super) sub: String,
    pub(super) aud: serde_json::Value,
    pub(super) exp: i64,
    #[serde(default)]
    pub(super) iat: Option<i64>,
    #[serde(default)]
    pub(super) nonce: Option<String>,
    #[serde(default)]
    pub(super) azp: Option<String>,
    #[serde(default)]
    pub(super) email: Option<String>,
    #[serde(default)]
    pub(super) email_verified: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) preferred_username: Option<String>,
    #[serde(default)]
    pub(super) name: Option<String>,
    /// Google Workspace domain.
    #[serde(default)]
    pub(super) hd: Option<String>,
    /// Microsoft Entra tenant.
    #[serde(default)]
    pub(super) tid: Option<String>,
}

pub(super) async fn userinfo(
    state: &AppState,
    up: &Upstream,
    endpoint: &str,
    access_token: &str,
) -> Result<UserInfo, FederationError> {
    let started = std::time::Instant::now();
    let res = state
        .upstreams
        .http()
        .get(endpoint)
        .bearer_auth(access_token)
        .send()
        .await
        .map_err(|e| UpstreamError::Unreachable(up.label().into(), e.to_string()))?;
    state.upstreams.observe(&up.name, "userinfo", started);
    if !res.status().is_success() {
        return Err(UpstreamError::Invalid(
            up.label().into(),
            format!("userinfo answered {}", res.status()),
        )
        .into());
    }
    Ok(res
        .json()
        .await
        .map_err(|e| UpstreamError::Invalid(up.label().into(), format!("userinfo: {e}")))?)
}

pub(super) async fn exchange(
    state: &AppState,
    up: &Upstream,
    provider: &Provider,
    code: &str,
    verifier: &str,
) -> Result<TokenAnswer, FederationError> {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let started = std::time::Instant::now();
    let res = state
        .upstreams
        .http()
        .post(&provider.token_endpoint)
        .basic_auth(enc(&up.client_id), Some(enc(up.client_secret.expose())))
        .header("Accept", "application/json")
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &callback_uri(state, up)),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .map_err(|e| UpstreamError::Unreachable(up.label().into(), e.to_string()))?;
    state.upstreams.observe(&up.name, "token", started);
    let status = res.status();
    let answer: TokenAnswer = res
        .json()
        .await
        .map_err(|e| UpstreamError::Invalid(up.label().into(), format!("token response: {e}")))?;
    if !status.is_success() {
        return Err(UpstreamError::Invalid(
            up.label().into(),
            format!("token endpoint answered {status}"),
        )
        .into());
    }
    Ok(answer)
}

pub(super) async fn verify(
    state: &AppState,
    up: &Upstream,
    provider: Provider,
    id_token: &str,
    nonce: &str,
    now: i64,
) -> Result<IdClaims, FederationError> {
    const ALGS: &[Algorithm] = &[Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];
    let claims: IdClaims = match jose::verify(id_token, &provider.keys, ALGS, None) {
        Ok(c) => c,
        // Keys rotate: an unknown kid gets one fresh look at the provider's JWKS.
        Err(jose::JoseError::UnknownKey) => {
            let fresh = state.upstreams.provider(up, true).await?;
            jose::verify(id_token, &fresh.keys, ALGS, None)
                .map_err(|_| FederationError::BadToken("unknown signing key"))?
        }
        Err(_) => return Err(FederationError::BadToken("bad signature or algorithm")),
    };
    // A multi-tenant provider's issuer is a template: the token's own tenant fills it in.
    let expected = if provider.issuer.contains(crate::upstream_config::TENANT) {
        let tid = claims
            .tid
            .as_deref()
            .ok_or(FederationError::BadToken("no tenant in the token"))?;
        provider.issuer.replace(crate::upstream_config::TENANT, tid)
    } else {
        provider.issuer.clone()
    };
    if claims.iss != expected {
        return Err(FederationError::BadToken("wrong issuer"));
    }
    let audiences: Vec<&str> = match &claims.aud {
        serde_json::Value::String(a) => vec![a.as_str()],
        serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str()).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&up.client_id.as_str()) {
        return Err(FederationError::BadToken("issued to another client"));
    }
    // OpenID Connect Core §3.1.3.7: with several audiences, azp names us.
    if claims.azp.as_deref().is_some_and(|a| a != up.client_id)
        || (audiences.len() > 1 && claims.azp.is_none())
    {
        return Err(FederationError::BadToken(
            "authorized party is another client",
        ));
    }
    if claims.exp + LEEWAY <= now || claims.iat.is_some_and(|iat| iat > now + LEEWAY) {
        return Err(FederationError::BadToken("expired"));
    }
    let nonce_ok = claims
        .nonce
        .as_deref()
        .is_some_and(|n| oauth_protocol::secret::constant_time_eq(n.as_bytes(), nonce.as_bytes()));
    if !nonce_ok {
        return Err(FederationError::BadToken("nonce does not match"));
    }
    Ok(claims)
}
