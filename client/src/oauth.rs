//! The OAuth client side of MCP authorization: registration (RFC 7591), token requests with
//! the client's credentials form-encoded before HTTP Basic (RFC 6749 §2.3.1), and the shared
//! types. Discovery is in `discover`, the code and device flows in `flows`.

use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oauth_protocol::register::{GRANT_AUTHORIZATION_CODE, GRANT_DEVICE_CODE, GRANT_REFRESH_TOKEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;

pub use crate::discover::{Discovered, ServerMetadata, discover};
pub use crate::flows::{Browser, code_flow, device_flow};

/// A token endpoint answer, leniently: `expires_in` is only RECOMMENDED (RFC 6749 §5.1).
#[derive(Debug, Clone, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<i64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

pub fn random_token() -> String {
    let mut buf = [0u8; 32];
    SystemRandom::new()
        .fill(&mut buf)
        .expect("the OS random source failed");
    URL_SAFE_NO_PAD.encode(buf)
}

/// A client as registered: its id, and for a confidential client its secret and method.
pub struct Registered {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub method: String,
}

/// The method a new registration asks for: a public client when the server allows one,
/// else Basic, else the secret in the body (RFC 8414 §2: Basic is the default).
pub fn auth_method(server: &ServerMetadata) -> &'static str {
    let offered = &server.token_endpoint_auth_methods_supported;
    if offered.is_empty() {
        "client_secret_basic"
    } else if offered.iter().any(|m| m == "none") {
        "none"
    } else if offered.iter().any(|m| m == "client_secret_basic") {
        "client_secret_basic"
    } else {
        "client_secret_post"
    }
}

/// RFC 7591 registration of a native client.
pub async fn register(
    http: &reqwest::Client,
    server: &ServerMetadata,
    redirect_uri: Option<&str>,
) -> anyhow::Result<Registered> {
    let endpoint = server.registration_endpoint.as_deref().with_context(|| {
        format!(
            "{} offers no dynamic registration: pass --client-id",
            server.issuer
        )
    })?;
    let method = auth_method(server);
    let body = match redirect_uri {
        Some(uri) => serde_json::json!({
            "client_name": "mcp-client",
            "application_type": "native",
            "redirect_uris": [uri],
            "grant_types": [GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN],
            "response_types": ["code"],
            "token_endpoint_auth_method": method,
        }),
        None => serde_json::json!({
            "client_name": "mcp-client",
            "application_type": "native",
            "grant_types": [GRANT_DEVICE_CODE, GRANT_REFRESH_TOKEN],
            "response_types": [],
            "token_endpoint_auth_method": method,
        }),
    };
    let res = http.post(endpoint).json(&body).send().await?;
    let status = res.status();
    let doc: serde_json::Value = res.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!("registration at {endpoint} was refused ({status}): {doc}");
    }
    Ok(Registered {
        client_id: doc["client_id"]
            .as_str()
            .context("the registration response has no client_id")?
            .to_owned(),
        client_secret: doc["client_secret"].as_str().map(str::to_owned),
        method: doc["token_endpoint_auth_method"]
            .as_str()
            .unwrap_or(method)
            .to_owned(),
    })
}

/// The client's credentials on a token, device or revocation request: a public client
/// sends its id in the body; a confidential one uses Basic with both parts form-encoded.
pub struct ClientAuth<'a> {
    pub client_id: &'a str,
    pub client_secret: Option<&'a str>,
    /// `client_secret_post` instead of Basic (when the server offers only that).
    pub post: bool,
}

impl ClientAuth<'_> {
    pub fn apply(
        &self,
        req: reqwest::RequestBuilder,
        form: &mut Vec<(&'static str, String)>,
    ) -> reqwest::RequestBuilder {
        match self.client_secret {
            Some(secret) if self.post => {
                form.push(("client_id", self.client_id.to_owned()));
                form.push(("client_secret", secret.to_owned()));
                req
            }
            Some(secret) => {
                let enc =
                    |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                req.basic_auth(enc(self.client_id), Some(enc(secret)))
            }
            None => {
                form.push(("client_id", self.client_id.to_owned()));
                req
            }
        }
    }
}

/// What a token endpoint said.
pub enum TokenAnswer {
    Tokens(Tokens),
    Error { error: String, description: String },
}

pub async fn token_request(
    http: &reqwest::Client,
    endpoint: &str,
    auth: &ClientAuth<'_>,
    mut form: Vec<(&'static str, String)>,
) -> anyhow::Result<TokenAnswer> {
    let req = auth.apply(http.post(endpoint), &mut form);
    let res = req
        .form(&form)
        .send()
        .await
        .with_context(|| format!("cannot reach {endpoint}"))?;
    let status = res.status();
    let text = res.text().await?;
    if status.is_success()
        && let Ok(tokens) = serde_json::from_str::<Tokens>(&text)
    {
        return Ok(TokenAnswer::Tokens(tokens));
    }
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(e) => Ok(TokenAnswer::Error {
            error: e.error,
            description: e.error_description.unwrap_or_default(),
        }),
        Err(_) => bail!("{endpoint} answered {status} without a token or an OAuth error"),
    }
}

pub fn tokens_or_fail(answer: TokenAnswer) -> anyhow::Result<Tokens> {
    match answer {
        TokenAnswer::Tokens(t) => Ok(t),
        TokenAnswer::Error { error, description } => bail!("{error}: {description}"),
    }
}
