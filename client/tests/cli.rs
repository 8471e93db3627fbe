//! The real `mcp-client` binary against the real servers (in this process, on loopback):
//! login through the loopback redirect with the login form driven here, tokens for scripts,
//! refresh (once, under parallel invocations), tool calls, the device flow, logout, and a
//! token store that is refused when others could read it or when it is damaged.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use e2e::{PASSWORD, Scratch, TestStack, USERNAME, hidden, new_browser, walk_authorization};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

struct Cli {
    file: std::path::PathBuf,
    _dir: Scratch,
}

impl Cli {
    fn new() -> Self {
        let dir = Scratch::new("mcp-client-cli");
        Self {
            file: dir.0.join("config/tokens.json"),
            _dir: dir,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mcp-client"));
        c.args(args)
            .env("MCP_CLIENT_TOKEN_FILE", &self.file)
            .env_remove("MCP_ACCESS_TOKEN")
            .env_remove("MCP_CLIENT_ID")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.command(args).output().await.unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// Reads the child's stderr until a line satisfies `pick`; returns what it picked.
async fn wait_for<T>(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStderr>>,
    pick: impl Fn(&str) -> Option<T>,
) -> T {
    let mut seen = String::new();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the CLI kept quiet")
            .unwrap()
            .unwrap_or_else(|| panic!("the CLI exited; it said:\n{seen}"));
        if let Some(v) = pick(&line) {
            return v;
        }
        seen.push_str(&line);
        seen.push('\n');
    }
}

async fn login(stack: &TestStack, cli: &Cli) {
    login_with(stack, cli, &["login", &stack.resource, "--no-browser"]).await;
    let (_, status, _) = cli.run(&["status", "--json"]).await;
    assert!(status.contains(&stack.resource), "{status}");
}

/// Runs `login` with `args`, playing the person at the login and consent pages.
async fn login_with(stack: &TestStack, cli: &Cli, args: &[&str]) {
    let mut child = cli.spawn(args);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = wait_for(&mut lines, |l| {
        l.trim()
            .starts_with(&format!("{}/authorize?", stack.issuer))
            .then(|| l.trim().to_owned())
    })
    .await;
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    let browser = new_browser();
    let callback =
        walk_authorization(&browser, &stack.issuer, USERNAME, PASSWORD, &url, "approve").await;
    assert!(
        callback.as_str().starts_with("http://127.0.0.1:"),
        "{callback}"
    );
    let page = reqwest::get(callback.as_str())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Signed in"), "{page}");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    let rest = async {
        let mut out = String::new();
        while let Ok(Some(l)) = lines.next_line().await {
            out.push_str(&l);
        }
        out
    }
    .await;
    assert!(status.success(), "{rest}");
}

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_token_refresh_tools_and_logout() {
    let stack = TestStack::builder()
        .authz(|c| c.access_token_ttl = 900)
        .spawn()
        .await;
    let cli = Cli::new();
    login(&stack, &cli).await;

    // The store: private file in a private directory.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cli.file), 0o600);
    assert_eq!(mode(cli.file.parent().unwrap()), 0o700);

    let (ok, token, err) = cli.run(&["token", &stack.resource]).await;
    assert!(ok, "{err}");
    let token = token.trim().to_owned();
    let info = stack.introspect(&token).await;
    assert_eq!(
        (info["active"].as_bool(), info["sub"].as_str()),
        (Some(true), Some(stack.user_id.as_str()))
    );
    let (_, again, _) = cli.run(&["token", &stack.resource]).await;
    assert_eq!(again.trim(), token, "a fresh token is handed out as it is");

    let (ok, status, _) = cli.run(&["status", "--json"]).await;
    assert!(ok);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["entries"][0]["resource"], stack.resource);
    assert_eq!(status["entries"][0]["issuer"], stack.issuer);
    assert_eq!(status["entries"][0]["has_refresh_token"], true);
    assert!(
        !status.to_string().contains(&token),
        "status never prints tokens"
    );

    let (ok, tools, err) = cli.run(&["tools", &stack.resource]).await;
    assert!(ok, "{err}");
    assert!(tools.contains("create_secure_note"), "{tools}");
    let (ok, out, err) = cli
        .run(&[
            "call",
            &stack.resource,
            "create_secure_note",
            r#"{"title":"t","content":"from the CLI"}"#,
        ])
        .await;
    assert!(ok && out.contains("\"isError\": false"), "{out}{err}");
    let (ok, out, _) = cli
        .run(&["call", &stack.resource, "list_secure_notes"])
        .await;
    assert!(ok && out.contains("from the CLI"), "{out}");

    // The token is about to expire: four parallel `token` calls refresh it once, and all
    // get the same new token; the rotated refresh token is kept.
    let mut contents: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cli.file).unwrap()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    contents["entries"][0]["expires_at"] = (now + 10).into();
    std::fs::write(&cli.file, serde_json::to_vec(&contents).unwrap()).unwrap();
    let before = stack
        .http
        .get(stack.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let args = ["token", stack.resource.as_str()];
    let runs = futures::future::join_all((0..4).map(|_| cli.run(&args))).await;
    let tokens: std::collections::HashSet<String> = runs
        .iter()
        .map(|(ok, out, err)| {
            assert!(ok, "{err}");
            out.trim().to_owned()
        })
        .collect();
    assert_eq!(tokens.len(), 1, "one refresh, one new token for everyone");
    assert!(!tokens.contains(&token), "the token changed");
    let after = stack
        .http
        .get(stack.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = "tokens_issued_total{grant_type=\"refresh_token\"}";
    assert_eq!(metric(&after, series) - metric(&before, series), 1);

    // Logout revokes: the last token is inactive and the entry is gone.
    let new_token = tokens.into_iter().next().unwrap();
    let (ok, _, err) = cli.run(&["logout", &stack.resource]).await;
    assert!(
        ok && err.contains("logged out of") && err.contains("(revoked)"),
        "{err}"
    );
    assert_eq!(stack.introspect(&new_token).await["active"], false);
    let (ok, _, err) = cli.run(&["token", &stack.resource]).await;
    assert!(!ok && err.contains("not signed in"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_flow_signs_in_without_a_loopback_redirect() {
    let stack = TestStack::spawn().await;
    let cli = Cli::new();
    let mut child = cli.spawn(&["login", &stack.resource, "--device"]);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let code = wait_for(&mut lines, |l| {
        l.split_once("enter the code")
            .map(|(_, c)| c.trim().to_owned())
    })
    .await;
    // The person approves on /device while the CLI polls (the server's clock moves on).
    let browser = new_browser();
    assert_eq!(stack.sign_in(&browser, USERNAME, PASSWORD).await, 303);
    let page = browser
        .get(format!("{}?user_code={code}", stack.url("/device")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf_token").expect("the confirmation form");
    let res = browser
        .post(stack.url("/device"))
        .form(&[
            ("user_code", code.as_str()),
            ("csrf_token", &csrf),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains("Device connected"));
    let clock = stack.clock.clone();
    let ticking = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            clock.advance(5);
        }
    });
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the CLI got its tokens")
        .unwrap();
    ticking.abort();
    assert!(status.success());
    let (ok, token, err) = cli.run(&["token", &stack.resource]).await;
    assert!(ok, "{err}");
    assert_eq!(stack.introspect(token.trim()).await["sub"], stack.user_id);
}

#[tokio::test]
async fn a_store_others_can_read_or_a_damaged_one_is_refused() {
    let cli = Cli::new();
    std::fs::create_dir_all(cli.file.parent().unwrap()).unwrap();
    std::fs::set_permissions(
        cli.file.parent().unwrap(),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    std::fs::write(&cli.file, r#"{"version":0,"entries":[]}"#).unwrap();
    std::fs::set_permissions(&cli.file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, _, err) = cli.run(&["status"]).await;
    assert!(!ok && err.contains("accessible to other users"), "{err}");
    std::fs::set_permissions(&cli.file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&cli.file, r#"{"version":0,"entries":[{"issuer""#).unwrap();
    let (ok, _, err) = cli.run(&["token", "http://127.0.0.1:1/mcp"]).await;
    assert!(!ok && err.contains("damaged"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // A token from the environment is used as it is and written nowhere.
    let out = cli
        .command(&["token", "http://127.0.0.1:1/mcp"])
        .env("MCP_ACCESS_TOKEN", "given")
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "given");
}

/// A provider without MCP discovery, configured by its endpoints: the same login, no
/// metadata fetched, tokens for the label given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_given_by_its_endpoints_signs_in_without_discovery() {
    let stack = TestStack::spawn().await;
    let client_id = stack.register_public().await;
    let cli = Cli::new();
    let authorize = stack.url("/authorize");
    let token = stack.url("/token");
    login_with(
        &stack,
        &cli,
        &[
            "login",
            "corp-idp",
            "--no-browser",
            "--authorization-endpoint",
            &authorize,
            "--token-endpoint",
            &token,
            "--client-id",
            &client_id,
            "--issuer",
            &stack.issuer,
            "--scope",
            "mcp:read",
        ],
    )
    .await;
    let (ok, out, err) = cli.run(&["token", "corp-idp"]).await;
    assert!(ok, "{err}");
    let info = stack.introspect(out.trim()).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["scope"], "mcp:read");
    // Without --client-id there is nothing to sign in as.
    let (ok, _, err) = cli
        .run(&[
            "login",
            "other",
            "--token-endpoint",
            &token,
            "--authorization-endpoint",
            &authorize,
        ])
        .await;
    assert!(!ok && err.contains("--client-id"), "{err}");
}

/// Step-up against our own servers: signed in for mcp:read, a call that needs mcp:write is
/// refused with insufficient_scope; the CLI signs in once more for both scopes (the person
/// approves again here) and the call then succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_needing_more_scope_signs_in_again_once() {
    let stack = TestStack::spawn().await;
    let cli = Cli::new();
    login_with(
        &stack,
        &cli,
        &[
            "login",
            &stack.resource,
            "--no-browser",
            "--scope",
            "mcp:read",
        ],
    )
    .await;
    let mut command = cli.command(&[
        "call",
        &stack.resource,
        "create_secure_note",
        r#"{"content":"needs write"}"#,
    ]);
    let mut child = command
        .env("MCP_CLIENT_BROWSER", "print")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = wait_for(&mut lines, |l| {
        l.trim()
            .starts_with(&format!("{}/authorize?", stack.issuer))
            .then(|| l.trim().to_owned())
    })
    .await;
    assert!(
        url.contains("scope=mcp%3Aread+mcp%3Awrite"),
        "the union of scopes: {url}"
    );
    let browser = new_browser();
    let callback =
        walk_authorization(&browser, &stack.issuer, USERNAME, PASSWORD, &url, "approve").await;
    reqwest::get(callback.as_str()).await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("\"isError\": false"),
        "{stdout}"
    );
    let (_, status, _) = cli.run(&["status", "--json"]).await;
    assert!(status.contains("mcp:read mcp:write"), "{status}");
}
