//! Test harness: starts the real authorization server on a random loopback port against a
//! fresh database (SQLite by default, PostgreSQL when `DATABASE_URL` says so) and drives it
//! the way a browser and OAuth clients do.

use std::sync::Arc;

use authz_server::Application;
use authz_server::config::{Config, ResourceServer};
use authz_server::crypto::{hash_password, new_id};
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

/// A fresh database URL: a new PostgreSQL database when `DATABASE_URL` points at PostgreSQL,
/// otherwise a new SQLite file under the system temp directory.
pub async fn fresh_database_url() -> String {
    match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => {
            use sqlx::Connection;
            let name = format!("e2e_{}", new_id().to_lowercase().replace(['-', '_'], ""));
            let mut conn = sqlx::PgConnection::connect(&url)
                .await
                .expect("PostgreSQL reachable at DATABASE_URL");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create database");
            let mut base = Url::parse(&url).expect("DATABASE_URL is a URL");
            base.set_path(&format!("/{name}"));
            base.to_string()
        }
        _ => {
            let dir = std::env::temp_dir().join(format!("authz-e2e-{}", new_id()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            format!("sqlite://{}/authz.db?mode=rwc", dir.display())
        }
    }
}

pub struct TestStack {
    pub issuer: String,
    pub resource: String,
    pub store: Store,
    pub config: Arc<Config>,
    /// A browser: no automatic redirects, keeps cookies.
    pub browser: reqwest::Client,
    /// A plain HTTP client without cookies.
    pub http: reqwest::Client,
    pub user_id: String,
    /// The running server's signing keys (for rotation tests).
    pub keys: authz_server::crypto::Keys,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestStack {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the server; `adjust` may change the configuration first.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let issuer = format!("http://{addr}");
        let resource = "http://127.0.0.1:8002/mcp".to_owned();
        let mut config = Config {
            issuer: issuer.clone(),
            bind: addr,
            database_url: fresh_database_url().await,
            resource_servers: vec![ResourceServer {
                resource: resource.clone(),
                name: Some("Test MCP server".into()),
                client_id: RS_CLIENT_ID.into(),
                client_secret: Secret::new(RS_CLIENT_SECRET),
            }],
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
        let app = Application::with_parts(config.clone(), store.clone(), listener)
            .await
            .expect("app");
        let keys = app.state().keys.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.run_until(async {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        Self {
            resource: config
                .resource_servers
                .first()
                .map(|r| r.resource.clone())
                .unwrap_or_default(),
            issuer,
            store,
            config: Arc::new(config),
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
            shutdown: Some(tx),
            task: Some(task),
        }
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

    /// Registers a confidential client and returns (client_id, client_secret).
    pub async fn register_confidential(&self, method: &str) -> (String, String) {
        let info = self
            .register(serde_json::json!({
                "client_name": "Confidential client",
                "redirect_uris": [REDIRECT_URI],
                "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
                "token_endpoint_auth_method": method,
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
        let mut next = auth_url.to_owned();
        for _ in 0..6 {
            let res = self.browser.get(&next).send().await.unwrap();
            if res.status().is_redirection() {
                let loc = location(&res);
                if loc.starts_with(&self.issuer) || loc.starts_with('/') {
                    next = absolute(&self.issuer, &loc);
                    continue;
                }
                return Url::parse(&loc).unwrap();
            }
            assert_eq!(res.status(), 200, "unexpected page at {next}");
            let html = res.text().await.unwrap();
            let csrf = hidden(&html, "csrf_token").expect("csrf_token field");
            let request = hidden(&html, "request").expect("request field");
            let res = if html.contains("id=\"login-form\"") {
                self.browser
                    .post(self.url("/login"))
                    .form(&[
                        ("username", USERNAME),
                        ("password", PASSWORD),
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
                self.browser
                    .post(self.url("/consent"))
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
            if loc.starts_with('/') || loc.starts_with(&self.issuer) {
                next = absolute(&self.issuer, &loc);
                continue;
            }
            return Url::parse(&loc).unwrap();
        }
        panic!("authorization did not finish");
    }

    /// Stops the server and waits until it has finished.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestStack {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
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
