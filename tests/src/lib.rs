//! Test harness: starts the real authorization server on a random loopback port against a
//! fresh database (SQLite by default, PostgreSQL when `DATABASE_URL` says so) and drives it
//! the way a browser and OAuth clients do.

pub mod fake_upstream;

use std::sync::Arc;

use authz_server::Application;
use authz_server::config::{Config, ResourceServer};
use authz_server::ids::new_id;
use authz_server::password::hash_password;
use authz_server::state::now;
use authz_server::store::{Store, Table, User};
use oauth_protocol::secret::Secret;
use reqwest::redirect::Policy;
use tokio::net::TcpListener;
use url::Url;

pub const USERNAME: &str = "alice";
pub const PASSWORD: &str = "correct horse battery";
pub const RS_CLIENT_ID: &str = "resource-server";
pub const RS_CLIENT_SECRET: &str = "rs-secret-0123456789abcdef";
pub const REDIRECT_URI: &str = "http://127.0.0.1:3000/callback";
/// The RFC 7591 initial access token the test servers accept (vouched registrations may
/// use client_credentials).
pub const REGISTRATION_TOKEN: &str = "e2e-initial-access-token-0123456789";

/// A directory under the system temp directory, removed with everything in it when the
/// value is dropped: at the end of the test, and also when it fails (a panic unwinds).
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    pub fn new(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", new_id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh database for one test, removed when dropped (also when the test fails): a new
/// PostgreSQL database when `DATABASE_URL` points at PostgreSQL, otherwise a SQLite file
/// in a scratch directory.
pub struct TestDatabase {
    pub url: String,
    place: Place,
}

enum Place {
    Sqlite(#[allow(dead_code)] Scratch),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    pub async fn new() -> Self {
        match std::env::var("DATABASE_URL") {
            Ok(admin_url) if admin_url.starts_with("postgres") => {
                use sqlx::Connection;
                let name = format!("e2e_{}", new_id().to_lowercase().replace(['-', '_'], ""));
                let mut conn = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .expect("PostgreSQL reachable at DATABASE_URL");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create database");
                let _ = conn.close().await;
                let mut url = Url::parse(&admin_url).expect("DATABASE_URL is a URL");
                url.set_path(&format!("/{name}"));
                Self {
                    url: url.to_string(),
                    place: Place::Postgres { admin_url, name },
                }
            }
            _ => {
                let dir = Scratch::new("authz-e2e");
                Self {
                    url: format!("sqlite://{}/authz.db?mode=rwc", dir.0.display()),
                    place: Place::Sqlite(dir),
                }
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Place::Postgres { admin_url, name } = &self.place else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread with a
        // runtime of its own drops the database. FORCE ends the pools still connected.
        let (admin_url, statement) = (
            admin_url.clone(),
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&admin_url).await?;
                sqlx::query(&statement).execute(&mut conn).await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {name}");
        }
    }
}

/// A further instance of a server (`TestStack::another_*`); stopped when dropped.
pub struct Instance<S> {
    /// Its base URL (the MCP endpoint for a resource server).
    pub url: String,
    pub state: S,
    running: Option<Running>,
}

impl<S> Instance<S> {
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

/// A running server task.
struct Running {
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}

pub struct TestStack {
    pub issuer: String,
    /// The resource server's canonical resource URI (its MCP endpoint).
    pub resource: String,
    pub store: Store,
    pub config: Arc<Config>,
    pub rs_config: Arc<resource_server::Config>,
    /// The resource server's introspection counters.
    pub rs_stats: Arc<resource_server::introspection::Stats>,
    /// A browser: no automatic redirects, keeps cookies.
    pub browser: reqwest::Client,
    /// A plain HTTP client without cookies.
    pub http: reqwest::Client,
    pub user_id: String,
    /// The running server's signing keys (for rotation tests).
    pub keys: authz_server::signing_keys::Keys,
    /// The running authorization server's state (resource servers, metrics).
    pub authz_state: authz_server::state::AppState,
    /// The clock both servers read: tests move it instead of sleeping.
    pub clock: Arc<oauth_protocol::clock::ManualClock>,
    authz: Option<Running>,
    rs: Option<Running>,
    /// Dropped last, after the servers were told to stop.
    _databases: [TestDatabase; 2],
}

type AdjustAuthz<'a> = Box<dyn FnOnce(&mut Config) + 'a>;
type AdjustRs<'a> = Box<dyn FnOnce(&mut resource_server::Config) + 'a>;

/// How a test stack is set up: each server's configuration may be changed before it starts.
pub struct Builder<'a> {
    authz: AdjustAuthz<'a>,
    rs: AdjustRs<'a>,
}

impl<'a> Builder<'a> {
    /// Changes the authorization server's configuration.
    pub fn authz(mut self, adjust: impl FnOnce(&mut Config) + 'a) -> Self {
        self.authz = Box::new(adjust);
        self
    }

    /// Changes the resource server's configuration.
    pub fn resource_server(
        mut self,
        adjust: impl FnOnce(&mut resource_server::Config) + 'a,
    ) -> Self {
        self.rs = Box::new(adjust);
        self
    }

    pub async fn spawn(self) -> TestStack {
        TestStack::start(self.authz, self.rs).await
    }
}

impl TestStack {
    /// Both servers with the test defaults.
    pub async fn spawn() -> Self {
        Self::builder().spawn().await
    }

    pub fn builder<'a>() -> Builder<'a> {
        Builder {
            authz: Box::new(|_| {}),
            rs: Box::new(|_| {}),
        }
    }

    /// Starts the resource server's listener first (its URL is the resource the
    /// authorization server must know), then the authorization server, then the resource
    /// server pointed at the authorization server's real URL.
    async fn start(adjust: AdjustAuthz<'_>, adjust_rs: AdjustRs<'_>) -> Self {
        let rs_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let resource = format!("http://{}/mcp", rs_listener.local_addr().unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let issuer = format!("http://{addr}");
        let databases = [TestDatabase::new().await, TestDatabase::new().await];
        let mut config = Config {
            issuer: issuer.clone(),
            bind: addr,
            database_url: databases[0].url.clone(),
            resource_servers: vec![ResourceServer {
                resource: resource.clone(),
                name: Some("Test MCP server".into()),
                client_id: RS_CLIENT_ID.into(),
                client_secret: Secret::new(RS_CLIENT_SECRET),
                machine_clients: true,
                secret_digest: None,
            }],
            registration_token: Some(Secret::new(REGISTRATION_TOKEN)),
            ..Config::default()
        };
        adjust(&mut config);
        config.validate().expect("test configuration is valid");
        let store = Store::connect(&config.database_url)
            .await
            .expect("database");
        let user_id = new_id();
        store
            .insert_user(&User {
                id: user_id.clone(),
                username: USERNAME.into(),
                password_hash: hash_password(PASSWORD),
                email: Some("alice@example.com".into()),
                display_name: Some("Alice".into()),
                disabled: 0,
                created_at: now(),
            })
            .await
            .expect("user");
        let clock = oauth_protocol::clock::ManualClock::new();
        let app = Application::with_clock(config.clone(), store.clone(), listener, clock.clone())
            .await
            .expect("app");
        let keys = app.state().keys.clone();
        let authz_state = app.state().clone();
        let authz = run(app.run_until_fn());

        let mut rs_config = resource_server::Config {
            resource: resource.clone(),
            bind: rs_listener.local_addr().unwrap(),
            issuer: issuer.clone(),
            client_id: RS_CLIENT_ID.into(),
            client_secret: Secret::new(RS_CLIENT_SECRET),
            database_url: databases[1].url.clone(),
            resource_name: "Test MCP server".into(),
            ..resource_server::Config::default()
        };
        adjust_rs(&mut rs_config);
        rs_config
            .validate()
            .expect("resource server configuration is valid");
        let rs_store = resource_server::store::Store::connect(&rs_config.database_url)
            .await
            .expect("rs database");
        let rs_app = resource_server::Application::with_clock(
            rs_config.clone(),
            rs_store,
            rs_listener,
            clock.clone(),
        )
        .await
        .expect("rs app");
        let rs_stats = rs_app.state().introspector.stats.clone();
        let rs = run(rs_app.run_until_fn());
        Self {
            resource,
            issuer,
            store,
            config: Arc::new(config),
            rs_config: Arc::new(rs_config),
            rs_stats,
            browser: reqwest::Client::builder()
                .redirect(Policy::none())
                .cookie_store(true)
                .build()
                .unwrap(),
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            user_id,
            keys,
            authz_state,
            clock,
            authz: Some(authz),
            rs: Some(rs),
            _databases: databases,
        }
    }

    /// Stops the authorization server (the resource server keeps running).
    pub async fn stop_authorization_server(&mut self) {
        if let Some(r) = self.authz.take() {
            r.stop().await;
        }
    }

    /// Starts the authorization server again on the same address and database.
    pub async fn start_authorization_server(&mut self) {
        let listener = TcpListener::bind(self.config.bind)
            .await
            .expect("rebind the same port");
        // The stopped server closed its pool on the way out: open a new one.
        self.store = Store::connect(&self.config.database_url)
            .await
            .expect("database");
        let app = Application::with_clock(
            (*self.config).clone(),
            self.store.clone(),
            listener,
            self.clock.clone(),
        )
        .await
        .expect("app");
        self.keys = app.state().keys.clone();
        self.authz_state = app.state().clone();
        self.authz = Some(run(app.run_until_fn()));
    }

    /// Another instance of the authorization server on the same database with the same
    /// configuration (issuer included), listening elsewhere: as behind a load balancer.
    pub async fn another_authorization_server(&self) -> Instance<authz_server::state::AppState> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let store = Store::connect(&self.config.database_url)
            .await
            .expect("database");
        let app =
            Application::with_clock((*self.config).clone(), store, listener, self.clock.clone())
                .await
                .expect("app");
        let state = app.state().clone();
        Instance {
            url,
            state,
            running: Some(run(app.run_until_fn())),
        }
    }

    /// Another instance of the resource server on the same database, for the same resource.
    pub async fn another_resource_server(&self) -> Instance<resource_server::state::AppState> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let mut config = (*self.rs_config).clone();
        config.bind = addr;
        config.allowed_hosts.push(addr.to_string());
        let store = resource_server::store::Store::connect(&config.database_url)
            .await
            .expect("rs database");
        let app =
            resource_server::Application::with_clock(config, store, listener, self.clock.clone())
                .await
                .expect("rs app");
        let state = app.state().clone();
        Instance {
            url: format!("http://{addr}/mcp"),
            state,
            running: Some(run(app.run_until_fn())),
        }
    }

    /// Adds a user and returns its id.
    pub async fn add_user(&self, username: &str, password: &str) -> String {
        let id = new_id();
        self.store
            .insert_user(&User {
                id: id.clone(),
                username: username.into(),
                password_hash: hash_password(password),
                email: None,
                display_name: None,
                disabled: 0,
                created_at: now(),
            })
            .await
            .expect("user");
        id
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    pub async fn count(&self, table: Table) -> i64 {
        self.store.count(table).await.expect("count")
    }

    /// Registers a client (RFC 7591) and returns the JSON response body.
    pub async fn register(&self, body: serde_json::Value) -> serde_json::Value {
        let res = self
            .http
            .post(self.url("/register"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "registration of {body} failed");
        res.json().await.unwrap()
    }

    pub async fn register_public(&self) -> String {
        let info = self
            .register(serde_json::json!({
                "client_name": "Test client",
                "redirect_uris": [REDIRECT_URI],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
            }))
            .await;
        info["client_id"].as_str().unwrap().to_owned()
    }

    /// Registers a client (RFC 7591) with the initial access token, which vouches for it.
    pub async fn register_vouched(&self, body: serde_json::Value) -> serde_json::Value {
        let res = self
            .http
            .post(self.url("/register"))
            .bearer_auth(REGISTRATION_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "registration of {body} failed");
        res.json().await.unwrap()
    }

    /// Registers a confidential client that may also use client_credentials (vouched by the
    /// initial access token) and returns (client_id, client_secret).
    pub async fn register_confidential(&self, method: &str) -> (String, String) {
        let info = self
            .register_vouched(serde_json::json!({
                "client_name": "Confidential client",
                "redirect_uris": [REDIRECT_URI],
                "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
                "token_endpoint_auth_method": method,
                "scope": "mcp:read mcp:write",
            }))
            .await;
        (
            info["client_id"].as_str().unwrap().to_owned(),
            info["client_secret"].as_str().unwrap().to_owned(),
        )
    }

    /// Walks an authorization URL like a person at a browser: signs in when asked,
    /// approves consent when asked, and returns the final redirect to the client.
    pub async fn browser_authorize(&self, auth_url: &str) -> Url {
        self.browser_authorize_with(auth_url, "approve").await
    }

    pub async fn browser_authorize_with(&self, auth_url: &str, decision: &str) -> Url {
        self.authorize_as(&self.browser, USERNAME, PASSWORD, auth_url, decision)
            .await
    }

    /// The same walk for any user, in the given browser (cookie jar).
    pub async fn authorize_as(
        &self,
        browser: &reqwest::Client,
        username: &str,
        password: &str,
        auth_url: &str,
        decision: &str,
    ) -> Url {
        walk_authorization(
            browser,
            &self.issuer,
            username,
            password,
            auth_url,
            decision,
        )
        .await
    }

    /// Stops both servers and waits until they have finished.
    pub async fn stop(mut self) {
        if let Some(r) = self.rs.take() {
            r.stop().await;
        }
        self.stop_authorization_server().await;
    }
}

impl Drop for TestStack {
    fn drop(&mut self) {
        for r in [self.authz.take(), self.rs.take()].into_iter().flatten() {
            let _ = r.shutdown.send(());
        }
    }
}

/// A fresh cookie jar: another person at another browser.
/// A stack whose resource server also serves `up` at `/<name>/mcp`, registered at the
/// authorization server as a resource of its own (introspecting with `client_id`); returns
/// the stack and the endpoint's URL.
pub async fn gateway_stack(
    up: resource_server::gateway::Upstream,
    client_id: &str,
    client_secret: &str,
) -> (TestStack, String) {
    let name = up.name.clone();
    let stack = TestStack::builder()
        .authz(|c| {
            let own = c.resource_servers[0].resource.clone();
            c.resource_servers.push(ResourceServer {
                resource: own.replace("/mcp", &format!("/{name}/mcp")),
                name: Some("gateway".into()),
                client_id: client_id.into(),
                client_secret: Secret::new(client_secret),
                machine_clients: false,
                secret_digest: None,
            });
        })
        .resource_server(move |c| c.upstream = vec![up])
        .spawn()
        .await;
    let url = stack.resource.replace(
        "/mcp",
        &format!("/{}/mcp", stack.rs_config.upstream[0].name),
    );
    (stack, url)
}

pub fn new_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

fn run(
    fut: impl FnOnce(
        tokio::sync::oneshot::Receiver<()>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) -> Running {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    Running {
        shutdown: tx,
        task: tokio::spawn(fut(rx)),
    }
}

/// Turns an application into a task that serves until its shutdown signal.
trait RunUntil {
    fn run_until_fn(
        self,
    ) -> impl FnOnce(
        tokio::sync::oneshot::Receiver<()>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
}

impl RunUntil for Application {
    fn run_until_fn(
        self,
    ) -> impl FnOnce(
        tokio::sync::oneshot::Receiver<()>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        move |rx| {
            Box::pin(async move {
                self.run_until(async {
                    let _ = rx.await;
                })
                .await
                .expect("authorization server runs");
            })
        }
    }
}

impl RunUntil for resource_server::Application {
    fn run_until_fn(
        self,
    ) -> impl FnOnce(
        tokio::sync::oneshot::Receiver<()>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        move |rx| {
            Box::pin(async move {
                self.run_until(async {
                    let _ = rx.await;
                })
                .await
                .expect("resource server runs");
            })
        }
    }
}

/// Walks an authorization URL like a person at a browser against the authorization server
/// at `issuer`: signs in when asked, approves (or denies) consent when asked, and returns the
/// final redirect to the client. Uses only the documented form fields.
pub async fn walk_authorization(
    browser: &reqwest::Client,
    issuer: &str,
    username: &str,
    password: &str,
    auth_url: &str,
    decision: &str,
) -> Url {
    let mut next = auth_url.to_owned();
    for _ in 0..6 {
        let res = browser.get(&next).send().await.unwrap();
        if res.status().is_redirection() {
            let loc = location(&res);
            if loc.starts_with(issuer) || loc.starts_with('/') {
                next = absolute(issuer, &loc);
                continue;
            }
            return Url::parse(&loc).unwrap();
        }
        assert_eq!(res.status(), 200, "unexpected page at {next}");
        let html = res.text().await.unwrap();
        let csrf = hidden(&html, "csrf_token").expect("csrf_token field");
        let request = hidden(&html, "request").expect("request field");
        let res = if html.contains("id=\"login-form\"") {
            browser
                .post(format!("{issuer}/login"))
                .form(&[
                    ("username", username),
                    ("password", password),
                    ("csrf_token", &csrf),
                    ("request", &request),
                ])
                .send()
                .await
                .unwrap()
        } else {
            assert!(
                html.contains("id=\"consent-form\""),
                "neither login nor consent page: {html}"
            );
            browser
                .post(format!("{issuer}/consent"))
                .form(&[
                    ("decision", decision),
                    ("csrf_token", &csrf),
                    ("request", &request),
                ])
                .send()
                .await
                .unwrap()
        };
        assert_eq!(res.status(), 303, "form post should answer 303");
        let loc = location(&res);
        if loc.starts_with('/') || loc.starts_with(issuer) {
            next = absolute(issuer, &loc);
            continue;
        }
        return Url::parse(&loc).unwrap();
    }
    panic!("authorization did not finish");
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get(reqwest::header::LOCATION)
        .expect("Location header")
        .to_str()
        .unwrap()
        .to_owned()
}

fn absolute(base: &str, loc: &str) -> String {
    if loc.starts_with('/') {
        format!("{base}{loc}")
    } else {
        loc.to_owned()
    }
}

/// The value of a hidden form field, HTML entities decoded.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = start + html[start..].find('"')?;
    Some(unescape(&html[start..end]))
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Query parameters of a redirect.
pub fn query(url: &Url) -> std::collections::HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// An HTTP client for the `oauth2` crate on top of reqwest (no redirects).
pub fn oauth_http() -> impl Fn(
    oauth2::HttpRequest,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, reqwest::Error>> + Send>,
> {
    let client = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    move |req: oauth2::HttpRequest| {
        let client = client.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let mut builder = client
                .request(parts.method, parts.uri.to_string())
                .body(body);
            for (k, v) in parts.headers.iter() {
                builder = builder.header(k, v);
            }
            let res = builder.send().await?;
            let mut out = oauth2::http::Response::builder().status(res.status());
            for (k, v) in res.headers() {
                out = out.header(k, v);
            }
            let bytes = res.bytes().await?;
            Ok(out.body(bytes.to_vec()).expect("valid response"))
        })
    }
}

/// The RFC 7636 Appendix B verifier, for flows driven by hand.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// One answer of the MCP endpoint, with the JSON-RPC message out of a JSON or SSE body.
#[derive(Debug)]
pub struct McpReply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub message: Option<serde_json::Value>,
}

impl McpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestStack {
    /// Registers a public client and walks the code flow for `username` in `browser`,
    /// returning the token response.
    pub async fn user_token(
        &self,
        browser: &reqwest::Client,
        username: &str,
        password: &str,
        scope: &str,
    ) -> serde_json::Value {
        self.user_token_for(browser, username, password, scope, &self.resource)
            .await
    }

    /// `user_token` for another resource (a gateway endpoint).
    pub async fn user_token_for(
        &self,
        browser: &reqwest::Client,
        username: &str,
        password: &str,
        scope: &str,
        resource: &str,
    ) -> serde_json::Value {
        let client_id = self.register_public().await;
        let mut url = Url::parse(&self.url("/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client_id)
            .append_pair("redirect_uri", REDIRECT_URI)
            .append_pair(
                "code_challenge",
                &oauth_protocol::pkce::s256_challenge(VERIFIER),
            )
            .append_pair("code_challenge_method", "S256")
            .append_pair("scope", scope)
            .append_pair("resource", resource);
        let callback = self
            .authorize_as(browser, username, password, url.as_str(), "approve")
            .await;
        let code = query(&callback).remove("code").expect("code");
        let res = self
            .http
            .post(self.url("/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", VERIFIER),
                ("redirect_uri", REDIRECT_URI),
                ("client_id", &client_id),
                ("resource", resource),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// POSTs a form to the authorization server, with Basic credentials when given, and
    /// returns the status and the JSON body (`Null` when there is none).
    pub async fn post_form(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> (u16, serde_json::Value) {
        let mut req = self.http.post(self.url(path)).form(fields);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// `POST /token`.
    pub async fn token(
        &self,
        fields: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> (u16, serde_json::Value) {
        self.post_form("/token", fields, basic).await
    }

    /// `POST /introspect` as the test resource server.
    pub async fn introspect(&self, token: &str) -> serde_json::Value {
        self.post_form(
            "/introspect",
            &[("token", token)],
            Some((RS_CLIENT_ID, RS_CLIENT_SECRET)),
        )
        .await
        .1
    }

    /// `POST /revoke`; the status.
    pub async fn revoke(&self, fields: &[(&str, &str)], basic: Option<(&str, &str)>) -> u16 {
        self.post_form("/revoke", fields, basic).await.0
    }

    /// `GET` a path of the authorization server as JSON.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let res = self.http.get(self.url(path)).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// An authorization URL for `client_id` with PKCE (`VERIFIER`) and `state=st`, plus `extra`.
    pub fn authorize_url(&self, client_id: &str, extra: &[(&str, &str)]) -> String {
        let mut url = Url::parse(&self.url("/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair(
                "code_challenge",
                &oauth_protocol::pkce::s256_challenge(VERIFIER),
            )
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", "st");
        for (k, v) in extra {
            url.query_pairs_mut().append_pair(k, v);
        }
        url.to_string()
    }

    /// Signs in on the account page in `browser`; the status of the form post.
    pub async fn sign_in(&self, browser: &reqwest::Client, username: &str, password: &str) -> u16 {
        let page = browser
            .get(self.url("/account"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = hidden(&page, "csrf_token").expect("csrf_token field");
        browser
            .post(self.url("/login"))
            .form(&[
                ("username", username),
                ("password", password),
                ("csrf_token", &csrf),
                ("request", ""),
            ])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// A second user, `bob`, with a browser of their own.
    pub async fn second_user(&self) -> (String, reqwest::Client) {
        (
            self.add_user("bob", "bob password 123").await,
            new_browser(),
        )
    }

    /// POSTs one JSON-RPC message to the MCP endpoint.
    pub async fn mcp_post(
        &self,
        token: Option<&str>,
        session: Option<&str>,
        body: serde_json::Value,
    ) -> McpReply {
        let mut req = self
            .http
            .post(&self.resource)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-11-25")
            .body(body.to_string());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let is_sse = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"));
        let message = if is_sse {
            // Read events until the first JSON-RPC response (the stream may stay open).
            let mut res = res;
            let mut buf = String::new();
            let mut found = None;
            while let Ok(Some(chunk)) = res.chunk().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                found = buf
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .filter_map(|d| serde_json::from_str::<serde_json::Value>(d.trim()).ok())
                    .find(|m| m.get("id").is_some());
                if found.is_some() {
                    break;
                }
            }
            found
        } else {
            let text = res.text().await.unwrap_or_default();
            serde_json::from_str(&text).ok()
        };
        McpReply {
            status,
            headers,
            message,
        }
    }

    /// Initializes an MCP session and returns its id.
    pub async fn mcp_session(&self, token: &str) -> String {
        let init = self
            .mcp_post(
                Some(token),
                None,
                serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "e2e", "version": "1"}}}),
            )
            .await;
        assert_eq!(init.status, 200, "initialize: {init:?}");
        let session = init
            .header("mcp-session-id")
            .expect("session id")
            .to_owned();
        let ack = self
            .mcp_post(
                Some(token),
                Some(&session),
                serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )
            .await;
        assert_eq!(ack.status, 202);
        session
    }

    /// Calls a tool in a session and returns the reply.
    pub async fn call_tool(
        &self,
        token: &str,
        session: &str,
        name: &str,
        arguments: serde_json::Value,
    ) -> McpReply {
        self.mcp_post(
            Some(token),
            Some(session),
            serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": arguments}}),
        )
        .await
    }
}

/// The text of a tool result, parsed as JSON.
pub fn tool_json(reply: &McpReply) -> serde_json::Value {
    let text = reply
        .message
        .as_ref()
        .and_then(|m| m["result"]["content"][0]["text"].as_str())
        .unwrap_or_else(|| panic!("no tool result in {reply:?}"));
    serde_json::from_str(text).unwrap()
}
