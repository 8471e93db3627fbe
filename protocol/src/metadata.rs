//! Discovery documents: RFC 8414 authorization server metadata and RFC 9728 protected
//! resource metadata.

use serde::{Deserialize, Serialize};

/// RFC 8414 §2, plus the MCP client ID metadata document flag and RFC 9207 §3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    /// RFC 8628 §4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    pub jwks_uri: String,
    pub scopes_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    pub response_modes_supported: Vec<String>,
    pub grant_types_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint: String,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    pub introspection_endpoint: String,
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    pub code_challenge_methods_supported: Vec<String>,
    pub authorization_response_iss_parameter_supported: bool,
    pub client_id_metadata_document_supported: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_documentation: Option<String>,
}

/// RFC 9728 §2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtectedResourceMetadata {
    pub resource: String,
    pub authorization_servers: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    #[serde(default)]
    pub bearer_methods_supported: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
}

/// RFC 9728 §3.1: the well-known URL of a resource's metadata, inserted before its path.
pub fn protected_resource_metadata_url(resource: &url::Url) -> String {
    let path = resource.path().trim_end_matches('/');
    format!(
        "{}{}{}",
        resource.origin().ascii_serialization(),
        crate::paths::PROTECTED_RESOURCE_METADATA,
        path
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_inserted_prm_url() {
        let r = url::Url::parse("http://127.0.0.1:8002/mcp").unwrap();
        assert_eq!(
            protected_resource_metadata_url(&r),
            "http://127.0.0.1:8002/.well-known/oauth-protected-resource/mcp"
        );
        let root = url::Url::parse("https://rs.example").unwrap();
        assert_eq!(
            protected_resource_metadata_url(&root),
            "https://rs.example/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn prm_parses_rfc9728_example() {
        let doc = r#"{"resource":"https://resource.example.com",
            "authorization_servers":["https://as1.example.com","https://as2.example.net"],
            "bearer_methods_supported":["header","body"],
            "scopes_supported":["profile","email","phone"],
            "resource_documentation":"https://resource.example.com/resource_documentation.html"}"#;
        let prm: ProtectedResourceMetadata = serde_json::from_str(doc).unwrap();
        assert_eq!(prm.authorization_servers.len(), 2);
        assert_eq!(prm.bearer_methods_supported, ["header", "body"]);
    }
}
