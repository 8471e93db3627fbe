//! Properties of every parser that reads untrusted input, checked on generated inputs:
//! redirect and resource URIs, scope, `WWW-Authenticate`, PKCE, form bodies, authorization
//! requests and JWS headers. Each says what must hold, not only that nothing panics.

use proptest::prelude::*;

use crate::authorize::AuthorizationRequest;
use crate::challenge::BearerChallenge;
use crate::form::Params;
use crate::register::{ClientMetadata, MAX_LIST_LEN, MAX_TEXT_LEN, MAX_URI_LEN};
use crate::scope::Scope;
use crate::{jose, pkce, uri};

/// Strings made of the characters URIs and headers are built from, plus some that are not.
fn uri_like() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "http://",
            "https://",
            "127.0.0.1",
            "localhost",
            "[::1]",
            "a.example",
            ":",
            "80",
            "8080",
            "/",
            "cb",
            "?",
            "x=1",
            "#",
            "@",
            "%2e",
            "..",
            "\\",
            " ",
            "\t",
            "é",
            "]",
        ]),
        0..8,
    )
    .prop_map(|parts| parts.concat())
}

fn scope_token() -> impl Strategy<Value = String> {
    "[!#-\\[\\]-~]{1,8}"
}

fn verifier() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~-]{43,128}"
}

/// JSON values of the shapes a registration body is made of, right and wrong.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        uri_like().prop_map(Value::String),
        "[ -~\u{202e}\u{200b}]{0,20}".prop_map(Value::String),
        prop::sample::select(vec![
            "none",
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "code",
            "token",
            "mcp:read",
            "mcp:read mcp:write",
            "web",
            "native",
            "",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| {
        prop::collection::vec(inner, 0..12).prop_map(Value::Array)
    })
}

/// Registration bodies: the RFC 7591 members (and some others) with generated values.
fn registration_body() -> impl Strategy<Value = serde_json::Value> {
    let keys = prop::sample::select(vec![
        "redirect_uris",
        "token_endpoint_auth_method",
        "grant_types",
        "response_types",
        "client_name",
        "client_uri",
        "logo_uri",
        "scope",
        "contacts",
        "tos_uri",
        "policy_uri",
        "software_id",
        "software_version",
        "application_type",
        "jwks",
        "client_id",
    ]);
    prop::collection::vec((keys, json_value()), 0..10).prop_map(|members| {
        serde_json::Value::Object(
            members
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )
    })
}

proptest! {
    #[test]
    fn redirect_matching_is_reflexive_and_never_panics(a in uri_like(), b in uri_like()) {
        let _ = uri::redirect_uri_matches(&a, &b);
        prop_assert!(uri::redirect_uri_matches(&a, &a));
    }

    #[test]
    fn a_loopback_redirect_matches_on_any_port_and_nothing_else_varies(
        port in 1u16.., other in 1u16.., path in "/[a-z]{0,6}", tail in "[a-z]{1,3}"
    ) {
        let registered = format!("http://127.0.0.1{path}");
        let requested = format!("http://127.0.0.1:{port}{path}");
        prop_assert!(uri::redirect_uri_matches(&registered, &requested));
        let moved = format!("http://127.0.0.1:{other}{path}{tail}");
        prop_assert!(!uri::redirect_uri_matches(&registered, &moved));
        let https = format!("https://127.0.0.1:{port}{path}");
        prop_assert!(!uri::redirect_uri_matches(&registered, &https));
    }

    #[test]
    fn resource_normalisation_is_idempotent(s in uri_like()) {
        if let Ok(n) = uri::normalize_resource(&s) {
            prop_assert_eq!(uri::normalize_resource(&n), Ok(n.clone()));
        }
        if uri::validate_resource(&s).is_ok() {
            prop_assert!(!s.ends_with('/') && !s.contains('#') && !s.contains('?'));
            prop_assert!(uri::normalize_resource(&s).is_ok());
        }
    }

    #[test]
    fn scope_round_trips_and_obeys_set_laws(
        a in prop::collection::vec(scope_token(), 0..5),
        b in prop::collection::vec(scope_token(), 0..5),
        junk in ".{0,20}",
    ) {
        let (sa, sb) = (Scope::parse(&a.join(" ")).unwrap(), Scope::parse(&b.join("  ")).unwrap());
        prop_assert_eq!(Scope::parse(&sa.to_string()).unwrap(), sa.clone());
        prop_assert!(sa.intersection(&sb).is_subset(&sa));
        prop_assert!(sa.is_subset(&sa.union(&sb)));
        prop_assert!(sa.difference(&sb).intersection(&sb).is_empty());
        if let Ok(s) = Scope::parse(&junk) {
            prop_assert_eq!(Scope::parse(&s.to_string()).unwrap(), s);
        }
    }

    #[test]
    fn bearer_challenges_round_trip(
        scope in proptest::option::of("[ -~]{0,30}"),
        error in proptest::option::of("[a-z_]{1,20}"),
        description in proptest::option::of("[ -~]{0,40}"),
        metadata in proptest::option::of("https://[a-z]{1,8}\\.example/[ -~]{0,20}"),
        junk in ".{0,60}",
    ) {
        let c = BearerChallenge {
            resource_metadata: metadata,
            scope,
            error,
            error_description: description,
        };
        prop_assert_eq!(BearerChallenge::parse(&c.to_header_value()), Some(c));
        let _ = BearerChallenge::parse(&junk);
    }

    #[test]
    fn pkce_accepts_its_own_challenge_and_only_it(v in verifier(), w in verifier(), junk in ".{0,140}") {
        let c = pkce::s256_challenge(&v);
        prop_assert!(pkce::is_valid_verifier(&v));
        prop_assert!(pkce::is_valid_challenge(&c));
        prop_assert!(pkce::verify_s256(&v, &c));
        prop_assert_eq!(pkce::verify_s256(&w, &c), v == w);
        let _ = pkce::verify_s256(&junk, &junk);
        let _ = pkce::is_valid_challenge(&junk);
    }

    #[test]
    fn forms_keep_the_first_value_and_report_every_repeat(
        pairs in prop::collection::vec(("[a-c]", "[ -~]{1,6}"), 0..8)
    ) {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .finish();
        let p = Params::parse(body.as_bytes());
        for (k, v) in &pairs {
            let first = pairs.iter().find(|(k2, _)| k2 == k).map(|(_, v)| v.as_str());
            prop_assert_eq!(p.get(k), first);
            let repeated = pairs.iter().filter(|(k2, _)| k2 == k).count() > 1;
            prop_assert_eq!(p.is_duplicated(k), repeated, "{} {}", k, v);
        }
    }

    #[test]
    fn authorization_requests_never_panic_and_keep_their_client(
        query in "[ -~]{0,120}", client in "[a-zA-Z0-9]{1,10}"
    ) {
        let supported = Scope::parse("mcp:read mcp:write").unwrap();
        let _ = AuthorizationRequest::parse(&query, &supported);
        let with_client = format!("client_id={client}&{query}");
        if let Ok(r) = AuthorizationRequest::parse(&with_client, &supported) {
            prop_assert_eq!(r.client_id, client);
        }
    }

    #[test]
    fn jws_headers_are_refused_before_any_key_is_needed(junk in "[ -~]{0,80}") {
        let allowed = [jose::Algorithm::ES256];
        // No key at all: anything must come back as an error, never a panic or a success.
        prop_assert!(jose::verify::<serde_json::Value>(&junk, &[], &allowed, None).is_err());
    }

    #[test]
    fn registrations_are_bounded_valid_and_stable(doc in registration_body()) {
        let supported = Scope::parse("mcp:read mcp:write").unwrap();
        if let Ok(m) = ClientMetadata::from_json(&doc, &supported) {
            prop_assert!(!m.redirect_uris.is_empty() && m.redirect_uris.len() <= MAX_LIST_LEN);
            for uri in &m.redirect_uris {
                prop_assert!(uri.len() <= MAX_URI_LEN);
                prop_assert!(uri::validate_redirect_uri(uri).is_ok(), "{}", uri);
            }
            if let Some(name) = &m.client_name {
                prop_assert!(name.chars().count() <= MAX_TEXT_LEN);
                prop_assert!(!name.chars().any(crate::register::is_hidden_char), "{:?}", name);
            }
            if let Some(scope) = &m.scope {
                let scope = Scope::parse(scope).unwrap();
                prop_assert!(scope.intersection(&supported) == scope, "{:?}", scope);
            }
            // What was accepted reads back the same: registering the stored form again
            // changes nothing.
            let again = ClientMetadata::from_json(&serde_json::to_value(&m).unwrap(), &supported);
            prop_assert_eq!(again.as_ref().ok(), Some(&m));
        }
    }
}
