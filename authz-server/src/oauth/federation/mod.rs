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
use crate::store::federation::{Identity, LinkedTo, OnFirstSignIn, Resolved, UpstreamLogin};
use crate::store::{StoreError, User};
use crate::upstream::UpstreamError;
use crate::upstream_config::Kind;

mod answer;
mod policy;
use answer::{Claims, identify};

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
    /// A "Link" whose identity belongs to another local user.
    #[error("this identity is linked to another account")]
    LinkedElsewhere,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where the browser goes once signed in. Kept server-side in the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Then {
    /// The pending authorization request (its query string).
    Authorize(String),
    /// One of our pages: the device page with its code.
    Page(String),
    Account,
    /// Link the identity to this signed-in user (the account page's "Link").
    Link(String),
}

impl Then {
    fn encode(&self) -> String {
        match self {
            Then::Authorize(q) => format!("authorize:{q}"),
            Then::Page(p) => format!("page:{p}"),
            Then::Account => String::new(),
            Then::Link(user) => format!("link:{user}"),
        }
    }

    fn decode(s: &str) -> Self {
        if let Some(q) = s.strip_prefix("authorize:") {
            Then::Authorize(q.to_owned())
        } else if let Some(p) = s.strip_prefix("page:") {
            Then::Page(p.to_owned())
        } else if let Some(user) = s.strip_prefix("link:") {
            Then::Link(user.to_owned())
        } else {
            Then::Account
        }
    }
}

/// A finished upstream sign-in.
pub struct SignedIn {
    pub user_id: String,
    pub then: Then,
    /// The scopes the user may be granted in the session this starts (`None`: no limit).
    pub scope_limit: Option<String>,
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

pub fn upstream(state: &AppState, name: &str) -> Result<Upstream, FederationError> {
    state
        .providers()
        .iter()
        .find(|u| u.name == name)
        .cloned()
        .ok_or(FederationError::UnknownProvider)
}

/// Sends the browser upstream; `then` says where it goes once signed in.
pub async fn start(
    state: &AppState,
    name: &str,
    then: &Then,
    now: i64,
) -> Result<Started, FederationError> {
    let up = &upstream(state, name)?;
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
            request: then.encode(),
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
        .append_pair("code_challenge", &s256_challenge(&verifier))
        .append_pair("code_challenge_method", "S256");
    if up.kind == Kind::Oidc {
        url.query_pairs_mut().append_pair("nonce", &nonce);
    }
    Ok(Started {
        redirect: url.into(),
        binding,
    })
}

/// The callback: checks the transaction (single-use, unexpired, this provider's, this
/// browser's), then who signed in and whether they may, then the local user. `current_user`
/// is the browser's signed-in user, which a "Link" must still be.
pub async fn finish(
    state: &AppState,
    name: &str,
    query: &[(String, String)],
    binding: Option<&str>,
    current_user: Option<&str>,
    now: i64,
) -> Result<SignedIn, FederationError> {
    let up = &upstream(state, name)?;
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
    let then = Then::decode(&txn.request);
    let linking_user = match &then {
        Then::Link(user) => Some(user.as_str()),
        _ => None,
    };
    if txn.provider != up.name
        || txn.expires_at <= now
        || !bound
        || linking_user.is_some_and(|u| Some(u) != current_user)
    {
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
    let claims = identify(state, up, provider, code, &txn.verifier, &txn.nonce, now).await?;
    policy::allowed(up, &claims)?;
    let scope_limit = policy::scope_limit(up, &claims);
    let identity = identity(up, &claims);
    let user_id = match linking_user {
        Some(user) => link(state, up, &identity, user, now).await?,
        None => resolve(state, up, &identity, now).await?,
    };
    state
        .audit("upstream_login", Some(&user_id), None, &up.name)
        .await;
    Ok(SignedIn {
        user_id,
        then,
        scope_limit,
    })
}

fn identity(up: &Upstream, claims: &Claims) -> Identity {
    Identity {
        provider: up.name.clone(),
        issuer: claims.iss.clone(),
        subject: claims.sub.clone(),
        email: claims.email.clone(),
        email_verified: claims.email_verified,
        preferred_username: claims.username.clone(),
        name: claims.name.clone(),
    }
}

fn count(state: &AppState, up: &Upstream, outcome: &str) {
    state.metrics.inc(
        "federation_logins_total",
        &[("provider", &up.name), ("outcome", outcome)],
    );
}

async fn linked(state: &AppState, up: &Upstream, user_id: &str, how: &str) {
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

/// The account page's "Link": the identity joins the signed-in user, unless another user
/// has it.
async fn link(
    state: &AppState,
    up: &Upstream,
    identity: &Identity,
    user_id: &str,
    now: i64,
) -> Result<String, FederationError> {
    match state.store.link_identity(identity, user_id, now).await? {
        LinkedTo::Now => {
            count(state, up, "linked");
            linked(state, up, user_id, "account").await;
            Ok(user_id.to_owned())
        }
        LinkedTo::Already => {
            count(state, up, "linked");
            Ok(user_id.to_owned())
        }
        LinkedTo::Elsewhere => {
            count(state, up, "linked_elsewhere");
            Err(FederationError::LinkedElsewhere)
        }
    }
}

/// A sign-in: the linked user, or what the provider's linking policy allows.
async fn resolve(
    state: &AppState,
    up: &Upstream,
    identity: &Identity,
    now: i64,
) -> Result<String, FederationError> {
    let first = match up.linking {
        Linking::ExistingOnly => OnFirstSignIn::Refuse,
        Linking::Create => OnFirstSignIn::Create,
        Linking::LinkVerifiedEmail if up.trust_email => OnFirstSignIn::LinkByVerifiedEmail,
        Linking::LinkVerifiedEmail => OnFirstSignIn::Refuse,
    };
    // Only a first sign-in that creates a user needs a free username.
    let username = if first == OnFirstSignIn::Create {
        free_username(state, identity).await?
    } else {
        String::new()
    };
    let resolved = state
        .store
        .resolve_identity(
            identity,
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
    count(state, up, outcome);
    match resolved {
        Resolved::User(user_id) => Ok(user_id),
        Resolved::Linked(user_id, how) => {
            linked(state, up, &user_id, how).await;
            Ok(user_id)
        }
        Resolved::Unknown => Err(FederationError::NoAccount),
        Resolved::EmailTaken => Err(FederationError::EmailTaken),
        Resolved::Disabled => Err(FederationError::Disabled),
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
