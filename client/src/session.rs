//! Login, fresh tokens, status and logout over the token store. A refresh happens under
//! the store's lock and re-reads the file first, so of several invocations at once one
//! refreshes and the others use its result.

use std::time::Duration;

use anyhow::{Context, bail};
use oauth_protocol::register::GRANT_REFRESH_TOKEN;

use crate::oauth::{self, Browser, ClientAuth, TokenAnswer};
use crate::store::{Entry, Store};

/// A token expiring sooner than this is refreshed before it is handed out.
const REFRESH_MARGIN: i64 = 300;

pub struct Login {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// An https URL of a client ID metadata document, used as the client id where the
    /// server supports them.
    pub client_metadata_url: Option<String>,
    pub scope: Option<String>,
    pub port: Option<u16>,
    pub browser: Browser,
    pub device: bool,
    pub timeout: Duration,
    /// A provider without MCP discovery, configured by hand.
    pub provider: Option<Provider>,
}

/// Endpoints given by hand (Auth0, Okta, Entra, Google…), instead of discovery.
pub struct Provider {
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: String,
    pub device_authorization_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    /// The issuer, when the provider names it in its redirects (RFC 9207).
    pub issuer: Option<String>,
    /// RFC 8707 `resource`; none is sent when empty (Entra refuses it, for one).
    pub resource: Option<String>,
}

impl Provider {
    fn discovered(self, scope: Option<String>) -> oauth::Discovered {
        let issuer = self.issuer.clone().unwrap_or_else(|| {
            url::Url::parse(&self.token_endpoint)
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_default()
        });
        oauth::Discovered {
            resource: self.resource.unwrap_or_default(),
            scope: scope.unwrap_or_default(),
            server: oauth::ServerMetadata {
                authorization_response_iss_parameter_supported: self.issuer.is_some(),
                issuer,
                authorization_endpoint: self.authorization_endpoint,
                token_endpoint: self.token_endpoint,
                registration_endpoint: None,
                revocation_endpoint: self.revocation_endpoint,
                device_authorization_endpoint: self.device_authorization_endpoint,
                code_challenge_methods_supported: vec!["S256".into()],
                token_endpoint_auth_methods_supported: Vec::new(),
                client_id_metadata_document_supported: false,
            },
        }
    }
}

/// The credentials an entry's requests carry.
pub fn client_auth(entry: &Entry) -> ClientAuth<'_> {
    ClientAuth {
        client_id: &entry.client_id,
        client_secret: entry.client_secret.as_deref(),
        post: entry.auth_method.as_deref() == Some("client_secret_post"),
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// An entry is for `url` when it was made for that URL, or its resource is that URL (a
/// trailing slash aside).
pub fn is_for(entry: &Entry, url: &str) -> bool {
    let url = url.trim_end_matches('/');
    entry.url.trim_end_matches('/') == url || entry.resource.trim_end_matches('/') == url
}

/// Unknown lifetimes (no `expires_in`) count as fresh until the server says otherwise.
fn fresh(entry: &Entry, now: i64) -> bool {
    entry.access_token.is_some()
        && (entry.expires_at == 0 || entry.expires_at - now > REFRESH_MARGIN)
}

fn expires_at(expires_in: Option<i64>, now: i64) -> i64 {
    expires_in.map_or(0, |s| now + s.max(0))
}

/// Signs in for `url`; `None` when the server does not ask for authorization at all.
pub async fn login(store: &Store, url: &str, login: Login) -> anyhow::Result<Option<Entry>> {
    let http = oauth::http();
    let found = match login.provider {
        Some(p) => {
            if login.client_id.is_none() {
                bail!("a provider given by its endpoints needs --client-id");
            }
            Some(p.discovered(login.scope.clone()))
        }
        None => oauth::discover(&http, url).await?,
    };
    let Some(mut found) = found else {
        return Ok(None);
    };
    if let Some(scope) = login.scope {
        found.scope = scope;
    }
    let listener = if login.device {
        None
    } else {
        Some(
            tokio::net::TcpListener::bind(("127.0.0.1", login.port.unwrap_or(0)))
                .await
                .context("cannot listen on 127.0.0.1 for the redirect")?,
        )
    };
    let redirect = match &listener {
        Some(l) => Some(format!("http://{}/callback", l.local_addr()?)),
        None => None,
    };
    // Pre-registered, else a metadata document where the server takes one, else RFC 7591.
    let registered = match (login.client_id, login.client_metadata_url) {
        (Some(id), _) => oauth::Registered {
            client_id: id,
            method: match &login.client_secret {
                None => "none".into(),
                Some(_) => oauth::auth_method(&found.server).into(),
            },
            client_secret: login.client_secret,
        },
        (None, Some(doc)) if found.server.client_id_metadata_document_supported => {
            oauth::Registered {
                client_id: doc,
                client_secret: None,
                method: "none".into(),
            }
        }
        _ => oauth::register(&http, &found.server, redirect.as_deref()).await?,
    };
    let mut entry = Entry {
        url: url.to_owned(),
        issuer: found.server.issuer.clone(),
        resource: found.resource.clone(),
        client_id: registered.client_id,
        client_secret: registered.client_secret,
        auth_method: Some(registered.method),
        token_endpoint: found.server.token_endpoint.clone(),
        revocation_endpoint: found.server.revocation_endpoint.clone(),
        access_token: None,
        refresh_token: None,
        expires_at: 0,
        scope: String::new(),
    };
    let auth = client_auth(&entry);
    let tokens = match listener {
        None => oauth::device_flow(&http, &found, &auth).await?,
        Some(listener) => {
            oauth::code_flow(&http, &found, &auth, listener, login.browser, login.timeout).await?
        }
    };
    entry.access_token = Some(tokens.access_token);
    entry.refresh_token = tokens.refresh_token;
    entry.expires_at = expires_at(tokens.expires_in, now());
    entry.scope = tokens.scope.unwrap_or(found.scope);
    store.update(|c| {
        c.put(entry.clone());
        Ok(())
    })?;
    Ok(Some(entry))
}

/// A valid access token for `url`: `MCP_ACCESS_TOKEN` as it is, else the stored one,
/// refreshed first when it expires within five minutes.
pub async fn access_token(store: &Store, url: &str) -> anyhow::Result<String> {
    stored_token(store, url)
        .await?
        .with_context(|| format!("not signed in for {url}: run `mcp-client login {url}`"))
}

/// As `access_token`, but `None` when nothing is stored for `url`.
pub async fn stored_token(store: &Store, url: &str) -> anyhow::Result<Option<String>> {
    if let Some(token) = std::env::var("MCP_ACCESS_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
    {
        return Ok(Some(token));
    }
    let contents = store.read()?;
    let Some(entry) = contents.entries.iter().find(|e| is_for(e, url)) else {
        return Ok(None);
    };
    if fresh(entry, now()) {
        return Ok(entry.access_token.clone());
    }
    refresh(store, url, false).await.map(Some)
}

fn browser_from_env() -> Browser {
    match std::env::var("MCP_CLIENT_BROWSER").as_deref() {
        Ok("fetch") => Browser::Fetch,
        Ok("print") => Browser::Print,
        _ => Browser::Open,
    }
}

/// Whether the endpoint's metadata now names another authorization server than the entry.
pub async fn issuer_changed(store: &Store, url: &str) -> anyhow::Result<bool> {
    let contents = store.read()?;
    let Some(entry) = contents.entries.iter().find(|e| is_for(e, url)) else {
        return Ok(false);
    };
    let found = oauth::discover(&oauth::http(), url).await?;
    Ok(found.is_some_and(|f| f.server.issuer != entry.issuer))
}

/// A new sign-in from scratch (discovery, registration), replacing the entry.
pub async fn sign_in_again(store: &Store, url: &str) -> anyhow::Result<()> {
    eprintln!("{url} now uses another authorization server: signing in there");
    let again = Login {
        client_id: None,
        client_secret: None,
        client_metadata_url: std::env::var("MCP_CLIENT_METADATA_URL").ok(),
        scope: None,
        port: None,
        browser: browser_from_env(),
        device: false,
        timeout: Duration::from_secs(300),
        provider: None,
    };
    login(store, url, again).await?;
    Ok(())
}

/// RFC 6750 §3.1 `insufficient_scope`: signs in again for the union of what was granted and
/// what the server asks for, with the same client registration.
pub async fn step_up(store: &Store, url: &str, wanted: &str) -> anyhow::Result<()> {
    let contents = store.read()?;
    let entry = contents
        .entries
        .iter()
        .find(|e| is_for(e, url))
        .context("not signed in")?
        .clone();
    let mut scope: Vec<&str> = entry.scope.split_whitespace().collect();
    for s in wanted.split_whitespace() {
        if !scope.contains(&s) {
            scope.push(s);
        }
    }
    eprintln!("the server asks for more access ({wanted}): signing in again");
    let browser = browser_from_env();
    let again = Login {
        client_id: Some(entry.client_id.clone()),
        client_secret: entry.client_secret.clone(),
        client_metadata_url: None,
        scope: Some(scope.join(" ")),
        port: None,
        browser,
        device: false,
        timeout: Duration::from_secs(300),
        provider: None,
    };
    login(store, url, again).await?;
    Ok(())
}

/// Refreshes under the lock. Unless `force`, a token another invocation refreshed in the
/// meantime is used as it is.
pub async fn refresh(store: &Store, url: &str, force: bool) -> anyhow::Result<String> {
    let _lock = store.lock()?;
    let mut contents = store.read()?;
    let entry = contents
        .entries
        .iter_mut()
        .find(|e| is_for(e, url))
        .with_context(|| format!("not signed in for {url}: run `mcp-client login {url}`"))?;
    if !force && fresh(entry, now()) {
        return Ok(entry.access_token.clone().unwrap_or_default());
    }
    let refresh_token = entry.refresh_token.clone().with_context(|| {
        format!("the access token for {url} has expired and there is no refresh token: run `mcp-client login {url}`")
    })?;
    let auth = client_auth(entry);
    // A network failure leaves everything as it was.
    let mut form = vec![
        ("grant_type", GRANT_REFRESH_TOKEN.to_owned()),
        ("refresh_token", refresh_token),
    ];
    if !entry.resource.is_empty() {
        form.push(("resource", entry.resource.clone()));
    }
    let answer = oauth::token_request(&oauth::http(), &entry.token_endpoint, &auth, form).await?;
    match answer {
        TokenAnswer::Tokens(t) => {
            entry.access_token = Some(t.access_token.clone());
            entry.expires_at = expires_at(t.expires_in, now());
            // No new refresh token in the answer: the old one stays valid (RFC 6749 §6).
            if let Some(rt) = t.refresh_token {
                entry.refresh_token = Some(rt);
            }
            if let Some(scope) = t.scope {
                entry.scope = scope;
            }
            store.write(&contents)?;
            Ok(t.access_token)
        }
        TokenAnswer::Error { error, description } if error == "invalid_grant" => {
            entry.access_token = None;
            entry.refresh_token = None;
            store.write(&contents)?;
            bail!(
                "the authorization server no longer accepts the sign-in for {url} ({description}): run `mcp-client login {url}`"
            )
        }
        TokenAnswer::Error { error, description } => {
            bail!("refreshing the token failed: {error}: {description}")
        }
    }
}
