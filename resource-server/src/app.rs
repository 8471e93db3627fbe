//! Building and running the resource server: storage, the introspection client, the public
//! metadata routes and the protected MCP endpoint.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Method, header};
use moka::future::Cache;
use oauth_protocol::paths::PROTECTED_RESOURCE_METADATA;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

use crate::config::Config;
use crate::introspection::Introspector;
use crate::mcp::McpServer;
pub use crate::state::AppState;
use crate::store::Store;

pub struct Application {
    listener: TcpListener,
    router: Router,
    documents: observe::Documents,
    state: AppState,
    shutdown: CancellationToken,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))?;
        let store = Store::connect(&config.database_url).await?;
        Self::with_parts(config, store, listener).await
    }

    pub async fn with_parts(
        config: Config,
        store: Store,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        Self::with_clock(config, store, listener, oauth_protocol::clock::system()).await
    }

    /// `with_parts` with the clock token checks use (tests move it by hand).
    pub async fn with_clock(
        config: Config,
        store: Store,
        listener: TcpListener,
        clock: Arc<dyn oauth_protocol::clock::Clock>,
    ) -> anyhow::Result<Self> {
        crate::install_crypto_provider();
        for warning in config.warnings(listener.local_addr()?) {
            tracing::warn!("{warning}");
        }
        if config.fixtures {
            tracing::warn!(
                "fixtures on: the MCP conformance suite's test tools, resources and prompts are served (for conformance runs only)"
            );
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let state = AppState::new(crate::state::Shared {
            introspector: Introspector::new(&config, http.clone(), clock.clone()),
            clock,
            metrics: observe::Metrics::new(),
            http,
            sessions: Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(24 * 3600))
                .build(),
            config: Arc::new(config),
            store,
            policy: None,
        });
        let shutdown = CancellationToken::new();
        let router = router(state.clone(), shutdown.clone()).await?;
        let mut documents = observe::Documents::new(state.metrics.clone());
        let body: axum::body::Bytes = serde_json::to_vec(&crate::metadata::document(&state))
            .expect("metadata serialises")
            .into();
        let mcp_path = state.config.mcp_path();
        for path in [
            format!("{PROTECTED_RESOURCE_METADATA}{mcp_path}"),
            PROTECTED_RESOURCE_METADATA.to_owned(),
        ] {
            let body = body.clone();
            documents.add(&router, &path, move || body.clone()).await;
        }
        Ok(Self {
            listener,
            router,
            documents,
            state,
            shutdown,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes; in-flight requests finish, MCP streams are closed.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let token = self.shutdown.clone();
        // Once at start-up: wrong introspection credentials are a configuration error the
        // operator should see now, not as 503s on the first MCP request.
        let introspector = self.state.introspector.clone();
        let check = tokio::spawn(async move {
            for attempt in 0..10 {
                match introspector.probe_credentials().await {
                    Ok(()) => return tracing::info!("introspection credentials accepted"),
                    Err(crate::introspection::Unavailable::CredentialsRefused) => {
                        return tracing::error!(
                            "the authorization server refused this server's introspection credentials: \
                             check RS_CLIENT_ID and RS_CLIENT_SECRET against its resource server entry"
                        );
                    }
                    Err(e) if attempt == 9 => {
                        return tracing::warn!(error = %e, "could not check the introspection credentials");
                    }
                    Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            }
        });
        let feed = (self.state.config.revocation_poll > 0).then(|| {
            let follower = crate::revocations::Follower::new(
                self.state.introspector.clone(),
                self.state.config.revocation_feed(),
            );
            tokio::spawn(follower.run(Duration::from_secs(self.state.config.revocation_poll)))
        });
        // The gateway's audit is kept `audit_retention_days`, purged hourly.
        let purge = {
            let (store, clock, days) = (
                self.state.store.clone(),
                self.state.clock.clone(),
                self.state.config.audit_retention_days,
            );
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(3600));
                loop {
                    tick.tick().await;
                    if days > 0
                        && let Err(e) = store.purge_gateway_calls(clock.now() - days * 86_400).await
                    {
                        tracing::warn!(error = %e, "purging the gateway audit failed");
                    }
                }
            })
        };
        let metrics = match self.state.config.metrics_bind {
            Some(addr) => {
                let listener = TcpListener::bind(addr).await?;
                let stats = self.state.introspector.stats.clone();
                let router = observe::metrics_route(self.state.metrics.clone(), move || {
                    render_stats(&stats)
                });
                let token = token.clone();
                Some(tokio::spawn(observe::serve(listener, router, async move {
                    token.cancelled().await
                })))
            }
            None => None,
        };
        // observe::serve sets TCP_NODELAY: without it every SSE answer waits for the
        // delayed ACK (~40 ms).
        let result =
            observe::serve_documents(self.listener, self.router, self.documents, async move {
                shutdown.await;
                token.cancel();
            })
            .await;
        if let Some(m) = metrics {
            let _ = m.await;
        }
        check.abort();
        purge.abort();
        if let Some(feed) = feed {
            feed.abort();
        }
        self.state.store.close().await;
        result
    }
}

pub async fn router(state: AppState, shutdown: CancellationToken) -> anyhow::Result<Router> {
    let config = &state.config;
    let resource = config.resource_url();
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if let Some(host) = resource.host_str() {
        hosts.push(host.trim_matches(['[', ']']).to_owned());
    }
    hosts.extend(config.allowed_hosts.iter().cloned());
    let mcp_config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_cancellation_token(shutdown.clone());
    let gateway = crate::gateway::router(&state, mcp_config.clone(), shutdown).await?;
    let server = McpServer::new(state.store.clone(), config.fixtures, state.clock.clone());
    // Called for each new session (and each stateless request): per-session state starts
    // fresh. With fixtures the conformance wrapper is served instead of the plain server.
    let sessions = Arc::new(LocalSessionManager::default());
    let inside = if config.fixtures {
        crate::endpoint::Inside::JsonAndFixtures
    } else {
        crate::endpoint::Inside::Json
    };
    let protected = if config.fixtures {
        let service = StreamableHttpService::new(
            move || {
                Ok(crate::mcp::conformance::server::Conformance(
                    server.for_session(),
                ))
            },
            sessions,
            mcp_config,
        );
        let endpoint = crate::endpoint::Endpoint::new(state.clone(), service, inside);
        Router::new().nest_service(&config.mcp_path(), endpoint)
    } else {
        let service =
            StreamableHttpService::new(move || Ok(server.for_session()), sessions, mcp_config);
        let endpoint = crate::endpoint::Endpoint::new(state.clone(), service, inside);
        Router::new().nest_service(&config.mcp_path(), endpoint)
    };
    // Preflights succeed only for origins the endpoint itself would serve.
    let origins = state.config.clone();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origin.to_str().is_ok_and(|o| origins.origin_allowed(o))
        }))
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("mcp-protocol-version"),
            HeaderName::from_static("mcp-session-id"),
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("mcp-method"),
            HeaderName::from_static("mcp-name"),
        ])
        .expose_headers([
            header::WWW_AUTHENTICATE,
            HeaderName::from_static("mcp-session-id"),
        ])
        .max_age(Duration::from_secs(3600));
    let stats = state.introspector.stats.clone();
    let router = Router::new()
        .merge(crate::metadata::router(&config.mcp_path()).with_state(state.clone()))
        .merge(protected)
        .merge(gateway)
        .merge(health(state.clone()))
        .fallback(|| async {
            (
                axum::http::StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({"error": "not_found"})),
            )
        });
    let metrics = observe::metrics_route(state.metrics.clone(), move || render_stats(&stats));
    let router = match config.metrics_bind {
        Some(_) => router,
        None => router.merge(metrics),
    };
    let routed = observe::layers(router, state.metrics.clone());
    Ok(observe::around(
        tower::ServiceBuilder::new()
            .layer(SetSensitiveRequestHeadersLayer::new([
                header::AUTHORIZATION,
                header::COOKIE,
            ]))
            .layer(cors)
            // Until the response starts: an MCP stream answers its headers at once, so this
            // bounds only a handler that never answers.
            .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                Duration::from_secs(300),
            ))
            .service(routed),
    ))
}

/// Introspection cache counters in the Prometheus text format.
fn render_stats(stats: &crate::introspection::Stats) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::new();
    for (name, help, value) in [
        (
            "introspection_cache_hits_total",
            "Token checks answered from the cache.",
            stats.hits.load(Relaxed),
        ),
        (
            "introspection_cache_misses_total",
            "Token checks not in the cache.",
            stats.misses.load(Relaxed),
        ),
        (
            "introspection_errors_total",
            "Token checks that could not reach the authorization server.",
            stats.errors.load(Relaxed),
        ),
        (
            "introspection_calls_total",
            "Introspection requests sent.",
            stats.calls.load(Relaxed),
        ),
        (
            "introspection_refused_locally_total",
            "Tokens refused by the JWKS check without a call.",
            stats.refused_locally.load(Relaxed),
        ),
        (
            "revocation_feed_events_total",
            "Revocation feed events applied to the cache.",
            stats.revocations.load(Relaxed),
        ),
        (
            "revocation_feed_errors_total",
            "Reads of the revocation feed that failed.",
            stats.feed_errors.load(Relaxed),
        ),
    ] {
        out.push_str(&observe::counter_text(name, help, value));
    }
    out
}

/// `/healthz`: the process serves. `/readyz`: its database answers and so does the
/// authorization server.
fn health(state: AppState) -> Router {
    use axum::http::StatusCode;
    use axum::routing::get;
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(
                |axum::extract::State(state): axum::extract::State<AppState>| async move {
                    if let Err(e) = state.store.ping().await {
                        tracing::warn!(error = %e, "database unreachable");
                        return (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "database unreachable".to_owned(),
                        );
                    }
                    let url = state.config.jwks_uri();
                    match state.http.get(url).send().await {
                        Ok(r) if r.status().is_success() => {}
                        _ => {
                            return (
                                StatusCode::SERVICE_UNAVAILABLE,
                                "authorization server unreachable".to_owned(),
                            );
                        }
                    }
                    // Upstreams are reported, not required: the rest keeps serving.
                    let mut body = String::from("ready");
                    for (name, ok) in crate::gateway::readiness(&state).await {
                        body.push_str(&format!(
                            "\nupstream {name}: {}",
                            if ok { "ok" } else { "unreachable" }
                        ));
                    }
                    (StatusCode::OK, body)
                },
            ),
        )
        .with_state(state)
}

pub use observe::shutdown_signal;
