//! The gateway's client side of an upstream session: where the upstream's progress,
//! notifications and own requests (sampling, elicitation, roots) go, and how they get there.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rmcp::ErrorData as McpError;
use rmcp::model::{
    CancelledNotification, CancelledNotificationParam, ClientConfig, ClientResult, GetExtensions,
    GetMeta, ProgressToken, RequestId, ServerNotification, ServerRequest,
};
use rmcp::service::{
    InboundStreamOrigin, NotificationContext, OriginatingRequestId, Peer, PeerRequestOptions,
    RequestContext, RoleClient, RoleServer, ServiceError,
};

pub(super) type ProgressRoute = (
    Peer<RoleServer>,
    ProgressToken,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
);

/// Where an upstream request's progress and nested requests go: the downstream session and
/// its own ids. Shared with the upstream connection's client side.
#[derive(Default)]
pub struct Routes {
    /// rmcp's progress token of an upstream request → the client's session and token, and
    /// how many of its notifications are being forwarded right now.
    pub(super) progress: Mutex<HashMap<ProgressToken, ProgressRoute>>,
    /// Upstream request id → the client's session and request id, while it runs.
    pub(super) inflight: Mutex<HashMap<RequestId, (Peer<RoleServer>, RequestId)>>,
    /// The sessions told about list changes (one, unless the child is shared).
    sessions: Mutex<Vec<Peer<RoleServer>>>,
    /// A shared child serves many users: its logging and unassociated requests belong to
    /// nobody in particular and are not relayed.
    pub shared: bool,
}

impl Routes {
    pub fn new(shared: bool) -> Self {
        Self {
            shared,
            ..Self::default()
        }
    }

    pub fn inflight_is_empty(&self) -> bool {
        self.inflight.lock().expect("routes lock").is_empty()
    }

    pub fn add_session(&self, peer: Peer<RoleServer>) {
        self.sessions.lock().expect("routes lock").push(peer);
    }

    /// The client session a request from the upstream belongs to.
    fn origin(
        &self,
        extensions: &rmcp::model::Extensions,
    ) -> Option<(Peer<RoleServer>, Option<RequestId>)> {
        let inflight = self.inflight.lock().expect("routes lock");
        if let Some(InboundStreamOrigin::OutboundRequest(id)) =
            extensions.get::<InboundStreamOrigin>()
            && let Some((peer, down)) = inflight.get(id)
        {
            return Some((peer.clone(), Some(down.clone())));
        }
        // stdio says nothing about which call a request belongs to: with exactly one call
        // in flight it is that one's.
        if inflight.len() == 1 {
            let (peer, down) = inflight.values().next().expect("one entry");
            return Some((peer.clone(), Some(down.clone())));
        }
        if self.shared {
            return None;
        }
        let sessions = self.sessions.lock().expect("routes lock");
        sessions.first().map(|p| (p.clone(), None))
    }

    async fn broadcast(&self, notification: ServerNotification) {
        let peers: Vec<_> = self.sessions.lock().expect("routes lock").clone();
        let mut gone = Vec::new();
        for (i, peer) in peers.iter().enumerate() {
            if peer.send_notification(notification.clone()).await.is_err() {
                gone.push(i);
            }
        }
        if !gone.is_empty() {
            let mut sessions = self.sessions.lock().expect("routes lock");
            let mut i = 0;
            sessions.retain(|_| {
                i += 1;
                !gone.contains(&(i - 1))
            });
        }
    }
}

/// The gateway's client side of an upstream session.
#[derive(Clone)]
pub struct UpClient {
    pub info: ClientConfig,
    pub routes: Arc<Routes>,
}

fn service_error(e: ServiceError) -> McpError {
    match e {
        ServiceError::McpError(e) => e,
        other => McpError::internal_error(format!("the client could not be asked: {other}"), None),
    }
}

impl rmcp::service::Service<RoleClient> for UpClient {
    async fn handle_request(
        &self,
        request: ServerRequest,
        ctx: RequestContext<RoleClient>,
    ) -> Result<ClientResult, McpError> {
        if matches!(request, ServerRequest::PingRequest(_)) {
            return Ok(ClientResult::empty(()));
        }
        let Some((peer, down_id)) = self.routes.origin(&ctx.extensions) else {
            return Err(McpError::internal_error(
                "a request from a shared upstream outside any call cannot be relayed",
                None,
            ));
        };
        let mut request = request;
        *request.get_meta_mut() = ctx.meta.clone();
        // Sent from a task of its own: rmcp would otherwise mark it as belonging to the
        // upstream's request id, which means nothing to the client's session.
        let send = tokio::spawn(async move {
            if let Some(id) = down_id {
                request.extensions_mut().insert(OriginatingRequestId(id));
            }
            peer.send_cancellable_request(request, PeerRequestOptions::no_options())
                .await
        });
        let handle = send
            .await
            .map_err(|e| McpError::internal_error(e.to_string(), None))?
            .map_err(service_error)?;
        let (peer, id) = (handle.peer.clone(), handle.id.clone());
        tokio::select! {
            answer = handle.rx => answer
                .map_err(|_| McpError::internal_error("the client session ended", None))?
                .map_err(service_error),
            () = ctx.ct.cancelled() => {
                let _ = peer
                    .send_notification(ServerNotification::CancelledNotification(
                        CancelledNotification::new(CancelledNotificationParam::new(
                            Some(id),
                            Some("cancelled by the upstream server".into()),
                        )),
                    ))
                    .await;
                Err(McpError::internal_error("cancelled", None))
            }
        }
    }

    async fn handle_notification(
        &self,
        notification: ServerNotification,
        _ctx: NotificationContext<RoleClient>,
    ) -> Result<(), McpError> {
        match notification {
            ServerNotification::ProgressNotification(mut p) => {
                let route = self
                    .routes
                    .progress
                    .lock()
                    .expect("routes lock")
                    .get(&p.params.progress_token)
                    .cloned();
                if let Some((peer, token, forwarding)) = route {
                    forwarding.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    p.params.progress_token = token;
                    let _ = peer
                        .send_notification(ServerNotification::ProgressNotification(p))
                        .await;
                    forwarding.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
            ServerNotification::LoggingMessageNotification(_)
            | ServerNotification::ResourceUpdatedNotification(_)
                if !self.routes.shared =>
            {
                self.routes.broadcast(notification).await;
            }
            ServerNotification::ToolListChangedNotification(_)
            | ServerNotification::ResourceListChangedNotification(_)
            | ServerNotification::PromptListChangedNotification(_) => {
                self.routes.broadcast(notification).await;
            }
            // Cancellations of the upstream's own requests reach `handle_request` as its
            // cancelled token; the rest has no meaning for the client.
            _ => {}
        }
        Ok(())
    }

    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }
}
