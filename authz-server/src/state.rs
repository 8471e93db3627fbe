//! Shared application state handed to every handler.

use std::sync::Arc;

use crate::client_id_documents::MetadataDocuments;
use crate::clients::Client;
use crate::config::{Config, ResourceServer, Upstream};
use crate::password_pool::PasswordPool;
use crate::signing_keys::Keys;
use crate::store::{AuditEvent, Store, StoreResult};
use crate::throttle::Throttle;

/// Cheap to clone: axum clones the state for every layer and handler of every request.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

pub struct Shared {
    pub store: Store,
    pub keys: Keys,
    pub config: Arc<Config>,
    pub documents: MetadataDocuments,
    pub metrics: observe::Metrics,
    /// Resource servers from the configuration and from the database.
    pub resources: Arc<std::sync::RwLock<Vec<ResourceServer>>>,
    /// Headless mode: the user every authorization request is approved as.
    pub headless_user_id: Option<String>,
    /// Bounded password hashing (argon2id is 19 MiB per check).
    pub passwords: PasswordPool,
    /// Failed sign-ins per username and client address, and per client address, to slow
    /// down password guessing.
    pub login_by_user: Throttle,
    pub login_by_address: Throttle,
    /// Failed sign-ins per username from every address together.
    pub login_by_account: Throttle,
    /// Dynamic client registrations per client address.
    pub registrations: Throttle,
    /// Requests to the back-channel endpoints per address and per confidential client.
    pub rate_limits: crate::throttle::RateLimits,
    /// Wrong device codes entered on `/device`, per user and per address (RFC 8628 §5.1).
    pub device_codes: Throttle,
    /// Upstream providers' metadata and keys.
    pub upstreams: crate::upstream::Upstreams,
    /// Upstream providers from the configuration and from the database.
    pub providers: Arc<std::sync::RwLock<Arc<Vec<Upstream>>>>,
    /// Upstream sign-ins started per client address (each stores a transaction).
    pub upstream_starts: Throttle,
    /// Key from which the successor of a rotated refresh token is derived, shared by every
    /// instance through the database.
    pub refresh_key: Arc<Vec<u8>>,
    /// Where request handling takes the time from (a manual clock in tests).
    pub clock: Arc<dyn oauth_protocol::clock::Clock>,
    /// The RFC 8414 document, encoded at its first request (it depends on the configuration only).
    pub metadata_body: Arc<std::sync::OnceLock<axum::body::Bytes>>,
}

impl AppState {
    /// Unix seconds by this server's clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}

/// Current Unix time in seconds by the system clock, for the admin command and set-up.
/// Request handling reads `AppState::clock` instead.
pub fn now() -> i64 {
    use oauth_protocol::clock::Clock;
    oauth_protocol::clock::SystemClock.now()
}

impl AppState {
    /// The client's address: the TCP peer, or the last `X-Forwarded-For` entry when the
    /// operator said a proxy sets it. `None` in tests that call the router directly.
    pub fn client_address(
        &self,
        headers: &axum::http::HeaderMap,
        peer: Option<std::net::SocketAddr>,
    ) -> Option<std::net::IpAddr> {
        self.client_address_exact(headers, peer).map(|ip| match ip {
            // One IPv6 user commonly holds a whole /64: throttle the /64.
            std::net::IpAddr::V6(v6) => {
                let s = v6.segments();
                std::net::IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
            v4 => v4,
        })
    }

    fn client_address_exact(
        &self,
        headers: &axum::http::HeaderMap,
        peer: Option<std::net::SocketAddr>,
    ) -> Option<std::net::IpAddr> {
        if self.config.trust_forwarded_for
            && let Some(ip) = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .next_back()
                .and_then(|s| s.trim().parse().ok())
        {
            return Some(ip);
        }
        peer.map(|p| p.ip())
    }

    /// The resource server a requested `resource` names, compared after RFC 8707
    /// normalisation; tokens carry its registered spelling.
    pub fn resource_server(&self, requested: &str) -> Option<ResourceServer> {
        let want = oauth_protocol::uri::normalize_resource(requested).ok()?;
        let list = self.resources.read().expect("resource lock poisoned");
        list.iter()
            .find(|rs| {
                oauth_protocol::uri::normalize_resource(&rs.resource).is_ok_and(|k| k == want)
            })
            .cloned()
    }

    /// RFC 8707 leaves a missing `resource` to policy, and several MCP clients omit it: the
    /// configured `default_resource`, else the first resource server.
    pub fn default_resource_server(&self) -> Option<ResourceServer> {
        if let Some(name) = &self.config.default_resource {
            return self.resource_server(name);
        }
        self.resources
            .read()
            .expect("resource lock poisoned")
            .first()
            .cloned()
    }

    /// Whether `client_id` names a configured resource server (no copy of its entry).
    pub fn is_resource_server(&self, client_id: &str) -> bool {
        let list = self.resources.read().expect("resource lock poisoned");
        list.iter().any(|rs| rs.client_id == client_id)
    }

    pub fn resource_server_by_client(&self, client_id: &str) -> Option<ResourceServer> {
        let list = self.resources.read().expect("resource lock poisoned");
        list.iter().find(|rs| rs.client_id == client_id).cloned()
    }

    /// The upstream providers people may sign in through.
    pub fn providers(&self) -> Arc<Vec<Upstream>> {
        self.providers
            .read()
            .expect("provider lock poisoned")
            .clone()
    }

    /// Re-reads the providers added with the admin command. One that no longer loads (edited
    /// by hand) is skipped with a warning; one the configuration also names is the file's.
    pub async fn reload_providers(&self) -> StoreResult<()> {
        let mut list = self.config.upstream.clone();
        for row in self.store.list_providers().await? {
            if list.iter().any(|u| u.name == row.name) {
                continue;
            }
            match crate::upstream_config::from_row(&row) {
                Ok(up) => list.push(up),
                Err(e) => {
                    tracing::warn!(provider = %row.name, error = %e, "stored provider skipped")
                }
            }
        }
        *self.providers.write().expect("provider lock poisoned") = Arc::new(list);
        Ok(())
    }

    /// Re-reads the resource servers added with the admin command.
    pub async fn reload_resource_servers(&self) -> StoreResult<()> {
        let rows = self.store.list_resource_servers().await?;
        let mut list = self.config.resource_servers.clone();
        for row in rows {
            if list.iter().any(|rs| rs.resource == row.resource) {
                continue;
            }
            list.push(ResourceServer {
                resource: row.resource,
                name: row.name,
                client_id: row.client_id,
                client_secret: oauth_protocol::secret::Secret::new(""),
                machine_clients: row.machine_clients != 0,
                secret_digest: Some(row.secret_hash),
            });
        }
        *self.resources.write().expect("resource lock poisoned") = list;
        Ok(())
    }

    /// Records a security event. It is written shortly after, off the request path (see
    /// `store::audit`); a failure is logged, never fatal to the request.
    pub async fn audit(
        &self,
        kind: &str,
        user_id: Option<&str>,
        client_id: Option<&str>,
        detail: &str,
    ) {
        self.store.audit_soon(AuditEvent {
            id: crate::ids::new_id(),
            at: self.now(),
            kind: kind.to_owned(),
            user_id: user_id.map(str::to_owned),
            client_id: client_id.map(str::to_owned),
            detail: detail.to_owned(),
        });
    }

    /// Finds a client: registered ones in the store, URL-formatted client IDs through their
    /// client ID metadata document. `Ok(None)` for anything unknown or unusable.
    pub async fn client(&self, client_id: &str) -> StoreResult<Option<Client>> {
        if self.documents.handles(client_id) {
            return Ok(self
                .documents
                .resolve(client_id)
                .await
                .map(|c| (*c).clone()));
        }
        Ok(self
            .store
            .client(client_id)
            .await?
            .and_then(|row| Client::from_row(&row)))
    }
}
