//! The two ways to sign in: the authorization code flow with PKCE through a loopback
//! redirect (RFC 8252 §7.3), and the device flow (RFC 8628).

use std::time::Duration;

use anyhow::{Context, bail};
use oauth_protocol::pkce::s256_challenge;
use oauth_protocol::register::{GRANT_AUTHORIZATION_CODE, GRANT_DEVICE_CODE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::oauth::{
    ClientAuth, Discovered, TokenAnswer, Tokens, random_token, token_request, tokens_or_fail,
};

/// How the browser step of a code flow is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Browser {
    /// Open the system browser (and print the URL).
    Open,
    /// Only print the URL.
    Print,
    /// Fetch the URL without a browser and follow the redirect to the callback directly
    /// (servers that approve without a page: headless mode, test servers).
    Fetch,
}

/// The authorization code flow with PKCE through a loopback redirect on 127.0.0.1 (RFC 8252
/// §7.3). Returns the tokens and the redirect URI used.
#[allow(clippy::too_many_arguments)]
pub async fn code_flow(
    http: &reqwest::Client,
    found: &Discovered,
    client: &ClientAuth<'_>,
    listener: tokio::net::TcpListener,
    browser: Browser,
    timeout: Duration,
) -> anyhow::Result<Tokens> {
    let server = &found.server;
    let authorize = server
        .authorization_endpoint
        .as_deref()
        .context("the authorization server has no authorization endpoint")?;
    let redirect_uri = format!("http://{}/callback", listener.local_addr()?);
    let verifier = random_token();
    let state = random_token();
    let mut url = url::Url::parse(authorize)?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("code_challenge", &s256_challenge(&verifier))
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", &state);
        // RFC 8707; left out for providers configured by hand without a resource.
        if !found.resource.is_empty() {
            q.append_pair("resource", &found.resource);
        }
        if !found.scope.is_empty() {
            q.append_pair("scope", &found.scope);
        }
    }
    let callback = match browser {
        Browser::Fetch => {
            let res = http.get(url.as_str()).send().await?;
            let location = res
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .filter(|l| l.starts_with(&redirect_uri))
                .with_context(|| {
                    format!(
                        "the authorization server answered {} instead of redirecting to the callback at once (--fetch needs a server that approves without a page)",
                        res.status()
                    )
                })?;
            url::Url::parse(location)?
        }
        Browser::Open | Browser::Print => {
            eprintln!("Open this URL to sign in:\n\n  {url}\n");
            if browser == Browser::Open {
                open_browser(url.as_str());
            }
            tokio::time::timeout(timeout, one_callback(&listener))
                .await
                .map_err(|_| {
                    anyhow::anyhow!(
                        "no sign-in arrived within {} minutes: run login again",
                        timeout.as_secs() / 60
                    )
                })??
        }
    };
    let params: std::collections::HashMap<String, String> =
        callback.query_pairs().into_owned().collect();
    if params.get("state") != Some(&state) {
        bail!("the callback's state does not match this login: ignored");
    }
    // RFC 9207: the answer must come from the server this login went to.
    match params.get("iss") {
        Some(iss) if *iss != server.issuer => {
            bail!(
                "the callback names issuer {iss:?}, not {:?}: possible mix-up, ignored",
                server.issuer
            )
        }
        None if server.authorization_response_iss_parameter_supported => {
            bail!(
                "the callback has no iss although {} promises it",
                server.issuer
            )
        }
        _ => {}
    }
    if let Some(error) = params.get("error") {
        bail!(
            "the authorization server refused: {error} {}",
            params.get("error_description").map_or("", String::as_str)
        );
    }
    let code = params.get("code").context("the callback has no code")?;
    let mut form = vec![
        ("grant_type", GRANT_AUTHORIZATION_CODE.to_owned()),
        ("code", code.clone()),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ];
    if !found.resource.is_empty() {
        form.push(("resource", found.resource.clone()));
    }
    let answer = token_request(http, &server.token_endpoint, client, form).await?;
    tokens_or_fail(answer)
}

/// Waits for the one request the browser makes to the loopback redirect and answers it.
async fn one_callback(listener: &tokio::net::TcpListener) -> anyhow::Result<url::Url> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        let mut buf = vec![0u8; 16 * 1024];
        let mut len = 0;
        while len < buf.len() {
            let n = stream.read(&mut buf[len..]).await?;
            if n == 0 {
                break;
            }
            len += n;
            if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        let head = String::from_utf8_lossy(&buf[..len]);
        let target = head
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("GET "))
            .and_then(|l| l.split(' ').next())
            .unwrap_or_default()
            .to_owned();
        let found = target.starts_with("/callback?");
        let body = if found {
            "Signed in. You can close this window and return to the terminal."
        } else {
            "Not found."
        };
        let status = if found { "200 OK" } else { "404 Not Found" };
        let _ = stream
            .write_all(
                format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await;
        if found {
            return Ok(url::Url::parse(&format!("http://127.0.0.1{target}"))?);
        }
    }
}

/// The system browser, started directly (no shell, so the URL is never interpreted).
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    if std::process::Command::new(opener)
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_err()
    {
        eprintln!("(no browser could be started: open the URL above yourself)");
    }
}

/// RFC 8628: asks for a code pair, shows where to enter it, polls until the person answers.
pub async fn device_flow(
    http: &reqwest::Client,
    found: &Discovered,
    client: &ClientAuth<'_>,
) -> anyhow::Result<Tokens> {
    let server = &found.server;
    let endpoint = server
        .device_authorization_endpoint
        .as_deref()
        .with_context(|| {
            format!(
                "{} does not offer the device flow (RFC 8628)",
                server.issuer
            )
        })?;
    let mut form = Vec::new();
    if !found.resource.is_empty() {
        form.push(("resource", found.resource.clone()));
    }
    if !found.scope.is_empty() {
        form.push(("scope", found.scope.clone()));
    }
    let req = client.apply(http.post(endpoint), &mut form);
    let res = req.form(&form).send().await?;
    let status = res.status();
    let doc: serde_json::Value = res.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!("the device authorization request was refused ({status}): {doc}");
    }
    let device_code = doc["device_code"]
        .as_str()
        .context("no device_code")?
        .to_owned();
    let user_code = doc["user_code"].as_str().context("no user_code")?;
    let page = doc["verification_uri"]
        .as_str()
        .context("no verification_uri")?;
    eprintln!("On any device with a browser, open\n\n  {page}\n\nand enter the code  {user_code}");
    if let Some(complete) = doc["verification_uri_complete"].as_str() {
        eprintln!("(or open {complete})");
    }
    eprintln!("Only you should enter this code. Waiting for approval…");
    let mut interval = doc["interval"].as_i64().unwrap_or(5).max(1);
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(doc["expires_in"].as_u64().unwrap_or(600));
    loop {
        tokio::time::sleep(Duration::from_secs(interval as u64)).await;
        if tokio::time::Instant::now() > deadline {
            bail!("the code expired before it was approved: run login --device again");
        }
        let answer = token_request(
            http,
            &server.token_endpoint,
            client,
            vec![
                ("grant_type", GRANT_DEVICE_CODE.to_owned()),
                ("device_code", device_code.clone()),
            ],
        )
        .await?;
        match answer {
            TokenAnswer::Tokens(t) => return Ok(t),
            TokenAnswer::Error { error, .. } if error == "authorization_pending" => {}
            // RFC 8628 §3.5: every slow_down adds five seconds, for good.
            TokenAnswer::Error { error, .. } if error == "slow_down" => interval += 5,
            TokenAnswer::Error { error, .. } if error == "access_denied" => {
                bail!("the request was denied")
            }
            TokenAnswer::Error { error, .. } if error == "expired_token" => {
                bail!("the code expired before it was approved: run login --device again")
            }
            TokenAnswer::Error { error, description } => bail!("{error}: {description}"),
        }
    }
}
