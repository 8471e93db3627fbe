//! A GitHub-like plain OAuth 2.0 provider, with the quirks no OpenID Provider has: the token
//! endpoint answers form-encoded unless asked for JSON and reports errors with HTTP 200; the
//! identity is `/user` (numeric `id`, renamable `login`, a public email that need not be
//! verified) and `/user/emails` (the verified primary address); the API refuses requests
//! without a User-Agent. Signed in through the `github` preset; linked from the account page;
//! added and removed with the admin command.

use std::sync::{Arc, Mutex};

use authz_server::admin;
use authz_server::config::{Linking, Upstream};
use authz_server::store::Table;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use e2e::{TestStack, hidden, location, new_browser};
use serde_json::{Value, json};

const CLIENT_ID: &str = "gh-client";
const CLIENT_SECRET: &str = "gh-secret-0123456789";
const TOKEN: &str = "gho_upstream_token";

#[derive(Default)]
struct Account {
    id: u64,
    login: String,
    public_email: Option<String>,
    emails: Value,
    /// The token endpoint's next answer is this error, with status 200.
    error: Option<&'static str>,
    /// Form-encoded answers even to `Accept: application/json`.
    always_form: bool,
    challenge: String,
    redirect_uri: String,
    user_agents: Vec<String>,
}

#[derive(Clone)]
struct GitHub {
    base: String,
    account: Arc<Mutex<Account>>,
}

type Params = Query<std::collections::HashMap<String, String>>;

async fn authorize(State(gh): State<GitHub>, Query(q): Params) -> Response {
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || q.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    let mut a = gh.account.lock().unwrap();
    a.challenge = q["code_challenge"].clone();
    a.redirect_uri = q["redirect_uri"].clone();
    Redirect::to(&format!(
        "{}?code=gh-code&state={}",
        q["redirect_uri"], q["state"]
    ))
    .into_response()
}

fn answer(form: bool, body: Value) -> Response {
    if !form {
        return Json(body).into_response();
    }
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in body.as_object().unwrap() {
        out.append_pair(k, v.as_str().unwrap());
    }
    (
        [(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )],
        out.finish(),
    )
        .into_response()
}

async fn access_token(
    State(gh): State<GitHub>,
    headers: HeaderMap,
    Form(f): Form<std::collections::HashMap<String, String>>,
) -> Response {
    let mut a = gh.account.lock().unwrap();
    let form = a.always_form
        || !headers
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"));
    let field = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    // GitHub answers every error with 200.
    let error = if field("client_id") != CLIENT_ID || field("client_secret") != CLIENT_SECRET {
        Some("incorrect_client_credentials")
    } else if field("code") != "gh-code"
        || oauth_protocol::pkce::s256_challenge(field("code_verifier")) != a.challenge
    {
        Some("bad_verification_code")
    } else if field("redirect_uri") != a.redirect_uri {
        Some("redirect_uri_mismatch")
    } else {
        a.error.take()
    };
    if let Some(error) = error {
        return answer(
            form,
            json!({"error": error, "error_description": "refused by the fake", "error_uri": "https://docs.example/errors"}),
        );
    }
    answer(
        form,
        json!({"access_token": TOKEN, "scope": "read:user,user:email", "token_type": "bearer"}),
    )
}

/// The API: a bearer token and a User-Agent, or 401/403 as GitHub answers.
fn api(gh: &GitHub, headers: &HeaderMap, body: impl FnOnce(&Account) -> Value) -> Response {
    let mut a = gh.account.lock().unwrap();
    let Some(agent) = headers.get("user-agent").and_then(|v| v.to_str().ok()) else {
        return (StatusCode::FORBIDDEN, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header").into_response();
    };
    a.user_agents.push(agent.to_owned());
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials"})),
        )
            .into_response();
    }
    Json(body(&a)).into_response()
}

async fn user(State(gh): State<GitHub>, headers: HeaderMap) -> Response {
    api(
        &gh,
        &headers,
        |a| json!({"login": a.login, "id": a.id, "name": "The Octocat", "email": a.public_email, "company": "corp"}),
    )
}

async fn emails(State(gh): State<GitHub>, headers: HeaderMap) -> Response {
    api(&gh, &headers, |a| a.emails.clone())
}

async fn fake_github() -> GitHub {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gh = GitHub {
        base: format!("http://{}", listener.local_addr().unwrap()),
        account: Arc::new(Mutex::new(Account {
            id: 583231,
            login: "octocat".into(),
            public_email: Some("octo@public.example".into()),
            emails: json!([
                {"email": "octo@public.example", "primary": false, "verified": true, "visibility": "public"},
                {"email": "octocat@corp.example", "primary": true, "verified": true, "visibility": null},
            ]),
            ..Account::default()
        })),
    };
    let app = Router::new()
        .route("/login/oauth/authorize", get(authorize))
        .route("/login/oauth/access_token", post(access_token))
        .route("/api/user", get(user))
        .route("/api/user/emails", get(emails))
        .route("/api/v3/user", get(user))
        .route("/api/v3/user/emails", get(emails))
        .with_state(gh.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    gh
}

/// The `github` preset, from its variables, pointed at the fake.
fn github_preset(gh: &GitHub, linking: &str) -> Upstream {
    let api = format!("{}/api", gh.base);
    let get = |k: &str| match k {
        "GITHUB_OAUTH_CLIENT_ID" => Some(CLIENT_ID.to_owned()),
        "GITHUB_OAUTH_CLIENT_SECRET" => Some(CLIENT_SECRET.to_owned()),
        "GITHUB_OAUTH_URL" => Some(gh.base.clone()),
        "GITHUB_OAUTH_API_URL" => Some(api.clone()),
        "GITHUB_OAUTH_LINKING" => Some(linking.to_owned()),
        "GITHUB_OAUTH_TRUST_EMAIL" => Some("true".to_owned()),
        _ => None,
    };
    let mut up = authz_server::upstream_presets::presets(&get)
        .unwrap()
        .remove(0);
    up.allow_loopback_http = true;
    up
}

async fn counts(stack: &TestStack) -> [i64; 4] {
    [
        stack.count(Table::Users).await,
        stack.count(Table::IdentityLinks).await,
        stack.count(Table::Grants).await,
        stack.count(Table::AccessTokens).await,
    ]
}

/// Follows redirects from `url` in `browser` until a page answers; (status, url, body).
async fn follow(browser: &reqwest::Client, url: &str) -> (u16, String, String) {
    let mut next = url.to_owned();
    for _ in 0..8 {
        let res = browser.get(&next).send().await.unwrap();
        if !res.status().is_redirection() {
            let status = res.status().as_u16();
            return (status, next, res.text().await.unwrap());
        }
        next = url::Url::parse(&next)
            .unwrap()
            .join(&location(&res))
            .unwrap()
            .to_string();
    }
    panic!("too many redirects from {url}");
}

/// An MCP client's authorization request through "Continue with GitHub": the page it ends on.
async fn sign_in(stack: &TestStack, browser: &reqwest::Client) -> (u16, String) {
    let client_id = stack.register_public().await;
    let (_, _, page) = follow(browser, &stack.authorize_url(&client_id, &[])).await;
    let start = page
        .split("href=\"")
        .filter_map(|s| s.split('"').next())
        .find(|h| h.contains("/federation/") && h.contains("/start"))
        .unwrap_or_else(|| panic!("no Continue with GitHub on\n{page}"))
        .replace("&amp;", "&")
        .replace("&#38;", "&");
    let (status, _, body) = follow(browser, &stack.url(&start)).await;
    (status, body)
}

async fn stack_with(up: Upstream) -> TestStack {
    TestStack::builder()
        .authz(move |c| c.upstream = vec![up])
        .spawn()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_signs_in_by_numeric_id_with_the_verified_primary_email() {
    let gh = fake_github().await;
    let stack = stack_with(github_preset(&gh, "create")).await;
    let before = counts(&stack).await;
    let (status, page) = sign_in(&stack, &new_browser()).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"consent-form\""), "our consent: {page}");
    assert_eq!(counts(&stack).await[..2], [before[0] + 1, before[1] + 1]);
    let user = stack
        .store
        .user_by_username("octocat")
        .await
        .unwrap()
        .expect("a user named after the login");
    assert_eq!(
        user.email.as_deref(),
        Some("octocat@corp.example"),
        "the verified primary address, not the public one"
    );
    let shown = admin::user_show(&stack.store, "octocat").await.unwrap();
    assert!(
        shown.contains("github") && shown.contains("583231"),
        "{shown}"
    );

    // A renamed login is the same account: the subject is the numeric id.
    gh.account.lock().unwrap().login = "octocat-renamed".into();
    let (status, page) = sign_in(&stack, &new_browser()).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(counts(&stack).await[..2], [before[0] + 1, before[1] + 1]);
    let agents = gh.account.lock().unwrap().user_agents.clone();
    assert!(
        !agents.is_empty() && agents.iter().all(|a| a.starts_with("mcp-authz/")),
        "{agents:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_errors_answered_with_200_are_refused_and_a_form_encoded_answer_is_read() {
    let gh = fake_github().await;
    let stack = stack_with(github_preset(&gh, "create")).await;
    let before = counts(&stack).await;
    for error in ["bad_verification_code", "incorrect_client_credentials"] {
        gh.account.lock().unwrap().error = Some(error);
        let (status, page) = sign_in(&stack, &new_browser()).await;
        assert_eq!(status, 502, "{error}: {page}");
        assert!(
            page.contains("could not be verified") || page.contains("answered in a way"),
            "{error}: {page}"
        );
        assert_eq!(counts(&stack).await, before, "{error} wrote nothing");
    }
    // The same error, form-encoded (as GitHub answers without Accept: application/json).
    {
        let mut a = gh.account.lock().unwrap();
        a.always_form = true;
        a.error = Some("bad_verification_code");
    }
    let (status, _) = sign_in(&stack, &new_browser()).await;
    assert_eq!(status, 502);
    assert_eq!(counts(&stack).await, before);
    // A form-encoded success signs in.
    let (status, page) = sign_in(&stack, &new_browser()).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"consent-form\""), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverified_github_email_colliding_with_a_local_user_is_not_linked() {
    let gh = fake_github().await;
    let stack = stack_with(github_preset(&gh, "link_verified_email")).await;
    admin::user_add(
        &stack.store,
        "carol",
        "carol password 1",
        Some("octocat@corp.example".into()),
        None,
    )
    .await
    .unwrap();
    gh.account.lock().unwrap().emails = json!([
        {"email": "octocat@corp.example", "primary": true, "verified": false},
    ]);
    gh.account.lock().unwrap().public_email = Some("octocat@corp.example".into());
    let before = counts(&stack).await;
    let (status, page) = sign_in(&stack, &new_browser()).await;
    assert_eq!(status, 409, "{page}");
    assert!(
        page.contains("already exists") && page.contains("link GitHub on its account page"),
        "{page}"
    );
    assert_eq!(counts(&stack).await, before, "nothing written");
    // Verified at GitHub: linked to carol, no new user.
    gh.account.lock().unwrap().emails = json!([
        {"email": "octocat@corp.example", "primary": true, "verified": true},
    ]);
    let (status, page) = sign_in(&stack, &new_browser()).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(counts(&stack).await[..2], [before[0], before[1] + 1]);
    let shown = admin::user_show(&stack.store, "carol").await.unwrap();
    assert!(shown.contains("583231"), "{shown}");
}

/// The account page's "Link": the signed-in user signs in at GitHub and the identity joins
/// their account; it then signs them in. Another user cannot take it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_user_links_github_from_the_account_page() {
    let gh = fake_github().await;
    let stack = stack_with(github_preset(&gh, "existing_only")).await;
    let browser = new_browser();
    assert_eq!(
        stack.sign_in(&browser, e2e::USERNAME, e2e::PASSWORD).await,
        303
    );
    let (_, _, account) = follow(&browser, &stack.url("/account")).await;
    assert!(account.contains("aria-label=\"Link GitHub\""), "{account}");
    let csrf = hidden(&account, "csrf_token").unwrap();
    // Without the page's CSRF token: refused, nothing started.
    let res = browser
        .post(stack.url("/account/identities/link"))
        .form(&[("provider", "github"), ("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let links = stack.count(Table::IdentityLinks).await;
    let res = browser
        .post(stack.url("/account/identities/link"))
        .form(&[("provider", "github"), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let (status, url, account) = follow(&browser, &location(&res)).await;
    assert_eq!(status, 200, "{account}");
    assert!(url.ends_with("/account"), "{url}");
    assert!(
        account.contains("aria-label=\"Unlink GitHub\""),
        "{account}"
    );
    assert_eq!(stack.count(Table::IdentityLinks).await, links + 1);
    let shown = admin::user_show(&stack.store, e2e::USERNAME).await.unwrap();
    assert!(shown.contains("583231"), "{shown}");

    // The link signs the user in, although the provider creates and links nobody itself.
    let (status, page) = sign_in(&stack, &new_browser()).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"consent-form\""), "{page}");

    // bob, signed in with his password, cannot link the same GitHub identity.
    let (_, bob) = stack.second_user().await;
    assert_eq!(stack.sign_in(&bob, "bob", "bob password 123").await, 303);
    let (_, _, account) = follow(&bob, &stack.url("/account")).await;
    let csrf = hidden(&account, "csrf_token").unwrap();
    let res = bob
        .post(stack.url("/account/identities/link"))
        .form(&[("provider", "github"), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    let (status, _, page) = follow(&bob, &location(&res)).await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("linked to another account"), "{page}");
    assert_eq!(stack.count(Table::IdentityLinks).await, links + 1);
}

/// `admin provider add` (flags, or a TOML file for a plain OAuth 2.0 provider): stored,
/// listed, offered by the running server once it reloads, and gone after `remove`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_added_with_the_admin_command_are_offered_then_removed() {
    let gh = fake_github().await;
    let stack = TestStack::spawn().await;
    let new = admin::NewProvider {
        name: "gh".into(),
        preset: Some("github".into()),
        issuer: Some(gh.base.clone()),
        tenant: None,
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        display_name: None,
        linking: Some(Linking::Create),
        trust_email: false,
        allowed_domains: Vec::new(),
        allowed_tenants: Vec::new(),
        allow_loopback_http: true,
    };
    let out = admin::provider_add_flags(&stack.store, &stack.config, &new)
        .await
        .unwrap();
    assert!(out.contains("/federation/gh/callback"), "{out}");
    assert!(
        admin::provider_add_flags(&stack.store, &stack.config, &new)
            .await
            .is_err(),
        "a second one of the same name"
    );
    let list = admin::provider_list(&stack.store, &stack.config)
        .await
        .unwrap();
    assert!(
        list.contains("gh\tOauth2\t") && list.contains("\tadmin\t"),
        "{list}"
    );
    assert!(!list.contains(CLIENT_SECRET), "{list}");

    stack.authz_state.reload_providers().await.unwrap();
    let (status, page) = sign_in(&stack, &new_browser()).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"consent-form\""), "{page}");

    // A plain OAuth 2.0 provider from a TOML file, its secret given apart.
    let toml = format!(
        r#"
        kind = "oauth2"
        issuer = "{base}"
        client_id = "{CLIENT_ID}"
        authorization_endpoint = "{base}/login/oauth/authorize"
        token_endpoint = "{base}/login/oauth/access_token"
        userinfo_endpoint = "{base}/api/user"
        token_endpoint_auth_method = "client_secret_post"
        scopes = ["read:user"]
        claims = {{ subject = "id", username = "login" }}
        allow_loopback_http = true
        "#,
        base = gh.base
    );
    let up = admin::from_toml(&toml, "corp", Some(CLIENT_SECRET.into())).unwrap();
    admin::provider_add(&stack.store, &stack.config, up)
        .await
        .unwrap();
    let list = admin::provider_list(&stack.store, &stack.config)
        .await
        .unwrap();
    assert!(list.contains("corp\tOauth2\t"), "{list}");

    admin::provider_remove(&stack.store, &stack.config, "gh")
        .await
        .unwrap();
    admin::provider_remove(&stack.store, &stack.config, "corp")
        .await
        .unwrap();
    assert!(
        admin::provider_remove(&stack.store, &stack.config, "gh")
            .await
            .is_err()
    );
    stack.authz_state.reload_providers().await.unwrap();
    let res = stack
        .http
        .get(stack.url("/federation/gh/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let audit = admin::audit_list(&stack.store, 50).await.unwrap();
    assert!(
        audit.contains("provider_added") && audit.contains("provider_removed"),
        "{audit}"
    );
}
