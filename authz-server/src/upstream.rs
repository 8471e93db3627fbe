//! What this server needs from an upstream provider: an OpenID Provider's discovery
//! document and signing keys (cached for an hour; fetched again once when a token names an
//! unknown key), or a plain OAuth 2.0 provider's configured endpoints. Only the configured
//! issuer and endpoints are ever fetched, and a redirect is never followed.

use std::sync::Arc;
use std::time::Duration;

use oauth_protocol::jose::VerifyingKey;
use serde::Deserialize;

use crate::upstream_config::{Kind, Upstream, is_tenant_template};

/// The parts of an OpenID Provider's metadata (OpenID Connect Discovery §3) used here; for an
/// `oauth2` provider, its configured endpoints and no keys.
#[derive(Clone)]
pub struct Provider {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    /// RFC 9207: the provider puts `iss` on its redirects.
    pub iss_parameter: bool,
    /// OpenID Connect Core §5.3, for claims the id_token leaves out.
    pub userinfo_endpoint: Option<String>,
    pub keys: Arc<Vec<VerifyingKey>>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
}

/// Why an upstream could not be used; shown to the person as "could not reach X".
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("{0} could not be reached: {1}")]
    Unreachable(String, String),
    #[error("{0} answered something that is not what it should be: {1}")]
    Invalid(String, String),
}

#[derive(Clone)]
pub struct Upstreams {
    http: reqwest::Client,
    cache: moka::future::Cache<String, Provider>,
    metrics: observe::Metrics,
}

impl Upstreams {
    /// Latencies go to `federation_upstream_seconds{provider,endpoint}` in `metrics`; a call
    /// to a provider taking longer than `timeout` fails.
    pub fn new(metrics: observe::Metrics, timeout: Duration) -> Self {
        metrics.describe(
            "federation_upstream_seconds",
            "histogram",
            "Latency of calls to upstream providers, by provider and endpoint.",
        );
        Self {
            metrics,
            http: reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(5)))
                // GitHub's API refuses requests without one.
                .user_agent(concat!("mcp-authz/", env!("CARGO_PKG_VERSION")))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("HTTP client"),
            cache: moka::future::Cache::builder()
                .time_to_live(Duration::from_secs(3600))
                .max_capacity(64)
                .build(),
        }
    }
}

impl Upstreams {
    /// Records how long a call to `provider`'s `endpoint` took.
    pub fn observe(&self, provider: &str, endpoint: &str, started: std::time::Instant) {
        self.metrics.observe(
            "federation_upstream_seconds",
            &[("provider", provider), ("endpoint", endpoint)],
            started.elapsed().as_secs_f64(),
        );
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The provider's metadata and keys; `fresh` skips the cache (an unknown `kid`).
    pub async fn provider(&self, up: &Upstream, fresh: bool) -> Result<Provider, UpstreamError> {
        if !fresh && let Some(p) = self.cache.get(&up.name).await {
            return Ok(p);
        }
        let provider = self.fetch(up).await?;
        self.cache.insert(up.name.clone(), provider.clone()).await;
        Ok(provider)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        up: &Upstream,
        endpoint: &str,
        url: &str,
    ) -> Result<T, UpstreamError> {
        let who = up.label();
        let started = std::time::Instant::now();
        let res = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| UpstreamError::Unreachable(who.into(), e.to_string()))?;
        if !res.status().is_success() {
            return Err(UpstreamError::Unreachable(
                who.into(),
                format!("{url} answered {}", res.status()),
            ));
        }
        let parsed = res
            .json()
            .await
            .map_err(|e| UpstreamError::Invalid(who.into(), format!("{url}: {e}")));
        self.observe(&up.name, endpoint, started);
        parsed
    }

    async fn fetch(&self, up: &Upstream) -> Result<Provider, UpstreamError> {
        let who = up.label();
        if up.kind == Kind::Oauth2 {
            let endpoint = |e: &Option<String>| e.clone().unwrap_or_default();
            return Ok(Provider {
                issuer: up.issuer.clone(),
                authorization_endpoint: endpoint(&up.authorization_endpoint),
                token_endpoint: endpoint(&up.token_endpoint),
                iss_parameter: false,
                userinfo_endpoint: up.userinfo_endpoint.clone(),
                keys: Arc::default(),
            });
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            up.issuer.trim_end_matches('/')
        );
        let doc: Discovery = self.get_json(up, "discovery", &url).await?;
        // OpenID Connect Discovery §4.3: the document must be the issuer's own. A multi-tenant
        // endpoint (Entra's `common`, `organizations`) names a template instead, which each
        // token's `tid` fills in.
        if doc.issuer != up.issuer && !is_tenant_template(&doc.issuer, &up.issuer) {
            return Err(UpstreamError::Invalid(
                who.into(),
                format!("its metadata names issuer {:?}", doc.issuer),
            ));
        }
        let jwks: serde_json::Value = self.get_json(up, "jwks", &doc.jwks_uri).await?;
        Ok(Provider {
            issuer: doc.issuer,
            authorization_endpoint: doc.authorization_endpoint,
            token_endpoint: doc.token_endpoint,
            iss_parameter: doc.authorization_response_iss_parameter_supported,
            userinfo_endpoint: doc.userinfo_endpoint,
            keys: Arc::new(VerifyingKey::from_jwks(&jwks)),
        })
    }
}
