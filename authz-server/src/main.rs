//! `authz-server`: run the authorization server, or manage its users and keys.

use std::path::PathBuf;

use authz_server::app::{Application, shutdown_signal};
use authz_server::config::Config;
use authz_server::crypto::{Keys, hash_password_blocking, new_id};
use authz_server::state::now;
use authz_server::store::{Store, User};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "authz-server",
    version,
    about = "OAuth 2.1 authorization server for MCP"
)]
struct Cli {
    /// TOML configuration file (environment variables override it).
    #[arg(long, global = true, env = "AUTHZ_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Run with a demo user, a demo client and a demo resource server created on first
    /// start, and print how to use them. For trying things out, never for production.
    Demo,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Generate a new signing key; the previous one stays published until its tokens expire.
    RotateKey,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user. The password is read from AUTHZ_NEW_PASSWORD or --password.
    Add {
        username: String,
        #[arg(long, env = "AUTHZ_NEW_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
    },
    /// List users.
    List,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    authz_server::telemetry::init(&config.log_format);
    match run(cli.command.unwrap_or(Command::Serve), config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let app = Application::build(config).await?;
            let state = app.state().clone();
            // Printed on stdout so scripts and tests can read the address when port 0 was used.
            println!(
                "authz-server listening on http://{} (issuer {})",
                app.local_addr(),
                state.config.issuer
            );
            tracing::info!(addr = %app.local_addr(), issuer = %state.config.issuer, "listening");
            app.run_until(shutdown_signal()).await?;
        }
        Command::Demo => {
            let mut config = config;
            if config.resource_servers.is_empty() {
                config
                    .resource_servers
                    .push(authz_server::config::ResourceServer {
                        resource: DEMO_RESOURCE.into(),
                        name: Some("Demo MCP server".into()),
                        client_id: DEMO_RS_CLIENT_ID.into(),
                        client_secret: oauth_protocol::secret::Secret::new(DEMO_RS_SECRET),
                    });
            }
            let app = Application::build(config).await?;
            let state = app.state().clone();
            seed_demo(&state.store).await?;
            print_quick_start(&state.config, &app.local_addr().to_string());
            app.run_until(shutdown_signal()).await?;
        }
        Command::Migrate => {
            Store::connect(&config.database_url).await?;
            println!("migrations applied");
        }
        Command::User(UserCommand::Add {
            username,
            password,
            email,
            display_name,
        }) => {
            let store = Store::connect(&config.database_url).await?;
            if password.len() < 8 {
                anyhow::bail!("the password must be at least 8 characters");
            }
            let user = User {
                id: new_id(),
                username: username.clone(),
                password_hash: hash_password_blocking(password).await,
                email,
                display_name,
                disabled: 0,
                created_at: now(),
            };
            store.insert_user(&user).await?;
            println!("created user {username} ({})", user.id);
        }
        Command::User(UserCommand::List) => {
            let store = Store::connect(&config.database_url).await?;
            for u in store.list_users().await? {
                println!(
                    "{}\t{}\t{}",
                    u.id,
                    u.username,
                    if u.disabled == 0 {
                        "active"
                    } else {
                        "disabled"
                    }
                );
            }
        }
        Command::RotateKey => {
            let store = Store::connect(&config.database_url).await?;
            let kid = Keys::rotate(&store, now()).await?;
            println!("new signing key {kid}; running servers sign with it within a minute");
        }
    }
    Ok(())
}

const DEMO_USER: &str = "testuser";
const DEMO_PASSWORD: &str = "testpass";
const DEMO_CLIENT: &str = "mcp-test-client";
const DEMO_RESOURCE: &str = "http://127.0.0.1:8002/mcp";
const DEMO_RS_CLIENT_ID: &str = "mcp-resource-server";
const DEMO_RS_SECRET: &str = "demo-resource-server-secret";

/// Creates the demo user and the demo public client unless they exist (a second start
/// keeps the data as it is).
async fn seed_demo(store: &Store) -> anyhow::Result<()> {
    if store.user_by_username(DEMO_USER).await?.is_none() {
        store
            .insert_user(&User {
                id: new_id(),
                username: DEMO_USER.into(),
                password_hash: hash_password_blocking(DEMO_PASSWORD.into()).await,
                email: Some("testuser@example.com".into()),
                display_name: Some("Test User".into()),
                disabled: 0,
                created_at: now(),
            })
            .await?;
    }
    if store.client(DEMO_CLIENT).await?.is_none() {
        let metadata = oauth_protocol::register::ClientMetadata::from_json(
            &serde_json::json!({
                "client_name": "MCP test client",
                "redirect_uris": ["http://127.0.0.1/callback", "http://localhost/callback"],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
            }),
            &oauth_protocol::Scope::parse("mcp:read mcp:write").expect("valid scopes"),
        )
        .map_err(|e| anyhow::anyhow!("demo client: {e:?}"))?;
        store
            .insert_client(&authz_server::store::ClientRow {
                client_id: DEMO_CLIENT.into(),
                secret_hash: None,
                metadata: serde_json::to_string(&metadata)?,
                client_id_issued_at: now(),
                origin: "admin".into(),
            })
            .await?;
    }
    Ok(())
}

fn print_quick_start(config: &Config, addr: &str) {
    let iss = &config.issuer;
    let rs = config
        .resource_servers
        .first()
        .map(|r| r.resource.as_str())
        .unwrap_or(DEMO_RESOURCE);
    println!(
        r#"authz-server listening on http://{addr} (issuer {iss})

  Authorization server metadata  {iss}/.well-known/oauth-authorization-server
  JWKS                           {iss}/jwks.json
  Database                       {db}

  Demo user        {DEMO_USER} / {DEMO_PASSWORD}
  Demo client      {DEMO_CLIENT} (public, PKCE, redirect http://127.0.0.1:<any port>/callback)
  Resource         {rs}
  Introspection    client_id {DEMO_RS_CLIENT_ID}, client_secret {DEMO_RS_SECRET}

  Try it: open this in a browser, sign in, and read the code from the address bar:
  {iss}/authorize?response_type=code&client_id={DEMO_CLIENT}&redirect_uri=http%3A%2F%2F127.0.0.1%3A8976%2Fcallback&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&scope=mcp%3Aread+mcp%3Awrite&state=demo

  then exchange it:
  curl -s {iss}/token -d grant_type=authorization_code -d client_id={DEMO_CLIENT} \
       -d redirect_uri=http://127.0.0.1:8976/callback -d code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk \
       -d code=<code>
"#,
        db = config.database_url
    );
}
