//! Clients and their authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3.1: `client_secret_basic` with form-encoded credentials, `client_secret_post`,
//! and `none` for public clients).

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use oauth_protocol::form::Params;
use oauth_protocol::register::{AuthMethod, ClientMetadata};
use oauth_protocol::secret::{constant_time_eq, digest};

use crate::error::OAuthError;
use crate::store::ClientRow;

#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub secret_hash: Option<String>,
    pub metadata: ClientMetadata,
    /// Identified by a client ID metadata document rather than registered here.
    pub from_document: bool,
    /// How the client came to exist: `admin`, `dynamic` (RFC 7591, self-asserted),
    /// `dynamic-token` (RFC 7591 with the initial access token) or `document`.
    pub origin: String,
}

impl Client {
    pub fn from_row(row: &ClientRow) -> Option<Self> {
        let metadata = serde_json::from_str(&row.metadata)
            .inspect_err(|e| tracing::error!(client_id = %row.client_id, error = %e, "stored client metadata is unreadable"))
            .ok()?;
        Some(Self {
            client_id: row.client_id.clone(),
            secret_hash: row.secret_hash.clone(),
            metadata,
            from_document: false,
            origin: row.origin.clone(),
        })
    }

    /// Its registration was arranged with this server (an administrator or the holder of
    /// the initial access token), not asserted by whoever called `/register`.
    pub fn is_vetted(&self) -> bool {
        matches!(self.origin.as_str(), ORIGIN_ADMIN | ORIGIN_DYNAMIC_TOKEN)
    }

    /// The name to show people: control and bidi characters removed (also from names stored
    /// before registration removed them, and from names an administrator typed).
    pub fn name(&self) -> String {
        self.metadata
            .client_name
            .as_deref()
            .map(oauth_protocol::register::display_text)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.client_id.clone())
    }

    pub fn is_confidential(&self) -> bool {
        self.secret_hash.is_some()
    }

    /// Compares a presented secret with the stored digest in constant time.
    pub fn secret_matches(&self, secret: &str) -> bool {
        self.secret_hash
            .as_deref()
            .is_some_and(|h| constant_time_eq(digest(secret).as_bytes(), h.as_bytes()))
    }

    pub fn auth_method(&self) -> AuthMethod {
        self.metadata.token_endpoint_auth_method
    }
}

pub const ORIGIN_ADMIN: &str = "admin";
pub const ORIGIN_DYNAMIC: &str = "dynamic";
pub const ORIGIN_DYNAMIC_TOKEN: &str = "dynamic-token";
pub const ORIGIN_DOCUMENT: &str = "document";

/// The credentials a request presented.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub client_id: String,
    pub secret: Option<String>,
    pub via_header: bool,
}

/// Reads client credentials from the `Authorization: Basic` header or the form body.
/// More than one method in one request is refused (RFC 6749 §2.3).
pub fn credentials(
    headers: &HeaderMap,
    params: &Params,
) -> Result<Option<Credentials>, OAuthError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Some(value) = header {
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            let bad = || OAuthError::invalid_client("malformed Basic credentials", true);
            let decoded = STANDARD.decode(rest.trim()).map_err(|_| bad())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
            let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
            // RFC 6749 §2.3.1: both parts are form-urlencoded before being joined.
            let id = form_decode(id);
            let secret = form_decode(secret);
            if params.get("client_secret").is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not Basic and client_secret",
                ));
            }
            if params.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(OAuthError::invalid_client(
                    "client_id in the body differs from the Basic credentials",
                    true,
                ));
            }
            return Ok(Some(Credentials {
                client_id: id,
                secret: Some(secret),
                via_header: true,
            }));
        }
    }
    if params.is_duplicated("client_id") || params.is_duplicated("client_secret") {
        return Err(OAuthError::invalid_request(
            "client_id and client_secret must not be repeated",
        ));
    }
    Ok(params.get("client_id").map(|id| Credentials {
        client_id: id.to_owned(),
        secret: params.get("client_secret").map(str::to_owned),
        via_header: false,
    }))
}

fn form_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Checks presented credentials against a client. Unknown client, wrong secret, and a
/// missing secret for a confidential client look the same to the caller.
pub fn authenticate(client: Option<Client>, creds: &Credentials) -> Result<Client, OAuthError> {
    let fail = || OAuthError::invalid_client("client authentication failed", creds.via_header);
    let client = client.ok_or_else(fail)?;
    match (&creds.secret, client.is_confidential()) {
        (Some(secret), true) if client.secret_matches(secret) => Ok(client),
        (None, false) => Ok(client),
        _ => Err(fail()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut h = HeaderMap::new();
        // "my%3Aid:s%2Bc+r" → id "my:id", secret "s+c r"
        let v = format!("Basic {}", STANDARD.encode("my%3Aid:s%2Bc+r"));
        h.insert(axum::http::header::AUTHORIZATION, v.parse().unwrap());
        let c = credentials(&h, &Params::parse(b"")).unwrap().unwrap();
        assert_eq!(c.client_id, "my:id");
        assert_eq!(c.secret.as_deref(), Some("s+c r"));
        assert!(c.via_header);
    }

    #[test]
    fn two_methods_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::AUTHORIZATION,
            format!("Basic {}", STANDARD.encode("a:b")).parse().unwrap(),
        );
        let err = credentials(&h, &Params::parse(b"client_secret=b")).unwrap_err();
        assert_eq!(err.code.as_str(), "invalid_request");
        let err = credentials(&h, &Params::parse(b"client_id=other")).unwrap_err();
        assert_eq!(err.code.as_str(), "invalid_client");
    }
}
