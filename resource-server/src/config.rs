//! Configuration: defaults, an optional TOML file (`RS_CONFIG` or `--config`), then `RS_*`
//! environment variables. Validated at start-up.

use std::net::SocketAddr;
use std::path::Path;

use oauth_protocol::secret::Secret;
use oauth_protocol::uri::{is_loopback_host, validate_issuer};
use serde::Deserialize;
use url::Url;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Canonical resource URI: the MCP endpoint as clients type it, no trailing slash.
    /// Used verbatim in the metadata, the challenges and the audience check.
    pub resource: String,
    pub bind: SocketAddr,
    /// The authorization server's issuer, byte-identical to its metadata `issuer`.
    pub issuer: String,
    /// Defaults to `<issuer>/introspect`.
    pub introspection_endpoint: Option<String>,
    /// Defaults to `<issuer>/jwks.json`; used to refuse forged tokens without a network call.
    pub jwks_uri: Option<String>,
    /// Credentials for the introspection endpoint.
    pub client_id: String,
    pub client_secret: Secret,
    pub database_url: String,
    pub resource_name: String,
    pub scopes_supported: Vec<String>,
    /// Longest time an introspection answer is reused: the revocation delay.
    pub cache_ttl: u64,
    /// How long an inactive answer is reused.
    pub negative_cache_ttl: u64,
    /// Seconds between reads of the authorization server's revocation feed, which ends
    /// cached answers of revoked tokens at once (0: not read; `cache_ttl` is then the delay).
    pub revocation_poll: u64,
    /// Defaults to `<issuer>/revocations`.
    pub revocation_feed: Option<String>,
    pub cache_capacity: u64,
    /// Browser origins allowed to call the MCP endpoint besides the resource's own origin.
    /// When the resource is on loopback, loopback origins are allowed too.
    pub allowed_origins: Vec<String>,
    /// Extra `Host` values accepted by the MCP transport (the resource's host is always allowed).
    pub allowed_hosts: Vec<String>,
    pub log_format: String,
    /// Also serve the MCP conformance suite's test tools, resources and prompts
    /// (`mcp::conformance`), behind the same bearer protection. For conformance runs only.
    pub fixtures: bool,
    /// Accept tokens that act for no user (client credentials, `sub` = `client_id`).
    pub accept_machine_clients: bool,
    /// Serve `/metrics` on this address only, instead of on `bind`.
    pub metrics_bind: Option<SocketAddr>,
    /// MCP servers served behind this one, each at `/<name>/mcp` (the gateway).
    pub upstream: Vec<crate::gateway::settings::Upstream>,
    /// Days the gateway's audit of tool calls is kept (0: forever).
    pub audit_retention_days: i64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            resource: "http://127.0.0.1:8002/mcp".into(),
            bind: "127.0.0.1:8002".parse().expect("valid default address"),
            issuer: "http://127.0.0.1:8001".into(),
            introspection_endpoint: None,
            jwks_uri: None,
            client_id: String::new(),
            client_secret: Secret::new(""),
            database_url: "sqlite://data/resource.db?mode=rwc".into(),
            resource_name: "MCP server".into(),
            scopes_supported: vec!["mcp:read".into(), "mcp:write".into()],
            cache_ttl: 60,
            negative_cache_ttl: 5,
            revocation_poll: 1,
            revocation_feed: None,
            cache_capacity: 100_000,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            log_format: "human".into(),
            fixtures: false,
            accept_machine_clients: false,
            metrics_bind: None,
            upstream: Vec::new(),
            audit_retention_days: 90,
        }
    }
}

impl Config {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let mut config: Config = settings::read_file(path)?;
        config.apply_env(|k| std::env::var(k).ok())?;
        config.validate()?;
        Ok(config)
    }

    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        use settings::parse_var as parse;
        let list = |v: String| {
            v.split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        if let Some(v) = get("RS_RESOURCE") {
            self.resource = v;
        }
        if let Some(v) = get("RS_BIND") {
            self.bind = parse("RS_BIND", v)?;
        }
        if let Some(v) = get("RS_ISSUER") {
            self.issuer = v;
        }
        if let Some(v) = get("RS_INTROSPECTION_ENDPOINT") {
            self.introspection_endpoint = Some(v);
        }
        if let Some(v) = get("RS_JWKS_URI") {
            self.jwks_uri = Some(v);
        }
        if let Some(v) = get("RS_CLIENT_ID") {
            self.client_id = v;
        }
        if let Some(v) = get("RS_CLIENT_SECRET") {
            self.client_secret = Secret::new(v);
        }
        if let Some(v) = get("RS_DATABASE_URL").or_else(|| get("DATABASE_URL")) {
            self.database_url = v;
        }
        if let Some(v) = get("RS_RESOURCE_NAME") {
            self.resource_name = v;
        }
        if let Some(v) = get("RS_CACHE_TTL") {
            self.cache_ttl = parse("RS_CACHE_TTL", v)?;
        }
        if let Some(v) = get("RS_NEGATIVE_CACHE_TTL") {
            self.negative_cache_ttl = parse("RS_NEGATIVE_CACHE_TTL", v)?;
        }
        if let Some(v) = get("RS_REVOCATION_POLL") {
            self.revocation_poll = parse("RS_REVOCATION_POLL", v)?;
        }
        if let Some(v) = get("RS_REVOCATION_FEED") {
            self.revocation_feed = Some(v);
        }
        if let Some(v) = get("RS_ALLOWED_ORIGINS") {
            self.allowed_origins = list(v);
        }
        if let Some(v) = get("RS_ALLOWED_HOSTS") {
            self.allowed_hosts = list(v);
        }
        if let Some(v) = get("RS_LOG_FORMAT") {
            self.log_format = v;
        }
        if let Some(v) = get("RS_FIXTURES") {
            self.fixtures = parse("RS_FIXTURES", v)?;
        }
        if let Some(v) = get("RS_ACCEPT_MACHINE_CLIENTS") {
            self.accept_machine_clients = parse("RS_ACCEPT_MACHINE_CLIENTS", v)?;
        }
        if let Some(v) = get("RS_AUDIT_RETENTION_DAYS") {
            self.audit_retention_days = parse("RS_AUDIT_RETENTION_DAYS", v)?;
        }
        if let Some(v) = get("RS_METRICS_BIND") {
            self.metrics_bind = Some(parse("RS_METRICS_BIND", v)?);
        }
        if let Some(up) = crate::gateway::settings::from_env(&get)?
            && !self.upstream.iter().any(|u| u.name == up.name)
        {
            self.upstream.push(up);
        }
        self.follow_bind();
        Ok(())
    }

    /// A resource left at its loopback default follows the bind address, so `RS_BIND`
    /// alone moves the server and the resource it announces.
    fn follow_bind(&mut self) {
        let default = Self::default();
        if self.resource == default.resource
            && self.bind != default.bind
            && let Some(url) = settings::loopback_url(self.bind)
        {
            self.resource = format!("{url}/mcp");
        }
    }

    /// Start-up warnings for settings that are valid but cannot be what was meant.
    pub fn warnings(&self, listening: std::net::SocketAddr) -> Vec<String> {
        settings::port_mismatch("the resource", &self.resource, listening)
            .into_iter()
            .collect()
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        oauth_protocol::uri::validate_resource(&self.resource)
            .map_err(|e| anyhow::anyhow!("resource {:?} {e}", self.resource))?;
        let issuer = Url::parse(&self.issuer)
            .map_err(|_| anyhow::anyhow!("issuer {:?} is not an absolute URL", self.issuer))?;
        validate_issuer(&self.issuer, is_loopback_host(&issuer))
            .map_err(|e| anyhow::anyhow!("issuer {:?} {e}", self.issuer))?;
        if self.client_id.is_empty() || self.client_secret.expose().is_empty() {
            anyhow::bail!(
                "set client_id and client_secret (RS_CLIENT_ID, RS_CLIENT_SECRET): the credentials this server uses at the introspection endpoint"
            );
        }
        if self.cache_ttl == 0 {
            anyhow::bail!("cache_ttl must be at least 1 second");
        }
        if !matches!(self.log_format.as_str(), "human" | "json") {
            anyhow::bail!("log_format must be \"human\" or \"json\"");
        }
        crate::gateway::settings::validate(&self.upstream, &self.scopes_supported)?;
        Ok(())
    }

    pub fn resource_url(&self) -> Url {
        Url::parse(&self.resource).expect("validated")
    }

    /// The path the MCP endpoint is served at.
    pub fn mcp_path(&self) -> String {
        self.resource_url().path().to_owned()
    }

    /// Where the gateway serves the upstream `name`: `/<name>/mcp` on this server's origin.
    pub fn upstream_resource(&self, name: &str) -> String {
        format!(
            "{}/{name}/mcp",
            self.resource_url().origin().ascii_serialization()
        )
    }

    pub fn metadata_url(&self) -> String {
        oauth_protocol::metadata::protected_resource_metadata_url(&self.resource_url())
    }

    pub fn introspection_endpoint(&self) -> String {
        self.introspection_endpoint
            .clone()
            .unwrap_or_else(|| format!("{}/introspect", self.issuer))
    }

    pub fn revocation_feed(&self) -> String {
        self.revocation_feed
            .clone()
            .unwrap_or_else(|| format!("{}/revocations", self.issuer))
    }

    pub fn jwks_uri(&self) -> String {
        self.jwks_uri
            .clone()
            .unwrap_or_else(|| format!("{}/jwks.json", self.issuer))
    }

    /// Whether a browser `Origin` may call the MCP endpoint (DNS-rebinding protection).
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let own = self.resource_url().origin().ascii_serialization();
        if origin == own || self.allowed_origins.iter().any(|o| o == "*" || o == origin) {
            return true;
        }
        let Ok(o) = Url::parse(origin) else {
            return false;
        };
        is_loopback_host(&self.resource_url()) && is_loopback_host(&o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Config {
        Config {
            client_id: "rs".into(),
            client_secret: Secret::new("secret"),
            ..Config::default()
        }
    }

    #[test]
    fn validation_messages() {
        valid().validate().unwrap();
        let mut c = valid();
        c.resource = "http://127.0.0.1:8002/mcp/".into();
        assert!(c.validate().is_err());
        let mut c = valid();
        c.issuer = "http://127.0.0.1:8001/".into();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("trailing slash")
        );
        let mut c = valid();
        c.client_secret = Secret::new("");
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("RS_CLIENT_SECRET")
        );
    }

    /// The README's gateway example is a configuration this server reads.
    #[test]
    fn the_readme_gateway_example_parses() {
        let readme = include_str!("../../README.md");
        let section = &readme[readme.find("### The gateway").unwrap()..];
        let start = section.find("```toml\n").unwrap() + 8;
        let end = start + section[start..].find("```").unwrap();
        let config: Config = toml::from_str(&section[start..end]).unwrap();
        assert_eq!(config.upstream.len(), 2);
        assert_eq!(config.upstream[0].rules[0].tools[1], "get-*");
        assert_eq!(config.upstream[1].forward_headers, ["x-request-id"]);
    }

    #[test]
    fn origins() {
        let c = valid();
        assert!(c.origin_allowed("http://127.0.0.1:8002"));
        assert!(c.origin_allowed("http://localhost:6274"));
        assert!(!c.origin_allowed("http://evil.example"));
        assert!(!c.origin_allowed("null"));
        let mut public = valid();
        public.resource = "https://mcp.example.com/mcp".into();
        assert!(!public.origin_allowed("http://localhost:6274"));
        public.allowed_origins = vec!["http://localhost:6274".into()];
        assert!(public.origin_allowed("http://localhost:6274"));
        assert_eq!(
            public.metadata_url(),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
    }
}
