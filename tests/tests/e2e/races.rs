//! Races: one code redeemed many times at once, one refresh token refreshed many times at
//! once, registrations and consents in parallel. Whatever the order, one winner or one
//! documented answer, no server error, nothing written twice.

use authz_server::store::Table;
use e2e::{PASSWORD, REDIRECT_URI, TestStack, USERNAME, VERIFIER};
use futures::future::join_all;
use serde_json::{Value, json};

const PARALLEL: usize = 12;

async fn code_for(stack: &TestStack, client_id: &str) -> String {
    let url = stack.authorize_url(
        client_id,
        &[
            ("redirect_uri", REDIRECT_URI),
            ("resource", &stack.resource),
        ],
    );
    let back = stack
        .authorize_as(&stack.browser, USERNAME, PASSWORD, &url, "approve")
        .await;
    e2e::query(&back)["code"].clone()
}

fn redeem_form<'a>(client_id: &'a str, code: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", VERIFIER),
        ("redirect_uri", REDIRECT_URI),
        ("client_id", client_id),
    ]
}

#[tokio::test]
async fn a_code_redeemed_in_parallel_is_issued_once_and_the_replays_revoke_it() {
    let stack = TestStack::spawn().await;
    let client_id = stack.register_public().await;
    let code = code_for(&stack, &client_id).await;
    let form = redeem_form(&client_id, &code);
    let answers = join_all((0..PARALLEL).map(|_| stack.token(&form, None))).await;
    let issued: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(issued.len(), 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(
            (*status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{body}"
        );
    }
    // RFC 9700 §4.4.1 (as documented): a replayed code revokes what it issued.
    let at = issued[0]["access_token"].as_str().unwrap();
    assert_eq!(stack.introspect(at).await["active"], false);
    assert_eq!(stack.count(Table::Grants).await, 1, "one grant, never two");
    assert_eq!(stack.count(Table::AccessTokens).await, 1);
}

#[tokio::test]
async fn a_refresh_token_refreshed_in_parallel_gives_one_successor() {
    let stack = TestStack::spawn().await;
    let client_id = stack.register_public().await;
    let code = code_for(&stack, &client_id).await;
    let (status, tokens) = stack.token(&redeem_form(&client_id, &code), None).await;
    assert_eq!(status, 200, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh),
        ("client_id", client_id.as_str()),
    ];
    let answers = join_all((0..PARALLEL).map(|_| stack.token(&form, None))).await;
    // Within the grace window every retry gets the same successor: one chain.
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    let successors: std::collections::HashSet<&str> = answers
        .iter()
        .map(|(_, b)| b["refresh_token"].as_str().unwrap())
        .collect();
    assert_eq!(
        successors.len(),
        1,
        "one successor, not {}",
        successors.len()
    );
    let next = *successors.iter().next().unwrap();
    assert_ne!(next, refresh);
    assert_eq!(stack.count(Table::Grants).await, 1);
    assert_eq!(
        stack.count(Table::RefreshTokens).await,
        2,
        "the spent one and its successor"
    );
    let at = answers[0].1["access_token"].as_str().unwrap();
    assert_eq!(
        stack.introspect(at).await["active"],
        true,
        "the grant lives on"
    );
}

#[tokio::test]
async fn parallel_registrations_each_get_their_own_client() {
    let stack = TestStack::spawn().await;
    let answers = join_all((0..PARALLEL).map(|i| {
        stack
            .http
            .post(stack.url("/register"))
            .json(&json!({
                "redirect_uris": [REDIRECT_URI],
                "token_endpoint_auth_method": "none",
                "client_name": format!("parallel {i}"),
            }))
            .send()
    }))
    .await;
    let mut ids = std::collections::HashSet::new();
    for res in answers {
        let res = res.unwrap();
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        ids.insert(body["client_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), PARALLEL);
    assert_eq!(stack.count(Table::Clients).await, PARALLEL as i64);
}

#[tokio::test]
async fn one_consent_posted_in_parallel_is_recorded_once() {
    let stack = TestStack::spawn().await;
    let client_id = stack.register_public().await;
    let url = stack.authorize_url(
        &client_id,
        &[
            ("redirect_uri", REDIRECT_URI),
            ("resource", &stack.resource),
        ],
    );
    assert_eq!(stack.sign_in(&stack.browser, USERNAME, PASSWORD).await, 303);
    let html = stack
        .browser
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"consent-form\""), "{html}");
    let csrf = e2e::hidden(&html, "csrf_token").unwrap();
    let request = e2e::hidden(&html, "request").unwrap();
    let answers = join_all((0..PARALLEL).map(|_| {
        stack
            .browser
            .post(stack.url("/consent"))
            .form(&[
                ("decision", "approve"),
                ("csrf_token", csrf.as_str()),
                ("request", request.as_str()),
            ])
            .send()
    }))
    .await;
    let mut codes = 0;
    for res in answers {
        let res = res.unwrap();
        assert_eq!(res.status(), 303, "no server error");
        let to = e2e::location(&res);
        if to.contains("code=") {
            codes += 1;
        }
    }
    assert!(codes >= 1);
    assert_eq!(
        stack.count(Table::Consents).await,
        1,
        "one consent, not {codes}"
    );
}
