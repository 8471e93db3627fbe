//! Documents that are the same for every caller (authorization server metadata, the JWKS,
//! protected resource metadata), answered before the router. Every client's discovery asks
//! for them, and the router's layers (CORS, security headers, metrics, timeouts), which are
//! cloned for each request, cost several times the answer itself.
//!
//! The headers are those the whole router answered a plain `GET` with, taken once at start
//! (`Documents::add`), so both paths answer alike; the body is asked for on each request (a
//! key rotation changes the JWKS). A request with an `Origin` header or a query goes through
//! the router: CORS is the only layer whose answer depends on the request, and only on
//! `Origin`.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::response::Response;
use tower::ServiceExt;
use tower_http::request_id::MakeRequestId;

use crate::Metrics;
use crate::requests::{CountingRequestId, REQUEST_ID};

type BodyFn = Arc<dyn Fn() -> Bytes + Send + Sync>;

struct Entry {
    path: Box<str>,
    head: HeaderMap,
    body: BodyFn,
}

/// Marks the request `Documents::add` sends through the router: it is neither counted nor
/// logged, since no one asked for it.
#[derive(Clone, Copy)]
pub(crate) struct Probe;

#[derive(Clone)]
pub struct Documents {
    entries: Arc<Vec<Entry>>,
    metrics: Option<Metrics>,
    ids: CountingRequestId,
}

impl Documents {
    /// None: every request goes through the router.
    pub fn none() -> Self {
        Self {
            entries: Arc::default(),
            metrics: None,
            ids: CountingRequestId::default(),
        }
    }

    /// Answered requests are counted in `metrics` as the router's `track` counts them.
    pub fn new(metrics: Metrics) -> Self {
        Self {
            metrics: Some(metrics),
            ..Self::none()
        }
    }

    /// Serves `path` from `body` with the headers `router` answers a plain `GET path` with.
    /// `router` is the one `serve` is given, so every layer's headers are there. Nothing is
    /// added when the router does not answer 200 (the path is then the router's alone).
    pub async fn add(
        &mut self,
        router: &Router,
        path: &str,
        body: impl Fn() -> Bytes + Send + Sync + 'static,
    ) {
        let mut req = Request::get(path)
            .body(Body::empty())
            .expect("a path is a valid URI");
        req.extensions_mut().insert(Probe);
        let Ok(res) = router.clone().oneshot(req).await;
        if res.status() != StatusCode::OK {
            tracing::debug!(path, status = %res.status(), "not answered before the router");
            return;
        }
        let mut head = res.headers().clone();
        for name in [
            REQUEST_ID,
            header::CONTENT_LENGTH.as_str(),
            header::DATE.as_str(),
        ] {
            head.remove(name);
        }
        Arc::get_mut(&mut self.entries)
            .expect("documents are added before they are served")
            .push(Entry {
                path: path.into(),
                head,
                body: Arc::new(body),
            });
    }

    /// The answer to `req` when it asks for one of the documents.
    pub(crate) fn answer<B>(&self, req: &Request<B>) -> Option<Response> {
        if self.entries.is_empty()
            || req.method() != Method::GET
            || req.uri().query().is_some()
            || req.headers().contains_key(header::ORIGIN)
        {
            return None;
        }
        let path = req.uri().path();
        let entry = self.entries.iter().find(|e| *e.path == *path)?;
        let start = Instant::now();
        let body = (entry.body)();
        let mut head = entry.head.clone();
        head.insert(header::CONTENT_LENGTH, body.len().into());
        let mut res = Response::new(Body::from(body));
        *res.headers_mut() = head;
        let id = match req.headers().get(REQUEST_ID) {
            Some(v) if crate::safe_request_id(v) => Some(v.clone()),
            _ => self
                .ids
                .clone()
                .make_request_id(req)
                .map(|id| id.into_header_value()),
        };
        if let Some(id) = id {
            tracing::info!(
                request_id = %id.to_str().unwrap_or("-"),
                method = %Method::GET,
                path = %path,
                status = 200,
                latency_ms = 0,
                "request"
            );
            res.headers_mut().insert(REQUEST_ID, id);
        }
        if let Some(m) = &self.metrics {
            m.request(&entry.path, "GET", 200, start.elapsed().as_secs_f64());
        }
        Some(res)
    }
}
