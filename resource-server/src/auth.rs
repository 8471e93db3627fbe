//! Authentication in front of the MCP endpoint, before any method routing, so every request
//! (`GET` included) is checked:
//! - a foreign `Origin` → 403 (DNS-rebinding protection);
//! - a token in the query string → 400 `invalid_request`;
//! - no token → 401 with `resource_metadata` and `scope`, and no `error` (RFC 6750 §3.1);
//! - a bad, expired, revoked or foreign-audience token → 401 `invalid_token`;
//! - the authorization server unreachable for an uncached token → 503 + `Retry-After`;
//! - a valid token lacking the scope of the call → 403 `insufficient_scope` (MCP step-up);
//! - an MCP session id created by another user → 404, as if it did not exist.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oauth_protocol::challenge::BearerChallenge;
use oauth_protocol::{ErrorCode, Scope};

use crate::introspection::{Principal, Unavailable, Verdict};
use crate::mcp::{Need, required_scope};
use crate::state::AppState;

/// Largest JSON-RPC body read for the scope check.
const MAX_BODY: usize = 1024 * 1024;
const SESSION_HEADER: &str = "mcp-session-id";

fn challenge(state: &AppState, status: StatusCode, c: BearerChallenge) -> Response {
    let c = BearerChallenge {
        resource_metadata: Some(state.config.metadata_url()),
        ..c
    };
    let value =
        HeaderValue::from_str(&c.to_header_value()).expect("challenge values are header-safe");
    let body = serde_json::json!({
        "error": c.error.as_deref().unwrap_or("unauthorized"),
        "error_description": c.error_description.as_deref().unwrap_or("a bearer token is required"),
    });
    (
        status,
        [(header::WWW_AUTHENTICATE, value)],
        axum::Json(body),
    )
        .into_response()
}

fn plain(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({"error": message}))).into_response()
}

/// The bearer token of the `Authorization` header. `Err` when the header is present but
/// malformed.
fn bearer(headers: &HeaderMap) -> Option<Result<&str, ()>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let Ok(value) = value.to_str() else {
        return Some(Err(()));
    };
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    Some(if token.is_empty() { Err(()) } else { Ok(token) })
}

/// Most of an unauthenticated body read (and discarded) before answering.
const DRAIN_LIMIT: usize = 64 * 1024;

/// Answers a request whose body was not read. A response sent while the client is still
/// sending its body makes the server drop the connection afterwards, and a keep-alive
/// client that reuses it loses its next request (RFC 9112 §9.6). So a small body (the usual
/// JSON-RPC message) is read and discarded first; for anything larger the answer says
/// `Connection: close`, and no more than `DRAIN_LIMIT` bytes are ever read for a caller
/// who has not authenticated.
async fn answer_early(req: Request, mut res: Response) -> Response {
    if req.method() == Method::POST {
        let drained = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            axum::body::to_bytes(req.into_body(), DRAIN_LIMIT),
        )
        .await;
        if !matches!(drained, Ok(Ok(_))) {
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    res
}

/// Who a request admitted by `admit` came from, and the session it named, for `after`.
pub struct Admitted {
    principal: Arc<Principal>,
    session: Option<String>,
}

/// The check in front of the MCP handler: the request it may answer (its body read and its
/// calls attached, when a POST), or the refusal to send instead. The handler is not called
/// from here, so that its large future is held once, by the caller, not nested in this one.
pub async fn admit(state: &AppState, req: Request) -> Result<(Request, Admitted), Response> {
    match check(state, req.headers(), req.uri().query()).await {
        Ok(principal) => authorized(state, req, principal).await,
        // Boxed: a refusal is the rare path, and its body drain would enlarge every request.
        Err(res) => Err(Box::pin(answer_early(req, res)).await),
    }
}

impl Admitted {
    /// Once the handler answered: a session it started belongs to this caller.
    pub async fn after(self, state: &AppState, answered: &HeaderMap) {
        if self.session.is_none()
            && let Some(sid) = answered.get(SESSION_HEADER).and_then(|v| v.to_str().ok())
        {
            // Once per session: boxed, so that the calls within a session do not carry it.
            Box::pin(
                state
                    .sessions
                    .insert(sid.to_owned(), self.principal.sub.clone()),
            )
            .await;
        }
    }
}

/// Everything decided from the headers alone: origin, where the token is, and the token.
async fn check(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Arc<Principal>, Response> {
    if let Some(origin) = headers.get(header::ORIGIN)
        && !origin
            .to_str()
            .is_ok_and(|o| state.config.origin_allowed(o))
    {
        return Err(plain(StatusCode::FORBIDDEN, "origin not allowed"));
    }
    if query.is_some_and(|q| form_urlencoded_has(q, "access_token")) {
        return Err(challenge(
            state,
            StatusCode::BAD_REQUEST,
            BearerChallenge {
                error: Some(ErrorCode::InvalidRequest.as_str().into()),
                error_description: Some(
                    "send the access token in the Authorization header, not the URL".into(),
                ),
                ..Default::default()
            },
        ));
    }
    let token = match bearer(headers) {
        None => {
            return Err(challenge(
                state,
                StatusCode::UNAUTHORIZED,
                BearerChallenge {
                    scope: Some(state.config.scopes_supported.join(" ")),
                    ..Default::default()
                },
            ));
        }
        Some(Err(())) => return Err(invalid_token(state, "malformed Authorization header")),
        Some(Ok(t)) => t,
    };
    let principal = match state.introspector.check(token).await {
        Ok(Verdict::Active(p)) => p,
        Ok(Verdict::Inactive) => {
            return Err(invalid_token(
                state,
                "the access token is invalid, expired, revoked or not for this resource",
            ));
        }
        Err(e) => {
            let message = match &e {
                Unavailable::CredentialsRefused => {
                    tracing::error!(
                        "the authorization server refused this server's introspection credentials: \
                         check RS_CLIENT_ID and RS_CLIENT_SECRET against the authorization server's resource server entry"
                    );
                    "the authorization server refused this server's introspection credentials (a configuration error)"
                }
                Unavailable::Unreachable(_) => {
                    tracing::warn!(error = %e, "token validation unavailable");
                    "the authorization server is unreachable; retry shortly"
                }
            };
            let mut res = plain(StatusCode::SERVICE_UNAVAILABLE, message);
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return Err(res);
        }
    };
    if principal.machine && !state.config.accept_machine_clients {
        return Err(invalid_token(
            state,
            "this resource does not accept tokens that act for no user",
        ));
    }
    Ok(principal)
}

/// The rest, once the caller is known: session ownership, the scope of each call, usage.
async fn authorized(
    state: &AppState,
    req: Request,
    principal: Arc<Principal>,
) -> Result<(Request, Admitted), Response> {
    let session = req
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(sid) = &session
        && state
            .sessions
            .get(sid)
            .await
            .is_some_and(|owner| owner != principal.sub)
    {
        tracing::warn!("MCP session used with another user's token");
        let res = plain(StatusCode::NOT_FOUND, "session not found");
        return Err(Box::pin(answer_early(req, res)).await);
    }

    let mut req = req;
    if req.method() == Method::POST {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
            let mut res = plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Err(res);
        };
        let calls = crate::rpc::calls(&bytes);
        let mut needed = Scope::default();
        for (id, method, params) in &calls {
            // A gateway endpoint's policy, or this server's own tools.
            if let Some(policy) = &state.policy {
                match policy.need(method, params) {
                    crate::gateway::policy::Need::Nothing => {}
                    crate::gateway::policy::Need::Scope(s) => {
                        needed = needed.union(&Scope::from_tokens([s]));
                    }
                    crate::gateway::policy::Need::Forbidden => {
                        return Err(challenge(
                            state,
                            StatusCode::FORBIDDEN,
                            BearerChallenge {
                                error: Some(ErrorCode::InsufficientScope.as_str().into()),
                                error_description: Some(
                                    "this is not available through this endpoint".into(),
                                ),
                                ..Default::default()
                            },
                        ));
                    }
                }
                continue;
            }
            match required_scope(method, params) {
                Need::Nothing => {}
                Need::Scope(s) => needed = needed.union(&Scope::from_tokens([s])),
                Need::Refused => return Err(unknown_tool(id, params)),
            }
        }
        if !needed.is_subset(&principal.scope) {
            // What this call needs plus what the token already has, so a client that
            // replaces its scope with the challenge's keeps what it had (MCP step-up).
            let wanted = needed.union(&principal.scope.intersection(&Scope::from_tokens(
                state.config.scopes_supported.iter().cloned(),
            )));
            return Err(challenge(
                state,
                StatusCode::FORBIDDEN,
                BearerChallenge {
                    error: Some(ErrorCode::InsufficientScope.as_str().into()),
                    error_description: Some(format!(
                        "this call needs {}",
                        needed.difference(&principal.scope)
                    )),
                    scope: Some(wanted.to_string()),
                    ..Default::default()
                },
            ));
        }
        // This server's own tools count their calls (`get_api_usage`), before the MCP handler
        // runs, so that a call refused for bad arguments counts too.
        if state.policy.is_none() {
            for (_, method, params) in &calls {
                if let Some(name) = crate::mcp::usage::usage_name(method, params) {
                    state.store.count_request(&principal.sub, &name);
                }
            }
        }
        req = Request::from_parts(parts, Body::from(bytes));
        req.extensions_mut().insert(crate::rpc::Calls(calls));
    }
    req.extensions_mut().insert(principal.clone());
    Ok((req, Admitted { principal, session }))
}

fn invalid_token(state: &AppState, description: &str) -> Response {
    challenge(
        state,
        StatusCode::UNAUTHORIZED,
        BearerChallenge {
            error: Some(ErrorCode::InvalidToken.as_str().into()),
            error_description: Some(description.into()),
            ..Default::default()
        },
    )
}

fn form_urlencoded_has(query: &str, key: &str) -> bool {
    url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == key)
}

/// A call of a tool that has no scope entry never reaches the MCP handler: the answer is
/// the JSON-RPC error an unknown tool gets (MCP: -32602).
fn unknown_tool(id: &serde_json::Value, params: &serde_json::Value) -> Response {
    let name = params
        .get("name")
        .and_then(|n| n.as_str())
        .unwrap_or_default();
    axum::Json(serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": -32602, "message": format!("Unknown tool: {name}")},
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert!(bearer(&h).is_none());
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some(Ok("abc")));
        h.insert(header::AUTHORIZATION, "bearer   ".parse().unwrap());
        assert_eq!(bearer(&h), Some(Err(())));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(bearer(&h).is_none());
    }
}
