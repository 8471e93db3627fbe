//! The authorization endpoint's decisions (RFC 6749 §4.1.1, OAuth 2.1 §4.1): which
//! requests are valid, when to ask the person to sign in or approve, and the code. The
//! pending request travels as the original query string and is validated again on every
//! step, so no server-side state exists before consent.
//!
//! Errors take one of two channels (§4.1.2.1): a client or redirect URI that cannot be
//! trusted gets an error page; anything else is sent back with `error`, `state` and `iss`
//! (RFC 9207), automatically unless that would make this server an open redirector.

use oauth_protocol::authorize::{AuthorizationRequest, Untrusted};
use oauth_protocol::register::GRANT_AUTHORIZATION_CODE;
use oauth_protocol::secret::digest;
use oauth_protocol::uri::{is_loopback_host, redirect_uri_matches};
use oauth_protocol::{ErrorCode, Refusal, Scope};

use crate::clients::Client;
use crate::config::ResourceServer;
use crate::ids::new_secret;
use crate::state::AppState;
use crate::store::{CodeRow, StoreError};

/// A validated authorization request.
pub struct AuthRequest {
    pub client: Client,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub scope: Scope,
    pub resource: ResourceServer,
    pub code_challenge: String,
    /// The request carried `redirect_uri` (so the token request must too).
    pub redirect_uri_sent: bool,
    pub prompt_none: bool,
    pub prompt_login: bool,
    pub prompt_consent: bool,
}

pub enum AuthorizeError {
    /// The redirect URI cannot be trusted: show the user an error page.
    Page {
        title: &'static str,
        message: String,
    },
    /// Tell the client, through its redirect URI.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        code: ErrorCode,
        description: String,
        /// May the browser be sent there without asking? Not for a self-registered client
        /// sending errors to a remote address before anyone saw the consent page: that would
        /// make this server an open redirector (RFC 9700 §4.11.2).
        trusted: bool,
    },
    Internal,
    /// The database cannot be reached: try again shortly (503).
    Unavailable,
}

impl From<StoreError> for AuthorizeError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "database unreachable");
            return Self::Unavailable;
        }
        tracing::error!(error = %e, "storage failure");
        Self::Internal
    }
}

/// Appends parameters to a redirect URI without re-serialising the URI itself, so the
/// client gets back exactly the string it registered.
pub fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", ser.finish())
}

/// The host a redirect URI sends the browser to, for people to read (`scheme:` for
/// private-use schemes).
pub fn redirect_host(uri: &str) -> String {
    url::Url::parse(uri)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(str::to_owned)
                .or_else(|| Some(format!("{}:", u.scheme())))
        })
        .unwrap_or_else(|| uri.to_owned())
}

/// Whether errors may be redirected to this client automatically: its registration was
/// vetted, or the address is on the user's own machine (loopback) and cannot be a page of
/// someone else's.
fn redirect_trusted(client: &Client, redirect_uri: &str) -> bool {
    client.is_vetted() || url::Url::parse(redirect_uri).is_ok_and(|u| is_loopback_host(&u))
}

pub fn page(title: &'static str, message: impl Into<String>) -> AuthorizeError {
    AuthorizeError::Page {
        title,
        message: message.into(),
    }
}

/// Validates an authorization request given as its raw query string.
pub async fn validate(state: &AppState, query: &str) -> Result<AuthRequest, AuthorizeError> {
    let supported = state.config.supported_scopes();
    let parsed = AuthorizationRequest::parse(query, &supported).map_err(|e| match e {
        Untrusted::RepeatedClientId => {
            page("Invalid request", "The client_id parameter is repeated.")
        }
        Untrusted::MissingClientId => page("Invalid request", "The request has no client_id."),
        Untrusted::RepeatedRedirectUri => {
            page("Invalid request", "The redirect_uri parameter is repeated.")
        }
    })?;
    let client = state.client(&parsed.client_id).await?.ok_or_else(|| {
        page(
            "Unknown application",
            "This application is not registered with this server.",
        )
    })?;
    let registered = &client.metadata.redirect_uris;
    let redirect_uri = match &parsed.redirect_uri {
        Some(r) if registered.iter().any(|reg| redirect_uri_matches(reg, r)) => r.clone(),
        Some(_) => {
            return Err(page(
                "Invalid redirect address",
                "The redirect_uri is not registered for this application.",
            ));
        }
        None if registered.len() == 1 => registered[0].clone(),
        None => return Err(page("Invalid request", "The request has no redirect_uri.")),
    };
    // From here on the redirect URI is trusted: errors go back to the client.
    let trusted = redirect_trusted(&client, &redirect_uri);
    let fail = |r: Refusal| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: parsed.state.clone(),
        code: r.code,
        description: r.description,
        trusted,
    };
    parsed.form.clone().map_err(fail)?;
    if !client.metadata.allows_grant(GRANT_AUTHORIZATION_CODE) {
        return Err(fail(Refusal::new(
            ErrorCode::UnauthorizedClient,
            "this client is not registered for the authorization code grant",
        )));
    }
    let code = parsed.code.clone().map_err(fail)?;
    let scope = offered_scope(&client, code.scope, supported).map_err(fail)?;
    let resource = match &code.resource {
        Some(r) => state.resource_server(r).ok_or_else(|| {
            fail(Refusal::new(
                ErrorCode::InvalidTarget,
                "the resource is not known to this server",
            ))
        })?,
        None => state.default_resource_server().ok_or_else(|| {
            fail(Refusal::new(
                ErrorCode::InvalidTarget,
                "resource is required",
            ))
        })?,
    };
    let prompt = parsed.prompt.clone().map_err(fail)?;
    Ok(AuthRequest {
        redirect_uri_sent: parsed.redirect_uri.is_some(),
        redirect_uri,
        state: parsed.state,
        scope,
        resource,
        code_challenge: code.code_challenge,
        prompt_none: prompt.none,
        prompt_login: prompt.login,
        prompt_consent: prompt.consent,
        client,
    })
}

/// The scope the person is asked for; a request without scope gets the registered or the
/// supported scope. A vetted client (created by the administrator or with the registration
/// token) is offered no more than it registered (RFC 6749 §3.3 lets the server narrow what is
/// asked for), and nothing left at all is an error. A self-registered client chose its own
/// registered scope, so as a ceiling it would protect nothing, and MCP clients register the
/// scope of their first request and later step up (403 `insufficient_scope`) to more: for
/// them it is only the default, and the person's consent to each scope is the bound.
pub(crate) fn offered_scope(
    client: &Client,
    requested: Scope,
    supported: Scope,
) -> Result<Scope, Refusal> {
    let registered = client
        .metadata
        .scope
        .as_deref()
        .and_then(|s| Scope::parse(s).ok())
        .filter(|s| !s.is_empty());
    match (registered, requested.is_empty()) {
        (Some(reg), true) => Ok(reg),
        (None, true) => Ok(supported),
        (Some(reg), false) if client.is_vetted() => {
            let allowed = requested.intersection(&reg);
            if allowed.is_empty() {
                return Err(Refusal::new(
                    ErrorCode::InvalidScope,
                    "none of the requested scopes is registered for this client",
                ));
            }
            Ok(allowed)
        }
        (_, false) => Ok(requested),
    }
}

impl AuthRequest {
    pub fn error(&self, code: ErrorCode, description: &str) -> AuthorizeError {
        AuthorizeError::Redirect {
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            code,
            description: description.to_owned(),
            trusted: redirect_trusted(&self.client, &self.redirect_uri),
        }
    }

    /// The person saw the consent page and said no: the client must hear it (MCP clients
    /// wait for the redirect), so this one is always sent.
    pub fn denied(&self) -> AuthorizeError {
        AuthorizeError::Redirect {
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            code: ErrorCode::AccessDenied,
            description: "the user denied the request".into(),
            trusted: true,
        }
    }

    pub fn redirect_host(&self) -> String {
        redirect_host(&self.redirect_uri)
    }
}

/// Creates the code (recording consent in the same transaction when given) and returns
/// the redirect back to the client with `code`, `state` and `iss`.
pub(crate) async fn issue_code(
    state: &AppState,
    req: &AuthRequest,
    user_id: &str,
    consent: Option<&Scope>,
    now: i64,
) -> Result<String, AuthorizeError> {
    let code = new_secret();
    let row = CodeRow {
        code_hash: digest(&code),
        client_id: req.client.client_id.clone(),
        user_id: user_id.to_owned(),
        redirect_uri: req.redirect_uri.clone(),
        code_challenge: req.code_challenge.clone(),
        resource: req.resource.resource.clone(),
        scope: req.scope.to_string(),
        expires_at: now + state.config.code_ttl,
        consumed_at: None,
        grant_id: None,
        redirect_uri_sent: i64::from(req.redirect_uri_sent),
    };
    let consent_scope = consent.map(|s| s.to_string());
    state
        .store
        .insert_code(&row, consent_scope.as_deref().map(|s| (s, now)))
        .await?;
    tracing::info!(client_id = %req.client.client_id, "authorization code issued");
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = &req.state {
        params.push(("state", s));
    }
    params.push(("iss", &state.config.issuer));
    Ok(with_query(&req.redirect_uri, &params))
}

/// The query string with `login` removed from `prompt`, so that the request continues
/// after a sign-in instead of asking again.
pub fn without_prompt_login(query: &str) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k == "prompt" {
            let rest: Vec<&str> = v
                .split(' ')
                .filter(|p| *p != "login" && !p.is_empty())
                .collect();
            if !rest.is_empty() {
                ser.append_pair(&k, &rest.join(" "));
            }
        } else {
            ser.append_pair(&k, &v);
        }
    }
    ser.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_query_keeps_the_uri_verbatim() {
        assert_eq!(
            with_query("http://127.0.0.1:3000/cb", &[("code", "a b")]),
            "http://127.0.0.1:3000/cb?code=a+b"
        );
        assert_eq!(
            with_query("https://a/cb?x=1", &[("state", "s")]),
            "https://a/cb?x=1&state=s"
        );
    }

    #[test]
    fn prompt_login_is_removed_only() {
        assert_eq!(
            without_prompt_login("a=1&prompt=login+consent"),
            "a=1&prompt=consent"
        );
        assert_eq!(without_prompt_login("prompt=login&b=2"), "b=2");
    }
}
