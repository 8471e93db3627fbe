//! The gateway: OAuth in front of MCP servers that have none. Each `[[upstream]]` is served
//! at `/<name>/mcp` as a protected resource of its own (its RFC 9728 metadata, its audience
//! at the authorization server), through the same bearer checks as `/mcp`; calls are
//! relayed by `relay`, with `policy` deciding what each caller may see and call, and
//! `identity` telling the upstream who is calling without ever passing on the token.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub mod client;
pub mod connect;
mod handler;
pub mod identity;
pub mod policy;
pub mod relay;
pub mod settings;

pub use policy::Policy;
pub use settings::Upstream;

use crate::introspection::{Introspector, Principal};
use crate::state::AppState;
use crate::store::GatewayCall;

/// One upstream, shared by all its sessions.
pub struct Gateway {
    pub settings: Upstream,
    pub policy: Policy,
    pub signer: identity::Signer,
    pub sessions: Arc<tokio::sync::Semaphore>,
    /// The shared child of a `stateless` stdio upstream.
    pub shared: Arc<tokio::sync::Mutex<Option<Arc<connect::Connection>>>>,
    pub http: reqwest::Client,
    state: AppState,
}

/// A random id: 128 bits, URL-safe.
pub fn new_id() -> String {
    use base64::Engine;
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the OS random source failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Gateway {
    /// One tool call for the audit trail and the metrics. A failure to store it is
    /// logged, never the caller's problem.
    pub async fn record_call(
        &self,
        p: &Principal,
        tool: &str,
        arguments: Option<serde_json::Map<String, Value>>,
        outcome: &str,
        started: Instant,
    ) {
        let seconds = started.elapsed().as_secs_f64();
        // A name the upstream refused comes from the client, not from the upstream's list:
        // it is not a label, so that made-up names cannot grow the metrics without bound.
        let label = if outcome == "failed" {
            "(refused or failed)"
        } else {
            tool
        };
        let labels = [
            ("upstream", self.settings.name.as_str()),
            ("tool", label),
            ("outcome", outcome),
        ];
        self.state.metrics.inc("gateway_calls_total", &labels);
        self.state.metrics.observe(
            "gateway_call_seconds",
            &[("upstream", self.settings.name.as_str()), ("tool", label)],
            seconds,
        );
        let call = GatewayCall {
            id: new_id(),
            at: self.state.clock.now(),
            upstream: self.settings.name.clone(),
            tool: tool.chars().take(200).collect(),
            user_sub: p.sub.clone(),
            client_id: p.client_id.clone(),
            outcome: outcome.to_owned(),
            duration_ms: (seconds * 1000.0) as i64,
            arguments: self
                .settings
                .audit_arguments
                .then(|| Value::Object(arguments.unwrap_or_default()).to_string()),
        };
        tracing::info!(
            upstream = %self.settings.name,
            tool,
            sub = %p.sub,
            client_id = %p.client_id,
            outcome,
            ms = call.duration_ms,
            "gateway tool call"
        );
        self.state.store.record_gateway_call(call);
    }
}

/// The state of one upstream's endpoint: this server's, with that endpoint's resource,
/// introspection credentials and policy.
fn endpoint_state(state: &AppState, up: &Upstream) -> AppState {
    let mut config = (*state.config).clone();
    config.resource = state.config.upstream_resource(&up.name);
    config.resource_name = up.label().to_owned();
    config.client_id.clone_from(&up.client_id);
    config.client_secret = up.client_secret.clone();
    let mut s = (**state).clone();
    s.introspector = Introspector::new(&config, state.http.clone(), state.clock.clone());
    s.config = Arc::new(config);
    s.policy = Some(Arc::new(Policy::new(up.rules.clone())));
    AppState::new(s)
}

/// The routes of every upstream: metadata, the protected MCP endpoint, and the JWKS of the
/// identity tokens.
pub async fn router(
    state: &AppState,
    mcp_config: StreamableHttpServerConfig,
    _shutdown: CancellationToken,
) -> anyhow::Result<Router> {
    let mut router = Router::new();
    let upstreams = &state.config.upstream;
    if upstreams.is_empty() {
        return Ok(router);
    }
    describe(&state.metrics);
    let issuer = state.config.resource_url().origin().ascii_serialization();
    let signer = identity::Signer::load(&state.store, issuer, state.clock.now()).await?;
    let jwks = Arc::new(signer.jwks().clone());
    router = router.route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json((*jwks).clone()) }
        }),
    );
    for up in upstreams {
        let s = endpoint_state(state, up);
        let gateway = Arc::new(Gateway {
            settings: up.clone(),
            policy: Policy::new(up.rules.clone()),
            signer: signer.clone(),
            sessions: Arc::new(tokio::sync::Semaphore::new(up.max_sessions)),
            shared: Arc::default(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            state: s.clone(),
        });
        let path = s.config.mcp_path();
        let service = StreamableHttpService::new(
            move || Ok(relay::Relay::new(gateway.clone())),
            Arc::new(LocalSessionManager::default()),
            mcp_config.clone(),
        );
        let endpoint =
            crate::endpoint::Endpoint::new(s.clone(), service, crate::endpoint::Inside::Nothing);
        let protected = Router::new().nest_service(&path, endpoint);
        router = router
            .merge(crate::metadata::endpoint_router(&path).with_state(s.clone()))
            .merge(protected);
        tracing::info!(upstream = %up.name, target = %up.target(), resource = %s.config.resource, "gateway endpoint");
    }
    Ok(router)
}

fn describe(metrics: &observe::Metrics) {
    metrics.describe(
        "gateway_calls_total",
        "counter",
        "Tool calls through the gateway, by upstream, tool and outcome.",
    );
    metrics.describe(
        "gateway_call_seconds",
        "histogram",
        "Latency of tool calls through the gateway, by upstream and tool.",
    );
}

/// `/readyz` lines for the upstreams: a stdio command that can be found, an HTTP server
/// that answers (anything but a 5xx).
pub async fn readiness(state: &AppState) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for up in &state.config.upstream {
        let ok = match (&up.command, &up.url) {
            (Some(cmd), _) => settings::find_program(cmd).is_some(),
            (None, Some(url)) => state
                .http
                .get(url)
                .send()
                .await
                .is_ok_and(|r| !r.status().is_server_error()),
            _ => false,
        };
        out.push((up.name.clone(), ok));
    }
    out
}
