//! RFC 7662 introspection response.

use serde::{Deserialize, Serialize};

/// §2.2. An inactive token is exactly `{"active":false}`: every other member is skipped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IntrospectionResponse {
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Extension member (§2.2 allows them): the user's email, for resource servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Extension member: the user's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// RFC 7519 §4.1.3 `aud`: one string or an array of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    /// Whether `resource` is among the audiences, compared byte for byte.
    pub fn contains(&self, resource: &str) -> bool {
        match self {
            Self::One(a) => a == resource,
            Self::Many(list) => list.iter().any(|a| a == resource),
        }
    }
}

impl IntrospectionResponse {
    pub fn inactive() -> Self {
        Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inactive_is_exactly_active_false() {
        assert_eq!(
            serde_json::to_string(&IntrospectionResponse::inactive()).unwrap(),
            r#"{"active":false}"#
        );
    }

    #[test]
    fn parses_rfc7662_example() {
        let r: IntrospectionResponse = serde_json::from_str(
            r#"{"active":true,"client_id":"l238j323ds-23ij4","username":"jdoe","scope":"read write dolphin",
            "sub":"Z5O3upPC88QrAjx00dis","aud":"https://protected.example.net/resource",
            "iss":"https://server.example.com/","exp":1419356238,"iat":1419350238,"extension_field":"twenty-seven"}"#,
        )
        .unwrap();
        assert!(r.active);
        assert_eq!(r.username.as_deref(), Some("jdoe"));
    }
}
