//! Throughput figures for the hot paths, with both servers in this process on loopback and a
//! fresh SQLite database. Run with `scripts/bench` (release build). Each figure is requests
//! per second over a fixed window at a fixed concurrency; the ratios compare a path with a
//! trivial route of the same server measured the same way, so they hold across machines
//! better than the absolute numbers do. The load generator shares the CPU with the servers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use e2e::{PASSWORD, RS_CLIENT_ID, RS_CLIENT_SECRET, USERNAME};

const WINDOW: Duration = Duration::from_secs(3);
const CONCURRENCY: usize = 16;

/// Runs `request` from CONCURRENCY tasks for WINDOW; returns successful requests per second.
async fn measure<F, Fut>(name: &str, request: F) -> f64
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + WINDOW;
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (request, ok, failed) = (request.clone(), ok.clone(), failed.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    if request().await {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let rate = ok.load(Ordering::Relaxed) as f64 / WINDOW.as_secs_f64();
    let failed = failed.load(Ordering::Relaxed);
    println!(
        "{name:<44} {rate:>9.0} req/s{}",
        if failed > 0 {
            format!("  ({failed} failed)")
        } else {
            String::new()
        }
    );
    rate
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// An MCP session at `url` (with `token` when it is protected); its id.
async fn open_session(http: &reqwest::Client, url: &str, token: Option<&str>) -> String {
    let post = |body: &'static str, sid: Option<String>| {
        let mut req = http
            .post(url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-11-25")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(s) = sid {
            req = req.header("mcp-session-id", s);
        }
        req.send()
    };
    let init = post(
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#,
        None,
    )
    .await
    .unwrap();
    let sid = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = init.bytes().await;
    post(
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        Some(sid.clone()),
    )
    .await
    .unwrap();
    sid
}

/// One tools/call in a session, its answer read from the SSE stream.
async fn tools_call(
    h: reqwest::Client,
    url: String,
    token: Option<String>,
    sid: String,
    id: u64,
    tool: &str,
) -> bool {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{}}}}}}"#
    );
    let mut req = h
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-session-id", sid)
        .header("mcp-protocol-version", "2025-11-25")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    match req.send().await {
        // The answer arrives as an SSE event (or JSON); the stream may stay open after it.
        Ok(mut r) if r.status() == 200 => {
            let mut seen = Vec::new();
            while let Ok(Some(chunk)) = r.chunk().await {
                seen.extend_from_slice(&chunk);
                if seen.windows(8).any(|w| w == b"\"result\"") {
                    return true;
                }
            }
            false
        }
        _ => false,
    }
}

#[tokio::main]
async fn main() {
    // An HTTP MCP server without authorization, behind the gateway at /bench/mcp.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(e2e::fake_upstream::serve_http(listener));
    let up: resource_server::gateway::Upstream = serde_json::from_value(serde_json::json!({
        "name": "bench", "url": upstream_url, "client_id": "bench-gateway",
        "client_secret": "bench-gateway-secret-0123456789",
        "rules": [{"tools": ["echo"], "scope": "mcp:read"}],
    }))
    .unwrap();
    let (stack, gateway_url) =
        e2e::gateway_stack(up, "bench-gateway", "bench-gateway-secret-0123456789").await;
    let stack = Arc::new(stack);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (client_id, secret) = stack.register_confidential("client_secret_basic").await;
    let token = stack
        .user_token(&stack.browser, USERNAME, PASSWORD, "mcp:read mcp:write")
        .await;
    let access = token["access_token"].as_str().unwrap().to_owned();
    let session = stack.mcp_session(&access).await;
    println!(
        "concurrency {CONCURRENCY}, window {}s per figure, SQLite, loopback, one process\n",
        WINDOW.as_secs()
    );

    let as_meta = stack.url("/.well-known/oauth-authorization-server");
    let h = http.clone();
    let baseline_as = measure("AS metadata (baseline)", move || {
        let (h, u) = (h.clone(), as_meta.clone());
        async move { h.get(u).send().await.is_ok_and(|r| r.status() == 200) }
    })
    .await;

    let (h, u, id, s) = (
        http.clone(),
        stack.url("/token"),
        client_id.clone(),
        secret.clone(),
    );
    let token_rate = measure("POST /token client_credentials (write + sign)", move || {
        let (h, u, id, s) = (h.clone(), u.clone(), id.clone(), s.clone());
        async move {
            h.post(u)
                .basic_auth(id, Some(s))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        }
    })
    .await;

    let (h, u, t) = (http.clone(), stack.url("/introspect"), access.clone());
    let introspect_rate = measure("POST /introspect (verify + lookup)", move || {
        let (h, u, t) = (h.clone(), u.clone(), t.clone());
        async move {
            h.post(u)
                .basic_auth(RS_CLIENT_ID, Some(RS_CLIENT_SECRET))
                .form(&[("token", t.as_str())])
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        }
    })
    .await;

    let prm = stack
        .resource
        .replace("/mcp", "/.well-known/oauth-protected-resource/mcp");
    let h = http.clone();
    let baseline_rs = measure("RS metadata (baseline)", move || {
        let (h, u) = (h.clone(), prm.clone());
        async move { h.get(u).send().await.is_ok_and(|r| r.status() == 200) }
    })
    .await;

    // Requests in one session need distinct JSON-RPC ids.
    let next_id = Arc::new(AtomicU64::new(1));
    let (h, u, t, sid) = (
        http.clone(),
        stack.resource.clone(),
        access.clone(),
        session.clone(),
    );
    let calls_before = stack.rs_stats.calls.load(Ordering::Relaxed);
    let mcp_rate = measure("MCP tools/call, cached token (SSE session)", move || {
        let (h, u, t, sid) = (h.clone(), u.clone(), t.clone(), sid.clone());
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"get_user_profile","arguments":{{}}}}}}"#);
        async move {
            let res = h
                .post(u)
                .bearer_auth(t)
                .header("accept", "application/json, text/event-stream")
                .header("content-type", "application/json")
                .header("mcp-session-id", sid)
                .header("mcp-protocol-version", "2025-11-25")
                .body(body)
                .send()
                .await;
            match res {
                // The answer arrives as an SSE event; the stream may stay open after it.
                Ok(mut r) if r.status() == 200 => {
                    let mut seen = Vec::new();
                    while let Ok(Some(chunk)) = r.chunk().await {
                        seen.extend_from_slice(&chunk);
                        if seen.windows(8).any(|w| w == b"\"result\"") {
                            return true;
                        }
                    }
                    false
                }
                _ => false,
            }
        }
    })
    .await;
    let introspections = stack.rs_stats.calls.load(Ordering::Relaxed) - calls_before;

    // The same tools/call made to the upstream directly, then through the gateway (bearer
    // check, policy, identity token, relay), each in one session.
    let direct_sid = open_session(&http, &upstream_url, None).await;
    let next_id = Arc::new(AtomicU64::new(1));
    let (h, u, sid, ids) = (
        http.clone(),
        upstream_url.clone(),
        direct_sid,
        next_id.clone(),
    );
    let direct_rate = measure("tools/call to the HTTP upstream directly", move || {
        let id = ids.fetch_add(1, Ordering::Relaxed);
        tools_call(h.clone(), u.clone(), None, sid.clone(), id, "echo")
    })
    .await;
    let gw_token = stack
        .user_token_for(&stack.browser, USERNAME, PASSWORD, "mcp:read", &gateway_url)
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let gw_sid = open_session(&http, &gateway_url, Some(&gw_token)).await;
    let (h, u, t, sid) = (http.clone(), gateway_url.clone(), gw_token, gw_sid);
    let gateway_rate = measure(
        "tools/call through the gateway (same upstream)",
        move || {
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            tools_call(
                h.clone(),
                u.clone(),
                Some(t.clone()),
                sid.clone(),
                id,
                "echo",
            )
        },
    )
    .await;

    println!();
    println!(
        "ratio /token ÷ AS metadata          {:>6.1} %",
        100.0 * token_rate / baseline_as
    );
    println!(
        "ratio /introspect ÷ AS metadata     {:>6.1} %",
        100.0 * introspect_rate / baseline_as
    );
    println!(
        "ratio MCP tools/call ÷ RS metadata  {:>6.1} %",
        100.0 * mcp_rate / baseline_rs
    );
    println!(
        "ratio gateway tools/call ÷ direct   {:>6.1} %",
        100.0 * gateway_rate / direct_rate
    );
    println!(
        "introspection calls during the MCP run: {introspections} (the cache answers the rest)"
    );
    println!(
        "resident memory of this process (servers + load generator): {:.1} MiB",
        rss_mib()
    );
}
