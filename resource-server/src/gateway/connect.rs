//! Upstream sessions: a stdio child (its own per downstream session, or one shared) or a
//! Streamable HTTP session that carries the caller's identity as a signed header. Sessions
//! are capped per upstream; an idle one is closed, which stops its child.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use rmcp::ErrorData as McpError;
use rmcp::model::{ClientConfig, ClientJsonRpcMessage, ServerPeerInfo};
use rmcp::service::{Peer, RoleClient, RoleServer, RunningService, ServiceExt};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::{
    StreamableHttpClient, StreamableHttpClientTransportConfig, StreamableHttpError,
    StreamableHttpPostResponse, StreamableHttpResponseLimits,
};
use tokio::io::AsyncBufReadExt;
use tokio::sync::OwnedSemaphorePermit;

use super::Gateway;
use super::client::{Routes, UpClient};
use crate::introspection::Principal;

/// Variables a child inherits from this server; the rest of its environment (which holds
/// this server's secrets) stays here. The upstream's `env` adds to them.
const INHERITED: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "NODE_PATH",
];

pub struct Connection {
    service: RunningService<RoleClient, UpClient>,
    routes: Arc<Routes>,
    /// Held while the session lives: dropping it stops the child.
    _child: Option<tokio::process::Child>,
    _permit: OwnedSemaphorePermit,
    last_used: AtomicI64,
    idle: Duration,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Connection {
    pub fn peer(&self) -> &Peer<RoleClient> {
        self.service.peer()
    }

    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    pub fn server_info(&self) -> Option<ServerPeerInfo> {
        self.service.peer_info().map(|i| (*i).clone())
    }

    pub fn is_closed(&self) -> bool {
        self.service.is_closed()
    }

    pub fn touch(&self) {
        self.last_used.store(now_secs(), Ordering::Relaxed);
    }

    /// Closes the session held in `slot` once it has been idle for the upstream's timeout.
    pub fn reap_when_idle(
        this: &Arc<Self>,
        slot: &Arc<tokio::sync::Mutex<Option<Arc<Connection>>>>,
    ) {
        let (weak, slot) = (Arc::downgrade(this), Arc::downgrade(slot));
        let idle = this.idle;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep((idle / 4).max(Duration::from_secs(1))).await;
                let Some(c) = weak.upgrade() else { return };
                let quiet = now_secs() - c.last_used.load(Ordering::Relaxed);
                let busy = !c.routes.inflight_is_empty();
                if c.is_closed() || (quiet >= idle.as_secs() as i64 && !busy) {
                    drop(c);
                    if let Some(slot) = slot.upgrade() {
                        let mut held = slot.lock().await;
                        if held
                            .as_ref()
                            .is_some_and(|h| Weak::ptr_eq(&Arc::downgrade(h), &weak))
                        {
                            *held = None;
                        }
                    }
                    return;
                }
            }
        });
    }
}

use std::sync::Weak;

/// The upstream session for one downstream session (for a shared stdio child: the shared
/// one, started by the first session).
pub async fn connect(
    gw: &Arc<Gateway>,
    downstream: Peer<RoleServer>,
    hello: ClientConfig,
    principal: &Principal,
    forwarded: Vec<(String, String)>,
) -> Result<Arc<Connection>, McpError> {
    if gw.settings.stateless && gw.settings.command.is_some() {
        let mut shared = gw.shared.lock().await;
        if let Some(c) = shared.as_ref()
            && !c.is_closed()
        {
            c.routes.add_session(downstream);
            c.touch();
            return Ok(c.clone());
        }
        let c = start(gw, downstream, hello, principal, forwarded, true).await?;
        // Stopped once no session has used it for the idle timeout, like a session's own.
        Connection::reap_when_idle(&c, &gw.shared);
        *shared = Some(c.clone());
        return Ok(c);
    }
    start(gw, downstream, hello, principal, forwarded, false).await
}

async fn start(
    gw: &Arc<Gateway>,
    downstream: Peer<RoleServer>,
    hello: ClientConfig,
    principal: &Principal,
    forwarded: Vec<(String, String)>,
    shared: bool,
) -> Result<Arc<Connection>, McpError> {
    let label = gw.settings.label().to_owned();
    let permit = gw.sessions.clone().try_acquire_owned().map_err(|_| {
        McpError::internal_error(
            format!("{label} has as many sessions as it may; try again later"),
            None,
        )
    })?;
    let routes = Arc::new(Routes::new(shared));
    routes.add_session(downstream);
    let client = UpClient {
        info: hello,
        routes: routes.clone(),
    };
    let failed = |e: String| {
        tracing::warn!(upstream = %gw.settings.name, error = %e, "upstream session failed to start");
        McpError::internal_error(format!("{label} could not be started: {e}"), None)
    };
    let (service, child) = match (&gw.settings.command, &gw.settings.url) {
        (Some(program), _) => {
            let mut cmd = tokio::process::Command::new(program);
            cmd.args(&gw.settings.args)
                .env_clear()
                .envs(
                    INHERITED
                        .iter()
                        .filter_map(|k| std::env::var(k).ok().map(|v| (*k, v))),
                )
                .envs(&gw.settings.env)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true);
            if let Some(dir) = &gw.settings.cwd {
                cmd.current_dir(dir);
            }
            let mut child = cmd.spawn().map_err(|e| failed(e.to_string()))?;
            let (stdout, stdin) = (
                child.stdout.take().expect("piped"),
                child.stdin.take().expect("piped"),
            );
            if let Some(stderr) = child.stderr.take() {
                let name = gw.settings.name.clone();
                tokio::spawn(async move {
                    let mut lines = tokio::io::BufReader::new(stderr).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        tracing::info!(upstream = %name, "{line}");
                    }
                });
            }
            let service = client
                .serve((stdout, stdin))
                .await
                .map_err(|e| failed(e.to_string()))?;
            (service, Some(child))
        }
        (None, Some(url)) => {
            let http = IdentityClient {
                inner: gw.http.clone(),
                gateway: gw.clone(),
                principal: Arc::new(principal.clone()),
                forwarded: Arc::new(
                    forwarded
                        .into_iter()
                        .filter_map(|(k, v)| {
                            Some((
                                HeaderName::from_bytes(k.as_bytes()).ok()?,
                                HeaderValue::from_str(&v).ok()?,
                            ))
                        })
                        .collect(),
                ),
            };
            let transport = StreamableHttpClientTransport::with_client(
                http,
                StreamableHttpClientTransportConfig::with_uri(url.as_str()),
            );
            let service = client
                .serve(transport)
                .await
                .map_err(|e| failed(e.to_string()))?;
            (service, None)
        }
        (None, None) => unreachable!("validated at start-up"),
    };
    Ok(Arc::new(Connection {
        service,
        routes,
        _child: child,
        _permit: permit,
        last_used: AtomicI64::new(now_secs()),
        idle: Duration::from_secs(gw.settings.idle_timeout_secs),
    }))
}

/// The HTTP client of an upstream session: every request carries a fresh identity token
/// for the session's caller, and never the caller's own `Authorization`.
#[derive(Clone)]
struct IdentityClient {
    inner: reqwest::Client,
    gateway: Arc<Gateway>,
    principal: Arc<Principal>,
    forwarded: Arc<HashMap<HeaderName, HeaderValue>>,
}

impl IdentityClient {
    fn headers(&self) -> HashMap<HeaderName, HeaderValue> {
        let gw = &self.gateway;
        let mut headers = (*self.forwarded).clone();
        let name = HeaderName::from_bytes(gw.settings.identity_header.as_bytes())
            .expect("validated at start-up");
        let token = gw.signer.token(
            &self.principal,
            gw.settings.url.as_deref().unwrap_or_default(),
            now_secs(),
        );
        headers.insert(
            name,
            HeaderValue::from_str(&token).expect("a JWT is header-safe"),
        );
        headers
    }
}

impl StreamableHttpClient for IdentityClient {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        _custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.inner
            .post_message(uri, message, session_id, None, self.headers())
            .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        _custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.inner
            .post_message_with_response_limits(
                uri,
                message,
                session_id,
                None,
                self.headers(),
                limits,
            )
            .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        _auth_header: Option<String>,
        _custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        self.inner
            .delete_session(uri, session_id, None, self.headers())
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        _custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<
        futures::stream::BoxStream<'static, Result<sse_stream::Sse, sse_stream::Error>>,
        StreamableHttpError<Self::Error>,
    > {
        self.inner
            .get_stream(uri, session_id, last_event_id, None, self.headers())
            .await
    }
}
