//! Regression tests for the attacks found against the running stack: each test fails
//! without its fix.

use authz_server::store::Table;
use e2e::{PASSWORD, REDIRECT_URI, TestStack, USERNAME, VERIFIER, hidden, location, query};
use serde_json::{Value, json};

async fn redeem(
    stack: &TestStack,
    client_id: &str,
    code: &str,
    redirect: Option<&str>,
) -> (u16, Value) {
    let mut fields = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", VERIFIER),
        ("client_id", client_id),
    ];
    if let Some(r) = redirect {
        fields.push(("redirect_uri", r));
    }
    stack.post_form("/token", &fields, None).await
}

/// A code flow for alice with a fresh public client; returns (client_id, token response).
async fn user_tokens(stack: &TestStack) -> (String, Value) {
    let client_id = stack.register_public().await;
    let url = stack.authorize_url(&client_id, &[("redirect_uri", REDIRECT_URI)]);
    let code = query(&stack.browser_authorize(&url).await)["code"].clone();
    let (s, body) = redeem(stack, &client_id, &code, Some(REDIRECT_URI)).await;
    assert_eq!(s, 200, "{body}");
    (client_id, body)
}

// ---- 1. client_credentials ----

#[tokio::test]
async fn self_registered_clients_cannot_obtain_client_credentials() {
    let stack = TestStack::spawn().await;
    let before = stack.count(Table::Clients).await;
    let res = stack
        .http
        .post(stack.url("/register"))
        .json(
            &json!({"grant_types": ["client_credentials"], "response_types": [],
            "token_endpoint_auth_method": "client_secret_basic", "client_name": "anon"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client_metadata");
    assert_eq!(stack.count(Table::Clients).await, before, "nothing stored");
    // A wrong initial access token is refused, not treated as anonymous.
    let res = stack
        .http
        .post(stack.url("/register"))
        .bearer_auth("not-the-token-0123456789")
        .json(&json!({"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // A row registered that way before the fix still gets nothing at the token endpoint.
    let secret = "legacy-secret-0123456789";
    stack
        .store
        .insert_client(&authz_server::store::ClientRow {
            client_id: "legacy-dynamic".into(),
            secret_hash: Some(oauth_protocol::secret::digest(secret)),
            metadata: json!({"redirect_uris": [], "token_endpoint_auth_method": "client_secret_basic",
                "grant_types": ["client_credentials"], "response_types": [], "scope": "mcp:read mcp:write",
                "application_type": "web"})
            .to_string(),
            client_id_issued_at: authz_server::state::now(),
            origin: "dynamic".into(),
        })
        .await
        .unwrap();
    let (s, body) = stack
        .post_form(
            "/token",
            &[("grant_type", "client_credentials")],
            Some(("legacy-dynamic", secret)),
        )
        .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    // Client-credentials tokens have no row: the issue counter says none was issued.
    assert_eq!(
        stack.authz_state.metrics.counter(
            "tokens_issued_total",
            &[("grant_type", "client_credentials")]
        ),
        0
    );
}

#[tokio::test]
async fn machine_clients_get_only_their_scope_and_only_resources_that_accept_them() {
    let stack = TestStack::builder()
        .authz(|c| c.resource_servers[0].machine_clients = false)
        .spawn()
        .await;
    let created = authz_server::admin::client_add(
        &stack.store,
        &stack.config,
        "Backend",
        true,
        &[],
        Some("mcp:read"),
    )
    .await
    .unwrap();
    let basic = Some((
        created.client_id.as_str(),
        created.client_secret.as_deref().unwrap(),
    ));
    let (s, body) = stack
        .post_form("/token", &[("grant_type", "client_credentials")], basic)
        .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_target")),
        "{body}"
    );
    let unscoped =
        authz_server::admin::client_add(&stack.store, &stack.config, "No scope", true, &[], None)
            .await
            .unwrap();
    let (s, body) = stack
        .post_form(
            "/token",
            &[("grant_type", "client_credentials")],
            Some((
                &unscoped.client_id,
                unscoped.client_secret.as_deref().unwrap(),
            )),
        )
        .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );

    let stack = TestStack::spawn().await;
    let created = authz_server::admin::client_add(
        &stack.store,
        &stack.config,
        "Backend",
        true,
        &[],
        Some("mcp:read"),
    )
    .await
    .unwrap();
    let basic = Some((
        created.client_id.as_str(),
        created.client_secret.as_deref().unwrap(),
    ));
    let (s, body) = stack
        .post_form("/token", &[("grant_type", "client_credentials")], basic)
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        body["scope"], "mcp:read",
        "the scope the administrator gave"
    );
    let (s, body) = stack
        .post_form(
            "/token",
            &[("grant_type", "client_credentials"), ("scope", "mcp:write")],
            basic,
        )
        .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_scope")));
}

#[tokio::test]
async fn resource_server_refuses_tokens_without_a_user_unless_configured() {
    for accept in [false, true] {
        let stack = TestStack::builder()
            .resource_server(|rs| rs.accept_machine_clients = accept)
            .spawn()
            .await;
        let (id, secret) = stack.register_confidential("client_secret_basic").await;
        let (s, body) = stack
            .post_form(
                "/token",
                &[("grant_type", "client_credentials")],
                Some((&id, &secret)),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        let token = body["access_token"].as_str().unwrap();
        let res = stack
            .http
            .get(&stack.resource)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        if accept {
            assert_ne!(res.status(), 401);
        } else {
            assert_eq!(res.status(), 401);
            let challenge = res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(
                challenge.contains(r#"error="invalid_token""#),
                "{challenge}"
            );
        }
    }
    // A user's token is accepted either way.
    let stack = TestStack::spawn().await;
    let (_, tokens) = user_tokens(&stack).await;
    let res = stack
        .http
        .get(&stack.resource)
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_ne!(res.status(), 401);
}

// ---- 2 and 3. sign-in cost and throttle ----

#[tokio::test]
async fn parallel_wrong_passwords_are_counted_before_the_hash_and_a_success_resets_nothing() {
    let stack = TestStack::spawn().await;
    let browser = e2e::new_browser();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (stack, browser) = (&stack, browser.clone());
            async move {
                // One correct password inside the burst.
                let pw = if i == 20 { PASSWORD } else { "wrong password" };
                stack.sign_in(&browser, USERNAME, pw).await
            }
        })
        .collect();
    let statuses = futures::future::join_all(tasks).await;
    // Wrong passwords that were checked (200 with an error; the success is a 303).
    let mut checked = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= 29,
        "{statuses:?}"
    );
    // Whatever allowance is left (the success gave back only its own attempt), the total
    // number of wrong passwords ever checked in the window is the limit, not more.
    while stack.sign_in(&browser, USERNAME, "wrong password").await == 200 {
        checked += 1;
        assert!(checked <= 10, "more than 10 guesses were checked");
    }
    assert_eq!(checked, 10, "{statuses:?}");
}

#[tokio::test]
async fn one_address_guessing_many_usernames_is_throttled_with_retry_after() {
    let stack = TestStack::builder()
        .authz(|c| c.login_max_failures_per_address = 5)
        .spawn()
        .await;
    let browser = e2e::new_browser();
    let mut statuses = Vec::new();
    for i in 0..8 {
        statuses.push(
            stack
                .sign_in(&browser, &format!("nobody{i}"), "guess")
                .await,
        );
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    let page = browser
        .get(stack.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf_token").unwrap();
    let res = browser
        .post(stack.url("/login"))
        .form(&[
            ("username", "x"),
            ("password", "y"),
            ("csrf_token", &csrf),
            ("request", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert!(
        res.text().await.unwrap().contains("15 minutes"),
        "message from the window"
    );
}

// ---- 4. consent per resource ----

#[tokio::test]
async fn approving_one_resource_does_not_approve_another() {
    let stack = TestStack::builder()
        .authz(|c| {
            let mut second = c.resource_servers[0].clone();
            second.resource = "http://127.0.0.1:9/second".into();
            second.client_id = "rs2".into();
            c.resource_servers.push(second);
        })
        .spawn()
        .await;
    let client_id = stack.register_public().await;
    let first = stack.authorize_url(
        &client_id,
        &[
            ("redirect_uri", REDIRECT_URI),
            ("resource", &stack.resource),
            ("scope", "mcp:read"),
        ],
    );
    assert!(query(&stack.browser_authorize(&first).await).contains_key("code"));
    // The same client and scope for the first resource: remembered, a code at once.
    let res = stack.browser.get(&first).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with(REDIRECT_URI));
    // For the second resource the user is asked.
    let second = stack.authorize_url(
        &client_id,
        &[
            ("redirect_uri", REDIRECT_URI),
            ("resource", "http://127.0.0.1:9/second"),
            ("scope", "mcp:read"),
        ],
    );
    let res = stack.browser.get(&second).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"consent-form\""), "consent asked again");
    assert!(html.contains("http://127.0.0.1:9/second"));
}

// ---- 5. disabled users ----

#[tokio::test]
async fn a_code_issued_before_disable_is_worthless_after_it() {
    let stack = TestStack::spawn().await;
    let client_id = stack.register_public().await;
    let url = stack.authorize_url(&client_id, &[("redirect_uri", REDIRECT_URI)]);
    let code = query(&stack.browser_authorize(&url).await)["code"].clone();
    authz_server::admin::user_disable(&stack.store, USERNAME, true)
        .await
        .unwrap();
    let (s, body) = redeem(&stack, &client_id, &code, Some(REDIRECT_URI)).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(stack.count(Table::AccessTokens).await, 0);
}

#[tokio::test]
async fn a_disabled_user_s_tokens_neither_introspect_nor_refresh() {
    let stack = TestStack::spawn().await;
    let (client_id, tokens) = user_tokens(&stack).await;
    // Disabled by a path that revokes nothing (as another instance or a restore might).
    sqlx::query("UPDATE users SET disabled = 1")
        .execute(stack.store.pool())
        .await
        .unwrap();
    let at = tokens["access_token"].as_str().unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(stack.introspect(at).await, json!({"active": false}));
    assert_eq!(stack.introspect(rt).await, json!({"active": false}));
    let (s, body) = stack
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("client_id", &client_id),
            ],
            None,
        )
        .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn set_password_ends_sessions_and_grants_unless_told_to_keep_them() {
    let stack = TestStack::spawn().await;
    let (_, tokens) = user_tokens(&stack).await;
    let at = tokens["access_token"].as_str().unwrap().to_owned();
    authz_server::admin::user_set_password(&stack.store, USERNAME, "a new password 1", true)
        .await
        .unwrap();
    assert_eq!(
        stack.introspect(&at).await["active"],
        true,
        "--keep-sessions keeps"
    );
    let out =
        authz_server::admin::user_set_password(&stack.store, USERNAME, "a new password 2", false)
            .await
            .unwrap();
    assert!(out.contains("sessions ended"), "{out}");
    assert_eq!(stack.introspect(&at).await["active"], false);
    assert_eq!(stack.count(Table::Sessions).await, 0);
}

// ---- 6. CSRF ----

#[tokio::test]
async fn a_planted_csrf_cookie_does_not_pass_and_consent_tokens_fit_one_request() {
    let stack = TestStack::spawn().await;
    let client_id = stack.register_public().await;
    let url = stack.authorize_url(&client_id, &[("redirect_uri", REDIRECT_URI)]);
    // Double-submit with a value the attacker chose (a cookie planted from a sibling origin).
    let planted = "planted-value-planted-value-planted-value";
    let res = stack
        .http
        .post(stack.url("/login"))
        .header("cookie", format!("authz_csrf={planted}"))
        .form(&[
            ("username", USERNAME),
            ("password", PASSWORD),
            ("csrf_token", planted),
            ("request", url.split_once('?').unwrap().1),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Even a token computed from the planted cookie is refused when the post comes from
    // another origin (a sibling port or sub-domain is where a planted cookie comes from).
    let derived = authz_server::ids::derive_token(planted.as_bytes(), "login");
    for (name, value) in [
        ("origin", "http://127.0.0.1:9"),
        ("sec-fetch-site", "same-site"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let res = stack
            .http
            .post(stack.url("/login"))
            .header("cookie", format!("authz_csrf={planted}"))
            .header(name, value)
            .form(&[
                ("username", USERNAME),
                ("password", PASSWORD),
                ("csrf_token", derived.as_str()),
                ("request", url.split_once('?').unwrap().1),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{name}: {value}");
    }
    assert_eq!(stack.count(Table::Sessions).await, 0);
    // A consent token shown for one request approves no other.
    let res = stack.browser.get(&url).send().await.unwrap();
    let html = res.text().await.unwrap();
    let csrf = hidden(&html, "csrf_token").unwrap();
    let request = hidden(&html, "request").unwrap();
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
    let consent = stack
        .browser
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let consent_csrf = hidden(&consent, "csrf_token").unwrap();
    let other = stack.authorize_url(
        &client_id,
        &[("redirect_uri", REDIRECT_URI), ("scope", "mcp:write")],
    );
    let res = stack
        .browser
        .post(stack.url("/consent"))
        .form(&[
            ("decision", "approve"),
            ("csrf_token", &consent_csrf),
            ("request", other.split_once('?').unwrap().1),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "the token was for another request");
    assert_eq!(stack.count(Table::Codes).await, 0);
    assert_eq!(stack.count(Table::Consents).await, 0);
}

#[tokio::test]
async fn cookies_use_the_host_prefix_under_https() {
    let stack = TestStack::builder()
        .authz(|c| c.issuer = "https://auth.example.com".into())
        .spawn()
        .await;
    let res = stack
        .http
        .get(format!("http://{}/account", stack.config.bind))
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-authz_csrf="), "{cookie}");
    assert!(cookie.contains("; Secure") && cookie.contains("Path=/") && !cookie.contains("Domain"));
}

// ---- 7. growth ----

#[tokio::test]
async fn registration_is_rate_limited_per_address() {
    let stack = TestStack::builder()
        .authz(|c| c.registrations_per_hour = 3)
        .spawn()
        .await;
    let body = json!({"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"});
    for _ in 0..3 {
        stack.register(body.clone()).await;
    }
    let res = stack
        .http
        .post(stack.url("/register"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(stack.count(Table::Clients).await, 3);
}

#[tokio::test]
async fn audit_rows_are_bounded_and_unused_registrations_and_old_events_are_purged() {
    let stack = TestStack::spawn().await;
    let browser = e2e::new_browser();
    let huge = format!("a b\u{1b}[2J\nforged line{}", "u".repeat(20_000));
    stack.sign_in(&browser, &huge, "pw").await;
    let out = authz_server::admin::audit_list(&stack.store, 10)
        .await
        .unwrap();
    let line = out
        .lines()
        .find(|l| l.contains("login_failed"))
        .expect("audited");
    assert!(line.len() < 400, "detail is cut: {} bytes", line.len());
    assert!(
        !out.contains('\u{1b}') && !out.contains("\nforged"),
        "control characters escaped"
    );
    assert!(
        line.contains("a b\\u{1b}[2J\\u{a}forged line"),
        "only they are: {line}"
    );
    // An unused registration goes after its time; a used one stays.
    let unused = stack.register_public().await;
    let (used, _) = user_tokens(&stack).await;
    let now = authz_server::state::now();
    stack
        .store
        .purge_expired(now, Some(now + 1), now + 1)
        .await
        .unwrap();

    assert!(stack.store.client(&unused).await.unwrap().is_none());
    assert!(stack.store.client(&used).await.unwrap().is_some());
    assert_eq!(
        stack.count(Table::Audit).await,
        0,
        "events older than the retention go"
    );
}

// ---- 8. open redirector ----

#[tokio::test]
async fn unvetted_remote_redirects_get_an_interstitial_until_a_person_decides() {
    let stack = TestStack::spawn().await;
    let remote = "https://app.example.com/cb";
    let info = stack
        .register(json!({"redirect_uris": [remote], "token_endpoint_auth_method": "none"}))
        .await;
    let dcr = info["client_id"].as_str().unwrap();
    let bad = stack.authorize_url(dcr, &[("redirect_uri", remote), ("scope", "nope")]);
    let res = stack.http.get(&bad).send().await.unwrap();
    assert_eq!(res.status(), 400, "no automatic redirect");
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"continue-link\"") && html.contains("app.example.com"));
    assert!(
        html.contains("error=invalid_scope"),
        "the link carries the error"
    );
    // A vetted client is redirected as before.
    let vetted = authz_server::admin::client_add(
        &stack.store,
        &stack.config,
        "Web",
        false,
        &[remote.into()],
        None,
    )
    .await
    .unwrap();
    let bad = stack.authorize_url(
        &vetted.client_id,
        &[("redirect_uri", remote), ("scope", "nope")],
    );
    let res = stack.http.get(&bad).send().await.unwrap();
    assert_eq!(res.status(), 303);
    // A person who saw the consent page and said no is sent back.
    let ok = stack.authorize_url(dcr, &[("redirect_uri", remote)]);
    let back = stack.browser_authorize_with(&ok, "deny").await;
    assert_eq!(query(&back)["error"], "access_denied");
    // Loopback addresses cannot be someone else's page: redirected as before.
    let local = stack.register_public().await;
    let bad = stack.authorize_url(&local, &[("redirect_uri", REDIRECT_URI), ("scope", "nope")]);
    assert_eq!(stack.http.get(&bad).send().await.unwrap().status(), 303);
}

// ---- 9. lower severity ----

#[tokio::test]
async fn a_refresh_retried_within_the_grace_window_gets_the_same_successor() {
    let stack = TestStack::spawn().await;
    let (client_id, tokens) = user_tokens(&stack).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let fields = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("client_id", client_id.as_str()),
    ];
    let (s1, a) = stack.post_form("/token", &fields, None).await;
    let (s2, b) = stack.post_form("/token", &fields, None).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(a["refresh_token"], b["refresh_token"], "one chain, not two");
    assert_ne!(a["refresh_token"], tokens["refresh_token"]);
    assert_eq!(stack.count(Table::RefreshTokens).await, 2);
}

#[tokio::test]
async fn redirect_uri_is_required_at_the_token_endpoint_when_the_request_had_one() {
    let stack = TestStack::spawn().await;
    let client_id = stack.register_public().await;
    let url = stack.authorize_url(&client_id, &[("redirect_uri", REDIRECT_URI)]);
    let code = query(&stack.browser_authorize(&url).await)["code"].clone();
    let (s, body) = redeem(&stack, &client_id, &code, None).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    // Without one in the request (one registered URI), none is needed.
    let url = stack.authorize_url(&client_id, &[]);
    let code = query(&stack.browser_authorize(&url).await)["code"].clone();
    assert_eq!(redeem(&stack, &client_id, &code, None).await.0, 200);
}

#[tokio::test]
async fn a_registered_scope_bounds_only_vetted_clients_and_the_consent_page_says_unverified() {
    let stack = TestStack::spawn().await;
    let info = stack
        .register(
            json!({"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none",
            "scope": "mcp:read", "client_name": "Reader\u{202e}evil"}),
        )
        .await;
    assert_eq!(info["client_name"], "Readerevil", "bidi override stripped");
    let client_id = info["client_id"].as_str().unwrap();
    let url = stack.authorize_url(
        client_id,
        &[
            ("redirect_uri", REDIRECT_URI),
            ("scope", "mcp:read mcp:write"),
        ],
    );
    // Sign in, then look at the consent page.
    let html = stack
        .browser
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&html, "csrf_token").unwrap();
    let request = hidden(&html, "request").unwrap();
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
    let res = stack.browser.get(&url).send().await.unwrap();
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:3000"),
        "{csp}"
    );
    let consent = res.text().await.unwrap();
    assert!(consent.contains("id=\"unverified-notice\""));
    // Self-registered: the registered scope is the client's own choice, so only a default;
    // the person sees and approves everything asked for (MCP clients register their first
    // request's scope and step up later).
    assert!(
        consent.contains("mcp:read") && consent.contains("mcp:write"),
        "not narrowed"
    );
    let back = stack.browser_authorize(&url).await;
    let (s, body) = redeem(&stack, client_id, &query(&back)["code"], Some(REDIRECT_URI)).await;
    assert_eq!(
        (s, body["scope"].as_str()),
        (200, Some("mcp:read mcp:write"))
    );

    // Vetted (the registration token): what it registered bounds what it is offered.
    let vetted = stack
        .register_vouched(
            json!({"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none",
            "scope": "mcp:read", "client_name": "Vetted reader"}),
        )
        .await;
    let vetted_id = vetted["client_id"].as_str().unwrap();
    let url = stack.authorize_url(
        vetted_id,
        &[
            ("redirect_uri", REDIRECT_URI),
            ("scope", "mcp:read mcp:write"),
        ],
    );
    let consent = stack
        .browser
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        consent.contains("mcp:read") && !consent.contains("mcp:write"),
        "narrowed: {consent}"
    );
    let back = stack.browser_authorize(&url).await;
    let (s, body) = redeem(&stack, vetted_id, &query(&back)["code"], Some(REDIRECT_URI)).await;
    assert_eq!((s, body["scope"].as_str()), (200, Some("mcp:read")));
    let url = stack.authorize_url(
        vetted_id,
        &[("redirect_uri", REDIRECT_URI), ("scope", "mcp:write")],
    );
    let res = stack.browser.get(&url).send().await.unwrap();
    let back = e2e::location(&res);
    assert!(back.contains("error=invalid_scope"), "{back}");
}

#[tokio::test]
async fn the_resource_server_checks_the_token_before_reading_a_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stack = TestStack::spawn().await;
    let url = url::Url::parse(&stack.resource).unwrap();
    let mut conn = tokio::net::TcpStream::connect((url.host_str().unwrap(), url.port().unwrap()))
        .await
        .unwrap();
    // A 2 MiB body is announced and only 70 KiB sent: the answer must not wait for the rest.
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        url.path(),
        url.authority(),
        2 * 1024 * 1024
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&vec![b' '; 70 * 1024]).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        conn.read_to_end(&mut answer),
    )
    .await;
    assert!(
        read.is_ok(),
        "answered and closed without the rest of the body"
    );
    let text = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(text.starts_with("http/1.1 401"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
}

#[tokio::test]
async fn resource_server_preflight_answers_only_allowed_origins() {
    let stack = TestStack::spawn().await;
    let preflight = |origin: &'static str| {
        stack
            .http
            .request(reqwest::Method::OPTIONS, &stack.resource)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let evil = preflight("https://evil.example").await.unwrap();
    assert!(!evil.headers().contains_key("access-control-allow-origin"));
    let local = preflight("http://localhost:6274").await.unwrap();
    assert_eq!(
        local.headers()["access-control-allow-origin"],
        "http://localhost:6274"
    );
}

#[tokio::test]
async fn metrics_can_live_on_their_own_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let stack = TestStack::builder()
        .authz(|c| c.metrics_bind = Some(port))
        .spawn()
        .await;
    let main = stack.http.get(stack.url("/metrics")).send().await.unwrap();
    assert_eq!(main.status(), 404);
    // A request on the main address, to be counted.
    let meta = stack
        .http
        .get(stack.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(meta.status(), 200);
    let mut ok = false;
    for _ in 0..50 {
        if let Ok(res) = stack
            .http
            .get(format!("http://{port}/metrics"))
            .send()
            .await
        {
            ok = res.status() == 200
                && res
                    .text()
                    .await
                    .unwrap()
                    .contains("# TYPE http_requests counter");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(ok, "served on the metrics address");
}

// ---- issue: introspection credentials sent the RFC 6749 §2.3.1 way ----

/// Secrets with characters that Basic and form-encoding treat specially work end to end;
/// a wrong one is told apart from an outage.
#[tokio::test]
async fn introspection_credentials_survive_hostile_characters_and_refusal_is_named() {
    let hostile = "a+b/c=d%e:f g&h?0123456789";
    let stack = TestStack::builder()
        .authz(|c| {
            c.resource_servers[0].client_secret = oauth_protocol::secret::Secret::new(hostile)
        })
        .resource_server(|rs| rs.client_secret = oauth_protocol::secret::Secret::new(hostile))
        .spawn()
        .await;
    let (_, tokens) = user_tokens(&stack).await;
    let at = tokens["access_token"].as_str().unwrap();
    let session = stack.mcp_session(at).await;
    assert!(!session.is_empty(), "introspection worked with {hostile:?}");
    let stack = TestStack::builder()
        .resource_server(|rs| {
            rs.client_secret = oauth_protocol::secret::Secret::new("wrong secret 0123456789")
        })
        .spawn()
        .await;
    let (_, tokens) = user_tokens(&stack).await;
    let res = stack
        .http
        .get(&stack.resource)
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let body = res.text().await.unwrap();
    assert!(body.contains("introspection credentials"), "{body}");
}
