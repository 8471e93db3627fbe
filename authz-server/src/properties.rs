//! Properties of the authorization server's own parsers of untrusted input, on generated
//! inputs: client credentials in `Authorization: Basic` and the form, and client ID metadata
//! documents. Each says what must hold, not only that nothing panics. (The protocol crate's
//! `properties` cover URIs, scope, challenges, PKCE, forms, registrations and JWS.)

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use oauth_protocol::Scope;
use oauth_protocol::form::Params;
use proptest::prelude::*;

use crate::client_id_documents::parse_document;
use crate::clients::credentials;

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn basic(value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(v) = value.parse() {
        h.insert(axum::http::header::AUTHORIZATION, v);
    }
    h
}

/// Document members, right and wrong, as JSON text fragments.
fn document_member() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(r#""client_name": "App""#.to_owned()),
        Just(r#""client_name": """#.to_owned()),
        Just(r#""redirect_uris": ["http://127.0.0.1/cb"]"#.to_owned()),
        Just(r#""redirect_uris": ["javascript:alert(1)"]"#.to_owned()),
        Just(r#""redirect_uris": []"#.to_owned()),
        Just(r#""token_endpoint_auth_method": "none""#.to_owned()),
        Just(r#""token_endpoint_auth_method": "client_secret_basic""#.to_owned()),
        Just(r#""token_endpoint_auth_method": "private_key_jwt""#.to_owned()),
        Just(r#""client_secret": "s""#.to_owned()),
        Just(r#""scope": "mcp:read""#.to_owned()),
        Just(r#""grant_types": ["client_credentials"]"#.to_owned()),
        Just(r#""client_id": "https://other.example/doc""#.to_owned()),
        "\"[a-z_]{1,12}\": \"[ -!#-~]{0,12}\"",
    ]
}

proptest! {
    #[test]
    fn basic_credentials_round_trip_whatever_they_contain(id in "\\PC{1,20}", secret in "\\PC{0,30}") {
        let raw = format!("{}:{}", form_encode(&id), form_encode(&secret));
        let h = basic(&format!("Basic {}", STANDARD.encode(raw)));
        let c = credentials(&h, &Params::parse(b"")).unwrap().unwrap();
        prop_assert_eq!(c.client_id, id);
        prop_assert_eq!(c.secret.as_deref(), Some(secret.as_str()));
        prop_assert!(c.via_header);
    }

    #[test]
    fn any_authorization_header_and_form_is_answered_without_a_panic(
        header in "[ -~]{0,60}", body in "[ -~]{0,60}"
    ) {
        let params = Params::parse(body.as_bytes());
        if let Ok(Some(c)) = credentials(&basic(&header), &params) {
            // Credentials come from exactly one place.
            if c.via_header {
                prop_assert!(params.get("client_secret").is_none());
            } else {
                prop_assert_eq!(Some(c.client_id.as_str()), params.get("client_id"));
            }
        }
    }

    #[test]
    fn a_metadata_document_is_accepted_only_as_a_public_client_naming_itself(
        members in prop::collection::vec(document_member(), 0..8), self_named in any::<bool>()
    ) {
        let url = "https://app.example/client.json";
        let mut members = members;
        if self_named {
            members.push(format!(r#""client_id": "{url}""#));
        }
        let body = format!("{{{}}}", members.join(", "));
        let scopes = Scope::parse("mcp:read mcp:write").unwrap();
        if let Ok(client) = parse_document(url, body.as_bytes(), &scopes) {
            prop_assert_eq!(client.client_id.as_str(), url);
            prop_assert!(!client.is_confidential(), "{}", body);
            prop_assert!(client.metadata.client_name.as_deref().is_some_and(|n| !n.is_empty()));
            prop_assert!(!client.metadata.redirect_uris.is_empty());
            prop_assert!(!client.metadata.allows_grant("client_credentials"), "{}", body);
        }
        // Cut short (no closing brace): not JSON, refused.
        prop_assert!(parse_document(url, &body.as_bytes()[..body.len() - 1], &scopes).is_err());
    }
}
