//! RFC 7591 dynamic client registration: client metadata validation (§2) and the client
//! information response (§3.2.1). The same metadata rules apply to MCP client ID metadata
//! documents, whose `client_id` is the document's own URL.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ErrorCode, ErrorResponse};
use crate::scope::Scope;
use crate::uri::validate_redirect_uri;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    None,
    ClientSecretBasic,
    ClientSecretPost,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            _ => None,
        }
    }

    pub fn is_confidential(self) -> bool {
        self != Self::None
    }
}

pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
/// RFC 8628 §7.2.
pub const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Validated client metadata: what is stored and echoed back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientMetadata {
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: AuthMethod,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    pub application_type: String,
}

/// RFC 7591 §3.2.1 client information response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientInformation {
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub client_id_issued_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
    #[serde(flatten)]
    pub metadata: ClientMetadata,
}

fn meta_err(code: ErrorCode, msg: impl Into<String>) -> ErrorResponse {
    ErrorResponse::new(code, msg)
}

/// Longest URI accepted in client metadata.
pub const MAX_URI_LEN: usize = 2000;
/// Most redirect URIs and contacts one client may register.
pub const MAX_LIST_LEN: usize = 10;
/// Longest free-text value (name, contact, software id or version).
pub const MAX_TEXT_LEN: usize = 200;

/// A client-supplied name made safe to show to a person: control characters and the
/// Unicode bidirectional overrides and isolates (which can make "evil.com" read as
/// "moc.live") are removed, and surrounding whitespace trimmed.
pub fn display_text(s: &str) -> String {
    s.chars()
        .filter(|c| !is_hidden_char(*c))
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Control characters and the Unicode bidirectional marks, overrides and isolates.
pub fn is_hidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}')
}

fn too_long(key: &str, limit: usize) -> ErrorResponse {
    meta_err(
        ErrorCode::InvalidClientMetadata,
        format!("{key} is longer than {limit} characters"),
    )
}

/// Every stored string is bounded, so registration cannot be used to fill the database.
fn bounded(key: &str, v: Option<String>, limit: usize) -> Result<Option<String>, ErrorResponse> {
    match v {
        Some(s) if s.chars().count() > limit => Err(too_long(key, limit)),
        other => Ok(other),
    }
}

fn bounded_list(key: &str, v: Vec<String>, limit: usize) -> Result<Vec<String>, ErrorResponse> {
    if v.len() > MAX_LIST_LEN {
        return Err(meta_err(
            ErrorCode::InvalidClientMetadata,
            format!("{key} has more than {MAX_LIST_LEN} entries"),
        ));
    }
    if v.iter().any(|s| s.chars().count() > limit) {
        return Err(too_long(key, limit));
    }
    Ok(v)
}

fn opt_string(
    doc: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<String>, ErrorResponse> {
    match doc.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(meta_err(
            ErrorCode::InvalidClientMetadata,
            format!("{key} must be a string"),
        )),
    }
}

fn string_list(
    doc: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<Vec<String>>, ErrorResponse> {
    match doc.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(meta_err(
                    ErrorCode::InvalidClientMetadata,
                    format!("{key} must be an array of strings"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(meta_err(
            ErrorCode::InvalidClientMetadata,
            format!("{key} must be an array of strings"),
        )),
    }
}

fn https_uri(
    doc: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<String>, ErrorResponse> {
    let v = bounded(key, opt_string(doc, key)?, MAX_URI_LEN)?;
    if let Some(s) = &v {
        match url::Url::parse(s) {
            Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {}
            _ => {
                return Err(meta_err(
                    ErrorCode::InvalidClientMetadata,
                    format!("{key} must be an http(s) URL"),
                ));
            }
        }
    }
    Ok(v)
}

impl ClientMetadata {
    /// Validates a registration request (or a metadata document) given as JSON.
    /// Unknown members are ignored, as RFC 7591 §2 allows. `supported_scopes` bounds `scope`.
    pub fn from_json(doc: &Value, supported_scopes: &Scope) -> Result<Self, ErrorResponse> {
        let Value::Object(doc) = doc else {
            return Err(meta_err(
                ErrorCode::InvalidClientMetadata,
                "the request body must be a JSON object",
            ));
        };

        let redirect_uris = bounded_list(
            "redirect_uris",
            string_list(doc, "redirect_uris")?.unwrap_or_default(),
            MAX_URI_LEN,
        )?;
        for uri in &redirect_uris {
            if let Err(e) = validate_redirect_uri(uri) {
                return Err(meta_err(
                    ErrorCode::InvalidRedirectUri,
                    format!("redirect_uri {uri:?}: {e}"),
                ));
            }
        }

        let method = match opt_string(doc, "token_endpoint_auth_method")? {
            None => AuthMethod::ClientSecretBasic, // RFC 7591 §2 default
            Some(m) => AuthMethod::parse(&m).ok_or_else(|| {
                meta_err(
                    ErrorCode::InvalidClientMetadata,
                    format!("token_endpoint_auth_method {m:?} is not supported (none, client_secret_basic, client_secret_post)"),
                )
            })?,
        };

        let grant_types = string_list(doc, "grant_types")?
            .unwrap_or_else(|| vec![GRANT_AUTHORIZATION_CODE.to_owned()]);
        if grant_types.is_empty() {
            return Err(meta_err(
                ErrorCode::InvalidClientMetadata,
                "grant_types must not be empty",
            ));
        }
        for g in &grant_types {
            if ![
                GRANT_AUTHORIZATION_CODE,
                GRANT_REFRESH_TOKEN,
                GRANT_CLIENT_CREDENTIALS,
                GRANT_DEVICE_CODE,
            ]
            .contains(&g.as_str())
            {
                return Err(meta_err(
                    ErrorCode::InvalidClientMetadata,
                    format!("grant type {g:?} is not supported"),
                ));
            }
        }
        if grant_types.iter().any(|g| g == GRANT_CLIENT_CREDENTIALS) && !method.is_confidential() {
            return Err(meta_err(
                ErrorCode::InvalidClientMetadata,
                "client_credentials requires a confidential client (token_endpoint_auth_method other than none)",
            ));
        }

        let response_types =
            string_list(doc, "response_types")?.unwrap_or_else(|| vec!["code".to_owned()]);
        for r in &response_types {
            if r != "code" {
                return Err(meta_err(
                    ErrorCode::InvalidClientMetadata,
                    format!("response type {r:?} is not supported"),
                ));
            }
        }
        let wants_code = grant_types.iter().any(|g| g == GRANT_AUTHORIZATION_CODE);
        // RFC 7591 §2.1: authorization_code goes with response type code and vice versa.
        if wants_code == response_types.is_empty() {
            return Err(meta_err(
                ErrorCode::InvalidClientMetadata,
                "grant_types authorization_code and response_types code must be registered together",
            ));
        }
        if wants_code && redirect_uris.is_empty() {
            return Err(meta_err(
                ErrorCode::InvalidRedirectUri,
                "redirect_uris is required for the authorization_code grant",
            ));
        }

        let scope = match opt_string(doc, "scope")? {
            None => None,
            Some(s) => {
                let parsed = Scope::parse(&s)
                    .map_err(|e| meta_err(ErrorCode::InvalidClientMetadata, e.to_string()))?;
                let unknown = parsed.difference(supported_scopes);
                if !unknown.is_empty() {
                    return Err(meta_err(
                        ErrorCode::InvalidClientMetadata,
                        format!("unknown scope: {unknown}"),
                    ));
                }
                (!parsed.is_empty()).then(|| parsed.to_string())
            }
        };

        let application_type = match opt_string(doc, "application_type")?.as_deref() {
            None | Some("web") => "web".to_owned(),
            Some("native") => "native".to_owned(),
            Some(other) => {
                return Err(meta_err(
                    ErrorCode::InvalidClientMetadata,
                    format!("application_type {other:?} must be web or native"),
                ));
            }
        };

        let client_name = bounded("client_name", opt_string(doc, "client_name")?, MAX_TEXT_LEN)?
            .map(|n| display_text(&n))
            .filter(|n| !n.is_empty());

        Ok(Self {
            redirect_uris,
            token_endpoint_auth_method: method,
            grant_types,
            response_types,
            client_name,
            client_uri: https_uri(doc, "client_uri")?,
            logo_uri: https_uri(doc, "logo_uri")?,
            scope,
            contacts: bounded_list(
                "contacts",
                string_list(doc, "contacts")?.unwrap_or_default(),
                MAX_TEXT_LEN,
            )?,
            tos_uri: https_uri(doc, "tos_uri")?,
            policy_uri: https_uri(doc, "policy_uri")?,
            software_id: bounded("software_id", opt_string(doc, "software_id")?, MAX_TEXT_LEN)?,
            software_version: bounded(
                "software_version",
                opt_string(doc, "software_version")?,
                MAX_TEXT_LEN,
            )?,
            application_type,
        })
    }

    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scopes() -> Scope {
        Scope::parse("mcp:read mcp:write").unwrap()
    }

    #[test]
    fn minimal_public_client_like_rmcp_sends() {
        let m = ClientMetadata::from_json(
            &json!({"client_name":"rmcp","redirect_uris":["http://localhost:8080/callback"],
                "grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"none",
                "response_types":["code"],"application_type":"native","unknown_field":1}),
            &scopes(),
        )
        .unwrap();
        assert_eq!(m.token_endpoint_auth_method, AuthMethod::None);
        assert_eq!(m.application_type, "native");
    }

    #[test]
    fn defaults_follow_rfc7591() {
        let m = ClientMetadata::from_json(
            &json!({"redirect_uris":["https://a.example/cb"],"scope":""}),
            &scopes(),
        )
        .unwrap();
        assert_eq!(m.token_endpoint_auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(m.grant_types, ["authorization_code"]);
        assert_eq!(m.response_types, ["code"]);
        assert_eq!(m.scope, None);
        assert_eq!(m.application_type, "web");
    }

    #[test]
    fn rejections_carry_the_rfc7591_code() {
        let cases: &[(Value, ErrorCode, &str)] = &[
            (json!([]), ErrorCode::InvalidClientMetadata, "not an object"),
            (
                json!({"redirect_uris":["http://evil.example/cb"]}),
                ErrorCode::InvalidRedirectUri,
                "non-loopback http",
            ),
            (
                json!({"redirect_uris":["https://a.example/cb#x"]}),
                ErrorCode::InvalidRedirectUri,
                "fragment",
            ),
            (
                json!({"redirect_uris":["javascript:alert(1)"]}),
                ErrorCode::InvalidRedirectUri,
                "javascript",
            ),
            (
                json!({"redirect_uris":"https://a.example/cb"}),
                ErrorCode::InvalidClientMetadata,
                "not an array",
            ),
            (
                json!({}),
                ErrorCode::InvalidRedirectUri,
                "missing redirect_uris",
            ),
            (
                json!({"redirect_uris":["https://a/cb"],"token_endpoint_auth_method":"private_key_jwt"}),
                ErrorCode::InvalidClientMetadata,
                "unsupported method",
            ),
            (
                json!({"redirect_uris":["https://a/cb"],"grant_types":["implicit"]}),
                ErrorCode::InvalidClientMetadata,
                "implicit",
            ),
            (
                json!({"redirect_uris":["https://a/cb"],"response_types":["token"]}),
                ErrorCode::InvalidClientMetadata,
                "token response",
            ),
            (
                json!({"redirect_uris":["https://a/cb"],"scope":"admin"}),
                ErrorCode::InvalidClientMetadata,
                "unknown scope",
            ),
            (
                json!({"redirect_uris":["https://a/cb"],"application_type":"desktop"}),
                ErrorCode::InvalidClientMetadata,
                "application_type",
            ),
            (
                json!({"grant_types":["client_credentials"],"response_types":[],"token_endpoint_auth_method":"none"}),
                ErrorCode::InvalidClientMetadata,
                "public client_credentials",
            ),
        ];
        for (doc, code, why) in cases {
            let err = ClientMetadata::from_json(doc, &scopes()).expect_err(why);
            assert_eq!(err.error, code.as_str(), "{why}");
        }
    }

    #[test]
    fn client_information_echoes_metadata_flat() {
        let m = ClientMetadata::from_json(
            &json!({"redirect_uris":["https://a.example/cb"],"client_name":"A"}),
            &scopes(),
        )
        .unwrap();
        let info = ClientInformation {
            client_id: "abc".into(),
            client_secret: Some("s".into()),
            client_id_issued_at: 1,
            client_secret_expires_at: Some(0),
            metadata: m,
        };
        let v = serde_json::to_value(&info).unwrap();
        assert_eq!(v["redirect_uris"][0], "https://a.example/cb");
        assert_eq!(v["token_endpoint_auth_method"], "client_secret_basic");
        assert_eq!(v["client_secret_expires_at"], 0);
        let back: ClientInformation = serde_json::from_value(v).unwrap();
        assert_eq!(back, info);
    }

    #[test]
    fn names_lose_bidi_and_control_characters() {
        assert_eq!(
            display_text("Good\u{202e}moc.live\u{202c} App\n"),
            "Goodmoc.live App"
        );
        assert_eq!(display_text("\u{2067}x\u{2069}\u{7}"), "x");
        let m = ClientMetadata::from_json(
            &json!({"client_name": "\u{202e}\u{200f}", "redirect_uris": ["https://a.example/cb"]}),
            &scopes(),
        )
        .unwrap();
        assert_eq!(
            m.client_name, None,
            "a name of only control characters is no name"
        );
    }

    #[test]
    fn stored_strings_are_bounded() {
        let long_uri = format!("https://a.example/{}", "x".repeat(MAX_URI_LEN));
        let many: Vec<String> = (0..=MAX_LIST_LEN)
            .map(|i| format!("https://a.example/cb{i}"))
            .collect();
        for doc in [
            json!({"redirect_uris": [long_uri]}),
            json!({"redirect_uris": many}),
            json!({"redirect_uris": ["https://a.example/cb"], "client_uri": long_uri}),
            json!({"redirect_uris": ["https://a.example/cb"], "software_id": "s".repeat(MAX_TEXT_LEN + 1)}),
            json!({"redirect_uris": ["https://a.example/cb"], "contacts": ["c".repeat(MAX_TEXT_LEN + 1)]}),
            json!({"redirect_uris": ["https://a.example/cb"], "client_name": "n".repeat(MAX_TEXT_LEN + 1)}),
        ] {
            let e = ClientMetadata::from_json(&doc, &scopes()).unwrap_err();
            assert_eq!(e.error, "invalid_client_metadata", "{doc}");
        }
    }
}
