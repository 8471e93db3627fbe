//! Observability shared by both servers: tracing set-up (human or JSON lines on stderr), a
//! request id on every request and log line, and Prometheus metrics (`prometheus-client`:
//! counters and latency histograms, OpenMetrics text).
//!
//! Nothing here ever records a header value other than the request id, so tokens, cookies
//! and secrets cannot reach the logs through it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;

mod documents;
mod lifecycle;
mod requests;
pub use documents::Documents;
use lifecycle::Busy;
pub use lifecycle::shutdown_signal;

/// Logs to stderr so that stdout carries only what scripts read. `RUST_LOG` filters.
pub fn init_tracing(format: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,rmcp=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        // Colour codes only for a person at a terminal, never into files or log collectors.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // A second initialisation (tests start several servers in one process) is harmless.
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

type Labels = Vec<(String, String)>;

const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

#[derive(Default)]
struct Inner {
    registry: RwLock<Registry>,
    counters: RwLock<HashMap<&'static str, Family<Labels, Counter>>>,
    histograms: RwLock<HashMap<&'static str, HistogramFamily>>,
    requests: requests::RequestSeries,
}

/// A Prometheus registry (`prometheus-client`), by metric name. Cheap to clone. Counting
/// takes a read lock on the name table and the family's own lock; nothing is serialised
/// across metrics.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Inner>,
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl Metrics {
    pub fn new() -> Self {
        let m = Self::default();
        m.describe(
            "http_requests_total",
            "counter",
            "HTTP requests by route, method and status.",
        );
        m.describe(
            "http_request_duration_seconds",
            "histogram",
            "HTTP request latency by route.",
        );
        m
    }

    /// Registers a metric: `kind` is `counter` (name ending in `_total`) or `histogram`.
    pub fn describe(&self, name: &'static str, kind: &'static str, help: &'static str) {
        let mut registry = self.inner.registry.write().expect("metrics lock");
        if kind == "histogram" {
            let mut map = self.inner.histograms.write().expect("metrics lock");
            if !map.contains_key(name) {
                let family = HistogramFamily::new_with_constructor(histogram as fn() -> Histogram);
                registry.register(name, help, family.clone());
                map.insert(name, family);
            }
        } else {
            let mut map = self.inner.counters.write().expect("metrics lock");
            if !map.contains_key(name) {
                let family = Family::<Labels, Counter>::default();
                // The library adds `_total` to counters itself.
                registry.register(name.trim_end_matches("_total"), help, family.clone());
                map.insert(name, family);
            }
        }
    }

    /// Exports `name` with these labels at 0 before anything is counted, so a dashboard
    /// or an alert sees the series from the start instead of a gap.
    pub fn zero(&self, name: &'static str, pairs: &[(&'static str, &str)]) {
        self.add(name, pairs, 0);
    }

    pub fn inc(&self, name: &'static str, pairs: &[(&'static str, &str)]) {
        self.add(name, pairs, 1);
    }

    pub fn add(&self, name: &'static str, pairs: &[(&'static str, &str)], n: u64) {
        // One read lock on the usual path; an undeclared name is registered once.
        if let Some(f) = self.inner.counters.read().expect("metrics lock").get(name) {
            f.get_or_create(&labels(pairs)).inc_by(n);
            return;
        }
        self.describe(name, "counter", "");
        self.add(name, pairs, n);
    }

    pub fn observe(&self, name: &'static str, pairs: &[(&'static str, &str)], seconds: f64) {
        if let Some(f) = self
            .inner
            .histograms
            .read()
            .expect("metrics lock")
            .get(name)
        {
            f.get_or_create(&labels(pairs)).observe(seconds);
            return;
        }
        self.describe(name, "histogram", "");
        self.observe(name, pairs, seconds);
    }

    fn counter_handle(&self, name: &str, pairs: &[(&'static str, &str)]) -> Option<Counter> {
        let map = self.inner.counters.read().expect("metrics lock");
        Some(map.get(name)?.get_or_create(&labels(pairs)).clone())
    }

    fn histogram_handle(&self, name: &str, pairs: &[(&'static str, &str)]) -> Option<Histogram> {
        let map = self.inner.histograms.read().expect("metrics lock");
        Some(map.get(name)?.get_or_create(&labels(pairs)).clone())
    }

    /// The value of a counter (for tests).
    pub fn counter(&self, name: &'static str, pairs: &[(&'static str, &str)]) -> u64 {
        self.inner
            .counters
            .read()
            .expect("metrics lock")
            .get(name)
            .map_or(0, |f| f.get_or_create(&labels(pairs)).get())
    }

    /// OpenMetrics text, with `extra` (families kept elsewhere) before the closing `# EOF`.
    pub fn render_with(&self, extra: &str) -> String {
        let mut out = String::new();
        let registry = self.inner.registry.read().expect("metrics lock");
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        let body = out.strip_suffix("# EOF\n").unwrap_or(&out);
        format!("{body}{extra}# EOF\n")
    }

    pub fn render(&self) -> String {
        self.render_with("")
    }
}

/// One counter family in OpenMetrics text, for values kept outside the registry.
pub fn counter_text(name: &str, help: &str, value: u64) -> String {
    let family = name.trim_end_matches("_total");
    format!("# HELP {family} {help}\n# TYPE {family} counter\n{family}_total {value}\n")
}

/// `GET /metrics` with the registry, plus whatever `extra` renders (values kept elsewhere).
pub fn metrics_route<S: Clone + Send + Sync + 'static>(
    metrics: Metrics,
    extra: impl Fn() -> String + Clone + Send + Sync + 'static,
) -> Router<S> {
    Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let body = metrics.render_with(&extra());
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        ),
                    )],
                    body,
                )
                    .into_response()
            }
        }),
    )
}

/// The outer layers every router gets: request ids (taken from `x-request-id` or made up,
/// echoed on the response), a tracing span per request carrying that id, and metrics.
pub fn layers(router: Router, metrics: Metrics) -> Router {
    router.layer(requests::OuterLayer::new(metrics))
}

/// A router whose every request goes through `service`, a stack of layers around the routed
/// part. `Router::layer` wraps each route in its own boxed copy of a layer, cloned and boxed
/// again on every request; a stack built once around the whole router is neither.
pub fn around<S>(service: S) -> Router
where
    S: tower::Service<axum::extract::Request, Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Response: axum::response::IntoResponse,
    S::Future: Send + 'static,
{
    Router::new().fallback_service(service)
}

/// Longest `x-request-id` taken from a caller.
const MAX_REQUEST_ID: usize = 64;

/// A caller's `x-request-id` is kept only when short and made of `[A-Za-z0-9._-]`;
/// otherwise a new one is made up, so logs never carry what a caller wrote.
fn safe_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_REQUEST_ID
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// How long a client may take to send a request's headers, and then its body.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves `router` on `listener` over HTTP/1.1 until `shutdown` completes, then lets the
/// requests in flight finish. Unlike `axum::serve` it bounds how long a client may take to
/// send its headers (a slow-headers client would otherwise hold a connection forever),
/// sets `TCP_NODELAY`, and gives handlers the peer address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_documents(listener, router, Documents::none(), shutdown).await
}

/// `serve`, with `documents` answered before the router.
pub async fn serve_documents(
    listener: tokio::net::TcpListener,
    router: Router,
    documents: Documents,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(
        listener,
        router,
        documents,
        shutdown,
        (HEADER_READ_TIMEOUT, BODY_READ_TIMEOUT),
    )
    .await
}

/// `serve_documents` with the two read timeouts (headers, then body) given.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    router: Router,
    documents: Documents,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    (header_timeout, body_timeout): (std::time::Duration, std::time::Duration),
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let documents = documents.clone();
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            // Requests this connection is answering: at shutdown a connection with none
            // (idle keep-alive, or headers only partly sent) is closed at once instead of
            // holding the process until its read timeout.
            let busy = Arc::new(AtomicUsize::new(0));
            let counted = busy.clone();
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    let guard = Busy::enter(&counted);
                    let answered = documents.answer(&req);
                    let router = router.clone();
                    // The request stays counted until its body is sent (or dropped).
                    async move {
                        use http_body_util::BodyExt;
                        let res = match answered {
                            Some(res) => res,
                            None => {
                                req.extensions_mut()
                                    .insert(axum::extract::ConnectInfo(peer));
                                let req = req.map(|body| {
                                    axum::body::Body::new(tower_http::timeout::TimeoutBody::new(
                                        body_timeout,
                                        body,
                                    ))
                                });
                                router.oneshot(req).await?
                            }
                        };
                        Ok::<_, std::convert::Infallible>(res.map(|body| {
                            axum::body::Body::new(body.map_frame(move |frame| {
                                let _held = &guard;
                                frame
                            }))
                        }))
                    }
                },
            );
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stop.wait_for(|s| *s) => {}
            }
            if busy.load(Ordering::Acquire) == 0 {
                return;
            }
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    #[tokio::test]
    async fn unknown_methods_share_one_label_and_odd_request_ids_are_replaced() {
        use tower::ServiceExt;
        let m = Metrics::new();
        let app = layers(
            Router::new().route("/x", axum::routing::any(|| async { "ok" })),
            m.clone(),
        );
        for method in ["GET", "FOO1", "FOO2", "X-ANYTHING"] {
            let req = Request::builder()
                .method(method)
                .uri("/x")
                .header("x-request-id", "sent id\"<script>")
                .body(axum::body::Body::empty())
                .unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
            assert!(!id.contains("sent"), "{id}");
        }
        let long = "a".repeat(MAX_REQUEST_ID + 1);
        let req = Request::builder()
            .uri("/x")
            .header("x-request-id", long.as_str())
            .body(axum::body::Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_ne!(res.headers()["x-request-id"], long.as_str());
        let text = m.render();
        assert!(text.contains(r#"method="OTHER""#), "{text}");
        assert!(!text.contains("FOO"), "{text}");
        let req = Request::builder()
            .uri("/x")
            .header("x-request-id", "abc-123.X_y")
            .body(axum::body::Body::empty())
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.headers()["x-request-id"], "abc-123.X_y");
    }

    /// A client that sends half its headers, or half its body, is cut off.
    #[tokio::test]
    async fn slow_headers_and_slow_bodies_time_out() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route(
            "/",
            axum::routing::post(|body: axum::body::Bytes| async move { body.len().to_string() }),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_with(
            listener,
            app,
            Documents::none(),
            async move {
                let _ = stopped.await;
            },
            (
                std::time::Duration::from_millis(300),
                std::time::Duration::from_millis(300),
            ),
        ));
        // Headers never finished: the server closes the connection.
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(5), c.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "the connection was closed");
        // Headers sent, body promised but never sent: an error answer, then close.
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(5), c.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "the connection was closed");
        let text = String::from_utf8_lossy(&buf);
        assert!(!text.contains("200 OK"), "{text}");
        // A prompt client is served.
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
        )
        .await
        .unwrap();
        let mut buf = Vec::new();
        c.read_to_end(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }

    /// Shutdown closes idle connections (kept alive, or with headers only begun) at once,
    /// and lets a request in flight finish and deliver its whole body.
    #[tokio::test]
    async fn shutdown_does_not_wait_for_idle_connections() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (entered, entered_rx) = tokio::sync::mpsc::channel::<()>(1);
        let app = Router::new()
            .route("/", axum::routing::get(|| async { "ok" }))
            .route(
                "/slow",
                axum::routing::get(move || {
                    let entered = entered.clone();
                    async move {
                        let _ = entered.send(()).await;
                        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                        "x".repeat(100_000)
                    }
                }),
            );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // Read timeouts far beyond the test's own limit: only closing idle connections
        // at once lets the server stop in time.
        let server = tokio::spawn(serve_with(
            listener,
            app,
            Documents::none(),
            async move {
                let _ = stopped.await;
            },
            (
                std::time::Duration::from_secs(600),
                std::time::Duration::from_secs(600),
            ),
        ));
        let mut kept_alive = tokio::net::TcpStream::connect(addr).await.unwrap();
        kept_alive
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = kept_alive.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        let mut partial = tokio::net::TcpStream::connect(addr).await.unwrap();
        partial.write_all(b"GET / HT").await.unwrap();
        let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut busy = tokio::net::TcpStream::connect(addr).await.unwrap();
        busy.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut entered_rx = entered_rx;
        entered_rx.recv().await.unwrap();
        let _ = stop.send(());
        let finished = tokio::time::timeout(std::time::Duration::from_secs(30), server).await;
        assert!(
            finished.is_ok(),
            "the server stopped without waiting for idle clients"
        );
        let mut answer = Vec::new();
        busy.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with(&"x".repeat(1000)),
            "the request in flight was answered in full"
        );
    }

    #[test]
    fn renders_text_format() {
        let m = Metrics::new();
        m.describe(
            "tokens_issued_total",
            "counter",
            "Tokens issued by grant type.",
        );
        m.inc(
            "tokens_issued_total",
            &[("grant_type", "authorization_code")],
        );
        m.inc(
            "tokens_issued_total",
            &[("grant_type", "authorization_code")],
        );
        m.observe(
            "http_request_duration_seconds",
            &[("route", "/token")],
            0.003,
        );
        let text = m.render();
        assert!(text.contains("# TYPE tokens_issued counter\n"), "{text}");
        assert!(text.contains("tokens_issued_total{grant_type=\"authorization_code\"} 2\n"));
        assert!(
            text.contains(
                "http_request_duration_seconds_bucket{le=\"0.005\",route=\"/token\"} 1\n"
            )
        );
        assert!(
            text.contains(
                "http_request_duration_seconds_bucket{le=\"0.001\",route=\"/token\"} 0\n"
            )
        );
        assert!(text.contains("http_request_duration_seconds_count{route=\"/token\"} 1\n"));
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(
            m.counter(
                "tokens_issued_total",
                &[("grant_type", "authorization_code")]
            ),
            2
        );
    }
}
