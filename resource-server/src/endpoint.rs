//! An MCP endpoint as one service: the bearer check (`auth`), then for this server's own
//! tools the JSON reply (`mcp::json_reply`) and in fixture mode the reconnection cut, then
//! rmcp's handler, called through a shared reference. Stacked as `from_fn` layers, each of
//! these cloned everything below it, rmcp's service and its configuration included, on
//! every request.

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
        let mcp = |req: Request| async move { self.mcp.handle(req).await.map(Body::new) };
        crate::auth::authenticate(&self.state, req, |req| async move {
            use crate::mcp::conformance::reconnect::cut_reconnection_stream;
            use crate::mcp::json_reply::prefer_json;
            match self.inside {
                Inside::Nothing => mcp(req).await,
                Inside::Json => prefer_json(req, mcp).await,
                Inside::JsonAndFixtures => {
                    prefer_json(req, |req| cut_reconnection_stream(req, mcp)).await
                }
            }
        })
        .await
    }
}
