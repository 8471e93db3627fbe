//! Bearer token validation: RFC 7662 introspection at the authorization server with this
//! server's own credentials, behind a cache.
//!
//! - The cache key is SHA-256 of the token; the token itself is never stored or logged.
//! - An active answer is reused for at most `min(cache_ttl, exp - now)`; an inactive one
//!   for `negative_cache_ttl`. The revocation feed (`crate::revocations`) ends answers of
//!   revoked tokens sooner; `cache_ttl` bounds how late a revocation is noticed without it.
//! - Concurrent misses for one token share one introspection call (single flight).
//! - Failures are never cached: when the authorization server is down, cached tokens keep
//!   working and others get `Unavailable` (the caller answers 503, not 401).
//! - Tokens that are not JWTs signed by a key in the issuer's JWKS are refused without an
//!   introspection call.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;
use oauth_protocol::Scope;
use oauth_protocol::introspect::IntrospectionResponse;
use oauth_protocol::revocations::{Event, FeedAnswer};
use sha2::{Digest, Sha256};

use oauth_protocol::clock::Clock;

use crate::config::Config;
use crate::jwks::{Jwks, PreCheck};
pub use crate::principal::Principal;

#[derive(Debug, Clone)]
pub enum Verdict {
    Active(Arc<Principal>),
    Inactive,
}

/// Why a token could not be judged. Never cached.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unavailable {
    #[error("the authorization server could not be asked: {0}")]
    Unreachable(String),
    /// The authorization server answered 401: this server's introspection credentials are
    /// wrong (a configuration error, not an outage).
    #[error("the authorization server refused this server's introspection credentials")]
    CredentialsRefused,
}

#[derive(Clone)]
struct Entry {
    verdict: Verdict,
    ttl: Duration,
    /// By this server's clock: the answer is not used from this second on. (The cache's own
    /// expiry bounds memory; this bounds what is believed, and tests can move it.)
    until: i64,
}

struct PerEntryTtl;

impl Expiry<[u8; 32], Entry> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Entry,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Counters for tests and metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub errors: AtomicU64,
    /// Introspection requests actually sent.
    pub calls: AtomicU64,
    /// Tokens refused by the local JWT check, without a call.
    pub refused_locally: AtomicU64,
    /// Revocation feed events applied, and reads of the feed that failed.
    pub revocations: AtomicU64,
    pub feed_errors: AtomicU64,
}

#[derive(Clone)]
pub struct Introspector {
    http: reqwest::Client,
    endpoint: String,
    client_id: String,
    client_secret: String,
    issuer: String,
    resource: String,
    ttl: Duration,
    negative_ttl: Duration,
    cache: Cache<[u8; 32], Entry>,
    jwks: Jwks,
    clock: Arc<dyn Clock>,
    pub stats: Arc<Stats>,
}

impl Introspector {
    pub fn new(config: &Config, http: reqwest::Client, clock: Arc<dyn Clock>) -> Self {
        Self {
            endpoint: config.introspection_endpoint(),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.expose().to_owned(),
            issuer: config.issuer.clone(),
            resource: config.resource.clone(),
            ttl: Duration::from_secs(config.cache_ttl),
            negative_ttl: Duration::from_secs(config.negative_cache_ttl),
            cache: Cache::builder()
                .max_capacity(config.cache_capacity)
                .expire_after(PerEntryTtl)
                .support_invalidation_closures()
                .build(),
            jwks: Jwks::new(config.jwks_uri(), http.clone()),
            http,
            clock,
            stats: Arc::default(),
        }
    }

    /// Validates a bearer token for this resource.
    pub async fn check(&self, token: &str) -> Result<Verdict, Unavailable> {
        self.check_inner(token).await
    }

    /// Asks the authorization server about a token that cannot exist, to find out whether
    /// the configured introspection credentials work. `Ok` when it answered at all.
    pub async fn probe_credentials(&self) -> Result<(), Unavailable> {
        // Not counted in the stats: it is no token check.
        self.send("credentials-check").await.map(|_| ())
    }

    async fn check_inner(&self, token: &str) -> Result<Verdict, Unavailable> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(entry) = self.cache.get(&key).await {
            if entry.until > self.clock.now() {
                self.stats.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(entry.verdict);
            }
            self.cache.invalidate(&key).await;
        }
        // The miss path awaits HTTP calls whose futures are large: boxed, so that the hit
        // path, nearly every request, neither carries nor copies them.
        Box::pin(self.check_uncached(key, token)).await
    }

    async fn check_uncached(&self, key: [u8; 32], token: &str) -> Result<Verdict, Unavailable> {
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
        if self.jwks.check(token).await == PreCheck::Invalid {
            self.stats.refused_locally.fetch_add(1, Ordering::Relaxed);
            let entry = Entry {
                verdict: Verdict::Inactive,
                ttl: self.negative_ttl,
                until: self.clock.now() + self.negative_ttl.as_secs() as i64,
            };
            self.cache.insert(key, entry).await;
            return Ok(Verdict::Inactive);
        }
        let result = self.cache.try_get_with(key, self.introspect(token)).await;
        match result {
            Ok(entry) => Ok(entry.verdict),
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                Err((*e).clone())
            }
        }
    }

    /// Forgets the cached answers of every token these events ended.
    pub fn forget(&self, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        self.stats
            .revocations
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        let events = events.to_vec();
        let ended = move |_: &[u8; 32], entry: &Entry| match &entry.verdict {
            Verdict::Active(p) => events
                .iter()
                .any(|e| e.ends(p.jti.as_deref(), &p.sub, &p.client_id)),
            Verdict::Inactive => false,
        };
        // Only fails when the cache was built without invalidation closures.
        if let Err(e) = self.cache.invalidate_entries_if(ended) {
            tracing::error!(error = %e, "cached answers could not be forgotten; all are");
            self.cache.invalidate_all();
        }
    }

    /// Forgets every cached answer (the feed could not say what ended).
    pub fn forget_all(&self) {
        self.cache.invalidate_all();
    }

    /// One read of the revocation feed at `endpoint`, with this server's credentials.
    pub async fn read_feed(
        &self,
        endpoint: &str,
        after: Option<i64>,
    ) -> Result<FeedAnswer, Unavailable> {
        let after = after.map(|a| a.to_string());
        let mut form = Vec::new();
        if let Some(a) = &after {
            form.push(("after", a.as_str()));
        }
        let res = self
            .http
            .post(endpoint)
            .basic_auth(
                form_encode(&self.client_id),
                Some(form_encode(&self.client_secret)),
            )
            .form(&form)
            .send()
            .await
            .map_err(|e| Unavailable::Unreachable(format!("request failed: {e}")))?;
        if res.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Err(Unavailable::CredentialsRefused);
        }
        if !res.status().is_success() {
            return Err(Unavailable::Unreachable(format!(
                "the revocation feed answered {}",
                res.status()
            )));
        }
        res.json()
            .await
            .map_err(|e| Unavailable::Unreachable(format!("unreadable answer: {e}")))
    }

    async fn introspect(&self, token: &str) -> Result<Entry, Unavailable> {
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        self.send(token).await
    }

    async fn send(&self, token: &str) -> Result<Entry, Unavailable> {
        let res = self
            .http
            .post(&self.endpoint)
            // RFC 6749 §2.3.1: each part is form-urlencoded before it goes into Basic.
            .basic_auth(
                form_encode(&self.client_id),
                Some(form_encode(&self.client_secret)),
            )
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(|e| Unavailable::Unreachable(format!("request failed: {e}")))?;
        if res.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Err(Unavailable::CredentialsRefused);
        }
        if !res.status().is_success() {
            return Err(Unavailable::Unreachable(format!(
                "introspection answered {}",
                res.status()
            )));
        }
        let body: IntrospectionResponse = res
            .json()
            .await
            .map_err(|e| Unavailable::Unreachable(format!("unreadable answer: {e}")))?;
        let now = self.clock.now();
        let verdict = self.judge(body, now);
        let ttl = match &verdict {
            Verdict::Active(p) => self
                .ttl
                .min(Duration::from_secs((p.exp - now).max(0) as u64)),
            Verdict::Inactive => self.negative_ttl,
        };
        Ok(Entry {
            verdict,
            ttl,
            until: now + ttl.as_secs() as i64,
        })
    }

    /// Turns an RFC 7662 answer into a verdict: active, from our issuer, for our resource,
    /// an access token, not expired.
    pub fn judge(&self, r: IntrospectionResponse, now: i64) -> Verdict {
        let aud_ok = r.aud.as_ref().is_some_and(|a| a.contains(&self.resource));
        let exp = r.exp.unwrap_or(0);
        let is_access = r
            .token_type
            .as_deref()
            .is_none_or(|t| t.eq_ignore_ascii_case("bearer"));
        let (true, Some(sub), Some(client_id)) = (r.active, r.sub, r.client_id) else {
            return Verdict::Inactive;
        };
        if !aud_ok || r.iss.as_deref() != Some(&self.issuer) || exp <= now || !is_access {
            return Verdict::Inactive;
        }
        Verdict::Active(Arc::new(Principal {
            machine: sub == client_id,
            sub,
            username: r.username,
            email: r.email,
            name: r.name,
            client_id,
            scope: r
                .scope
                .and_then(|v| Scope::parse(&v).ok())
                .unwrap_or_default(),
            exp,
            jti: r.jti,
        }))
    }
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An answer as it arrives: what does not parse is inactive.
    fn judge(i: &Introspector, body: &serde_json::Value, now: i64) -> Verdict {
        match serde_json::from_value(body.clone()) {
            Ok(r) => i.judge(r, now),
            Err(_) => Verdict::Inactive,
        }
    }

    fn introspector() -> Introspector {
        let config = Config {
            client_id: "rs".into(),
            client_secret: oauth_protocol::secret::Secret::new("s"),
            ..Config::default()
        };
        crate::install_crypto_provider();
        Introspector::new(
            &config,
            reqwest::Client::new(),
            oauth_protocol::clock::system(),
        )
    }

    #[test]
    fn judge_requires_issuer_audience_expiry_and_access_token() {
        let i = introspector();
        let ok = json!({"active":true,"sub":"u","client_id":"c","scope":"mcp:read","aud":"http://127.0.0.1:8002/mcp",
            "iss":"http://127.0.0.1:8001","exp":2000,"token_type":"Bearer","username":"alice"});
        assert!(
            matches!(judge(&i, &ok, 1000), Verdict::Active(p) if p.username.as_deref() == Some("alice"))
        );
        let cases = [
            ("inactive", json!({"active":false})),
            ("other audience", json!({"aud":"http://127.0.0.1:9/mcp"})),
            (
                "audience with trailing slash",
                json!({"aud":"http://127.0.0.1:8002/mcp/"}),
            ),
            ("other issuer", json!({"iss":"http://127.0.0.1:8001/"})),
            ("expired", json!({"exp":999})),
            ("refresh token", json!({"token_type":"refresh_token"})),
        ];
        for (why, patch) in cases {
            let mut body = ok.clone();
            for (k, v) in patch.as_object().unwrap() {
                body[k] = v.clone();
            }
            assert!(matches!(judge(&i, &body, 1000), Verdict::Inactive), "{why}");
        }
        let mut list = ok.clone();
        list["aud"] = json!(["x", "http://127.0.0.1:8002/mcp"]);
        assert!(matches!(judge(&i, &list, 1000), Verdict::Active(_)));
    }
}
