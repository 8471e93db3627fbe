//! The provider's side of a sign-in: the code exchange; then who signed in, from the
//! id_token (signature by the provider's keys, issuer, audience, `azp`, expiry, nonce) with
//! userinfo for what it leaves out, or, for a plain OAuth 2.0 provider, from its userinfo
//! endpoint by the configured claim names.

use oauth_protocol::jose::{self, Algorithm};
use serde::Deserialize;
use serde_json::Value;

use super::{FederationError, callback_uri};
use crate::config::Upstream;
use crate::state::AppState;
use crate::upstream::{Provider, UpstreamError};
use crate::upstream_config::{ClientAuth, Kind, claim};

/// Clock skew tolerated on `exp` and `iat`.
const LEEWAY: i64 = 60;

/// Who the provider says signed in.
pub(super) struct Claims {
    pub(super) iss: String,
    pub(super) sub: String,
    pub(super) email: Option<String>,
    pub(super) email_verified: bool,
    pub(super) username: Option<String>,
    pub(super) name: Option<String>,
    /// Every claim, for the allow-lists and the scope mapping.
    pub(super) all: Value,
}

/// The checks of OpenID Connect Core §3.1.3.7 need these; everything else stays in `all`.
#[derive(Deserialize)]
struct IdClaims {
    iss: String,
    aud: Value,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    /// Microsoft Entra tenant.
    #[serde(default)]
    tid: Option<String>,
}

/// Exchanges the code and finds out who signed in.
pub(super) async fn identify(
    state: &AppState,
    up: &Upstream,
    provider: Provider,
    code: &str,
    verifier: &str,
    nonce: &str,
    now: i64,
) -> Result<Claims, FederationError> {
    let answer = exchange(state, up, &provider, code, verifier).await?;
    let access_token = answer.get("access_token").and_then(Value::as_str);
    if up.kind == Kind::Oauth2 {
        let at = access_token.ok_or(FederationError::BadToken("no access_token"))?;
        let endpoint = provider.userinfo_endpoint.as_deref().unwrap_or_default();
        let info = get(state, up, "userinfo", endpoint, at).await?;
        let mut claims = from_userinfo(up, info)?;
        if let Some(emails) = &up.emails_endpoint {
            // GitHub: `/user` shows a public email, verified or not; the verified primary
            // address is only in this list.
            let list = get(state, up, "emails", emails, at).await?;
            if let Some(email) = primary_verified(&list) {
                claims.email = Some(email);
                claims.email_verified = true;
            }
        }
        return Ok(claims);
    }
    let id_token = answer
        .get("id_token")
        .and_then(Value::as_str)
        .ok_or(FederationError::BadToken("no id_token"))?;
    let userinfo_endpoint = provider.userinfo_endpoint.clone();
    let all = verify(state, up, provider, id_token, nonce, now).await?;
    let mut claims = standard(all)?;
    // Providers that keep claims out of the id_token serve them at userinfo.
    if claims.email.is_none()
        && let (Some(endpoint), Some(at)) = (userinfo_endpoint, access_token)
    {
        let info = get(state, up, "userinfo", &endpoint, at).await?;
        if info.get("sub").and_then(Value::as_str) != Some(claims.sub.as_str()) {
            return Err(FederationError::BadToken("userinfo is about someone else"));
        }
        if let (Value::Object(all), Value::Object(more)) = (&mut claims.all, info) {
            for (k, v) in more {
                all.entry(k).or_insert(v);
            }
        }
        let merged = standard(claims.all)?;
        claims = Claims {
            iss: claims.iss,
            sub: claims.sub,
            ..merged
        };
    }
    Ok(claims)
}

fn verified(value: Option<&Value>) -> bool {
    matches!(value, Some(Value::Bool(true)))
        || matches!(value, Some(Value::String(s)) if s == "true")
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An id_token's (or OpenID userinfo's) standard claims.
fn standard(all: Value) -> Result<Claims, FederationError> {
    Ok(Claims {
        iss: text(all.get("iss")).unwrap_or_default(),
        sub: text(all.get("sub")).ok_or(FederationError::BadToken("no subject"))?,
        email: text(all.get("email")),
        email_verified: verified(all.get("email_verified")),
        username: text(all.get("preferred_username")),
        name: text(all.get("name")),
        all,
    })
}

/// A plain OAuth 2.0 provider's userinfo, read by the configured claim names. GitHub's
/// subject is a number: it is compared as its decimal text.
fn from_userinfo(up: &Upstream, all: Value) -> Result<Claims, FederationError> {
    let names = &up.claims;
    Ok(Claims {
        iss: up.issuer.clone(),
        sub: text(claim(&all, &names.subject)).ok_or(FederationError::BadToken("no subject"))?,
        email: text(claim(&all, &names.email)),
        email_verified: names
            .email_verified
            .as_deref()
            .is_some_and(|n| verified(claim(&all, n))),
        username: text(claim(&all, &names.username)),
        name: text(claim(&all, &names.name)),
        all,
    })
}

/// The `primary` and `verified` address of a GitHub-style `/user/emails` list.
fn primary_verified(list: &Value) -> Option<String> {
    list.as_array()?
        .iter()
        .find(|e| e["primary"] == Value::Bool(true) && e["verified"] == Value::Bool(true))
        .and_then(|e| text(e.get("email")))
}

/// A GET with the upstream access token, answered with JSON.
async fn get(
    state: &AppState,
    up: &Upstream,
    what: &str,
    endpoint: &str,
    access_token: &str,
) -> Result<Value, FederationError> {
    let started = std::time::Instant::now();
    let res = state
        .upstreams
        .http()
        .get(endpoint)
        .bearer_auth(access_token)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| UpstreamError::Unreachable(up.label().into(), e.to_string()))?;
    let status = res.status();
    let body = res.text().await;
    state.upstreams.observe(&up.name, what, started);
    let body = body.map_err(|e| UpstreamError::Unreachable(up.label().into(), e.to_string()))?;
    if !status.is_success() {
        return Err(
            UpstreamError::Invalid(up.label().into(), format!("{what} answered {status}")).into(),
        );
    }
    Ok(serde_json::from_str(&body)
        .map_err(|e| UpstreamError::Invalid(up.label().into(), format!("{what}: {e}")))?)
}

/// The token request. The answer is JSON, or form-encoded from a provider that ignores
/// `Accept` (GitHub's default); an `error` in it counts even with status 200, which is how
/// GitHub answers a bad code or bad credentials.
async fn exchange(
    state: &AppState,
    up: &Upstream,
    provider: &Provider,
    code: &str,
    verifier: &str,
) -> Result<Value, FederationError> {
    let redirect_uri = callback_uri(state, up);
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", &redirect_uri),
        ("code_verifier", verifier),
    ];
    let mut req = state
        .upstreams
        .http()
        .post(&provider.token_endpoint)
        .header("Accept", "application/json");
    match up.token_endpoint_auth_method {
        // RFC 6749 §2.3.1: both parts form-encoded before Basic.
        ClientAuth::ClientSecretBasic => {
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            req = req.basic_auth(enc(&up.client_id), Some(enc(up.client_secret.expose())));
        }
        ClientAuth::ClientSecretPost => {
            form.push(("client_id", &up.client_id));
            form.push(("client_secret", up.client_secret.expose()));
        }
    }
    let started = std::time::Instant::now();
    let who = || up.label().to_owned();
    let res = req
        .form(&form)
        .send()
        .await
        .map_err(|e| UpstreamError::Unreachable(who(), e.to_string()))?;
    let status = res.status();
    let form_encoded = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let body = res.text().await;
    state.upstreams.observe(&up.name, "token", started);
    let body = body.map_err(|e| UpstreamError::Unreachable(who(), e.to_string()))?;
    let answer: Value = if form_encoded {
        Value::Object(
            form_urlencoded::parse(body.as_bytes())
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect(),
        )
    } else {
        serde_json::from_str(&body)
            .map_err(|e| UpstreamError::Invalid(who(), format!("token response: {e}")))?
    };
    if let Some(error) = answer.get("error").and_then(Value::as_str) {
        return Err(
            UpstreamError::Invalid(who(), format!("token endpoint refused: {error}")).into(),
        );
    }
    if !status.is_success() {
        return Err(
            UpstreamError::Invalid(who(), format!("token endpoint answered {status}")).into(),
        );
    }
    Ok(answer)
}

/// Verifies an id_token; returns all its claims.
async fn verify(
    state: &AppState,
    up: &Upstream,
    provider: Provider,
    id_token: &str,
    nonce: &str,
    now: i64,
) -> Result<Value, FederationError> {
    const ALGS: &[Algorithm] = &[Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];
    let all: Value = match jose::verify_foreign(id_token, &provider.keys, ALGS, None) {
        Ok(c) => c,
        // Keys rotate: an unknown kid gets one fresh look at the provider's JWKS.
        Err(jose::JoseError::UnknownKey) => {
            let fresh = state.upstreams.provider(up, true).await?;
            jose::verify_foreign(id_token, &fresh.keys, ALGS, None)
                .map_err(|_| FederationError::BadToken("unknown signing key"))?
        }
        Err(_) => return Err(FederationError::BadToken("bad signature or algorithm")),
    };
    let claims: IdClaims = serde_json::from_value(all.clone())
        .map_err(|_| FederationError::BadToken("the id_token lacks required claims"))?;
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
        Value::String(a) => vec![a.as_str()],
        Value::Array(a) => a.iter().filter_map(|v| v.as_str()).collect(),
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
    Ok(all)
}
