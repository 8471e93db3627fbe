//! Configuration: defaults, then an optional TOML file (`AUTHZ_CONFIG` or `--config`), then
//! environment variables. Validated once at start-up with messages that say what to change.

use std::net::SocketAddr;
use std::path::Path;

pub use crate::upstream_config::{Linking, Upstream};
use oauth_protocol::Scope;
pub use oauth_protocol::secret::Secret;
use oauth_protocol::uri::{normalize_resource, validate_issuer};
use serde::Deserialize;

/// A resource server this authorization server issues tokens for (RFC 8707).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceServer {
    /// Canonical resource URI, spelled as it goes into `aud`, e.g. `http://127.0.0.1:8002/mcp`.
    pub resource: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Credentials the resource server presents at the introspection endpoint.
    pub client_id: String,
    pub client_secret: Secret,
    /// Whether tokens without a user (client credentials) may be issued for this resource.
    /// Off unless an administrator turns it on: a machine token acts as no person.
    #[serde(default)]
    pub machine_clients: bool,
    /// For resource servers added with the admin command: the stored SHA-256 of the secret.
    #[serde(skip)]
    pub secret_digest: Option<String>,
}

impl ResourceServer {
    /// Checks presented introspection credentials in constant time.
    pub fn secret_matches(&self, presented: &str) -> bool {
        use oauth_protocol::secret::{constant_time_eq, digest};
        match &self.secret_digest {
            Some(d) => constant_time_eq(digest(presented).as_bytes(), d.as_bytes()),
            None => constant_time_eq(presented.as_bytes(), self.client_secret.expose().as_bytes()),
        }
    }

    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.resource)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Issuer identifier: no trailing slash, https unless loopback or `allow_insecure_issuer`.
    pub issuer: String,
    pub bind: SocketAddr,
    pub database_url: String,
    pub scopes: Vec<String>,
    pub resource_servers: Vec<ResourceServer>,
    /// Upstream providers for "Continue with …" on the login page (with those that
    /// `admin provider add` stored).
    pub upstream: Vec<Upstream>,
    /// Whether the login page offers username and password (off: upstream providers only).
    pub password_login: bool,
    pub access_token_ttl: i64,
    pub refresh_token_ttl: i64,
    pub code_ttl: i64,
    /// How long a rotated refresh token keeps working, for concurrent or retried refreshes.
    pub refresh_grace: i64,
    pub session_ttl: i64,
    /// Permit a non-https issuer on a non-loopback host (development only).
    pub allow_insecure_issuer: bool,
    /// Permit client ID metadata documents served over http from loopback (testing only).
    pub cimd_allow_loopback: bool,
    pub cimd_timeout_ms: u64,
    /// How long a call to an upstream sign-in provider may take.
    pub upstream_timeout_ms: u64,
    /// `human` or `json`.
    pub log_format: String,
    /// Headless mode for testing MCP clients in CI: every valid authorization request is
    /// approved as this user, with no login or consent page. Needs `allow_headless`.
    pub headless_user: Option<String>,
    /// The explicit opt-in for `headless_user`.
    pub allow_headless: bool,
    /// RFC 7591 §3 initial access token. A registration presenting it as a bearer token may
    /// obtain the client_credentials grant; without it only administrators create such clients.
    pub registration_token: Option<Secret>,
    /// Registrations accepted per client address per hour.
    pub registrations_per_hour: u32,
    /// Requests per minute to `/token`, `/introspect`, `/revoke` and `/device_authorization`
    /// from one client address, and from one confidential client (0: no limit). Configured
    /// resource servers are not limited at `/introspect`.
    pub requests_per_minute_per_address: u32,
    pub requests_per_minute_per_client: u32,
    /// Failed sign-ins per username, and per client address, within `login_window` seconds
    /// before further attempts are refused without checking the password.
    pub login_max_failures: u32,
    pub login_max_failures_per_address: u32,
    /// Failed sign-ins for one username from every address together (`login_max_failures`
    /// counts per username and address).
    pub login_max_failures_per_account: u32,
    pub login_window: u64,
    /// Take the client address from the last `X-Forwarded-For` entry (behind a reverse proxy
    /// that sets it); otherwise the TCP peer address is used.
    pub trust_forwarded_for: bool,
    /// Days audit events are kept; 0 keeps them forever.
    pub audit_retention_days: i64,
    /// Seconds a dynamically registered client that never obtained a grant is kept.
    pub unused_client_ttl: i64,
    /// Serve `/metrics` on this address only, instead of on `bind`.
    pub metrics_bind: Option<SocketAddr>,
    /// The resource a request without `resource` is for; the first resource server if unset.
    pub default_resource: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:8001".into(),
            bind: "127.0.0.1:8001".parse().expect("valid default address"),
            database_url: "sqlite://data/authz.db?mode=rwc".into(),
            scopes: vec!["mcp:read".into(), "mcp:write".into()],
            resource_servers: Vec::new(),
            upstream: Vec::new(),
            password_login: true,
            access_token_ttl: 3600,
            refresh_token_ttl: 30 * 24 * 3600,
            code_ttl: 60,
            refresh_grace: 30,
            session_ttl: 12 * 3600,
            allow_insecure_issuer: false,
            cimd_allow_loopback: false,
            cimd_timeout_ms: 5000,
            upstream_timeout_ms: 10_000,
            log_format: "human".into(),
            headless_user: None,
            allow_headless: false,
            registration_token: None,
            registrations_per_hour: 30,
            requests_per_minute_per_address: 1200,
            requests_per_minute_per_client: 600,
            login_max_failures: 10,
            login_max_failures_per_address: 50,
            login_max_failures_per_account: 100,
            login_window: 15 * 60,
            trust_forwarded_for: false,
            audit_retention_days: 90,
            unused_client_ttl: 30 * 24 * 3600,
            metrics_bind: None,
            default_resource: None,
        }
    }
}

impl Config {
    /// Reads the file named by `path` (if any) and the environment, then validates.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let mut config: Config = settings::read_file(path)?;
        config.apply_env(|k| std::env::var(k).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// An issuer left at its loopback default follows the bind address, so `AUTHZ_BIND`
    /// alone moves the server and every URL it prints and signs.
    pub(crate) fn follow_bind(&mut self) {
        let default = Self::default();
        if self.issuer == default.issuer
            && self.bind != default.bind
            && let Some(url) = settings::loopback_url(self.bind)
        {
            self.issuer = url;
        }
    }

    /// Start-up warnings for settings that are valid but cannot be what was meant.
    pub fn warnings(&self, listening: std::net::SocketAddr) -> Vec<String> {
        settings::port_mismatch("the issuer", &self.issuer, listening)
            .into_iter()
            .collect()
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        let issuer = url::Url::parse(&self.issuer)
            .map_err(|_| anyhow::anyhow!("issuer {:?} is not an absolute URL", self.issuer))?;
        let loopback = oauth_protocol::uri::is_loopback_host(&issuer);
        validate_issuer(&self.issuer, loopback || self.allow_insecure_issuer).map_err(|e| {
            anyhow::anyhow!(
                "issuer {:?} {e}{}",
                self.issuer,
                if matches!(e, oauth_protocol::uri::UriError::InsecureHttp) {
                    ": use https, or set allow_insecure_issuer = true (AUTHZ_ALLOW_INSECURE_ISSUER=true) for development"
                } else {
                    ""
                }
            )
        })?;
        if self.scopes.is_empty() {
            anyhow::bail!("scopes must not be empty");
        }
        Scope::parse(&self.scopes.join(" ")).map_err(|e| anyhow::anyhow!("scopes: {e}"))?;
        for (name, v) in [
            ("access_token_ttl", self.access_token_ttl),
            ("refresh_token_ttl", self.refresh_token_ttl),
            ("code_ttl", self.code_ttl),
            ("session_ttl", self.session_ttl),
        ] {
            if v <= 0 {
                anyhow::bail!("{name} must be a positive number of seconds, not {v}");
            }
        }
        if self.refresh_grace < 0 {
            anyhow::bail!("refresh_grace must not be negative");
        }
        if self.login_max_failures == 0
            || self.login_max_failures_per_address == 0
            || self.login_max_failures_per_account == 0
        {
            anyhow::bail!(
                "login_max_failures, login_max_failures_per_address and login_max_failures_per_account must be at least 1"
            );
        }
        if self.login_window == 0 {
            anyhow::bail!("login_window must be a positive number of seconds");
        }
        if self.audit_retention_days < 0 || self.unused_client_ttl <= 0 {
            anyhow::bail!(
                "audit_retention_days must not be negative and unused_client_ttl must be positive"
            );
        }
        if self
            .registration_token
            .as_ref()
            .is_some_and(|t| t.expose().len() < 16)
        {
            anyhow::bail!("registration_token must be at least 16 characters");
        }
        if self.headless_user.is_some() && !self.allow_headless {
            anyhow::bail!(
                "headless_user approves every authorization request without a login: \
                 set allow_headless = true (AUTHZ_ALLOW_HEADLESS=true) to confirm, for testing only"
            );
        }
        if !matches!(self.log_format.as_str(), "human" | "json") {
            anyhow::bail!(
                "log_format must be \"human\" or \"json\", not {:?}",
                self.log_format
            );
        }
        if let Some(d) = &self.default_resource
            && !self.resource_servers.is_empty()
            && self.resource_server(d).is_none()
        {
            anyhow::bail!("default_resource {d:?} is not one of the configured resource servers");
        }
        let mut seen = std::collections::HashSet::new();
        for rs in &self.resource_servers {
            oauth_protocol::uri::validate_resource(&rs.resource)
                .map_err(|e| anyhow::anyhow!("resource server {:?} {e}", rs.resource))?;
            let key = normalize_resource(&rs.resource)
                .map_err(|e| anyhow::anyhow!("resource server {:?}: {e}", rs.resource))?;
            if !seen.insert(key) {
                anyhow::bail!("resource server {:?} is configured twice", rs.resource);
            }
            if rs.client_id.is_empty() || rs.client_secret.expose().len() < 16 {
                anyhow::bail!(
                    "resource server {:?}: client_id must be set and client_secret must be at least 16 characters",
                    rs.resource
                );
            }
        }
        crate::upstream_config::validate(&self.upstream)?;
        if !self.password_login && self.upstream.is_empty() {
            anyhow::bail!(
                "password_login = false (AUTHZ_PASSWORD_LOGIN=false) needs at least one [[upstream]] provider: nobody could sign in"
            );
        }
        Ok(())
    }

    pub fn supported_scopes(&self) -> Scope {
        Scope::from_tokens(self.scopes.iter().cloned())
    }

    pub fn is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// The configured resource server matching a requested `resource`, compared after
    /// RFC 8707 normalisation.
    pub fn resource_server(&self, requested: &str) -> Option<&ResourceServer> {
        let want = normalize_resource(requested).ok()?;
        self.resource_servers
            .iter()
            .find(|rs| normalize_resource(&rs.resource).is_ok_and(|k| k == want))
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn refuses_trailing_slash_and_public_http_issuers() {
        let mut c = Config::default();
        c.apply_env(env(&[("AUTHZ_ISSUER", "https://auth.example.com/")]))
            .unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("trailing slash")
        );
        c.issuer = "http://auth.example.com".into();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("AUTHZ_ALLOW_INSECURE_ISSUER")
        );
        c.allow_insecure_issuer = true;
        c.validate().unwrap();
    }

    #[test]
    fn resource_from_env_and_matching() {
        let mut c = Config::default();
        c.apply_env(env(&[
            ("AUTHZ_RESOURCE", "http://127.0.0.1:8002/mcp"),
            ("AUTHZ_RESOURCE_CLIENT_ID", "rs"),
            ("AUTHZ_RESOURCE_CLIENT_SECRET", "0123456789abcdef"),
        ]))
        .unwrap();
        c.validate().unwrap();
        assert!(c.resource_server("HTTP://127.0.0.1:8002/mcp").is_some());
        assert!(c.resource_server("http://127.0.0.1:8002/other").is_none());
        let mut bad = c.clone();
        bad.resource_servers[0].client_secret = Secret::new("short");
        assert!(bad.validate().is_err());
    }

    #[test]
    fn headless_needs_the_explicit_opt_in() {
        let mut c = Config::default();
        c.apply_env(env(&[("AUTHZ_HEADLESS_USER", "ci")])).unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("AUTHZ_ALLOW_HEADLESS=true")
        );
        c.apply_env(env(&[("AUTHZ_ALLOW_HEADLESS", "true")]))
            .unwrap();
        c.validate().unwrap();
    }

    #[test]
    fn toml_file_parses() {
        let c: Config = toml::from_str(
            r#"issuer = "https://auth.example.com"
            [[resource_servers]]
            resource = "https://mcp.example.com/mcp"
            client_id = "rs"
            client_secret = "0123456789abcdef""#,
        )
        .unwrap();
        c.validate().unwrap();
        assert!(toml::from_str::<Config>("isser = \"typo\"").is_err());
    }
}
