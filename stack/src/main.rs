//! `mcp-stack`: both servers in one process on an embedded SQLite database under a data
//! directory, with a demo user, a demo client and printed instructions. A second start
//! reuses the data. Each server's own variables (`AUTHZ_*`, `RS_*`) still apply.

use std::path::PathBuf;

use authz_server::demo;

/// Both servers in one process: the authorization server (http://127.0.0.1:8001) and the
/// MCP resource server (http://127.0.0.1:8002/mcp), with SQLite databases under the data
/// directory, a demo user and a demo client. AUTHZ_* and RS_* environment variables override
/// the defaults.
#[derive(clap::Parser)]
#[command(name = "mcp-stack", version)]
struct Cli {
    /// Where the databases and the demo secret live.
    #[arg(long, value_name = "DIR", default_value = "data")]
    data_dir: PathBuf,
}

// Requests allocate and free many small buffers; mimalloc does it faster than glibc's
// allocator and returns memory to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let data_dir = <Cli as clap::Parser>::parse().data_dir;
    match run(data_dir).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(data_dir: PathBuf) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let sqlite = |name: &str| format!("sqlite://{}/{name}?mode=rwc", data_dir.display());

    let mut rs = resource_server::Config::default();
    rs.apply_env(env)?;
    if env("RS_DATABASE_URL").is_none() && env("DATABASE_URL").is_none() {
        rs.database_url = sqlite("resource.db");
    }
    if rs.client_id.is_empty() {
        rs.client_id = demo::DEMO_RS_CLIENT_ID.into();
        rs.client_secret = oauth_protocol_secret(&demo::resource_server_secret(&data_dir)?);
    }

    let mut authz = authz_server::Config::default();
    authz.apply_env(env)?;
    if env("AUTHZ_DATABASE_URL").is_none() && env("DATABASE_URL").is_none() {
        authz.database_url = sqlite("authz.db");
    }
    if authz.resource_servers.is_empty() {
        let mut registration = demo::resource_server(&rs.resource, rs.client_secret.expose());
        registration.client_id = rs.client_id.clone();
        // One switch for both halves: the resource server takes such tokens only if they
        // can be issued for it.
        registration.machine_clients = rs.accept_machine_clients;
        authz.resource_servers.push(registration);
    }
    // Each gateway endpoint is a resource of its own, introspecting with its credentials.
    for up in &rs.upstream {
        let resource = rs.upstream_resource(&up.name);
        if !authz
            .resource_servers
            .iter()
            .any(|r| r.resource == resource)
        {
            let mut registration = demo::resource_server(&resource, up.client_secret.expose());
            registration.client_id = up.client_id.clone();
            registration.name = Some(up.label().to_owned());
            authz.resource_servers.push(registration);
        }
    }
    if env("RS_ISSUER").is_none() {
        rs.issuer = authz.issuer.clone();
    }
    authz.validate()?;
    rs.validate()?;
    authz_server::telemetry::init(&authz.log_format);

    // Seed before the server starts, so that headless mode can name the demo user.
    let store = authz_server::store::Store::connect(&authz.database_url).await?;
    demo::seed(&store).await?;
    let listener = tokio::net::TcpListener::bind(authz.bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", authz.bind))?;
    let authz_app = authz_server::Application::with_parts(authz, store, listener).await?;
    let rs_app = resource_server::Application::build(rs).await?;
    let stop = authz_server::app::shutdown_signal();
    print_quick_start(&authz_app, &rs_app);

    let shutdown = tokio::sync::broadcast::channel::<()>(1).0;
    let (mut a, mut b) = (shutdown.subscribe(), shutdown.subscribe());
    let authz_task = tokio::spawn(authz_app.run_until(async move {
        let _ = a.recv().await;
    }));
    let rs_task = tokio::spawn(rs_app.run_until(async move {
        let _ = b.recv().await;
    }));
    stop.await;
    let _ = shutdown.send(());
    authz_task.await??;
    rs_task.await??;
    Ok(())
}

fn oauth_protocol_secret(s: &str) -> authz_server::config::Secret {
    authz_server::config::Secret::new(s)
}

/// The demo's PKCE pair (RFC 7636 appendix B): printed, so a person can redeem a code by hand.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn print_quick_start(authz: &authz_server::Application, rs: &resource_server::Application) {
    let config = &authz.state().config;
    let iss = &config.issuer;
    let rs_config = &rs.state().config;
    let resource = &rs_config.resource;
    let (user, password, client) = (demo::DEMO_USER, demo::DEMO_PASSWORD, demo::DEMO_CLIENT);
    let verifier = VERIFIER;
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let enc_resource = resource.replace(':', "%3A").replace('/', "%2F");
    let authorize = format!(
        "{iss}/authorize?response_type=code&client_id={client}&redirect_uri=http%3A%2F%2F127.0.0.1%3A8976%2Fcallback&code_challenge={challenge}&code_challenge_method=S256&scope=mcp%3Aread+mcp%3Awrite&resource={enc_resource}&state=demo"
    );
    if let Some(user) = &config.headless_user {
        println!(
            "HEADLESS MODE: authorization requests are approved as {user} without login or consent (testing only)"
        );
    }
    println!(
        r#"authz-server listening on http://{as_addr} (issuer {iss})
resource-server listening on http://{rs_addr} (resource {resource})

  MCP endpoint                    {resource}
  Protected resource metadata     {prm}
  Authorization server metadata   {iss}/.well-known/oauth-authorization-server
  Databases                       {as_db}
                                  {rs_db}

  Demo user      {user} / {password}
  Demo client    {client} (public, PKCE, redirect http://127.0.0.1:<any port>/callback)
  Any MCP client with OAuth support can also register itself (RFC 7591) or use a
  client ID metadata document.

  Try it with MCP Inspector:  npx @modelcontextprotocol/inspector  → Streamable HTTP → {resource}

  With a browser: open this URL, sign in as {user}, approve, and copy `code` from the address
  bar (nothing listens on port 8976, so the page itself does not load)
  {authorize}
  curl -s {iss}/token -d grant_type=authorization_code -d client_id={client}        -d redirect_uri=http://127.0.0.1:8976/callback -d code_verifier={verifier} -d code=<code>

  Or all of it in bash with curl, no browser. A code lives {code_ttl} s and is redeemed once:
  redeeming it again revokes what it gave, so for a new token run the whole block again.

{block}"#,
        as_addr = authz.local_addr(),
        rs_addr = rs.local_addr(),
        prm = rs_config.metadata_url(),
        as_db = db::redacted(&config.database_url),
        rs_db = db::redacted(&rs_config.database_url),
        code_ttl = config.code_ttl,
        block = shell_block(authz, rs, &authorize),
    );
}

/// The no-browser walk-through, for the running servers: each line indented, so the block
/// stands apart in the banner and pastes into bash as it is.
fn shell_block(
    authz: &authz_server::Application,
    rs: &resource_server::Application,
    authorize: &str,
) -> String {
    let config = &authz.state().config;
    include_str!("quick_start.sh")
        .replace("@ISS@", &config.issuer)
        .replace("@MCP@", &rs.state().config.resource)
        .replace("@AUTHORIZE@", authorize)
        .replace("@USER@", demo::DEMO_USER)
        .replace("@PASSWORD@", demo::DEMO_PASSWORD)
        .replace("@CLIENT@", demo::DEMO_CLIENT)
        .replace("@VERIFIER@", VERIFIER)
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect()
}
