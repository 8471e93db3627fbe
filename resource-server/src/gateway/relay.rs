//! The relay: an MCP server to the downstream client and an MCP client to the upstream, one
//! upstream session per downstream session (or one shared stdio child). Requests go up
//! as they came, minus what the policy hides and plus the caller's identity; answers,
//! progress, logging, list changes and the upstream's own requests (sampling, elicitation,
//! roots) come back to the client that made the call (`client`); cancellation goes both
//! ways. `handler` maps each MCP method onto `Relay::forward`.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use rmcp::ErrorData as McpError;
use rmcp::model::{
    CancelledNotification, CancelledNotificationParam, ClientNotification, ClientRequest, GetMeta,
    InitializeRequestParams, InitializeResult, RequestOptionalParam, ServerResult,
};
use rmcp::service::{PeerRequestOptions, RequestContext, RoleServer, ServiceError};

use super::connect::{Connection, connect};
use super::policy::Need;
use super::{Gateway, identity};
use crate::introspection::Principal;

/// The MCP server one downstream session talks to.
#[derive(Clone)]
pub struct Relay {
    pub(super) gateway: Arc<Gateway>,
    pub(super) connection: Arc<tokio::sync::Mutex<Option<Arc<Connection>>>>,
    /// The client's `initialize`, replayed when the upstream session has to start over.
    pub(super) hello: Arc<Mutex<Option<InitializeRequestParams>>>,
    /// The upstream's answer to it, which is this server's to the client.
    pub(super) info: Arc<Mutex<Option<InitializeResult>>>,
}

impl Relay {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        Self {
            gateway,
            connection: Arc::default(),
            hello: Arc::default(),
            info: Arc::default(),
        }
    }

    /// The upstream session, started (again) when there is none or it ended.
    pub(super) async fn connection(
        &self,
        ctx: &RequestContext<RoleServer>,
        principal: &Principal,
    ) -> Result<Arc<Connection>, McpError> {
        let mut slot = self.connection.lock().await;
        if let Some(c) = slot.as_ref()
            && !c.is_closed()
        {
            c.touch();
            return Ok(c.clone());
        }
        let hello = self
            .hello
            .lock()
            .expect("hello lock")
            .clone()
            .ok_or_else(|| McpError::invalid_request("initialize first", None))?;
        let c = connect(
            &self.gateway,
            ctx.peer.clone(),
            hello,
            principal,
            forwarded(&self.gateway, ctx),
        )
        .await?;
        Connection::reap_when_idle(&c, &self.connection);
        *slot = Some(c.clone());
        Ok(c)
    }

    /// One request to the upstream, as the client made it, with the caller's identity.
    pub(super) async fn forward(
        &self,
        request: ClientRequest,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ServerResult, McpError> {
        let principal = principal(&ctx)?;
        let gw = &self.gateway;
        // The HTTP layer refused what the policy does not allow; this is the same decision
        // once more, where the request is relayed.
        match gw.policy.need(request.method(), &policy_params(&request)) {
            Need::Nothing => {}
            Need::Scope(s) if principal.scope.contains(&s) => {}
            _ => {
                return Err(McpError::invalid_params(
                    "not available through this gateway",
                    None,
                ));
            }
        }
        let c = self.connection(&ctx, &principal).await?;
        let tool = match &request {
            ClientRequest::CallToolRequest(call) => {
                Some((call.params.name.to_string(), call.params.arguments.clone()))
            }
            _ => None,
        };
        let mut request = request;
        let meta = request.get_meta_mut();
        *meta = ctx.meta.clone();
        let client_token = meta.get_progress_token();
        // The identity is ours to state: a copy the client sent is dropped.
        meta.remove(identity::META_KEY);
        if gw.settings.command.is_some() {
            meta.insert(identity::META_KEY.into(), identity::meta(&principal));
            if let (Some(arg), ClientRequest::CallToolRequest(call)) =
                (&gw.settings.identity_argument, &mut request)
            {
                call.params
                    .arguments
                    .get_or_insert_with(Default::default)
                    .insert(
                        arg.clone(),
                        serde_json::Value::String(principal.sub.clone()),
                    );
            }
        }
        let started = Instant::now();
        let stopped = || {
            McpError::internal_error(
                format!(
                    "{} stopped; it is started again on the next request",
                    gw.settings.label()
                ),
                None,
            )
        };
        let handle = c
            .peer()
            .send_cancellable_request(request, PeerRequestOptions::no_options())
            .await
            .map_err(|_| stopped())?;
        let routes = c.routes();
        let forwarding = client_token.map(|token| {
            let forwarding = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            routes.progress.lock().expect("routes lock").insert(
                handle.progress_token.clone(),
                (ctx.peer.clone(), token, forwarding.clone()),
            );
            forwarding
        });
        routes
            .inflight
            .lock()
            .expect("routes lock")
            .insert(handle.id.clone(), (ctx.peer.clone(), ctx.id.clone()));
        let (up_peer, up_id, up_token) = (
            handle.peer.clone(),
            handle.id.clone(),
            handle.progress_token.clone(),
        );
        let mut ended = false;
        let answer = tokio::select! {
            answer = handle.rx => match answer {
                Err(_) | Ok(Err(ServiceError::TransportClosed)) => {
                    ended = true;
                    Err(stopped())
                }
                Ok(Err(ServiceError::McpError(e))) => Err(e),
                Ok(Err(other)) => Err(McpError::internal_error(other.to_string(), None)),
                Ok(Ok(result)) => Ok(result),
            },
            () = ctx.ct.cancelled() => {
                let _ = up_peer
                    .send_notification(ClientNotification::CancelledNotification(
                        CancelledNotification::new(CancelledNotificationParam::new(
                            Some(up_id.clone()),
                            Some("cancelled by the client".into()),
                        )),
                    ))
                    .await;
                Err(McpError::internal_error("cancelled", None))
            }
        };
        routes.inflight.lock().expect("routes lock").remove(&up_id);
        if let Some(forwarding) = forwarding {
            progress_before_the_answer(&forwarding).await;
        }
        // Progress sent just before the answer may be handled just after it: the route
        // stays a moment longer so that it still reaches the client.
        let late = c.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            late.routes()
                .progress
                .lock()
                .expect("routes lock")
                .remove(&up_token);
        });
        c.touch();
        if ended {
            // The session is gone (a child that died): the next request starts another,
            // without waiting for the transport to notice.
            let mut slot = self.connection.lock().await;
            if slot.as_ref().is_some_and(|held| Arc::ptr_eq(held, &c)) {
                *slot = None;
            }
            let mut shared = gw.shared.lock().await;
            if shared.as_ref().is_some_and(|held| Arc::ptr_eq(held, &c)) {
                *shared = None;
            }
        }
        if let Some((name, arguments)) = tool {
            let outcome = match &answer {
                Ok(ServerResult::CallToolResult(r)) if r.is_error == Some(true) => "error",
                Ok(_) => "ok",
                Err(_) if ctx.ct.is_cancelled() => "cancelled",
                Err(_) => "failed",
            };
            gw.record_call(&principal, &name, arguments, outcome, started)
                .await;
        }
        answer.map(|result| filter(gw, &principal, result))
    }
}

/// What the policy reads of a request: its name or URI, never its arguments (which can be
/// large and were parsed once already by the HTTP layer).
#[allow(deprecated)] // resources/subscribe is relayed for the versions that have it
fn policy_params(request: &ClientRequest) -> serde_json::Value {
    use serde_json::json;
    match request {
        ClientRequest::CallToolRequest(r) => json!({"name": r.params.name}),
        ClientRequest::GetPromptRequest(r) => json!({"name": r.params.name}),
        ClientRequest::ReadResourceRequest(r) => json!({"uri": r.params.uri}),
        ClientRequest::SubscribeRequest(r) => json!({"uri": r.params.uri}),
        ClientRequest::UnsubscribeRequest(r) => json!({"uri": r.params.uri}),
        ClientRequest::CompleteRequest(r) => json!({"ref": r.params.r#ref}),
        _ => serde_json::Value::Null,
    }
}

/// The allow-listed headers of the request that starts an upstream session.
fn forwarded(gw: &Gateway, ctx: &RequestContext<RoleServer>) -> Vec<(String, String)> {
    let Some(parts) = ctx.extensions.get::<axum::http::request::Parts>() else {
        return Vec::new();
    };
    gw.settings
        .forward_headers
        .iter()
        .filter_map(|name| {
            let v = parts.headers.get(name.as_str())?.to_str().ok()?;
            Some((name.to_ascii_lowercase(), v.to_owned()))
        })
        .collect()
}

pub(super) fn principal(ctx: &RequestContext<RoleServer>) -> Result<Arc<Principal>, McpError> {
    ctx.extensions
        .get::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<Arc<Principal>>())
        .cloned()
        .ok_or_else(|| McpError::internal_error("no authenticated caller", None))
}

pub(super) fn unexpected(result: &ServerResult) -> McpError {
    McpError::internal_error(
        format!("the upstream answered with the wrong kind of result: {result:?}"),
        None,
    )
}

/// A request whose params are optional, as rmcp models list requests.
pub(super) fn listing<M: Default, P>(params: Option<P>) -> RequestOptionalParam<M, P> {
    RequestOptionalParam {
        method: M::default(),
        params,
        extensions: Default::default(),
    }
}

/// Lists without what the caller may not use.
fn filter(gw: &Gateway, p: &Principal, result: ServerResult) -> ServerResult {
    let policy = &gw.policy;
    match result {
        ServerResult::ListToolsResult(mut r) => {
            r.tools.retain(|t| policy.may_call(&t.name, &p.scope));
            ServerResult::ListToolsResult(r)
        }
        ServerResult::ListResourcesResult(mut r) => {
            r.resources
                .retain(|res| policy.may_read(&res.uri, &p.scope));
            ServerResult::ListResourcesResult(r)
        }
        ServerResult::ListResourceTemplatesResult(mut r) => {
            r.resource_templates
                .retain(|t| policy.may_read(&t.uri_template, &p.scope));
            ServerResult::ListResourceTemplatesResult(r)
        }
        ServerResult::ListPromptsResult(mut r) => {
            r.prompts.retain(|pr| policy.may_prompt(&pr.name, &p.scope));
            ServerResult::ListPromptsResult(r)
        }
        other => other,
    }
}

/// rmcp hands the upstream's notifications to handler tasks it spawns, and its answer
/// straight to the waiting request, so the answer can overtake progress that came before it
/// on the wire; a client drops progress that arrives after its answer. The handlers spawned
/// before the answer are let run first (yielding puts this task behind them), then waited
/// for while they forward, a moment at most.
async fn progress_before_the_answer(forwarding: &std::sync::atomic::AtomicUsize) {
    use std::sync::atomic::Ordering;
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    let deadline = Instant::now() + std::time::Duration::from_millis(200);
    while forwarding.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use std::time::Duration;

    use super::*;

    /// As rmcp does: a notification's handler is spawned, then the answer wakes the request.
    /// The answer must wait for that forward.
    #[tokio::test]
    async fn progress_spawned_before_the_answer_is_forwarded_first() {
        let forwarding = Arc::new(AtomicUsize::new(0));
        let forwarded = Arc::new(AtomicBool::new(false));
        let (f, done) = (forwarding.clone(), forwarded.clone());
        tokio::spawn(async move {
            f.fetch_add(1, SeqCst);
            // The send to the client's session.
            tokio::time::sleep(Duration::from_millis(30)).await;
            done.store(true, SeqCst);
            f.fetch_sub(1, SeqCst);
        });
        progress_before_the_answer(&forwarding).await;
        assert!(forwarded.load(SeqCst), "the answer overtook the progress");
    }

    #[tokio::test]
    async fn a_forward_that_hangs_delays_the_answer_only_briefly() {
        let forwarding = AtomicUsize::new(1);
        let started = Instant::now();
        progress_before_the_answer(&forwarding).await;
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(2),
            "{took:?}"
        );
    }
}
