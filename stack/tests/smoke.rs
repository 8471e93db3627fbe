//! The README's run command as a user meets it: the real `mcp-stack` binary on a fresh data
//! directory serves both metadata documents within seconds; the Rust MCP SDK completes its
//! OAuth flow with the printed demo credentials; a second start keeps the data; SIGTERM stops
//! it cleanly; and nothing secret appears in its logs, even at debug level.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::{AuthClient, AuthorizationRequest, OAuthState};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

struct Stack {
    child: Child,
    stdout: String,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Stack {
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

fn start(data: &std::path::Path, as_port: u16, rs_port: u16) -> (Stack, Duration) {
    start_with(
        data,
        &[
            ("AUTHZ_BIND", format!("127.0.0.1:{as_port}")),
            ("AUTHZ_ISSUER", format!("http://127.0.0.1:{as_port}")),
            ("RS_BIND", format!("127.0.0.1:{rs_port}")),
            ("RS_RESOURCE", format!("http://127.0.0.1:{rs_port}/mcp")),
            ("RUST_LOG", "debug".into()),
        ],
    )
}

/// Starts `mcp-stack` with exactly these variables of ours (none inherited) and reads its
/// banner to the end.
fn start_with(data: &std::path::Path, vars: &[(&str, String)]) -> (Stack, Duration) {
    let started = Instant::now();
    let mut command = Command::new(env!("CARGO_BIN_EXE_mcp-stack"));
    for (key, _) in std::env::vars() {
        if key.starts_with("AUTHZ_") || key.starts_with("RS_") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    let mut child = command
        .args(["--data-dir", data.to_str().unwrap()])
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut err = child.stderr.take().unwrap();
    let sink = stderr.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut stdout = String::new();
    while !stdout.contains("tools/call") {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            panic!(
                "mcp-stack exited early:\n{stdout}\n{}",
                stderr.lock().unwrap()
            );
        }
        stdout.push_str(&line);
    }
    let ready = started.elapsed();
    std::thread::spawn(move || for _ in reader.lines() {});
    (
        Stack {
            child,
            stdout,
            stderr,
        },
        ready,
    )
}

fn printed(stdout: &str, label: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("{label} in\n{stdout}"))
}

/// One OAuth + MCP session with the SDK; returns the note titles and the secrets seen.
async fn session(
    as_port: u16,
    rs_port: u16,
    stdout: &str,
    note: Option<&str>,
) -> (Vec<String>, Vec<String>) {
    let resource = format!("http://127.0.0.1:{rs_port}/mcp");
    let issuer = format!("http://127.0.0.1:{as_port}");
    let (user, password) = printed(stdout, "Demo user")
        .split_once(" / ")
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap();
    let client_id = printed(stdout, "Demo client")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let mut oauth = OAuthState::new(resource.as_str(), None).await.unwrap();
    oauth
        .start_authorization(
            AuthorizationRequest::new("http://127.0.0.1:8976/callback")
                .with_preregistered_client(client_id),
        )
        .await
        .unwrap();
    let url = oauth.get_authorization_url().await.unwrap();
    let browser = e2e::new_browser();
    let callback =
        e2e::walk_authorization(&browser, &issuer, &user, &password, &url, "approve").await;
    let code = e2e::query(&callback).remove("code").unwrap();
    oauth.handle_callback_url(callback.as_str()).await.unwrap();
    let auth = AuthClient::new(
        reqwest::Client::default(),
        oauth.into_authorization_manager().unwrap(),
    );
    let token = auth.get_access_token().await.unwrap();
    let transport = StreamableHttpClientTransport::with_client(
        auth.clone(),
        StreamableHttpClientTransportConfig::with_uri(resource.as_str()),
    );
    let client = ().serve(transport).await.unwrap();
    if let Some(content) = note {
        let args = serde_json::json!({"content": content, "title": content});
        client
            .call_tool(
                CallToolRequestParams::new("create_secure_note")
                    .with_arguments(args.as_object().unwrap().clone()),
            )
            .await
            .unwrap();
    }
    let listed = client
        .call_tool(CallToolRequestParams::new("list_secure_notes"))
        .await
        .unwrap();
    let body: serde_json::Value =
        serde_json::from_str(&listed.content[0].as_text().unwrap().text).unwrap();
    client.cancel().await.unwrap();
    let titles = body["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap().to_owned())
        .collect();
    (titles, vec![token, code, password])
}

fn stop(mut stack: Stack) -> String {
    assert!(
        Command::new("kill")
            .args(["-TERM", &stack.child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = stack.child.wait().unwrap();
    assert!(status.success(), "SIGTERM ends it cleanly, got {status}");
    std::thread::sleep(Duration::from_millis(100));
    stack.stderr.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_command_serves_the_stack_and_keeps_its_data() {
    resource_server::install_crypto_provider();
    // Removed when the test ends, also when it fails.
    let scratch = e2e::Scratch::new("mcp-stack-smoke");
    let data = scratch.0.join("data");
    let (as_port, rs_port) = (free_port(), free_port());

    let (stack, ready) = start(&data, as_port, rs_port);
    assert!(ready < Duration::from_secs(10), "ready in {ready:?}");
    let http = reqwest::Client::new();
    for url in [
        format!("http://127.0.0.1:{as_port}/.well-known/oauth-authorization-server"),
        format!("http://127.0.0.1:{rs_port}/.well-known/oauth-protected-resource/mcp"),
    ] {
        assert_eq!(http.get(&url).send().await.unwrap().status(), 200, "{url}");
    }
    let (titles, mut secrets) = session(
        as_port,
        rs_port,
        &stack.stdout,
        Some("kept across restarts"),
    )
    .await;
    assert_eq!(titles, ["kept across restarts"]);
    let mut logs = stop(stack);

    let (stack, _) = start(&data, as_port, rs_port);
    let (titles, more) = session(as_port, rs_port, &stack.stdout, None).await;
    assert_eq!(
        titles,
        ["kept across restarts"],
        "a second start keeps the data"
    );
    secrets.extend(more);
    logs.push_str(&stop(stack));

    assert!(logs.contains("request_id"), "log lines carry request ids");
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret ({} chars) appears in the logs",
            secret.len()
        );
    }
    assert!(
        !logs.to_ascii_lowercase().contains("bearer ey"),
        "no bearer token in the logs"
    );
}

/// The banner's no-browser walk-through, pasted into bash as printed, against a stack moved
/// to other ports by `AUTHZ_BIND` and `RS_BIND` alone: sign-in, consent, token, initialize
/// (its `Mcp-Session-Id` visible), tools/list and tools/call all succeed, with JSON answers.
#[test]
fn the_printed_walkthrough_runs_in_bash_on_moved_ports() {
    let scratch = e2e::Scratch::new("mcp-stack-walkthrough");
    let data = scratch.0.join("data");
    let (as_port, rs_port) = (free_port(), free_port());
    let (stack, _) = start_with(
        &data,
        &[
            ("AUTHZ_BIND", format!("127.0.0.1:{as_port}")),
            ("RS_BIND", format!("127.0.0.1:{rs_port}")),
        ],
    );
    let out = stack.stdout.clone();
    assert!(
        out.contains(&format!("(issuer http://127.0.0.1:{as_port})"))
            && out.contains(&format!(
                "MCP endpoint                    http://127.0.0.1:{rs_port}/mcp"
            )),
        "the issuer and the resource follow the bind ports:\n{out}"
    );
    assert!(
        out.contains("A code lives 60 s and is redeemed once"),
        "{out}"
    );
    let block: String = out
        .lines()
        .skip_while(|l| !l.contains("no browser"))
        .filter_map(|l| l.strip_prefix("    "))
        .map(|l| format!("{l}\n"))
        .collect();
    // The block's own temporary files (the cookie jar) go to the scratch directory too.
    let run = Command::new("bash")
        .args(["-c", &block])
        .env("TMPDIR", &scratch.0)
        .output()
        .expect("bash runs");
    let shown = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let lower = shown.to_ascii_lowercase();
    assert!(lower.contains("mcp-session-id: "), "{shown}");
    assert!(lower.contains("content-type: application/json"), "{shown}");
    for expected in [
        r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion""#,
        r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"create_secure_note""#,
        r#"{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text""#,
    ] {
        assert!(shown.contains(expected), "{expected} in\n{shown}");
    }
    assert!(
        !shown.contains("data: "),
        "JSON answers, not event streams:\n{shown}"
    );
    let logs = stop(stack);
    assert!(
        !logs.contains('\u{1b}'),
        "no colour codes when stderr is not a terminal"
    );
}
