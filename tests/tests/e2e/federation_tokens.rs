//! An upstream that answers with a defect no real OpenID Provider can be made to produce:
//! a wrong issuer, audience or nonce, an expired token, `alg: none`, HS256 signed with the
//! public key, an unknown key, a 500, a body that is not JSON. Each gets a page that says the
//! answer was not used, and writes no user, identity link, grant or token; a correct answer
//! from the same fake signs in (so the refusals are the checks', not the fake's).

use std::sync::{Arc, Mutex};

use authz_server::config::{Linking, Upstream};
use authz_server::store::Table;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use e2e::{TestStack, location, new_browser};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

const RSA_DER: &str = include_str!("../../../protocol/src/jose_test_rsa_pkcs1.b64");
const RSA_N: &str = include_str!("../../../protocol/src/jose_test_rsa_n.b64");

#[derive(Clone, Copy, Debug, PartialEq)]
enum Defect {
    None,
    WrongIssuer,
    WrongAudience,
    Expired,
    NonceMismatch,
    AlgNone,
    Hs256WithPublicKey,
    UnknownKid,
    Status500,
    NotJson,
    /// Answers after the configured upstream timeout.
    Slow,
}

#[derive(Clone)]
struct Fake {
    /// What our configuration names: the issuer, or for a multi-tenant fake `…/common/v2.0`.
    issuer: String,
    base: String,
    /// Multi-tenant (Entra-like): the tokens' tenant, and the tenant their `iss` names.
    tenant: Option<Arc<Mutex<(String, String)>>>,
    defect: Arc<Mutex<Defect>>,
    nonce: Arc<Mutex<String>>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn discovery(State(f): State<Fake>) -> Json<Value> {
    let issuer = match &f.tenant {
        Some(_) => format!("{}/{{tenantid}}/v2.0", f.base),
        None => f.issuer.clone(),
    };
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{}/authorize", f.base),
        "token_endpoint": format!("{}/token", f.base),
        "jwks_uri": format!("{}/jwks", f.base),
    }))
}

async fn jwks() -> Json<Value> {
    Json(
        json!({"keys": [{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig", "n": RSA_N.trim(), "e": "AQAB"}]}),
    )
}

async fn authorize(
    State(f): State<Fake>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Redirect {
    *f.nonce.lock().unwrap() = q["nonce"].clone();
    Redirect::to(&format!(
        "{}?code=upstream-code&state={}",
        q["redirect_uri"], q["state"]
    ))
}

fn sign(header: Value, claims: &Value, key: &EncodingKey) -> String {
    let header: Header = serde_json::from_value(header).unwrap();
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

async fn token(State(f): State<Fake>) -> axum::response::Response {
    let defect = *f.defect.lock().unwrap();
    let nonce = f.nonce.lock().unwrap().clone();
    let mut claims = json!({
        "iss": f.issuer, "sub": "fake-sub", "aud": "fed-client", "exp": now() + 300,
        "iat": now(), "nonce": nonce, "email": "fake@example.org", "email_verified": true,
    });
    if let Some(t) = &f.tenant {
        let (tid, iss_tid) = t.lock().unwrap().clone();
        claims["tid"] = json!(tid);
        claims["iss"] = json!(format!("{}/{iss_tid}/v2.0", f.base));
    }
    match defect {
        Defect::WrongIssuer => claims["iss"] = json!("https://elsewhere.example"),
        Defect::WrongAudience => claims["aud"] = json!("another-client"),
        Defect::Expired => claims["exp"] = json!(now() - 3600),
        Defect::NonceMismatch => claims["nonce"] = json!("not-the-nonce"),
        Defect::Status500 => {
            return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response();
        }
        Defect::NotJson => return "this is not json".into_response(),
        Defect::Slow => tokio::time::sleep(std::time::Duration::from_secs(3)).await,
        _ => {}
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(RSA_DER.trim())
        .unwrap();
    let rsa = EncodingKey::from_rsa_der(&der);
    let id_token = match defect {
        Defect::AlgNone => {
            let b64 =
                |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
            format!(
                "{}.{}.",
                b64(&json!({"alg":"none","kid":"k1"})),
                b64(&claims)
            )
        }
        Defect::Hs256WithPublicKey => sign(
            json!({"alg":"HS256","kid":"k1"}),
            &claims,
            &EncodingKey::from_secret(RSA_N.trim().as_bytes()),
        ),
        Defect::UnknownKid => sign(json!({"alg":"RS256","kid":"k2"}), &claims, &rsa),
        _ => sign(json!({"alg":"RS256","kid":"k1"}), &claims, &rsa),
    };
    Json(json!({"access_token": "upstream-at", "token_type": "Bearer", "id_token": id_token}))
        .into_response()
}

async fn fake_op() -> Fake {
    fake_op_with(false).await
}

async fn fake_op_with(multi_tenant: bool) -> Fake {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let fake = Fake {
        issuer: if multi_tenant {
            format!("{base}/common/v2.0")
        } else {
            base.clone()
        },
        base,
        tenant: multi_tenant.then(Arc::default),
        defect: Arc::new(Mutex::new(Defect::None)),
        nonce: Arc::default(),
    };
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route(
            "/common/v2.0/.well-known/openid-configuration",
            get(discovery),
        )
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    fake
}

async fn counts(stack: &TestStack) -> [i64; 4] {
    [
        stack.count(Table::Users).await,
        stack.count(Table::IdentityLinks).await,
        stack.count(Table::Grants).await,
        stack.count(Table::AccessTokens).await,
    ]
}

/// From the MCP client's authorization request through "Continue with Fake" to whatever
/// our callback answers.
async fn sign_in(stack: &TestStack) -> (u16, String) {
    let browser = new_browser();
    let client_id = stack.register_public().await;
    let page = browser
        .get(stack.authorize_url(&client_id, &[]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = page
        .split("href=\"")
        .filter_map(|s| s.split('"').next())
        .find(|h| h.starts_with("/federation/fake/start"))
        .expect("Continue with Fake")
        .replace("&amp;", "&")
        .replace("&#38;", "&");
    let mut next = stack.url(&start);
    for _ in 0..6 {
        let res = browser.get(&next).send().await.unwrap();
        if !res.status().is_redirection() {
            let status = res.status().as_u16();
            return (status, res.text().await.unwrap());
        }
        next = url::Url::parse(&next)
            .unwrap()
            .join(&location(&res))
            .unwrap()
            .to_string();
    }
    panic!("no answer page");
}

fn fake_upstream(issuer: String) -> Upstream {
    let mut up = Upstream::oidc("fake", &issuer, "fed-client", "fed-secret-0123456789");
    up.display_name = Some("Fake".into());
    up.scopes = vec!["openid".into(), "email".into()];
    up.linking = Linking::Create;
    up.allow_loopback_http = true;
    up
}

/// With password sign-in off the login page offers only the providers, and a password form
/// posted anyway is refused.
#[tokio::test]
async fn password_sign_in_can_be_switched_off() {
    let fake = fake_op().await;
    let issuer = fake.issuer.clone();
    let stack = TestStack::builder()
        .authz(move |c| {
            c.upstream = vec![fake_upstream(issuer)];
            c.password_login = false;
        })
        .spawn()
        .await;
    let client_id = stack.register_public().await;
    let browser = new_browser();
    let page = browser
        .get(stack.authorize_url(&client_id, &[]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Continue with Fake") && !page.contains("id=\"login-form\""),
        "{page}"
    );
    let res = browser
        .post(stack.url("/login"))
        .form(&[
            ("username", e2e::USERNAME),
            ("password", e2e::PASSWORD),
            ("csrf_token", "x"),
            ("request", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(stack.count(Table::Sessions).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defective_upstream_answers_are_refused_and_write_nothing() {
    let fake = fake_op().await;
    let issuer = fake.issuer.clone();
    let stack = TestStack::builder()
        .authz(move |c| {
            c.upstream = vec![fake_upstream(issuer)];
            c.upstream_timeout_ms = 1000;
        })
        .spawn()
        .await;
    let before = counts(&stack).await;
    for defect in [
        Defect::WrongIssuer,
        Defect::WrongAudience,
        Defect::Expired,
        Defect::NonceMismatch,
        Defect::AlgNone,
        Defect::Hs256WithPublicKey,
        Defect::UnknownKid,
        Defect::Status500,
        Defect::NotJson,
        Defect::Slow,
    ] {
        *fake.defect.lock().unwrap() = defect;
        let (status, page) = sign_in(&stack).await;
        assert_eq!(status, 502, "{defect:?}");
        assert!(
            page.contains("could not be verified") || page.contains("could not be reached"),
            "{defect:?}: {page}"
        );
        assert_eq!(counts(&stack).await, before, "{defect:?} wrote nothing");
    }
    // The same fake, answering correctly: signed in, a user created, our consent next.
    *fake.defect.lock().unwrap() = Defect::None;
    let (status, page) = sign_in(&stack).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"consent-form\""), "{page}");
    assert_eq!(counts(&stack).await[0], before[0] + 1);
}

/// An Entra-like multi-tenant provider: its metadata names the `{tenantid}` template, each
/// token's issuer is its own tenant's, and only listed tenants may sign in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_tenant_issuers_take_the_tenant_from_the_token_and_only_listed_ones() {
    let fake = fake_op_with(true).await;
    let issuer = fake.issuer.clone();
    let stack = TestStack::builder()
        .authz(move |c| {
            let mut up = fake_upstream(issuer);
            up.allowed_tenants = vec!["tenant-a".into()];
            c.upstream = vec![up];
        })
        .spawn()
        .await;
    let tenant = fake.tenant.clone().unwrap();
    let before = counts(&stack).await;
    // A token whose issuer names another tenant than its tid: not used.
    *tenant.lock().unwrap() = ("tenant-a".into(), "tenant-b".into());
    let (status, _) = sign_in(&stack).await;
    assert_eq!(status, 502);
    // A tenant that is not listed: refused, nothing written.
    *tenant.lock().unwrap() = ("tenant-b".into(), "tenant-b".into());
    let (status, page) = sign_in(&stack).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("organisation that may not sign in"), "{page}");
    assert_eq!(counts(&stack).await, before);
    // The listed tenant signs in, keyed by its own issuer.
    *tenant.lock().unwrap() = ("tenant-a".into(), "tenant-a".into());
    let (status, page) = sign_in(&stack).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(counts(&stack).await[1], before[1] + 1);
}

/// Each start stores a transaction: starts from one address are limited (30 per ten minutes).
#[tokio::test]
async fn starting_upstream_sign_ins_is_limited_per_address() {
    let fake = fake_op().await;
    let issuer = fake.issuer.clone();
    let stack = TestStack::builder()
        .authz(move |c| c.upstream = vec![fake_upstream(issuer)])
        .spawn()
        .await;
    let start = stack.url("/federation/fake/start");
    for _ in 0..30 {
        let res = stack.http.get(&start).send().await.unwrap();
        assert_eq!(res.status(), 303);
    }
    let res = stack.http.get(&start).send().await.unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().get("retry-after").is_some());
}

/// Headless mode (testing MCP clients in CI) keeps working with providers configured: the
/// request is approved as the headless user without any page, upstream or local.
#[tokio::test]
async fn headless_mode_works_with_providers_configured() {
    let fake = fake_op().await;
    let issuer = fake.issuer.clone();
    let stack = TestStack::builder()
        .authz(move |c| {
            c.upstream = vec![fake_upstream(issuer)];
            c.headless_user = Some(e2e::USERNAME.into());
            c.allow_headless = true;
        })
        .spawn()
        .await;
    let client_id = stack.register_public().await;
    let res = stack
        .http
        .get(stack.authorize_url(&client_id, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(
        location(&res).starts_with(e2e::REDIRECT_URI),
        "{}",
        location(&res)
    );
}
