//! Client ID metadata documents (MCP 2025-11-25, draft-ietf-oauth-client-id-metadata-document):
//! a `client_id` that is an https URL names a JSON document describing the client. Fetched
//! with SSRF protections (public addresses only, no redirects, size cap, timeout) and cached
//! for as long as its `Cache-Control` allows. Failures are never cached.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;
use oauth_protocol::Scope;
use oauth_protocol::register::{AuthMethod, ClientMetadata};
use oauth_protocol::uri::{is_loopback_host, is_private_address};
use url::Url;

use crate::clients::Client;

/// Largest document accepted (the draft suggests servers limit documents to 5 kB).
const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
const DEFAULT_TTL: Duration = Duration::from_secs(300);
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone)]
struct Entry {
    client: Arc<Client>,
    ttl: Duration,
}

struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Entry,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

#[derive(Clone)]
pub struct MetadataDocuments {
    http: reqwest::Client,
    cache: Cache<String, Entry>,
    allow_loopback: bool,
    scopes: Scope,
}

/// DNS resolution that refuses private, loopback and link-local answers, so a public
/// hostname cannot be pointed at an internal service.
struct PublicOnlyResolver {
    allow_loopback: bool,
}

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_loopback = self.allow_loopback;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| address_allowed(a.ip(), allow_loopback))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

fn address_allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    !is_private_address(ip) || (allow_loopback && ip.is_loopback())
}

impl MetadataDocuments {
    pub fn new(allow_loopback: bool, timeout: Duration, scopes: Scope) -> Self {
        crate::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .dns_resolver(Arc::new(PublicOnlyResolver { allow_loopback }))
            .user_agent(concat!("authz-server/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client configuration is valid");
        Self {
            http,
            cache: Cache::builder()
                .max_capacity(10_000)
                .expire_after(PerEntryTtl)
                .build(),
            allow_loopback,
            scopes,
        }
    }

    /// Whether this `client_id` names a metadata document.
    pub fn handles(&self, client_id: &str) -> bool {
        client_id.starts_with("https://")
            || (self.allow_loopback && client_id.starts_with("http://"))
    }

    /// The client described by the document at `client_id`, or `None` when it cannot be
    /// fetched or is invalid (the reason is logged).
    pub async fn resolve(&self, client_id: &str) -> Option<Arc<Client>> {
        let result = self
            .cache
            .try_get_with(client_id.to_owned(), async { self.fetch(client_id).await })
            .await;
        match result {
            Ok(entry) => Some(entry.client),
            Err(e) => {
                tracing::warn!(client_id, error = %e, "client ID metadata document refused");
                None
            }
        }
    }

    async fn fetch(&self, client_id: &str) -> Result<Entry, String> {
        // The parser resolves `.` and `..`, so look at the string as sent: a client ID
        // must name its document exactly, never by a path that walks elsewhere.
        if has_dot_segment(client_id) {
            return Err("client_id URL must not contain . or .. path segments".into());
        }
        let url = Url::parse(client_id).map_err(|_| "client_id is not a URL".to_owned())?;
        // Anything the parser would rewrite (backslashes, tabs, case, default ports) could
        // make the URL shown differ from the one fetched: only the normal form is accepted.
        if url.as_str() != client_id {
            return Err("client_id URL must be in normal form (as a URL parser writes it)".into());
        }
        self.check_url(&url)?;
        let mut res = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("fetch failed: {e}"))?;
        if res.status() != reqwest::StatusCode::OK {
            return Err(format!("fetch answered {}", res.status()));
        }
        if res
            .content_length()
            .is_some_and(|n| n as usize > MAX_DOCUMENT_BYTES)
        {
            return Err("document too large".into());
        }
        let ttl = cache_ttl(
            res.headers()
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok()),
        );
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| format!("read failed: {e}"))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DOCUMENT_BYTES {
                return Err("document too large".into());
            }
        }
        let client = parse_document(client_id, &body, &self.scopes)?;
        Ok(Entry {
            client: Arc::new(client),
            ttl,
        })
    }

    fn check_url(&self, url: &Url) -> Result<(), String> {
        let loopback_ok = self.allow_loopback && url.scheme() == "http" && is_loopback_host(url);
        if url.scheme() != "https" && !loopback_ok {
            return Err("client ID metadata documents must be served over https".into());
        }
        if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err("client_id URL must not carry a fragment or credentials".into());
        }
        if url.path() == "/" || url.path().is_empty() {
            return Err("client_id URL must contain a path".into());
        }
        // IP literals bypass the resolver, so check them here.
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if ip.is_some_and(|ip| !address_allowed(ip, self.allow_loopback)) {
            return Err("client_id URL points at a private address".into());
        }
        Ok(())
    }
}

/// Whether a URL, as written, has a `.` or `..` path segment (also percent-encoded).
fn has_dot_segment(raw: &str) -> bool {
    let after_scheme = raw.split_once("://").map_or(raw, |(_, r)| r);
    let path = after_scheme
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .split_once('/')
        .map_or("", |(_, p)| p);
    path.split('/').any(|seg| {
        let seg = seg.to_ascii_lowercase().replace("%2e", ".");
        seg == "." || seg == ".."
    })
}

/// Validates a fetched document: it must name itself as `client_id`, carry `client_name`
/// and `redirect_uris`, and must not use a shared secret.
pub fn parse_document(client_id: &str, body: &[u8], scopes: &Scope) -> Result<Client, String> {
    let mut doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let obj = doc.as_object_mut().ok_or("document is not a JSON object")?;
    if obj.get("client_id").and_then(|v| v.as_str()) != Some(client_id) {
        return Err("document client_id does not equal its URL".into());
    }
    if obj
        .get("client_name")
        .and_then(|v| v.as_str())
        .is_none_or(str::is_empty)
    {
        return Err("document lacks client_name".into());
    }
    match obj
        .get("token_endpoint_auth_method")
        .and_then(|v| v.as_str())
    {
        None => {
            obj.insert("token_endpoint_auth_method".into(), "none".into());
        }
        Some("none") => {}
        Some(other) => {
            return Err(format!(
                "token_endpoint_auth_method {other:?} is not usable by a metadata document client"
            ));
        }
    }
    // RFC 6749 §4.4: client_credentials is for clients whose access was arranged with us.
    if obj
        .get("grant_types")
        .and_then(|v| v.as_array())
        .is_some_and(|g| g.iter().any(|g| g.as_str() == Some("client_credentials")))
    {
        return Err("client_credentials is not available to metadata document clients".into());
    }
    // The scopes a document lists are advisory; the user consents to what is requested.
    obj.remove("scope");
    let metadata = ClientMetadata::from_json(&doc, scopes).map_err(|e| {
        format!(
            "invalid metadata: {}",
            e.error_description.unwrap_or(e.error)
        )
    })?;
    if metadata.redirect_uris.is_empty() {
        return Err("document lacks redirect_uris".into());
    }
    debug_assert_eq!(metadata.token_endpoint_auth_method, AuthMethod::None);
    Ok(Client {
        client_id: client_id.to_owned(),
        secret_hash: None,
        metadata,
        from_document: true,
        origin: crate::clients::ORIGIN_DOCUMENT.into(),
    })
}

/// Lifetime from `Cache-Control`: `no-store`/`no-cache` → not cached, `max-age` capped at a day.
pub fn cache_ttl(cache_control: Option<&str>) -> Duration {
    let Some(cc) = cache_control else {
        return DEFAULT_TTL;
    };
    let mut ttl = DEFAULT_TTL;
    for directive in cc.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Duration::ZERO;
        }
        if let Some(Ok(secs)) = lower
            .strip_prefix("max-age=")
            .map(|v| v.trim_matches('"').parse::<u64>())
        {
            ttl = Duration::from_secs(secs).min(MAX_TTL);
        }
    }
    ttl
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes() -> Scope {
        Scope::parse("mcp:read mcp:write").unwrap()
    }

    #[test]
    fn cache_control_rules() {
        assert_eq!(cache_ttl(None), DEFAULT_TTL);
        assert_eq!(
            cache_ttl(Some("public, max-age=60")),
            Duration::from_secs(60)
        );
        assert_eq!(cache_ttl(Some("max-age=99999999")), MAX_TTL);
        assert_eq!(cache_ttl(Some("no-store")), Duration::ZERO);
        assert_eq!(cache_ttl(Some("max-age=60, no-cache")), Duration::ZERO);
    }

    #[test]
    fn document_validation() {
        let id = "https://app.example.com/oauth/client.json";
        let ok = format!(
            r#"{{"client_id":"{id}","client_name":"App","redirect_uris":["http://127.0.0.1/cb"],"grant_types":["authorization_code"]}}"#
        );
        let c = parse_document(id, ok.as_bytes(), &scopes()).unwrap();
        assert!(c.from_document && !c.is_confidential());
        let cases = [
            (
                r#"{"client_id":"https://other.example/x","client_name":"A","redirect_uris":["https://a/cb"]}"#,
                "client_id does not equal",
            ),
            (
                r#"{"client_id":"ID","redirect_uris":["https://a/cb"]}"#,
                "client_name",
            ),
            (
                r#"{"client_id":"ID","client_name":"A","redirect_uris":["https://a/cb"],"token_endpoint_auth_method":"client_secret_basic"}"#,
                "not usable",
            ),
            (
                r#"{"client_id":"ID","client_name":"A","redirect_uris":["http://evil.example/cb"]}"#,
                "invalid metadata",
            ),
            ("[1]", "not a JSON object"),
            ("nope", "not JSON"),
        ];
        for (doc, want) in cases {
            let doc = doc.replace("\"ID\"", &format!("\"{id}\""));
            let err = parse_document(id, doc.as_bytes(), &scopes()).unwrap_err();
            assert!(err.contains(want), "{doc}: {err}");
        }
    }

    #[test]
    fn dot_segments_are_found_as_written() {
        for bad in [
            "https://a.example/x/../c.json",
            "https://a.example/./c.json",
            "https://a.example/x/%2E%2e/c.json",
            "https://a.example/x/..",
        ] {
            assert!(has_dot_segment(bad), "{bad}");
        }
        for ok in [
            "https://a.example/c.json",
            "https://a.example/x..y/c.json",
            "https://a.example/c.json?p=../x",
        ] {
            assert!(!has_dot_segment(ok), "{ok}");
        }
    }

    #[test]
    fn ipv6_forms_of_private_ipv4_are_refused() {
        let d = MetadataDocuments::new(false, Duration::from_secs(1), scopes());
        for bad in [
            "https://[64:ff9b::7f00:1]/c.json",
            "https://[2002:7f00:1::1]/c.json",
            "https://[::7f00:1]/c.json",
            "https://[::ffff:0:7f00:1]/c.json",
        ] {
            assert!(d.check_url(&Url::parse(bad).unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn url_checks() {
        let d = MetadataDocuments::new(false, Duration::from_secs(1), scopes());
        for bad in [
            "http://app.example.com/c.json",
            "https://app.example.com/",
            "https://127.0.0.1/c.json",
            "https://10.0.0.1/c.json",
            "https://[::1]/c.json",
        ] {
            assert!(d.check_url(&Url::parse(bad).unwrap()).is_err(), "{bad}");
        }
        assert!(
            d.check_url(&Url::parse("https://app.example.com/c.json").unwrap())
                .is_ok()
        );
        let local = MetadataDocuments::new(true, Duration::from_secs(1), scopes());
        assert!(
            local
                .check_url(&Url::parse("http://127.0.0.1:9/c.json").unwrap())
                .is_ok()
        );
        assert!(
            local
                .check_url(&Url::parse("http://10.0.0.1/c.json").unwrap())
                .is_err()
        );
    }
}
