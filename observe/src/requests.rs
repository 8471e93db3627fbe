//! The metrics of every request, counted without allocating: a (route, method, status)
//! series is looked up in the registry once, then found again by a hash of its labels under
//! a read lock. Request ids come from a counter instead of the system's random source.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderValue, Request};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use tower_http::request_id::{MakeRequestId, RequestId};

use crate::Metrics;

struct Series {
    route: Box<str>,
    method: &'static str,
    status: u16,
    count: Counter,
    latency: Histogram,
}

#[derive(Default)]
pub struct RequestSeries {
    by_hash: RwLock<HashMap<u64, Vec<Series>>>,
}

fn key(route: &str, method: &str, status: u16) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (route, method, status).hash(&mut h);
    h.finish()
}

impl Metrics {
    /// Counts one answered request and its latency.
    pub fn request(&self, route: &str, method: &'static str, status: u16, seconds: f64) {
        let k = key(route, method, status);
        let series = &self.inner.requests;
        {
            let map = series.by_hash.read().expect("metrics lock");
            if let Some(s) = map.get(&k).and_then(|v| {
                v.iter()
                    .find(|s| &*s.route == route && s.method == method && s.status == status)
            }) {
                s.count.inc();
                s.latency.observe(seconds);
                return;
            }
        }
        let status_text = status.to_string();
        self.inc(
            "http_requests_total",
            &[
                ("route", route),
                ("method", method),
                ("status", &status_text),
            ],
        );
        self.observe(
            "http_request_duration_seconds",
            &[("route", route)],
            seconds,
        );
        let (Some(count), Some(latency)) = (
            self.counter_handle(
                "http_requests_total",
                &[
                    ("route", route),
                    ("method", method),
                    ("status", &status_text),
                ],
            ),
            self.histogram_handle("http_request_duration_seconds", &[("route", route)]),
        ) else {
            return;
        };
        series
            .by_hash
            .write()
            .expect("metrics lock")
            .entry(k)
            .or_default()
            .push(Series {
                route: route.into(),
                method,
                status,
                count,
                latency,
            });
    }
}

/// `x-request-id` values unique within this process and across its restarts: a random
/// prefix drawn at start, then a counter.
#[derive(Clone)]
pub struct CountingRequestId {
    prefix: std::sync::Arc<str>,
    next: std::sync::Arc<AtomicU64>,
}

impl Default for CountingRequestId {
    fn default() -> Self {
        let seed = std::collections::hash_map::RandomState::new();
        let mut h = seed.build_hasher();
        std::time::SystemTime::now().hash(&mut h);
        std::process::id().hash(&mut h);
        Self {
            prefix: format!("{:016x}", h.finish()).into(),
            next: Default::default(),
        }
    }
}

impl MakeRequestId for CountingRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n:x}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

/// The outer layer of every request, in one service instead of five: the request id (a
/// caller's kept when it is safe, else one made up; echoed on the response), a tracing span
/// carrying it with one log line per answered request, and the request's metrics (by
/// matched route, never the raw path, which may carry ids; the fallback is not counted).
#[derive(Clone)]
pub struct Outer<S> {
    inner: S,
    ids: CountingRequestId,
    metrics: Metrics,
}

#[derive(Clone)]
pub struct OuterLayer {
    ids: CountingRequestId,
    metrics: Metrics,
}

impl OuterLayer {
    pub fn new(metrics: Metrics) -> Self {
        Self {
            ids: CountingRequestId::default(),
            metrics,
        }
    }
}

impl<S> tower::Layer<S> for OuterLayer {
    type Service = Outer<S>;

    fn layer(&self, inner: S) -> Outer<S> {
        Outer {
            inner,
            ids: self.ids.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

/// Any token is a valid HTTP method: only the standard ones become label values, so
/// requests cannot create new series.
fn method_label(method: &axum::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

pub(crate) const REQUEST_ID: &str = "x-request-id";

impl<S> tower::Service<axum::extract::Request> for Outer<S>
where
    S: tower::Service<axum::extract::Request, Response = axum::response::Response>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = axum::response::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: axum::extract::Request) -> Self::Future {
        if !req
            .headers()
            .get(REQUEST_ID)
            .is_some_and(crate::safe_request_id)
        {
            let id = self.ids.make_request_id(&req);
            match id {
                Some(id) => req.headers_mut().insert(REQUEST_ID, id.into_header_value()),
                None => req.headers_mut().remove(REQUEST_ID),
            };
        }
        let id = req.headers().get(REQUEST_ID).cloned();
        let span = tracing::info_span!(
            "request",
            request_id = %id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-"),
            method = %req.method(),
            path = %req.uri().path()
        );
        // The ready service answers this request; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let start = std::time::Instant::now();
        let probe = req.extensions().get::<crate::documents::Probe>().is_some();
        let counted = req
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .filter(|_| !probe)
            .map(|route| {
                (
                    route.clone(),
                    method_label(req.method()),
                    self.metrics.clone(),
                )
            });
        Box::pin(tracing::Instrument::instrument(
            async move {
                let mut res = inner.call(req).await?;
                if probe {
                    return Ok(res);
                }
                if let Some((route, method, metrics)) = counted {
                    metrics.request(
                        route.as_str(),
                        method,
                        res.status().as_u16(),
                        start.elapsed().as_secs_f64(),
                    );
                }
                tracing::info!(
                    status = res.status().as_u16(),
                    latency_ms = start.elapsed().as_millis() as u64,
                    "request"
                );
                if let Some(id) = id
                    && !res.headers().contains_key(REQUEST_ID)
                {
                    res.headers_mut().insert(REQUEST_ID, id);
                }
                Ok(res)
            },
            span,
        ))
    }
}
