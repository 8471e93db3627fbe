//! The authorization endpoint: error channels, PKCE, resource indicators, prompts,
//! consent memory, CSRF and page headers.

use authz_server::store::Table;
use e2e::{PASSWORD, REDIRECT_URI, TestStack, USERNAME, hidden, location, query};
use oauth_protocol::pkce::s256_challenge;
use url::Url;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn auth_url(stack: &TestStack, client_id: &str, extra: &[(&str, &str)]) -> String {
    let challenge = s256_challenge(VERIFIER);
    let mut url = Url::parse(&stack.url("/authorize")).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", REDIRECT_URI)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", "xyz");
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    url.to_string()
}

/// Removes a parameter from a URL's query.
fn without(url: &str, key: &str) -> String {
    let mut u = Url::parse(url).unwrap();
    let kept: Vec<(String, String)> = u
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| k != key)
        .collect();
    u.query_pairs_mut().clear().extend_pairs(kept);
    u.to_string()
}

/// RFC 6749 §4.1.2.1: without a trustworthy redirect URI the user sees an error page.
#[tokio::test]
async fn untrusted_client_or_redirect_uri_gets_an_error_page_never_a_redirect() {
    let stack = TestStack::spawn().await;
    let client_id = stack.register_public().await;
    let good = auth_url(&stack, &client_id, &[]);
    let cases = [
        ("unknown client", good.replace(&client_id, "nope")),
        ("missing client_id", without(&good, "client_id")),
        ("unregistered redirect", good.replace("callback", "evil")),
        (
            "other host",
            good.replace("127.0.0.1%3A3000", "evil.example"),
        ),
        (
            "repeated client_id",
            format!("{good}&client_id={client_id}"),
        ),
        ("repeated redirect_uri", format!("{good}&redirect_uri=x")),
    ];
    for (why, url) in cases {
        let res = stack.browser.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 400, "{why}");
        assert!(res.headers().get("location").is_none(), "{why}");
        assert_eq!(res.headers()["x-frame-options"], "DENY");
        assert!(res.text().await.unwrap().contains("<html"), "{why}");
    }
}

/// Errors with a trusted redirect URI go back to the client with `error`, `state`, `iss`.
#[tokio::test]
async fn request_errors_redirect_with_error_state_and_iss() {
    let stack = TestStack::spawn().await;
    let client_id = stack.register_public().await;
    let good = auth_url(&stack, &client_id, &[]);
    let cases = [
        (
            "token response type",
            good.replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            "missing response type",
            without(&good, "response_type"),
            "invalid_request",
        ),
        (
            "missing challenge",
            without(&good, "code_challenge"),
            "invalid_request",
        ),
        (
            "plain method",
            good.replace("code_challenge_method=S256", "code_challenge_method=plain"),
            "invalid_request",
        ),
        (
            "missing method",
            without(&good, "code_challenge_method"),
            "invalid_request",
        ),
        (
            "repeated parameter",
            format!("{good}&response_type=code"),
            "invalid_request",
        ),
        (
            "unknown scope",
            format!("{good}&scope=admin"),
            "invalid_scope",
        ),
        (
            "unknown resource",
            format!("{good}&resource=https%3A%2F%2Fother.example%2Fmcp"),
            "invalid_target",
        ),
        (
            "two resources",
            format!("{good}&resource=a&resource=b"),
            "invalid_target",
        ),
        (
            "prompt none, no session",
            format!("{good}&prompt=none"),
            "login_required",
        ),
    ];
    for (why, url, code) in cases {
        let res = stack.browser.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 303, "{why}");
        let loc = Url::parse(&location(&res)).unwrap();
        assert!(loc.as_str().starts_with(REDIRECT_URI), "{why}");
        let q = query(&loc);
        assert_eq!(q.get("error").map(String::as_str), Some(code), "{why}");
        assert_eq!(q.get("state").map(String::as_str), Some("xyz"), "{why}");
        assert_eq!(q.get("iss"), Some(&stack.issuer), "{why}");
        assert!(!q.contains_key("code"), "{why}");
    }
    assert_eq!(stack.count(Table::Codes).await, 0, "nothing was written");
    assert_eq!(stack.count(Table::Sessions).await, 0);
}

#[tokio::test]
async fn loopback_redirect_uris_match_on_any_port_but_nothing_else_varies() {
    let stack = TestStack::spawn().await;
    let client_id = stack.register_public().await;
    let other_port =
        auth_url(&stack, &client_id, &[]).replace("127.0.0.1%3A3000", "127.0.0.1%3A49152");
    let callback = stack.browser_authorize(&other_port).await;
    assert_eq!(
        callback.port(),
        Some(49152),
        "the redirect goes to the port of the request"
    );
    assert!(query(&callback).contains_key("code"));
}

#[tokio::test]
async fn resource_is_normalised_and_defaults_to_the_only_configured_one() {
    let stack = TestStack::spawn().await;
    let client_id = stack.register_public().await;
    let upper = stack.resource.replace("http://", "HTTP://");
    for resource in [None, Some(upper.as_str()), Some(stack.resource.as_str())] {
        let extra: Vec<(&str, &str)> = resource.map(|r| vec![("resource", r)]).unwrap_or_default();
        let callback = stack
            .browser_authorize(&auth_url(&stack, &client_id, &extra))
            .await;
        let code = query(&callback)["code"].clone();
        let res = stack
            .http
            .post(stack.url("/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", VERIFIER),
                ("redirect_uri", REDIRECT_URI),
                ("client_id", &client_id),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{resource:?}");
        let body: serde_json::Value = res.json().await.unwrap();
        let claims = body["access_token"]
            .as_str()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap()
            .to_owned();
        use base64::Engine;
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(claims)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            claims["aud"],
            stack.resource.as_str(),
            "canonical spelling in aud"
        );
        assert_eq!(claims["iss"], stack.issuer.as_str());
        for k in ["sub", "client_id", "scope", "iat", "exp", "jti"] {
            assert!(claims.get(k).is_some(), "claim {k}");
        }
    }
}

#[tokio::test]
async fn consent_is_remembered_and_prompts_are_honoured() {
    let stack = TestStack::spawn().await;
    let client_id = stack.register_public().await;
    let url = auth_url(&stack, &client_id, &[("scope", "mcp:read")]);
    stack.browser_authorize(&url).await;
    assert_eq!(stack.count(Table::Consents).await, 1);

    // Remembered: straight back to the client.
    let res = stack.browser.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with(REDIRECT_URI));

    // A wider scope, prompt=consent and prompt=login each show a page again.
    for (why, extra, marker) in [
        (
            "wider scope",
            vec![("scope", "mcp:read mcp:write")],
            "consent-form",
        ),
        (
            "prompt=consent",
            vec![("scope", "mcp:read"), ("prompt", "consent")],
            "consent-form",
        ),
        (
            "prompt=login",
            vec![("scope", "mcp:read"), ("prompt", "login")],
            "login-form",
        ),
    ] {
        let res = stack
            .browser
            .get(auth_url(&stack, &client_id, &extra))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{why}");
        assert!(res.text().await.unwrap().contains(marker), "{why}");
    }
    // prompt=login completes after one sign-in instead of looping.
    let done = stack
        .browser_authorize(&auth_url(
            &stack,
            &client_id,
            &[("scope", "mcp:read"), ("prompt", "login")],
        ))
        .await;
    assert!(query(&done).contains_key("code"));

    // Deny: access_denied back at the client.
    let denied = stack
        .browser_authorize_with(
            &auth_url(&stack, &client_id, &[("scope", "mcp:read mcp:write")]),
            "deny",
        )
        .await;
    assert_eq!(query(&denied)["error"], "access_denied");
    assert_eq!(query(&denied)["iss"], stack.issuer);
}

#[tokio::test]
async fn login_and_consent_forms_require_the_csrf_token() {
    let stack = TestStack::spawn().await;
    let client_id = stack.register_public().await;
    let url = auth_url(&stack, &client_id, &[]);
    let res = stack.browser.get(&url).send().await.unwrap();
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    assert!(
        res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let html = res.text().await.unwrap();
    let request = hidden(&html, "request").unwrap();
    let res = stack
        .browser
        .post(stack.url("/login"))
        .form(&[
            ("username", USERNAME),
            ("password", PASSWORD),
            ("csrf_token", "forged-forged-forged-forged-forged"),
            ("request", &request),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        stack.count(Table::Sessions).await,
        0,
        "no session without a valid CSRF token"
    );

    // Wrong password: the page again, with a message, and no session.
    let csrf = hidden(&res.text().await.unwrap(), "csrf_token").unwrap();
    let res = stack
        .browser
        .post(stack.url("/login"))
        .form(&[
            ("username", USERNAME),
            ("password", "wrong"),
            ("csrf_token", &csrf),
            ("request", &request),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Wrong username or password")
    );
    assert_eq!(stack.count(Table::Sessions).await, 0);

    // Sign in properly, then forge the consent form.
    let res = stack
        .browser
        .post(stack.url("/login"))
        .form(&[
            ("username", USERNAME),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
            ("request", &request),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let session_cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(session_cookie.starts_with("authz_session=") && session_cookie.contains("HttpOnly"));
    let res = stack
        .browser
        .post(stack.url("/consent"))
        .form(&[
            ("decision", "approve"),
            ("csrf_token", "forged-forged-forged-forged-forged"),
            ("request", &request),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(stack.count(Table::Codes).await, 0);
    assert_eq!(stack.count(Table::Consents).await, 0);
}

/// Headless mode approves every valid request as the named user, without pages; invalid
/// requests are refused exactly as usual.
#[tokio::test]
async fn headless_mode_approves_valid_requests_without_pages() {
    let stack = TestStack::builder()
        .authz(|c| {
            c.headless_user = Some(USERNAME.into());
            c.allow_headless = true;
        })
        .spawn()
        .await;
    let client_id = stack.register_public().await;
    let res = stack
        .http
        .get(auth_url(&stack, &client_id, &[("scope", "mcp:read")]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let callback = Url::parse(&location(&res)).unwrap();
    let q = query(&callback);
    assert_eq!(q["state"], "xyz");
    assert_eq!(q["iss"], stack.issuer);
    let token = stack
        .http
        .post(stack.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", q["code"].as_str()),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);
    // Still validated: an unregistered redirect gets the error page, a plain challenge an error.
    let bad = stack
        .http
        .get(auth_url(&stack, &client_id, &[]).replace("callback", "evil"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let plain = stack
        .http
        .get(
            auth_url(&stack, &client_id, &[])
                .replace("code_challenge_method=S256", "code_challenge_method=plain"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        query(&Url::parse(&location(&plain)).unwrap())["error"],
        "invalid_request"
    );
}

/// Password guessing is throttled per username: after ten failures even the right password is
/// refused (429) without being checked, and nothing is signed in.
#[tokio::test]
async fn repeated_failed_sign_ins_are_throttled() {
    let stack = TestStack::spawn().await;
    let client_id = stack.register_public().await;
    let html = stack
        .browser
        .get(auth_url(&stack, &client_id, &[]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let request = hidden(&html, "request").unwrap();
    let mut csrf = hidden(&html, "csrf_token").unwrap();
    let attempt = |password: &'static str, csrf: String| {
        let stack = &stack;
        let request = request.clone();
        async move {
            stack
                .browser
                .post(stack.url("/login"))
                .form(&[
                    ("username", USERNAME),
                    ("password", password),
                    ("csrf_token", csrf.as_str()),
                    ("request", request.as_str()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..10 {
        let res = attempt("wrong password", csrf.clone()).await;
        assert_eq!(res.status(), 200);
        csrf = hidden(&res.text().await.unwrap(), "csrf_token").unwrap();
    }
    let res = attempt(PASSWORD, csrf).await;
    assert_eq!(res.status(), 429);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Too many failed sign-in attempts")
    );
    assert_eq!(stack.count(Table::Sessions).await, 0);
}

/// Several MCP clients omit `resource`: with two resource servers, such a request gets a
/// token for the default one (the first, or `default_resource`), and that server takes it.
#[tokio::test]
async fn a_request_without_resource_gets_the_default_of_several() {
    let second = "http://127.0.0.1:9/second";
    let add_second = |c: &mut authz_server::Config| {
        let mut rs = c.resource_servers[0].clone();
        rs.resource = second.into();
        rs.client_id = "rs2".into();
        c.resource_servers.push(rs);
    };
    for default in [None, Some(second)] {
        let stack = TestStack::builder()
            .authz(|c| {
                add_second(c);
                c.default_resource = default.map(str::to_owned);
            })
            .spawn()
            .await;
        let client_id = stack.register_public().await;
        let callback = stack
            .browser_authorize(&auth_url(&stack, &client_id, &[]))
            .await;
        let code = query(&callback)["code"].clone();
        let res = stack
            .http
            .post(stack.url("/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", VERIFIER),
                ("redirect_uri", REDIRECT_URI),
                ("client_id", &client_id),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let token: serde_json::Value = res.json().await.unwrap();
        let token = token["access_token"].as_str().unwrap();
        let info: serde_json::Value = stack
            .http
            .post(stack.url("/introspect"))
            .basic_auth(e2e::RS_CLIENT_ID, Some(e2e::RS_CLIENT_SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match default {
            None => {
                assert_eq!(info["aud"], stack.resource.as_str());
                // The resource server accepts it: a session starts.
                stack.mcp_session(token).await;
            }
            Some(d) => assert_eq!(
                info["active"], false,
                "a token for {d}, not for this server"
            ),
        }
    }
    // A wrong resource is still refused.
    let stack = TestStack::builder().authz(add_second).spawn().await;
    let client_id = stack.register_public().await;
    let res = stack
        .http
        .get(auth_url(
            &stack,
            &client_id,
            &[("resource", "http://127.0.0.1:9/nope")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).contains("error=invalid_target"));
}
