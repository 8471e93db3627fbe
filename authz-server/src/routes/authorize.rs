//! The authorization endpoint (RFC 6749 §4.1.1, OAuth 2.1 §4.1) with its login and consent
//! pages. The pending request travels as the original query string in a hidden field and is
//! validated again on every step, so no server-side state exists before consent.
//!
//! Errors take one of two channels (§4.1.2.1): a client or redirect URI that cannot be
//! trusted gets an error page; anything else is redirected back with `error`, `state` and
//! `iss` (RFC 9207).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oauth_protocol::form::Params;
use oauth_protocol::register::GRANT_AUTHORIZATION_CODE;
use oauth_protocol::secret::digest;
use oauth_protocol::uri::{is_loopback_host, redirect_uri_matches};
use oauth_protocol::{ErrorCode, Scope, pkce};

use super::web::{
    self, ACCOUNT_FORMS, consent_purpose, login_csrf, login_csrf_ok, session_cookie_name,
    session_csrf, session_csrf_ok, set_cookie,
};
use crate::clients::Client;
use crate::config::ResourceServer;
use crate::crypto::new_secret;
use crate::state::{AppState, now};
use crate::store::{CodeRow, StoreError};
use crate::templates::{
    ConsentPage, LoginPage, ScopeLine, describe_scope, error_page, interstitial, render,
};

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
}

impl From<StoreError> for AuthorizeError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "storage failure");
        Self::Internal
    }
}

impl From<crate::state::LookupError> for AuthorizeError {
    fn from(e: crate::state::LookupError) -> Self {
        match e {
            crate::state::LookupError::Store(e) => e.into(),
        }
    }
}

impl AuthorizeError {
    fn into_response(self, state: &AppState) -> Response {
        match self {
            Self::Page { title, message } => error_page(StatusCode::BAD_REQUEST, title, message),
            Self::Redirect {
                redirect_uri,
                state: st,
                code,
                description,
                trusted,
            } => {
                let mut params = vec![
                    ("error", code.as_str()),
                    ("error_description", description.as_str()),
                ];
                if let Some(s) = &st {
                    params.push(("state", s));
                }
                params.push(("iss", &state.config.issuer));
                let target = with_query(&redirect_uri, &params);
                if trusted {
                    see_other(&target)
                } else {
                    interstitial(
                        format!("{description} ({})", code.as_str()),
                        target,
                        redirect_host(&redirect_uri),
                    )
                }
            }
            Self::Internal => error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The server could not complete this request. Please try again.",
            ),
        }
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

/// A 303 to `location` (after a form POST).
pub fn redirect_to(location: &str) -> Response {
    see_other(location)
}

/// The host a redirect URI sends the browser to, for people to read (`scheme:` for
/// private-use schemes).
fn redirect_host(uri: &str) -> String {
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

fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect",
            "The redirect address is not valid.",
        ),
    }
}

fn page(title: &'static str, message: impl Into<String>) -> AuthorizeError {
    AuthorizeError::Page {
        title,
        message: message.into(),
    }
}

/// Validates an authorization request given as its raw query string.
pub async fn validate(state: &AppState, query: &str) -> Result<AuthRequest, AuthorizeError> {
    let p = Params::parse(query.as_bytes());
    if p.is_duplicated("client_id") {
        return Err(page(
            "Invalid request",
            "The client_id parameter is repeated.",
        ));
    }
    let client_id = p
        .get("client_id")
        .ok_or_else(|| page("Invalid request", "The request has no client_id."))?;
    let client = state.client(client_id).await?.ok_or_else(|| {
        page(
            "Unknown application",
            "This application is not registered with this server.",
        )
    })?;
    if p.is_duplicated("redirect_uri") {
        return Err(page(
            "Invalid request",
            "The redirect_uri parameter is repeated.",
        ));
    }
    let registered = &client.metadata.redirect_uris;
    let redirect_uri_sent = p.get("redirect_uri").is_some();
    let redirect_uri = match p.get("redirect_uri") {
        Some(r) if registered.iter().any(|reg| redirect_uri_matches(reg, r)) => r.to_owned(),
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
    let st = if p.is_duplicated("state") {
        None
    } else {
        p.get("state").map(str::to_owned)
    };
    let trusted = redirect_trusted(&client, &redirect_uri);
    let fail = |code: ErrorCode, description: &str| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: st.clone(),
        code,
        description: description.to_owned(),
        trusted,
    };
    if p.is_duplicated("resource") {
        return Err(fail(
            ErrorCode::InvalidTarget,
            "one resource per request is supported",
        ));
    }
    if let Some(dup) = p.first_duplicate() {
        return Err(fail(
            ErrorCode::InvalidRequest,
            &format!("parameter {dup} is repeated"),
        ));
    }
    match p.get("response_type") {
        None => return Err(fail(ErrorCode::InvalidRequest, "response_type is required")),
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
    }
    if !client.metadata.allows_grant(GRANT_AUTHORIZATION_CODE) {
        return Err(fail(
            ErrorCode::UnauthorizedClient,
            "this client is not registered for the authorization code grant",
        ));
    }
    let code_challenge = p.get("code_challenge").ok_or_else(|| {
        fail(
            ErrorCode::InvalidRequest,
            "code_challenge is required (PKCE)",
        )
    })?;
    match p.get("code_challenge_method") {
        Some("S256") => {}
        None => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "code_challenge_method is required and must be S256",
            ));
        }
        Some(_) => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "code_challenge_method must be S256",
            ));
        }
    }
    if !pkce::is_valid_challenge(code_challenge) {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "code_challenge is not a valid S256 challenge",
        ));
    }
    let supported = state.config.supported_scopes();
    let scope = match p.get("scope") {
        Some(s) => Scope::parse(s).map_err(|e| fail(ErrorCode::InvalidScope, &e.to_string()))?,
        None => Scope::default(),
    };
    if !scope.difference(&supported).is_empty() {
        return Err(fail(
            ErrorCode::InvalidScope,
            &format!("unknown scope: {}", scope.difference(&supported)),
        ));
    }
    // A client that registered a scope is offered no more than that (RFC 6749 §3.3 lets
    // the server narrow what is asked for); nothing left at all is an error.
    let registered_scope = client
        .metadata
        .scope
        .as_deref()
        .and_then(|s| Scope::parse(s).ok());
    let scope = match (&registered_scope, scope.is_empty()) {
        (Some(reg), true) => reg.clone(),
        (None, true) => supported,
        (Some(reg), false) => {
            let allowed = scope.intersection(reg);
            if allowed.is_empty() {
                return Err(fail(
                    ErrorCode::InvalidScope,
                    "none of the requested scopes is registered for this client",
                ));
            }
            allowed
        }
        (None, false) => scope,
    };
    let resource = match p.get("resource") {
        Some(r) => state.resource_server(r).ok_or_else(|| {
            fail(
                ErrorCode::InvalidTarget,
                "the resource is not known to this server",
            )
        })?,
        None => state
            .only_resource_server()
            .ok_or_else(|| fail(ErrorCode::InvalidTarget, "resource is required"))?,
    };
    let prompts: Vec<&str> = p.get("prompt").unwrap_or_default().split(' ').collect();
    let prompt_none = prompts.contains(&"none");
    if prompt_none && prompts.len() > 1 {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(AuthRequest {
        redirect_uri: redirect_uri.clone(),
        state: st.clone(),
        scope,
        resource,
        code_challenge: code_challenge.to_owned(),
        redirect_uri_sent,
        prompt_none,
        prompt_login: prompts.contains(&"login"),
        prompt_consent: prompts.contains(&"consent"),
        client,
    })
}

impl AuthRequest {
    fn error(&self, code: ErrorCode, description: &str) -> AuthorizeError {
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
    fn denied(&self) -> AuthorizeError {
        AuthorizeError::Redirect {
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            code: ErrorCode::AccessDenied,
            description: "the user denied the request".into(),
            trusted: true,
        }
    }

    fn redirect_host(&self) -> String {
        redirect_host(&self.redirect_uri)
    }
}

fn login_page(
    req: &AuthRequest,
    csrf: String,
    query: &str,
    username: &str,
    error: Option<&str>,
) -> LoginPage {
    LoginPage {
        client_name: req.client.name(),
        redirect_host: req.redirect_host(),
        error: error.map(str::to_owned),
        csrf_token: csrf,
        request: query.to_owned(),
        username: username.to_owned(),
    }
}

fn with_cookie(mut res: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

/// A page whose form may end in a redirect to the client: `form-action` must allow the
/// client's address too, since browsers check it against every redirect a form leads to.
fn with_form_target(mut res: Response, redirect_uri: &str) -> Response {
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        super::page_csp(Some(redirect_uri)),
    );
    res
}

/// `GET /authorize`.
pub async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    match authorize_inner(&state, &headers, &query).await {
        Ok(res) => res,
        Err(e) => e.into_response(&state),
    }
}

async fn authorize_inner(
    state: &AppState,
    headers: &HeaderMap,
    query: &str,
) -> Result<Response, AuthorizeError> {
    let req = validate(state, query).await?;
    if let Some(user_id) = &state.headless_user_id {
        // Headless mode: the request was validated like any other; only the person is skipped.
        state
            .audit(
                "headless_approved",
                Some(user_id),
                Some(&req.client.client_id),
                &req.scope.to_string(),
            )
            .await;
        return issue_code(state, &req, user_id, None).await;
    }
    let now = now();
    let session = web::session(state, headers, now).await?;
    let Some(session) = session.filter(|_| !req.prompt_login) else {
        if req.prompt_none {
            return Err(req.error(ErrorCode::LoginRequired, "the user is not signed in"));
        }
        let (csrf, csrf_cookie) = login_csrf(state, headers);
        let page = login_page(&req, csrf, query, "", None);
        let res = with_cookie(render(StatusCode::OK, &page), csrf_cookie);
        return Ok(with_form_target(res, &req.redirect_uri));
    };
    let prior = prior_consent(state, &session.user_id, &req).await?;
    if !req.prompt_consent && !prior.is_empty() && req.scope.is_subset(&prior) {
        return issue_code(state, &req, &session.user_id, None).await;
    }
    if req.prompt_none {
        return Err(req.error(
            ErrorCode::ConsentRequired,
            "the user has not approved this application",
        ));
    }
    let user = state
        .store
        .user_by_id(&session.user_id)
        .await?
        .ok_or(AuthorizeError::Internal)?;
    let localhost_only = req
        .client
        .metadata
        .redirect_uris
        .iter()
        .all(|u| url::Url::parse(u).is_ok_and(|u| is_loopback_host(&u)));
    let csrf =
        session_csrf(state, headers, &consent_purpose(query)).ok_or(AuthorizeError::Internal)?;
    let document_host = if req.client.from_document {
        redirect_host(&req.client.client_id)
    } else {
        String::new()
    };
    let page = ConsentPage {
        client_name: req.client.name(),
        redirect_host: req.redirect_host(),
        redirect_uri: req.redirect_uri.clone(),
        username: user.display_name.clone().unwrap_or(user.username),
        resource_name: req.resource.display_name().to_owned(),
        resource: req.resource.resource.clone(),
        csrf_token: csrf,
        request: query.to_owned(),
        scopes: req
            .scope
            .iter()
            .map(|s| ScopeLine {
                name: s.to_owned(),
                description: describe_scope(s),
            })
            .collect(),
        client_uri: req.client.metadata.client_uri.clone(),
        is_metadata_document: req.client.from_document,
        document_host,
        unverified: !req.client.is_vetted(),
        localhost_only,
    };
    Ok(with_form_target(
        render(StatusCode::OK, &page),
        &req.redirect_uri,
    ))
}

/// The scopes this user has already approved for this client at this resource server.
async fn prior_consent(
    state: &AppState,
    user_id: &str,
    req: &AuthRequest,
) -> Result<Scope, StoreError> {
    let stored = state
        .store
        .consent(user_id, &req.client.client_id, &req.resource.resource)
        .await?;
    Ok(stored
        .and_then(|s| Scope::parse(&s).ok())
        .unwrap_or_default())
}

/// Creates the code (recording consent in the same transaction when given) and sends the
/// browser back to the client with `code`, `state` and `iss`.
async fn issue_code(
    state: &AppState,
    req: &AuthRequest,
    user_id: &str,
    consent: Option<&Scope>,
) -> Result<Response, AuthorizeError> {
    let now = now();
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
    Ok(see_other(&with_query(&req.redirect_uri, &params)))
}

/// The query string with `login` removed from `prompt`, so that the request continues
/// after a sign-in instead of asking again.
fn without_prompt_login(query: &str) -> String {
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

/// The sign-in page for managing one's own account (no authorization request).
pub fn account_login_page(
    state: &AppState,
    csrf: String,
    username: &str,
    error: Option<&str>,
) -> LoginPage {
    LoginPage {
        client_name: "your account".into(),
        redirect_host: url::Url::parse(&state.config.issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default(),
        error: error.map(str::to_owned),
        csrf_token: csrf,
        request: String::new(),
        username: username.to_owned(),
    }
}

/// `POST /login`: form fields `username`, `password`, `csrf_token`, `request` (the pending
/// authorization request; empty when signing in to manage the account).
#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    peer: super::Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Params::parse(&body);
    let query = form.get("request").unwrap_or_default().to_owned();
    let req = if query.is_empty() {
        None
    } else {
        match validate(&state, &query).await {
            Ok(r) => Some(r),
            Err(e) => return e.into_response(&state),
        }
    };
    let client_id = req.as_ref().map(|r| r.client.client_id.clone());
    let username = form.get("username").unwrap_or_default().to_owned();
    let again = |error: &str, status: StatusCode| {
        let (csrf, cookie) = login_csrf(&state, &headers);
        let page = match &req {
            Some(req) => login_page(req, csrf, &query, &username, Some(error)),
            None => account_login_page(&state, csrf, &username, Some(error)),
        };
        let res = with_cookie(render(status, &page), cookie);
        match &req {
            Some(req) => with_form_target(res, &req.redirect_uri),
            None => res,
        }
    };
    if !login_csrf_ok(&state, &headers, form.get("csrf_token")) {
        return again(
            "This form expired. Please sign in again.",
            StatusCode::FORBIDDEN,
        );
    }
    // Each attempt is counted, per username and per client address, before the password is
    // checked: parallel guesses cannot slip past the limit, and a refused attempt costs no
    // hash. A correct password gives its own attempts back and nothing more.
    let refused = |wait: std::time::Duration| {
        let window = crate::throttle::human(state.login_by_user.window());
        super::too_many(
            wait,
            again(
                &format!("Too many failed sign-in attempts. Please wait {window} and try again."),
                StatusCode::TOO_MANY_REQUESTS,
            ),
        )
    };
    let by_user = match state.login_by_user.reserve(&username.to_lowercase()).await {
        Ok(r) => r,
        Err(wait) => {
            state.metrics.inc("logins_failed_total", &[]);
            state
                .audit("login_throttled", None, client_id.as_deref(), &username)
                .await;
            return refused(wait);
        }
    };
    let by_address = match state.client_address(&headers, peer.0) {
        Some(ip) => match state.login_by_address.reserve(&ip.to_string()).await {
            Ok(r) => Some(r),
            Err(wait) => {
                by_user.give_back();
                state.metrics.inc("logins_failed_total", &[]);
                state
                    .audit(
                        "login_throttled",
                        None,
                        client_id.as_deref(),
                        &format!("address {ip}"),
                    )
                    .await;
                return refused(wait);
            }
        },
        None => None,
    };
    let user = match state.store.user_by_username(&username).await {
        Ok(u) => u.filter(|u| u.disabled == 0),
        Err(e) => return AuthorizeError::from(e).into_response(&state),
    };
    let password = form.get("password").unwrap_or_default().to_owned();
    let ok = match state
        .passwords
        .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await
    {
        Ok(ok) => ok,
        Err(crate::password_pool::Busy) => {
            // Not the caller's fault: no attempt is counted.
            by_user.give_back();
            if let Some(r) = by_address {
                r.give_back();
            }
            let mut res = again(
                "The server is busy. Please try again in a moment.",
                StatusCode::SERVICE_UNAVAILABLE,
            );
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            return res;
        }
    };
    let user = match user {
        Some(u) if ok => u,
        other => {
            state.metrics.inc("logins_failed_total", &[]);
            tracing::warn!("sign-in failed");
            let user_id = other.as_ref().map(|u| u.id.as_str());
            state
                .audit("login_failed", user_id, client_id.as_deref(), &username)
                .await;
            return again("Wrong username or password.", StatusCode::OK);
        }
    };
    by_user.give_back();
    if let Some(r) = by_address {
        r.give_back();
    }
    let now = now();
    let session_id = new_secret();
    let expires = now + state.config.session_ttl;
    if let Err(e) = state
        .store
        .insert_session(&digest(&session_id), &user.id, now, expires)
        .await
    {
        return AuthorizeError::from(e).into_response(&state);
    }
    state.metrics.inc("logins_total", &[]);
    tracing::info!(user_id = %user.id, "signed in");
    state
        .audit(
            "login_succeeded",
            Some(&user.id),
            client_id.as_deref(),
            &user.username,
        )
        .await;
    let next = match &req {
        Some(_) => format!(
            "{}?{}",
            oauth_protocol::paths::AUTHORIZE,
            without_prompt_login(&query)
        ),
        None => oauth_protocol::paths::ACCOUNT.to_owned(),
    };
    let mut res = see_other(&next);
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            &state,
            &session_cookie_name(&state),
            &session_id,
            state.config.session_ttl,
        ),
    );
    res
}

/// `POST /consent`: form fields `decision` (`approve` or `deny`), `csrf_token`, `request`.
#[tracing::instrument(skip_all)]
pub async fn consent(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Params::parse(&body);
    let query = form.get("request").unwrap_or_default().to_owned();
    let result = async {
        let req = validate(&state, &query).await?;
        let now = now();
        let Some(session) = web::session(&state, &headers, now).await? else {
            return Ok(see_other(&format!(
                "{}?{query}",
                oauth_protocol::paths::AUTHORIZE
            )));
        };
        // The token is bound to this session and to this exact request.
        if !session_csrf_ok(
            &state,
            &headers,
            &consent_purpose(&query),
            form.get("csrf_token"),
        ) {
            return Err(page(
                "Form expired",
                "This consent form expired. Return to the application and try again.",
            ));
        }
        match form.get("decision") {
            Some("approve") => {
                let prior = prior_consent(&state, &session.user_id, &req).await?;
                let remembered = prior.union(&req.scope);
                tracing::info!(client_id = %req.client.client_id, "consent given");
                state
                    .audit(
                        "consent_granted",
                        Some(&session.user_id),
                        Some(&req.client.client_id),
                        &req.scope.to_string(),
                    )
                    .await;
                issue_code(&state, &req, &session.user_id, Some(&remembered)).await
            }
            Some("deny") => {
                tracing::info!(client_id = %req.client.client_id, "consent denied");
                state
                    .audit(
                        "consent_denied",
                        Some(&session.user_id),
                        Some(&req.client.client_id),
                        "",
                    )
                    .await;
                Err(req.denied())
            }
            _ => Err(page("Invalid request", "Choose Allow or Deny.")),
        }
    }
    .await;
    result.unwrap_or_else(|e| e.into_response(&state))
}

/// `POST /logout`: form field `csrf_token`.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Params::parse(&body);
    if !session_csrf_ok(&state, &headers, ACCOUNT_FORMS, form.get("csrf_token")) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "Reload the page and try again.",
        );
    }
    let name = session_cookie_name(&state);
    if let Some(id) = web::cookie(&headers, &name)
        && let Err(e) = state.store.delete_session(&digest(id)).await
    {
        return AuthorizeError::from(e).into_response(&state);
    }
    let mut res = error_page(StatusCode::OK, "Signed out", "You have been signed out.");
    res.headers_mut()
        .append(header::SET_COOKIE, set_cookie(&state, &name, "", 0));
    res
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
