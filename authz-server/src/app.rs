//! Building and running the server: storage, keys, router, listener, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header;
use oauth_protocol::paths;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

use crate::client_id_documents::MetadataDocuments;
use crate::config::Config;
use crate::password_pool::PasswordPool;
use crate::routes;
use crate::signing_keys::Keys;
use crate::state::AppState;
use crate::store::Store;
use crate::throttle::Throttle;

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    documents: observe::Documents,
    state: AppState,
}

impl Application {
    /// Connects to the database (applying migrations), loads or creates the signing key and
    /// binds the listener. Port 0 picks a free port; see `local_addr`.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        crate::tls::install_crypto_provider();
        let store = Store::connect(&config.database_url).await?;
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))?;
        Self::with_parts(config, store, listener).await
    }

    pub async fn with_parts(
        config: Config,
        store: Store,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        Self::with_clock(config, store, listener, oauth_protocol::clock::system()).await
    }

    /// `with_parts` with the clock request handling uses (tests move it by hand).
    pub async fn with_clock(
        config: Config,
        store: Store,
        listener: TcpListener,
        clock: Arc<dyn oauth_protocol::clock::Clock>,
    ) -> anyhow::Result<Self> {
        for warning in config.warnings(listener.local_addr()?) {
            tracing::warn!("{warning}");
        }
        let keys = Keys::load(&store, config.access_token_ttl, clock.now()).await?;
        let documents = MetadataDocuments::new(
            config.cimd_allow_loopback,
            Duration::from_millis(config.cimd_timeout_ms),
            config.supported_scopes(),
        );
        let metrics = observe::Metrics::new();
        metrics.describe(
            "tokens_issued_total",
            "counter",
            "Access tokens issued, by grant type.",
        );
        metrics.describe("logins_total", "counter", "Successful sign-ins.");
        metrics.describe("logins_failed_total", "counter", "Failed sign-ins.");
        metrics.describe(
            "registrations_total",
            "counter",
            "Dynamic client registrations.",
        );
        for grant_type in [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            oauth_protocol::register::GRANT_DEVICE_CODE,
        ] {
            metrics.zero("tokens_issued_total", &[("grant_type", grant_type)]);
        }
        metrics.describe(
            "federation_logins_total",
            "counter",
            "Sign-ins through upstream providers, by provider and outcome.",
        );
        metrics.describe(
            "federation_links_total",
            "counter",
            "Identities linked at a first upstream sign-in, by provider and how.",
        );
        for up in &config.upstream {
            for outcome in [
                "signed_in",
                "linked",
                "no_account",
                "email_taken",
                "disabled",
            ] {
                metrics.zero(
                    "federation_logins_total",
                    &[("provider", &up.name), ("outcome", outcome)],
                );
            }
            for how in ["created", "email"] {
                metrics.zero(
                    "federation_links_total",
                    &[("provider", &up.name), ("mode", how)],
                );
            }
        }
        for name in ["logins_total", "logins_failed_total", "registrations_total"] {
            metrics.zero(name, &[]);
        }
        if config.is_https() && config.bind.ip().is_loopback() && !config.trust_forwarded_for {
            tracing::warn!(
                "an https issuer served on a loopback address is usually behind a reverse proxy: \
                 without trust_forwarded_for (AUTHZ_TRUST_FORWARDED_FOR=true) every client shares \
                 the proxy's address, and the per-address sign-in and registration limits apply to all of them at once"
            );
        }
        let resources = Arc::new(std::sync::RwLock::new(config.resource_servers.clone()));
        let config_login = (
            config.login_max_failures,
            config.login_max_failures_per_address,
            config.login_window,
            config.registrations_per_hour,
            config.login_max_failures_per_account,
        );
        let rate_limits = crate::throttle::RateLimits::per_minute(
            config.requests_per_minute_per_address,
            config.requests_per_minute_per_client,
        );
        let refresh_key = store
            .server_secret("refresh_rotation", &crate::ids::new_secret(), clock.now())
            .await?;
        let headless_user_id = match &config.headless_user {
            None => None,
            Some(name) => {
                let user = store
                    .user_by_username(name)
                    .await?
                    .filter(|u| u.disabled == 0)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "headless_user {name:?} is not an enabled user: create it first"
                        )
                    })?;
                tracing::warn!(
                    user = %name,
                    "HEADLESS MODE: every valid authorization request is approved as this user, \
                     without login or consent. For testing MCP clients only; never in production."
                );
                Some(user.id)
            }
        };
        let upstream_timeout = Duration::from_millis(config.upstream_timeout_ms);
        let state = AppState::new(crate::state::Shared {
            store,
            keys,
            config: Arc::new(config),
            documents,
            metrics: metrics.clone(),
            resources,
            headless_user_id,
            passwords: PasswordPool::for_this_machine(),
            login_by_user: Throttle::new(
                config_login.0,
                Duration::from_secs(config_login.2),
                100_000,
            ),
            login_by_address: Throttle::new(
                config_login.1,
                Duration::from_secs(config_login.2),
                100_000,
            ),
            login_by_account: Throttle::new(
                config_login.4,
                Duration::from_secs(config_login.2),
                100_000,
            ),
            registrations: Throttle::quota(config_login.3, Duration::from_secs(3600), 100_000),
            rate_limits,
            device_codes: Throttle::new(10, Duration::from_secs(900), 100_000),
            upstreams: crate::upstream::Upstreams::new(metrics.clone(), upstream_timeout),
            providers: Arc::default(),
            upstream_starts: Throttle::quota(30, Duration::from_secs(600), 100_000),
            refresh_key: Arc::new(refresh_key.into_bytes()),
            clock,
            metadata_body: Arc::default(),
        });
        state.reload_resource_servers().await?;
        state.reload_providers().await?;
        let mut router = routes::router(state.clone()).merge(health(state.clone()));
        if state.config.metrics_bind.is_none() {
            router = router.merge(observe::metrics_route(metrics.clone(), String::new));
        }
        let routed = observe::layers(router, metrics.clone());
        let router = observe::around(
            tower::ServiceBuilder::new()
                // Every answer here is quick; one that is not is a stuck database.
                .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    Duration::from_secs(30),
                ))
                .map_response(axum::response::IntoResponse::into_response)
                .layer(RequestBodyLimitLayer::new(64 * 1024))
                .layer(SetSensitiveRequestHeadersLayer::new([
                    header::AUTHORIZATION,
                    header::COOKIE,
                ]))
                .service(routed),
        );
        let mut documents = observe::Documents::new(metrics);
        let metadata = state.clone();
        documents
            .add(&router, paths::AS_METADATA, move || {
                routes::metadata::body(&metadata)
            })
            .await;
        let jwks = state.clone();
        documents
            .add(&router, paths::JWKS, move || {
                jwks.keys.jwks_body(jwks.now())
            })
            .await;
        Ok(Self {
            listener,
            router,
            documents,
            state,
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

    pub fn router(&self) -> axum::Router {
        self.router.clone()
    }

    /// Serves until `shutdown` completes; in-flight requests are allowed to finish.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // Once a minute: pick up keys rotated by the admin command or by another instance,
        // and delete rows that have expired.
        let (keys, store, state) = (
            self.state.keys.clone(),
            self.state.store.clone(),
            self.state.clone(),
        );
        // Every second: notice revocations and client changes committed by other processes.
        let store_changes = self.state.store.clone();
        let changes = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Err(e) = store_changes.poll_changes().await {
                    tracing::warn!(error = %e, "polling for revocations failed");
                }
            }
        });
        let reload = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = keys.reload(&store).await {
                    tracing::warn!(error = %e, "reloading signing keys failed");
                }
                if let Err(e) = state.reload_resource_servers().await {
                    tracing::warn!(error = %e, "reloading resource servers failed");
                }
                if let Err(e) = state.reload_providers().await {
                    tracing::warn!(error = %e, "reloading upstream providers failed");
                }
                let now = state.now();
                let days = state.config.audit_retention_days;
                let audit_before = (days > 0).then(|| now - days * 24 * 3600);
                let unused_before = now - state.config.unused_client_ttl;
                if let Err(e) = store.purge_expired(now, audit_before, unused_before).await {
                    tracing::warn!(error = %e, "purging expired rows failed");
                }
            }
        });
        let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics = match self.state.config.metrics_bind {
            Some(addr) => {
                let listener = TcpListener::bind(addr).await?;
                let router = observe::metrics_route(self.state.metrics.clone(), String::new);
                Some(tokio::spawn(observe::serve(listener, router, async move {
                    let _ = metrics_stopped.await;
                })))
            }
            None => None,
        };
        let result =
            observe::serve_documents(self.listener, self.router, self.documents, shutdown).await;
        let _ = stop_metrics.send(());
        if let Some(m) = metrics {
            let _ = m.await;
        }
        reload.abort();
        changes.abort();
        self.state.store.close().await;
        result
    }
}

/// `/healthz`: the process serves. `/readyz`: and its database answers.
fn health(state: AppState) -> axum::Router {
    use axum::http::StatusCode;
    use axum::routing::get;
    axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(
                |axum::extract::State(state): axum::extract::State<AppState>| async move {
                    match state.store.ping().await {
                        Ok(()) => (StatusCode::OK, "ready"),
                        Err(e) => {
                            tracing::warn!(error = %e, "database unreachable");
                            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
                        }
                    }
                },
            ),
        )
        .with_state(state)
}

pub use observe::shutdown_signal;
