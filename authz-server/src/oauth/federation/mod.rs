//! Sign-in through an upstream OpenID Provider: one of the ways to authenticate before our
//! own consent page, never instead of it. The browser goes upstream with code + PKCE S256,
//! `state` and `nonce`; the transaction is kept here (single-use, ten minutes, bound to the
//! browser by a cookie); the id_token is verified against the provider's keys; the identity
//! is linked to a local user by (provider, issuer, subject). Upstream tokens are discarded.

use oauth_protocol::pkce::s256_challenge;
use oauth_protocol::secret::digest;

use crate::config::{Linking, Upstream};
use crate::ids::{new_id, new_secret};
use crate::state::AppState;
use crate::store::federation::{Identity, OnFirstSignIn, Resolved, UpstreamLogin};
use crate::store::{StoreError, User};
use crate::upstream::UpstreamError;

mod answer;
use answer::{exchange, userinfo, verify};

/// A transaction lives this long: the person signs in upstream within it.
pub const TRANSACTION_TTL: i64 = 600;

#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    #[error("no such sign-in provider")]
    UnknownProvider,
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// Missing, replayed, expired, or from another browser: nothing to continue.
    #[error("this sign-in expired or was not started in this browser")]
    Expired,
    #[error("{0}")]
    Denied(String),
    #[error("the provider's answer could not be verified: {0}")]
    BadToken(&'static str),
    #[error("{0}")]
    NotAllowed(String),
    #[error("no account here is linked to this identity")]
    NoAccount,
    #[error("an account with this email exists")]
    EmailTaken,
    #[error("this account is disabled")]
    Disabled,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Started {
    /// Where the browser goes: the provider's authorization endpoint.
    pub redirect: String,
    /// The browser-binding cookie's value.
    pub binding: String,
}

pub fn callback_uri(state: &AppState, up: &Upstream) -> String {
    state
        .config
        .endpoint(&format!("/federation/{}/callback", up.name))
}

pub fn upstream<'a>(state: &'a AppState, name: &str) -> Result<&'a Upstream, FederationError> {
    state
        .config
        .upstream
        .iter()
        .find(|u| u.name == name)
        .ok_or(FederationError::UnknownProvider)
}

/// Sends the browser upstream for `request` (the pending authorization request's query, or
/// empty for the account page).
pub async fn start(
    state: &AppState,
    name: &str,
    request: &str,
    now: i64,
) -> Result<Started, FederationError> {
    let up = upstream(state, name)?;
    let provider = state.upstreams.provider(up, false).await?;
    let (state_value, nonce, verifier, binding) =
        (new_secret(), new_secret(), new_secret(), new_secret());
    state
        .store
        .insert_upstream_login(&UpstreamLogin {
            state_hash: digest(&state_value),
            provider: up.name.clone(),
            nonce: nonce.clone(),
            verifier: verifier.clone(),
            request: request.to_owned(),
            binding_hash: digest(&binding),
            expires_at: now + TRANSACTION_TTL,
        })
        .await?;
    let mut url = url::Url::parse(&provider.authorization_endpoint)
        .map_err(|_| UpstreamError::Invalid(up.label().into(), "authorization_endpoint".into()))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &up.client_id)
        .append_pair("redirect_uri", &callback_uri(state, up))
        .append_pair("scope", &up.scopes.join(" "))
        .append_pair("state", &state_value)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &s256_challenge(&verifier))
        .append_pair("code_challenge_method", "S256");
    Ok(Started {
        redirect: url.into(),
        binding,
    })
}

/// The callback: checks the transaction, exchanges the code, verifies the id_token and
/// resolves the local user. Returns the user and the request to continue with.
pub async fn finish(
    state: &AppState,
    name: &str,
    query: &[(String, String)],
    binding: Option<&str>,
    now: i64,
) -> Result<(String, String), FederationError> {
    let up = upstream(state, name)?;
    let get = |k: &str| {
        query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let state_value = get("state").ok_or(FederationError::Expired)?;
    let txn = state
        .store
        .take_upstream_login(&digest(state_value))
        .await?
        .ok_or(FederationError::Expired)?;
    let bound = binding.is_some_and(|b| {
        oauth_protocol::secret::constant_time_eq(digest(b).as_bytes(), txn.binding_hash.as_bytes())
    });
    if txn.provider != up.name || txn.expires_at <= now || !bound {
        return Err(FederationError::Expired);
    }
    let provider = state.upstreams.provider(up, false).await?;
    // RFC 9207: a provider that promises `iss` must send its own.
    match get("iss") {
        Some(iss) if iss != provider.issuer => {
            return Err(FederationError::BadToken("the answer names another issuer"));
        }
        None if provider.iss_parameter => {
            return Err(FederationError::BadToken("the answer has no iss"));
        }
        _ => {}
    }
    if let Some(error) = get("error") {
        return Err(FederationError::Denied(match error {
            "access_denied" => format!("You did not allow {} to sign you in.", up.label()),
            _ => format!("{} refused the sign-in ({error}).", up.label()),
        }));
    }
    let code = get("code").ok_or(FederationError::BadToken("no code"))?;
    let answer = exchange(state, up, &provider, code, &txn.verifier).await?;
    let id_token = answer
        .id_token
        .ok_or(FederationError::BadToken("no id_token"))?;
    let userinfo_endpoint = provider.userinfo_endpoint.clone();
    let mut claims = verify(state, up, provider, &id_token, &txn.nonce, now).await?;
    // Providers that keep claims out of the id_token serve them at userinfo.
    if claims.email.is_none()
        && let (Some(endpoint), Some(at)) = (userinfo_endpoint, answer.access_token)
    {
        let info = userinfo(state, up, &endpoint, &at).await?;
        if info.sub != claims.sub {
            return Err(FederationError::BadToken("userinfo is about someone else"));
        }
        claims.email = info.email;
        claims.email_verified = info.email_verified;
        claims.preferred_username = claims.preferred_username.or(info.preferred_username);
        claims.name = claims.name.or(info.name);
    }
    let in_list = |list: &[String], value: &Option<String>| {
        list.is_empty()
            || value
                .as_deref()
                .is_some_and(|v| list.iter().any(|a| a.eq_ignore_ascii_case(v)))
    };
    if !in_list(&up.allowed_hosted_domains, &claims.hd)
        || !in_list(&up.allowed_tenants, &claims.tid)
    {
        return Err(FederationError::NotAllowed(format!(
            "This {} account belongs to an organisation that may not sign in here.",
            up.label()
        )));
    }
    let identity = Identity {
        provider: up.name.clone(),
        issuer: claims.iss.clone(),
        subject: claims.sub.clone(),
        email: claims.email.clone(),
        email_verified: matches!(&claims.email_verified, Some(serde_json::Value::Bool(true)))
            || matches!(&claims.email_verified, Some(serde_json::Value::String(s)) if s == "true"),
        preferred_username: claims.preferred_username.clone(),
        name: claims.name.clone(),
    };
    allowed(up, &identity)?;
    let first = match up.linking {
        Linking::ExistingOnly => OnFirstSignIn::Refuse,
        Linking::Create => OnFirstSignIn::Create,
        Linking::LinkVerifiedEmail if up.trust_email => OnFirstSignIn::LinkByVerifiedEmail,
        Linking::LinkVerifiedEmail => OnFirstSignIn::Refuse,
    };
    let username = free_username(state, &identity).await?;
    let resolved = state
        .store
        .resolve_identity(
            &identity,
            first,
            || User {
                id: new_id(),
                username,
                // No password: this user signs in through the provider.
                password_hash: "!".into(),
                email: identity.email.clone().filter(|_| identity.email_verified),
                display_name: identity.name.clone(),
                disabled: 0,
                created_at: now,
            },
            now,
        )
        .await?;
    let outcome = match &resolved {
        Resolved::User(_) | Resolved::Linked(..) => "signed_in",
        Resolved::Unknown => "no_account",
        Resolved::EmailTaken => "email_taken",
        Resolved::Disabled => "disabled",
    };
    state.metrics.inc(
        "federation_logins_total",
        &[("provider", &up.name), ("outcome", outcome)],
    );
    if let Resolved::Linked(user_id, how) = &resolved {
        state.metrics.inc(
            "federation_links_total",
            &[("provider", &up.name), ("mode", how)],
        );
        state
            .audit(
                "identity_linked",
                Some(user_id),
                None,
                &format!("{} {how}", up.name),
            )
            .await;
    }
    match resolved {
        Resolved::User(user_id) | Resolved::Linked(user_id, _) => {
            state
                .audit("upstream_login", Some(&user_id), None, &up.name)
                .await;
            Ok((user_id, txn.request))
        }
        Resolved::Unknown => Err(FederationError::NoAccount),
        Resolved::EmailTaken => Err(FederationError::EmailTaken),
        Resolved::Disabled => Err(FederationError::Disabled),
    }
}

fn allowed(up: &Upstream, identity: &Identity) -> Result<(), FederationError> {
    if up.allowed_email_domains.is_empty() {
        return Ok(());
    }
    let domain = identity
        .email
        .as_deref()
        .filter(|_| identity.email_verified)
        .and_then(|e| e.rsplit_once('@'))
        .map(|(_, d)| d.to_lowercase());
    match domain {
        Some(d)
            if up
                .allowed_email_domains
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&d)) =>
        {
            Ok(())
        }
        _ => Err(FederationError::NotAllowed(format!(
            "Only accounts of {} may sign in here through {}.",
            up.allowed_email_domains.join(", "),
            up.label()
        ))),
    }
}

/// A username for a user created by a first sign-in: the provider's preferred username or
/// the email's local part, made unique.
async fn free_username(state: &AppState, identity: &Identity) -> Result<String, FederationError> {
    let base: String = identity
        .preferred_username
        .clone()
        .or_else(|| {
            identity
                .email
                .as_deref()
                .and_then(|e| e.split('@').next())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| format!("{}-user", identity.provider))
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(40)
        .collect::<String>()
        .to_lowercase();
    let base = if base.is_empty() {
        format!("{}-user", identity.provider)
    } else {
        base
    };
    if !state.store.username_taken(&base).await? {
        return Ok(base);
    }
    for n in 2..10 {
        let candidate = format!("{base}-{n}");
        if !state.store.username_taken(&candidate).await? {
            return Ok(candidate);
        }
    }
    Ok(format!("{base}-{}", &new_id()[..6].to_lowercase()))
}
