//! Abuse limits: the back-channel endpoints answer 429 with `Retry-After` past their quota
//! per address and per confidential client, discovery documents and JWKS never do, configured
//! resource servers introspect without a quota, and one address cannot lock a user out of
//! signing in from elsewhere.

use e2e::{PASSWORD, RS_CLIENT_ID, RS_CLIENT_SECRET, TestStack, USERNAME};

/// A client whose requests come from `address` (the stack trusts `X-Forwarded-For`).
fn from(address: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", address.parse().unwrap());
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .default_headers(headers)
        .build()
        .unwrap()
}

async fn post(
    http: &reqwest::Client,
    stack: &TestStack,
    path: &str,
    fields: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut req = http.post(stack.url(path)).form(fields);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.unwrap()
}

async fn assert_limited(res: reqwest::Response, what: &str) {
    assert_eq!(res.status(), 429, "{what}");
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{what}: Retry-After {wait}");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{what}: {body}");
}

#[tokio::test]
async fn each_back_channel_endpoint_has_a_quota_per_address_and_discovery_has_none() {
    let stack = TestStack::builder()
        .authz(|c| {
            c.trust_forwarded_for = true;
            c.requests_per_minute_per_address = 3;
        })
        .spawn()
        .await;
    let bogus = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "x"),
        ("client_id", "x"),
    ];
    for (path, fields) in [
        ("/token", &bogus[..]),
        ("/revoke", &[("token", "x"), ("client_id", "x")][..]),
        ("/device_authorization", &[("client_id", "x")][..]),
        ("/introspect", &[("token", "x")][..]),
    ] {
        // Each endpoint on its own address: the quota is per address, not per endpoint.
        let http = from(&format!("10.1.0.{}", path.len()));
        for i in 0..3 {
            let res = post(&http, &stack, path, fields, None).await;
            assert_ne!(res.status(), 429, "{path} request {i}");
        }
        assert_limited(post(&http, &stack, path, fields, None).await, path).await;
        // Another address is not held back.
        let other = from(&format!("10.2.0.{}", path.len()));
        assert_ne!(post(&other, &stack, path, fields, None).await.status(), 429);
    }
    let http = from("10.1.0.5");
    for path in [
        "/.well-known/oauth-authorization-server",
        "/jwks.json",
        "/.well-known/oauth-authorization-server",
    ] {
        for _ in 0..5 {
            let res = http.get(stack.url(path)).send().await.unwrap();
            assert_eq!(res.status(), 200, "{path}");
        }
    }
    // The resource server introspects on every cache miss: never limited.
    let rs = from("10.1.0.6");
    for _ in 0..10 {
        let res = post(
            &rs,
            &stack,
            "/introspect",
            &[("token", "x")],
            Some((RS_CLIENT_ID, RS_CLIENT_SECRET)),
        )
        .await;
        assert_eq!(res.status(), 200);
    }
}

#[tokio::test]
async fn a_confidential_client_has_a_quota_of_its_own_wherever_it_calls_from() {
    let stack = TestStack::builder()
        .authz(|c| {
            c.trust_forwarded_for = true;
            c.requests_per_minute_per_client = 3;
        })
        .spawn()
        .await;
    let (id, secret) = stack.register_confidential("client_secret_basic").await;
    let cc = [("grant_type", "client_credentials")];
    for i in 0..3 {
        let http = from(&format!("10.3.0.{i}"));
        let res = post(&http, &stack, "/token", &cc, Some((&id, &secret))).await;
        assert_ne!(res.status(), 429, "request {i}");
    }
    let http = from("10.3.0.9");
    assert_limited(
        post(&http, &stack, "/token", &cc, Some((&id, &secret))).await,
        "fourth token request",
    )
    .await;
    assert_limited(
        post(
            &http,
            &stack,
            "/introspect",
            &[("token", "x")],
            Some((&id, &secret)),
        )
        .await,
        "introspection by the same client",
    )
    .await;
    // A public client's id is no credential: only the address quota applies to it.
    let public = stack.register_public().await;
    for _ in 0..6 {
        let res = post(
            &http,
            &stack,
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
                ("client_id", &public),
            ],
            None,
        )
        .await;
        assert_eq!(res.status(), 400);
    }
}

/// Ten wrong passwords from one address hold the account off from that address only; the
/// person signs in from another. Failures from many addresses together reach the account's
/// own quota.
#[tokio::test]
async fn one_address_cannot_lock_a_user_out() {
    let stack = TestStack::builder()
        .authz(|c| {
            c.trust_forwarded_for = true;
            c.login_max_failures_per_account = 25;
        })
        .spawn()
        .await;
    let attacker = from("10.4.0.1");
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(stack.sign_in(&attacker, USERNAME, "guess").await);
    }
    assert_eq!(&statuses[..10], &[200; 10], "{statuses:?}");
    assert_eq!(&statuses[10..], &[429, 429], "{statuses:?}");
    assert_eq!(stack.sign_in(&attacker, USERNAME, PASSWORD).await, 429);
    let owner = from("10.4.0.2");
    assert_eq!(
        stack.sign_in(&owner, USERNAME, PASSWORD).await,
        303,
        "the owner signs in from elsewhere"
    );
    // Two more addresses' worth of failures reach the account's quota (25): then no address
    // gets a password checked for it until the window ends.
    for address in ["10.4.0.3", "10.4.0.4"] {
        let http = from(address);
        for _ in 0..10 {
            stack.sign_in(&http, USERNAME, "guess").await;
        }
    }
    assert_eq!(
        stack.sign_in(&from("10.4.0.5"), USERNAME, PASSWORD).await,
        429
    );
}

/// A database that cannot be reached is a 503 with `Retry-After` (clients retry), never a
/// 500; what needs no database (discovery, JWKS) keeps answering.
#[tokio::test]
async fn without_its_database_the_server_answers_503_and_discovery_still_works() {
    let stack = TestStack::spawn().await;
    let client_id = stack.register_public().await;
    stack.authz_state.store.close().await;
    let (status, body) = stack
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
                ("client_id", &client_id),
            ],
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("temporarily_unavailable")),
        "{body}"
    );
    let res = post(&stack.http, &stack, "/register", &[], None).await;
    assert_ne!(res.status(), 500);
    let res = stack
        .http
        .post(stack.url("/introspect"))
        .basic_auth(RS_CLIENT_ID, Some(RS_CLIENT_SECRET))
        .form(&[("token", "x.y.z")])
        .send()
        .await
        .unwrap();
    assert!(
        matches!(res.status().as_u16(), 200 | 503),
        "{}",
        res.status()
    );
    let res = post(
        &stack.http,
        &stack,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_id", &client_id),
        ],
        None,
    )
    .await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "5");
    // The pages too: a person is asked to try again, not shown a server error.
    let url = stack.authorize_url(&client_id, &[]);
    let res = stack.browser.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "5");
    let res = stack
        .browser
        .get(stack.url("/account"))
        .send()
        .await
        .unwrap();
    assert!(
        matches!(res.status().as_u16(), 200 | 503),
        "{}",
        res.status()
    );
    for path in ["/.well-known/oauth-authorization-server", "/jwks.json"] {
        let res = stack.http.get(stack.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
    }
}
