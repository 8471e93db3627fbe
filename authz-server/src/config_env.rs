//! Configuration from environment variables (`AUTHZ_*`), applied over the defaults and the
//! file: each variable sets the setting of the same name.

use crate::config::{Config, ResourceServer, Secret};

impl Config {
    /// Applies the variables `get` returns; a value that does not parse is an error naming it.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        use settings::parse_var as parse;
        if let Some(v) = get("AUTHZ_ISSUER") {
            self.issuer = v;
        }
        if let Some(v) = get("AUTHZ_BIND") {
            self.bind = parse("AUTHZ_BIND", v)?;
        }
        if let Some(v) = get("AUTHZ_DATABASE_URL").or_else(|| get("DATABASE_URL")) {
            self.database_url = v;
        }
        if let Some(v) = get("AUTHZ_SCOPES") {
            self.scopes = v.split_whitespace().map(str::to_owned).collect();
        }
        for (key, field) in [
            ("AUTHZ_ACCESS_TOKEN_TTL", &mut self.access_token_ttl),
            ("AUTHZ_REFRESH_TOKEN_TTL", &mut self.refresh_token_ttl),
            ("AUTHZ_CODE_TTL", &mut self.code_ttl),
            ("AUTHZ_REFRESH_GRACE", &mut self.refresh_grace),
            ("AUTHZ_SESSION_TTL", &mut self.session_ttl),
            ("AUTHZ_AUDIT_RETENTION_DAYS", &mut self.audit_retention_days),
            ("AUTHZ_UNUSED_CLIENT_TTL", &mut self.unused_client_ttl),
        ] {
            if let Some(v) = get(key) {
                *field = parse(key, v)?;
            }
        }
        for (key, field) in [
            (
                "AUTHZ_REGISTRATIONS_PER_HOUR",
                &mut self.registrations_per_hour,
            ),
            (
                "AUTHZ_REQUESTS_PER_MINUTE_PER_ADDRESS",
                &mut self.requests_per_minute_per_address,
            ),
            (
                "AUTHZ_REQUESTS_PER_MINUTE_PER_CLIENT",
                &mut self.requests_per_minute_per_client,
            ),
            ("AUTHZ_LOGIN_MAX_FAILURES", &mut self.login_max_failures),
            (
                "AUTHZ_LOGIN_MAX_FAILURES_PER_ACCOUNT",
                &mut self.login_max_failures_per_account,
            ),
            (
                "AUTHZ_LOGIN_MAX_FAILURES_PER_ADDRESS",
                &mut self.login_max_failures_per_address,
            ),
        ] {
            if let Some(v) = get(key) {
                *field = parse(key, v)?;
            }
        }
        if let Some(v) = get("AUTHZ_LOGIN_WINDOW") {
            self.login_window = parse("AUTHZ_LOGIN_WINDOW", v)?;
        }
        if let Some(v) = get("AUTHZ_TRUST_FORWARDED_FOR") {
            self.trust_forwarded_for = parse("AUTHZ_TRUST_FORWARDED_FOR", v)?;
        }
        if let Some(v) = get("AUTHZ_REGISTRATION_TOKEN") {
            self.registration_token = Some(Secret::new(v)).filter(|s| !s.expose().is_empty());
        }
        if let Some(v) = get("AUTHZ_DEFAULT_RESOURCE") {
            self.default_resource = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = get("AUTHZ_METRICS_BIND") {
            self.metrics_bind = Some(parse("AUTHZ_METRICS_BIND", v)?);
        }
        if let Some(v) = get("AUTHZ_ALLOW_INSECURE_ISSUER") {
            self.allow_insecure_issuer = parse("AUTHZ_ALLOW_INSECURE_ISSUER", v)?;
        }
        if let Some(v) = get("AUTHZ_CIMD_ALLOW_LOOPBACK") {
            self.cimd_allow_loopback = parse("AUTHZ_CIMD_ALLOW_LOOPBACK", v)?;
        }
        if let Some(v) = get("AUTHZ_UPSTREAM_TIMEOUT_MS") {
            self.upstream_timeout_ms = parse("AUTHZ_UPSTREAM_TIMEOUT_MS", v)?;
        }
        if let Some(v) = get("AUTHZ_PASSWORD_LOGIN") {
            self.password_login = parse("AUTHZ_PASSWORD_LOGIN", v)?;
        }
        if let Some(v) = get("AUTHZ_LOG_FORMAT") {
            self.log_format = v;
        }
        if let Some(v) = get("AUTHZ_HEADLESS_USER") {
            self.headless_user = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = get("AUTHZ_ALLOW_HEADLESS") {
            self.allow_headless = parse("AUTHZ_ALLOW_HEADLESS", v)?;
        }
        // One resource server from the environment, for set-ups without a file.
        if let Some(resource) = get("AUTHZ_RESOURCE") {
            let client_id = get("AUTHZ_RESOURCE_CLIENT_ID").ok_or_else(|| {
                anyhow::anyhow!("AUTHZ_RESOURCE is set: set AUTHZ_RESOURCE_CLIENT_ID too")
            })?;
            let secret = get("AUTHZ_RESOURCE_CLIENT_SECRET").ok_or_else(|| {
                anyhow::anyhow!("AUTHZ_RESOURCE is set: set AUTHZ_RESOURCE_CLIENT_SECRET too")
            })?;
            self.resource_servers.retain(|r| r.resource != resource);
            let machine_clients = match get("AUTHZ_RESOURCE_MACHINE_CLIENTS") {
                Some(v) => parse("AUTHZ_RESOURCE_MACHINE_CLIENTS", v)?,
                None => false,
            };
            self.resource_servers.push(ResourceServer {
                resource,
                name: get("AUTHZ_RESOURCE_NAME"),
                client_id,
                client_secret: Secret::new(secret),
                machine_clients,
                secret_digest: None,
            });
        }
        for preset in crate::upstream_presets::presets(&get)? {
            if !self.upstream.iter().any(|u| u.name == preset.name) {
                self.upstream.push(preset);
            }
        }
        self.follow_bind();
        Ok(())
    }
}
