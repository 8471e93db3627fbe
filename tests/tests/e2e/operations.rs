//! What operators use: every admin command (on whichever database `DATABASE_URL` selects),
//! the account page, the audit trail, metrics and health endpoints.

use authz_server::admin;
use authz_server::store::Table;
use e2e::{
    PASSWORD, RS_CLIENT_ID, RS_CLIENT_SECRET, TestStack, USERNAME, hidden, location, new_browser,
};

async fn introspect_active(stack: &TestStack, token: &str) -> bool {
    let body: serde_json::Value = stack
        .http
        .post(stack.url("/introspect"))
        .basic_auth(RS_CLIENT_ID, Some(RS_CLIENT_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["active"] == true
}

async fn sign_in_ok(stack: &TestStack, username: &str, password: &str) -> bool {
    stack.sign_in(&new_browser(), username, password).await == 303
}

#[tokio::test]
async fn user_commands() {
    let stack = TestStack::spawn().await;
    let out = admin::user_add(
        &stack.store,
        "carol",
        "carol password",
        Some("c@example.com".into()),
        None,
    )
    .await
    .unwrap();
    assert!(out.starts_with("created user carol"));
    assert!(
        admin::user_add(&stack.store, "carol", "another password", None, None)
            .await
            .is_err(),
        "duplicate"
    );
    assert!(
        admin::user_add(&stack.store, "dave", "short", None, None)
            .await
            .is_err(),
        "short password"
    );
    let list = admin::user_list(&stack.store).await.unwrap();
    assert!(list.contains("\tcarol\tactive\tc@example.com"), "{list}");
    assert!(sign_in_ok(&stack, "carol", "carol password").await);

    admin::user_set_password(&stack.store, "carol", "new carol password", false)
        .await
        .unwrap();
    assert!(!sign_in_ok(&stack, "carol", "carol password").await);
    assert!(sign_in_ok(&stack, "carol", "new carol password").await);
    assert!(
        admin::user_set_password(&stack.store, "nobody", "whatever123", false)
            .await
            .is_err()
    );

    // Disabling ends sessions and revokes grants.
    let token = stack
        .user_token(&new_browser(), "carol", "new carol password", "mcp:read")
        .await;
    let at = token["access_token"].as_str().unwrap();
    assert!(introspect_active(&stack, at).await);
    admin::user_disable(&stack.store, "carol", true)
        .await
        .unwrap();
    assert!(!introspect_active(&stack, at).await);
    assert!(!sign_in_ok(&stack, "carol", "new carol password").await);
    assert!(
        admin::user_list(&stack.store)
            .await
            .unwrap()
            .contains("\tcarol\tdisabled")
    );
    admin::user_disable(&stack.store, "carol", false)
        .await
        .unwrap();
    assert!(sign_in_ok(&stack, "carol", "new carol password").await);

    admin::user_remove(&stack.store, "carol").await.unwrap();
    assert!(
        !admin::user_list(&stack.store)
            .await
            .unwrap()
            .contains("carol")
    );
    assert!(!sign_in_ok(&stack, "carol", "new carol password").await);
    assert!(admin::user_remove(&stack.store, "carol").await.is_err());

    // Every event about carol names her by id, also after she is gone; an id passed to a
    // command never looks like an option.
    let carol_id = out
        .split_whitespace()
        .find_map(|w| w.strip_prefix('(').and_then(|w| w.strip_suffix(')')))
        .unwrap()
        .to_owned();
    let audit = admin::audit_list(&stack.store, 100).await.unwrap();
    for kind in [
        "user_created",
        "password_changed",
        "user_disabled",
        "user_enabled",
        "user_removed",
    ] {
        let row = audit
            .lines()
            .find(|l| l.split('\t').nth(1) == Some(kind))
            .unwrap_or_else(|| panic!("{kind} in\n{audit}"));
        let user_id = row.split('\t').nth(2).unwrap();
        assert_eq!(user_id, carol_id, "{row}");
    }
}

#[tokio::test]
async fn client_commands() {
    let stack = TestStack::spawn().await;
    let confidential = admin::client_add(
        &stack.store,
        &stack.config,
        "Backend",
        true,
        &[],
        Some("mcp:read"),
    )
    .await
    .unwrap();
    let secret = confidential
        .client_secret
        .clone()
        .expect("secret shown once");
    assert!(confidential.to_string().contains("shown once"));
    let public = admin::client_add(
        &stack.store,
        &stack.config,
        "Desktop",
        false,
        &["http://127.0.0.1/callback".into()],
        None,
    )
    .await
    .unwrap();
    assert!(public.client_secret.is_none());
    assert!(
        admin::client_add(
            &stack.store,
            &stack.config,
            "Bad",
            false,
            &["http://evil.example/cb".into()],
            None
        )
        .await
        .is_err()
    );
    let list = admin::client_list(&stack.store).await.unwrap();
    assert!(
        list.contains(&format!(
            "{}\tconfidential\tadmin\tBackend",
            confidential.client_id
        )),
        "{list}"
    );
    assert!(
        list.contains(&format!(
            "{}\tpublic\tadmin\tDesktop\thttp://127.0.0.1/callback",
            public.client_id
        )),
        "{list}"
    );

    let cc = |secret: String| {
        let stack = &stack;
        let id = confidential.client_id.clone();
        async move {
            let res = stack
                .http
                .post(stack.url("/token"))
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, token) = cc(secret.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(
        token["scope"], "mcp:read",
        "registered scope bounds client credentials"
    );

    let rotated = admin::client_rotate_secret(&stack.store, &confidential.client_id)
        .await
        .unwrap();
    let new_secret = rotated.split_whitespace().nth(1).unwrap().to_owned();
    assert_eq!(cc(secret).await.0, 401, "the old secret no longer works");
    assert_eq!(cc(new_secret.clone()).await.0, 200);
    assert!(
        admin::client_rotate_secret(&stack.store, &public.client_id)
            .await
            .is_err(),
        "public clients have no secret"
    );

    let at = token["access_token"].as_str().unwrap().to_owned();
    admin::client_remove(&stack.store, &confidential.client_id)
        .await
        .unwrap();
    assert_eq!(cc(new_secret).await.0, 401);
    assert!(
        !introspect_active(&stack, &at).await,
        "its tokens are revoked"
    );
    assert!(
        admin::client_remove(&stack.store, &confidential.client_id)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn resource_key_grant_and_audit_commands() {
    let stack = TestStack::spawn().await;
    // A resource server added at run time can introspect once the server has reloaded.
    let out = admin::resource_add(
        &stack.store,
        &stack.config,
        "https://mcp2.example.com/mcp",
        Some("Second".into()),
        Some("rs2".into()),
        true,
    )
    .await
    .unwrap();
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("client_secret  "))
        .unwrap()
        .to_owned();
    assert!(
        admin::resource_add(
            &stack.store,
            &stack.config,
            "https://mcp2.example.com/mcp",
            None,
            None,
            false
        )
        .await
        .is_err(),
        "duplicate"
    );
    assert!(
        admin::resource_add(
            &stack.store,
            &stack.config,
            "https://mcp3.example.com/",
            None,
            None,
            false
        )
        .await
        .is_err(),
        "no path"
    );
    // The configured resource (and its introspection client id) shadow any database entry:
    // adding either is refused with a message that says why, and nothing is stored.
    let configured = &stack.config.resource_servers[0];
    for (resource, client_id) in [
        (configured.resource.as_str(), None),
        (
            "https://mcp4.example.com/mcp",
            Some(configured.client_id.clone()),
        ),
    ] {
        let err = admin::resource_add(
            &stack.store,
            &stack.config,
            resource,
            None,
            client_id,
            false,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("already set by the configuration") && err.contains("never work"),
            "{err}"
        );
    }
    assert_eq!(
        stack.store.list_resource_servers().await.unwrap().len(),
        1,
        "only mcp2 was stored"
    );
    let list = admin::resource_list(&stack.store, &stack.config)
        .await
        .unwrap();
    assert!(
        list.contains("https://mcp2.example.com/mcp\trs2\tdatabase\tSecond")
            && list.contains("\tconfiguration\t"),
        "{list}"
    );
    stack.authz_state.reload_resource_servers().await.unwrap();
    let (id, client_secret) = stack.register_confidential("client_secret_basic").await;
    let res = stack
        .http
        .post(stack.url("/token"))
        .basic_auth(&id, Some(&client_secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", "https://mcp2.example.com/mcp"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the new resource is known");
    let at = res.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let info: serde_json::Value = stack
        .http
        .post(stack.url("/introspect"))
        .basic_auth("rs2", Some(&secret))
        .form(&[("token", at.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["active"], true);
    assert_eq!(info["aud"], "https://mcp2.example.com/mcp");

    // Keys.
    let before = admin::key_list(&stack.store).await.unwrap();
    assert_eq!(
        before.lines().filter(|l| l.ends_with("\tactive")).count(),
        1
    );
    admin::key_rotate(&stack.store).await.unwrap();
    let after = admin::key_list(&stack.store).await.unwrap();
    assert_eq!(after.lines().filter(|l| l.ends_with("\tactive")).count(), 1);
    assert_eq!(
        after
            .lines()
            .filter(|l| l.contains("\tretired at "))
            .count(),
        1
    );

    // Grants of a user; revoking one makes its tokens inactive.
    let token = stack
        .user_token(&stack.browser, USERNAME, PASSWORD, "mcp:read")
        .await;
    let grants = admin::grants_list(&stack.store, USERNAME).await.unwrap();
    let grant_id = grants
        .lines()
        .nth(1)
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    assert!(introspect_active(&stack, token["access_token"].as_str().unwrap()).await);
    assert!(
        admin::grant_revoke(&stack.store, &grant_id)
            .await
            .unwrap()
            .starts_with("revoked grant")
    );
    assert!(!introspect_active(&stack, token["access_token"].as_str().unwrap()).await);
    let again = admin::grant_revoke(&stack.store, &grant_id).await.unwrap();
    assert!(
        again.contains("already revoked at 20") && again.ends_with("nothing changed"),
        "{again}"
    );
    assert_eq!(
        admin::grants_list(&stack.store, USERNAME)
            .await
            .unwrap()
            .lines()
            .count(),
        1,
        "header only"
    );

    // The audit trail saw all of it.
    let audit = admin::audit_list(&stack.store, 100).await.unwrap();
    for kind in [
        "resource_server_added",
        "signing_key_rotated",
        "client_registered",
        "login_succeeded",
        "consent_granted",
        "token_issued",
        "grant_revoked",
    ] {
        assert!(audit.contains(&format!("\t{kind}\t")), "{kind} in\n{audit}");
    }
    // Times are RFC 3339 in UTC; events are listed newest first in the order they
    // happened, even within one second; user events carry the user's id.
    let rows: Vec<Vec<&str>> = audit
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    for row in &rows {
        let at = row[0];
        assert!(
            at.len() == 20 && at.ends_with('Z') && at.as_bytes()[10] == b'T',
            "{at}"
        );
    }
    let kinds: Vec<&str> = rows.iter().map(|r| r[1]).collect();
    let position = |kind: &str| kinds.iter().position(|k| *k == kind).unwrap();
    assert!(position("grant_revoked") < position("token_issued"));
    assert!(position("token_issued") < position("consent_granted"));
    assert!(position("consent_granted") < position("login_succeeded"));
    // (A machine client's token has no user.)
    for row in rows.iter().filter(|r| {
        [
            "login_succeeded",
            "consent_granted",
            "token_issued",
            "grant_revoked",
        ]
        .contains(&r[1])
            && r[4] != "client_credentials"
    }) {
        assert_eq!(row[2], stack.user_id, "user id on {row:?}");
    }
    let keys = admin::key_list(&stack.store).await.unwrap();
    assert!(
        keys.lines()
            .nth(1)
            .unwrap()
            .split('\t')
            .nth(1)
            .unwrap()
            .ends_with('Z'),
        "{keys}"
    );
}

/// The account page: a signed-in user sees what they authorized and can revoke it.
#[tokio::test]
async fn account_page_lists_and_revokes_grants() {
    let stack = TestStack::spawn().await;
    let token = stack
        .user_token(&stack.browser, USERNAME, PASSWORD, "mcp:read mcp:write")
        .await;
    let at = token["access_token"].as_str().unwrap();
    let page = stack
        .browser
        .get(stack.url("/account"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Test client")
            && html.contains(">mcp:read<")
            && html.contains(">mcp:write<")
            && html.contains("Test MCP server"),
        "{html}"
    );
    let grant_id = hidden(&html, "grant_id").unwrap();
    let csrf = hidden(&html, "csrf_token").unwrap();

    // Another user cannot revoke it, and a forged form does nothing.
    stack.add_user("mallory", "mallory password").await;
    let mallory = new_browser();
    let m_page = mallory
        .get(stack.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let m_csrf = hidden(&m_page, "csrf_token").unwrap();
    let res = mallory
        .post(stack.url("/login"))
        .form(&[
            ("username", "mallory"),
            ("password", "mallory password"),
            ("csrf_token", m_csrf.as_str()),
            ("request", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/account");
    // Forms of a signed-in user carry a token bound to that user's session.
    let m_account = mallory
        .get(stack.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let m_csrf = hidden(&m_account, "csrf_token").unwrap();
    let res = mallory
        .post(stack.url("/account/grants/revoke"))
        .form(&[
            ("grant_id", grant_id.as_str()),
            ("csrf_token", m_csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = stack
        .browser
        .post(stack.url("/account/grants/revoke"))
        .form(&[("grant_id", grant_id.as_str()), ("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(introspect_active(&stack, at).await);

    let res = stack
        .browser
        .post(stack.url("/account/grants/revoke"))
        .form(&[
            ("grant_id", grant_id.as_str()),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(
        !introspect_active(&stack, at).await,
        "revoked at once at the authorization server"
    );
    let html = stack
        .browser
        .get(stack.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("You have not authorized any applications"));
    // The consent went with it: the next request for that client asks again.
    assert_eq!(stack.count(Table::Consents).await, 0);
}

#[tokio::test]
async fn metrics_and_health_move() {
    let stack = TestStack::spawn().await;
    let scrape = |url: String| {
        let http = stack.http.clone();
        async move { http.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let value = |text: &str, line: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(line).map(|v| v.trim().parse().unwrap()))
            .unwrap_or(0)
    };
    let before = scrape(stack.url("/metrics")).await;
    // Every counter is exported from the start, at 0, not only once it has moved.
    for series in [
        "tokens_issued_total{grant_type=\"authorization_code\"} 0",
        "tokens_issued_total{grant_type=\"refresh_token\"} 0",
        "tokens_issued_total{grant_type=\"client_credentials\"} 0",
        "logins_total 0",
        "logins_failed_total 0",
        "registrations_total 0",
    ] {
        assert!(before.lines().any(|l| l == series), "{series} in\n{before}");
    }
    // A failed sign-in, then a whole flow.
    assert!(!sign_in_ok(&stack, USERNAME, "wrong password").await);
    let token = stack
        .user_token(&stack.browser, USERNAME, PASSWORD, "mcp:read")
        .await;
    let after = scrape(stack.url("/metrics")).await;
    assert_eq!(
        value(
            &after,
            "tokens_issued_total{grant_type=\"authorization_code\"}"
        ),
        1
    );
    assert_eq!(value(&after, "logins_failed_total"), 1);
    assert!(
        value(
            &after,
            "http_requests_total{route=\"/token\",method=\"POST\",status=\"200\"}"
        ) >= 1,
        "{after}"
    );
    assert!(after.contains("http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/token\"}"));

    let rs_metrics = stack.resource.replace("/mcp", "/metrics");
    let at = token["access_token"].as_str().unwrap();
    for _ in 0..3 {
        stack
            .http
            .get(&stack.resource)
            .bearer_auth(at)
            .send()
            .await
            .unwrap();
    }
    let rs = scrape(rs_metrics).await;
    assert_eq!(value(&rs, "introspection_calls_total"), 1);
    assert_eq!(value(&rs, "introspection_cache_hits_total"), 2);
    assert_eq!(value(&rs, "introspection_cache_misses_total"), 1);

    for base in [stack.issuer.clone(), stack.resource.replace("/mcp", "")] {
        for path in ["/healthz", "/readyz"] {
            let res = stack
                .http
                .get(format!("{base}{path}"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{base}{path}");
            assert!(
                res.headers().get("x-request-id").is_some(),
                "request id echoed"
            );
        }
    }
    let _ = stack.count(Table::Grants).await;
}
