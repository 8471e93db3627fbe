//! RFC 8628 end to end: a device asks for codes, polls, a person signs in on `/device`,
//! enters the code and approves or denies; the device gets tokens once. The clock is moved
//! by hand instead of waiting out intervals and lifetimes.

use e2e::{PASSWORD, TestStack, USERNAME, hidden, location, new_browser};
use oauth_protocol::register::GRANT_DEVICE_CODE;
use serde_json::{Value, json};

async fn device_client(stack: &TestStack) -> String {
    let reg = stack
        .register(json!({
            "client_name": "Terminal agent",
            "grant_types": [GRANT_DEVICE_CODE, "refresh_token"],
            "response_types": [],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    reg["client_id"].as_str().unwrap().to_owned()
}

async fn start(stack: &TestStack, client_id: &str) -> Value {
    let (status, body) = stack
        .post_form(
            "/device_authorization",
            &[
                ("client_id", client_id),
                ("scope", "mcp:read"),
                ("resource", stack.resource.as_str()),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn poll(stack: &TestStack, client_id: &str, device_code: &str) -> (u16, Value) {
    stack
        .token(
            &[
                ("grant_type", GRANT_DEVICE_CODE),
                ("client_id", client_id),
                ("device_code", device_code),
            ],
            None,
        )
        .await
}

/// Signs `browser` in from the device page, which must bring it back there with the code.
async fn sign_in_from_device_page(stack: &TestStack, browser: &reqwest::Client, code: &str) {
    let url = format!("{}?user_code={code}", stack.url("/device"));
    let page = browser
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"login-form\""), "{page}");
    let then = hidden(&page, "then").expect("the login form carries where to continue");
    let res = browser
        .post(stack.url("/login"))
        .form(&[
            ("username", USERNAME),
            ("password", PASSWORD),
            ("csrf_token", &hidden(&page, "csrf_token").unwrap()),
            ("request", ""),
            ("then", &then),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), format!("/device?user_code={code}"));
}

/// The confirmation page for `code`, and its decision form's token.
async fn confirm_page(
    stack: &TestStack,
    browser: &reqwest::Client,
    code: &str,
) -> (String, String) {
    let url = format!("{}?user_code={code}", stack.url("/device"));
    let res = browser.get(&url).send().await.unwrap();
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    let html = res.text().await.unwrap();
    let csrf = hidden(&html, "csrf_token").unwrap_or_default();
    (html, csrf)
}

async fn decide(
    stack: &TestStack,
    browser: &reqwest::Client,
    code: &str,
    csrf: &str,
    decision: &str,
) -> (u16, String) {
    let res = browser
        .post(stack.url("/device"))
        .form(&[
            ("user_code", code),
            ("csrf_token", csrf),
            ("decision", decision),
        ])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn a_device_signs_in_through_the_device_page_and_redeems_once() {
    let stack = TestStack::spawn().await;
    let meta = stack
        .get_json("/.well-known/oauth-authorization-server")
        .await
        .1;
    assert_eq!(
        meta["device_authorization_endpoint"],
        stack.url("/device_authorization")
    );
    assert!(
        meta["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(GRANT_DEVICE_CODE))
    );
    let client_id = device_client(&stack).await;
    let started = start(&stack, &client_id).await;
    let code = started["user_code"].as_str().unwrap().to_owned();
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 9);
    assert_eq!(&code[4..5], "-");
    assert!(
        code.replace('-', "")
            .bytes()
            .all(|b| b"BCDFGHJKLMNPQRSTVWXZ".contains(&b))
    );
    assert_eq!(started["verification_uri"], stack.url("/device"));
    assert_eq!(
        started["verification_uri_complete"],
        format!("{}?user_code={code}", stack.url("/device"))
    );
    assert_eq!(started["expires_in"], 600);
    assert_eq!(started["interval"], 5);

    // Before anyone answers: pending; polling again at once is too fast.
    let (status, body) = poll(&stack, &client_id, &device_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    let (status, body) = poll(&stack, &client_id, &device_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("slow_down")),
        "{body}"
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("10 seconds")
    );
    stack.clock.advance(6);
    let (_, body) = poll(&stack, &client_id, &device_code).await;
    assert_eq!(body["error"], "slow_down", "the interval grew to 10 s");
    stack.clock.advance(16);
    let (_, body) = poll(&stack, &client_id, &device_code).await;
    assert_eq!(body["error"], "authorization_pending");

    // The person: signs in from the device page, sees what the device asks for, approves.
    let browser = new_browser();
    sign_in_from_device_page(&stack, &browser, &code).await;
    let (html, csrf) = confirm_page(&stack, &browser, &code).await;
    assert!(
        html.contains("Terminal agent")
            && html.contains("Only continue if you started this yourself")
            && html.contains("mcp:read")
            && html.contains("Test MCP server")
            && !html.contains("mcp:write"),
        "{html}"
    );
    let (status, _) = decide(&stack, &browser, &code, "forged", "approve").await;
    assert_eq!(status, 403, "a forged decision is refused");
    stack.clock.advance(20);
    let (_, body) = poll(&stack, &client_id, &device_code).await;
    assert_eq!(
        body["error"], "authorization_pending",
        "and changed nothing"
    );
    let (status, page) = decide(&stack, &browser, &code, &csrf, "approve").await;
    assert_eq!(status, 200);
    assert!(page.contains("Device connected"), "{page}");

    stack.clock.advance(20);
    let (status, tokens) = poll(&stack, &client_id, &device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["refresh_token"].is_string());
    let info = stack
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["active"], true);
    assert_eq!(info["sub"], stack.user_id);
    assert_eq!(info["scope"], "mcp:read");
    assert_eq!(info["aud"], stack.resource);
    // Once only.
    stack.clock.advance(20);
    let (status, body) = poll(&stack, &client_id, &device_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // The code cannot be approved a second time either.
    let (_, page) = decide(&stack, &browser, &code, &csrf, "approve").await;
    assert!(page.contains("Code expired"), "{page}");
    let audit = authz_server::admin::audit_list(&stack.store, 50)
        .await
        .unwrap();
    assert!(
        audit.contains("\tconsent_granted\t") && audit.contains("\tdevice_authorization_started\t")
    );
}

#[tokio::test]
async fn denied_expired_foreign_and_unregistered_requests_get_their_errors() {
    let stack = TestStack::spawn().await;
    let client_id = device_client(&stack).await;
    let browser = new_browser();

    // Denied: access_denied once, then the code is gone.
    let started = start(&stack, &client_id).await;
    let code = started["user_code"].as_str().unwrap();
    let device_code = started["device_code"].as_str().unwrap();
    sign_in_from_device_page(&stack, &browser, code).await;
    let (_, csrf) = confirm_page(&stack, &browser, code).await;
    let (_, page) = decide(&stack, &browser, code, &csrf, "deny").await;
    assert!(page.contains("Request denied"), "{page}");
    let (_, body) = poll(&stack, &client_id, device_code).await;
    assert_eq!(body["error"], "access_denied");
    stack.clock.advance(10);
    let (_, body) = poll(&stack, &client_id, device_code).await;
    assert_eq!(body["error"], "invalid_grant");

    // Another client cannot poll someone else's device code, and does not disturb it.
    let other = device_client(&stack).await;
    let started = start(&stack, &client_id).await;
    let device_code = started["device_code"].as_str().unwrap();
    let (_, body) = poll(&stack, &other, device_code).await;
    assert_eq!(body["error"], "invalid_grant");
    let (_, body) = poll(&stack, &client_id, device_code).await;
    assert_eq!(body["error"], "authorization_pending");

    // Expired: expired_token, and the page no longer knows the code.
    stack.clock.advance(601);
    let (_, body) = poll(&stack, &client_id, device_code).await;
    assert_eq!(body["error"], "expired_token");
    let (html, _) = confirm_page(&stack, &browser, started["user_code"].as_str().unwrap()).await;
    assert!(html.contains("not valid, or it has expired"), "{html}");

    // A client registered without the grant is refused at the start.
    let code_client = stack.register_public().await;
    let (status, body) = stack
        .post_form(
            "/device_authorization",
            &[("client_id", code_client.as_str())],
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    // An unknown resource is invalid_target; an unknown client invalid_client.
    let (_, body) = stack
        .post_form(
            "/device_authorization",
            &[
                ("client_id", client_id.as_str()),
                ("resource", "https://elsewhere.example/mcp"),
            ],
            None,
        )
        .await;
    assert_eq!(body["error"], "invalid_target");
    let (status, body) = stack
        .post_form("/device_authorization", &[("client_id", "nobody")], None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

#[tokio::test]
async fn wrong_codes_are_limited_per_person() {
    let stack = TestStack::spawn().await;
    let client_id = device_client(&stack).await;
    let browser = new_browser();
    assert_eq!(stack.sign_in(&browser, USERNAME, PASSWORD).await, 303);
    for _ in 0..10 {
        let (html, _) = confirm_page(&stack, &browser, "BBBB-BBBB").await;
        assert!(html.contains("not valid, or it has expired"), "{html}");
    }
    let res = browser
        .get(format!("{}?user_code=BBBB-CCCC", stack.url("/device")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().get("retry-after").is_some());
    // Even the right code waits: guessing cannot go on by mixing in a real one.
    let started = start(&stack, &client_id).await;
    let (html, _) = confirm_page(&stack, &browser, started["user_code"].as_str().unwrap()).await;
    assert!(html.contains("Too many wrong codes"), "{html}");
}

#[tokio::test]
async fn headless_mode_approves_device_requests_at_once() {
    let stack = TestStack::builder()
        .authz(|c| {
            c.headless_user = Some(USERNAME.into());
            c.allow_headless = true;
        })
        .spawn()
        .await;
    let client_id = device_client(&stack).await;
    let started = start(&stack, &client_id).await;
    let (status, tokens) = poll(&stack, &client_id, started["device_code"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{tokens}");
    let info = stack
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["sub"], stack.user_id);
}
