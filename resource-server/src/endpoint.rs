//! An MCP endpoint as one service: the bearer check (`auth`), rmcp's handler called through a
//! shared reference, then for this server's own tools the reconnection cut in fixture mode and
//! the JSON reply (`mcp::json_reply`). Stacked as `from_fn` layers, each of these cloned
//! everything below it, rmcp's service and its configuration included, on every request; as
//! wrappers taking the handler as a closure, each held its own copy of the handler's future
//! (5.6 KB), which every request then moved. Here that future is held once.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use futures::future::BoxFuture;
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::SessionManager;

use crate::state::AppState;

/// What runs between the bearer check and rmcp.
#[derive(Clone, Copy)]
pub enum Inside {
    /// A gateway endpoint: rmcp's answer as it is (progress streams to the client).
    Nothing,
    /// This server's tools: one-message replies as JSON.
    Json,
    /// And the conformance suite's reconnection cut.
    JsonAndFixtures,
}

pub struct Endpoint<S, M> {
    state: AppState,
    mcp: Arc<StreamableHttpService<S, M>>,
    inside: Inside,
}

impl<S, M> Clone for Endpoint<S, M> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            mcp: self.mcp.clone(),
            inside: self.inside,
        }
    }
}

impl<S, M> Endpoint<S, M> {
    pub fn new(state: AppState, mcp: StreamableHttpService<S, M>, inside: Inside) -> Self {
        Self {
            state,
            mcp: Arc::new(mcp),
            inside,
        }
    }
}

impl<S, M> tower::Service<Request> for Endpoint<S, M>
where
    S: rmcp::ServerHandler + Send + 'static,
    M: SessionManager,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.answer(req).await) })
    }
}

impl<S, M> Endpoint<S, M>
where
    S: rmcp::ServerHandler + Send + 'static,
    M: SessionManager,
{
    async fn answer(&self, req: Request) -> Response {
        use crate::mcp::conformance::reconnect;
        use crate::mcp::json_reply;
        let (req, admitted) = match crate::auth::admit(&self.state, req).await {
            Ok(admitted) => admitted,
            Err(refusal) => return refusal,
        };
        let json = !matches!(self.inside, Inside::Nothing) && json_reply::wanted(&req);
        let cut = matches!(self.inside, Inside::JsonAndFixtures) && reconnect::wanted(&req);
        // Not boxed: a boxed handler future measured slower (its allocation and move cost
        // more than holding it here).
        let mut res = self.mcp.handle(req).await.map(Body::new);
        if cut {
            res = reconnect::cut(res);
        }
        if json {
            res = json_reply::into_json(res).await;
        }
        admitted.after(&self.state, res.headers()).await;
        res
    }
}
