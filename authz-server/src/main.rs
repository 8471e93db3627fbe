//! `authz-server`: run the authorization server, or administer it.

use std::path::PathBuf;

use anyhow::Context;
use authz_server::admin;
use authz_server::app::{Application, shutdown_signal};
use authz_server::config::Config;
use authz_server::store::Store;
use clap::{Parser, Subcommand};

// Requests allocate and free many small buffers; mimalloc does it faster than glibc's
// allocator and returns memory to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
#[allow(clippy::large_enum_variant)] // parsed once per run
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users, clients, resource servers, signing keys and grants; read the audit trail.
    #[command(subcommand)]
    Admin(Admin),
}

#[derive(Subcommand)]
enum Admin {
    #[command(subcommand)]
    User(UserCmd),
    #[command(subcommand)]
    Client(ClientCmd),
    /// Resource servers this server issues tokens for.
    #[command(subcommand)]
    Resource(ResourceCmd),
    /// Signing keys of the access tokens.
    #[command(subcommand)]
    Key(KeyCmd),
    #[command(subcommand)]
    Grant(GrantCmd),
    /// Upstream providers people may sign in through: those of the configuration
    /// ([[upstream]], the presets' variables) and those added here.
    #[command(subcommand)]
    Provider(ProviderCmd),
    /// Security events, newest first.
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Apply database migrations.
    Migrate,
}

#[derive(Subcommand)]
enum UserCmd {
    /// Create a user. The password comes from AUTHZ_NEW_PASSWORD or --password.
    Add {
        username: String,
        #[arg(long, env = "AUTHZ_NEW_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
    },
    List,
    /// One user, with the identities at upstream providers linked to it.
    Show {
        username: String,
    },
    /// Set a new password (AUTHZ_NEW_PASSWORD or --password).
    SetPassword {
        username: String,
        #[arg(long, env = "AUTHZ_NEW_PASSWORD", hide_env_values = true)]
        password: String,
        /// Keep the user's sign-in sessions and grants (by default they end: whoever used
        /// the old password is signed out and every app must be approved again).
        #[arg(long)]
        keep_sessions: bool,
    },
    /// Disable: ends sessions and revokes grants; the user cannot sign in.
    Disable {
        username: String,
    },
    Enable {
        username: String,
    },
    /// Remove the user and everything issued to them.
    Remove {
        username: String,
    },
}

#[derive(Subcommand)]
enum ClientCmd {
    /// Pre-register a client. Confidential clients get a secret, shown once.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        confidential: bool,
        /// Repeat for several. Loopback http URIs match on any port.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        #[arg(long)]
        scope: Option<String>,
    },
    List,
    /// Issue a new secret (shown once); the old one stops working.
    RotateSecret {
        client_id: String,
    },
    /// Remove the client and revoke its grants.
    Remove {
        client_id: String,
    },
}

#[derive(Subcommand)]
enum ResourceCmd {
    /// Register a resource server; prints the introspection credentials it must use.
    Add {
        resource: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        client_id: Option<String>,
        /// Accept tokens that act for no user (client credentials) for this resource.
        #[arg(long)]
        machine_clients: bool,
    },
    List,
}

#[derive(Subcommand)]
enum KeyCmd {
    /// New signing key; the old one stays in the JWKS until its last token expires.
    Rotate,
    List,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run
enum ProviderCmd {
    /// Each provider with the redirect URI to register at it.
    List,
    /// Add a provider. The client secret comes from --client-secret-file or
    /// AUTHZ_PROVIDER_SECRET, never from the command line.
    Add {
        /// Short name, part of the callback path /federation/<name>/callback.
        name: String,
        /// google, github, microsoft or okta: their endpoints and claims.
        #[arg(long)]
        preset: Option<String>,
        /// The OpenID issuer; for okta the org URL; for github a GitHub Enterprise Server URL.
        #[arg(long)]
        issuer: Option<String>,
        /// For microsoft: the tenant id or domain (or common/organizations with --allowed-tenant).
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, required_unless_present = "from_file")]
        client_id: Option<String>,
        #[arg(long)]
        client_secret_file: Option<std::path::PathBuf>,
        #[arg(long)]
        display_name: Option<String>,
        /// existing_only (default), create or link_verified_email.
        #[arg(long)]
        linking: Option<String>,
        /// Rely on the provider's email_verified for link_verified_email.
        #[arg(long)]
        trust_email: bool,
        #[arg(long = "allowed-domain")]
        allowed_domains: Vec<String>,
        #[arg(long = "allowed-tenant")]
        allowed_tenants: Vec<String>,
        /// Permit plain-http endpoints on loopback (tests and development only).
        #[arg(long)]
        allow_loopback_http: bool,
        /// Every setting from an [[upstream]]-shaped TOML file instead of the flags above
        /// (oauth2 providers, required_claims, scope_claim).
        #[arg(long, conflicts_with_all = ["preset", "issuer", "tenant", "client_id"])]
        from_file: Option<std::path::PathBuf>,
    },
    /// Remove a provider added with `add` (its users' links are kept).
    Remove { name: String },
}

#[derive(Subcommand)]
enum GrantCmd {
    /// A user's live grants.
    List { username: String },
    /// Revoke a grant: its refresh and access tokens stop working.
    Revoke { grant_id: String },
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
    let admin = match command {
        Command::Serve => {
            let app = Application::build(config).await?;
            let stop = shutdown_signal();
            let state = app.state().clone();
            // Printed on stdout so scripts and tests can read the address when port 0 was used.
            println!(
                "authz-server listening on http://{} (issuer {})",
                app.local_addr(),
                state.config.issuer
            );
            tracing::info!(addr = %app.local_addr(), issuer = %state.config.issuer, "listening");
            app.run_until(stop).await?;
            return Ok(());
        }
        Command::Migrate => Admin::Migrate,
        Command::Admin(a) => a,
    };
    let store = Store::connect(&config.database_url).await?;
    let out = match admin {
        Admin::Migrate => "migrations applied".to_owned(),
        Admin::User(UserCmd::Add {
            username,
            password,
            email,
            display_name,
        }) => admin::user_add(&store, &username, &password, email, display_name).await?,
        Admin::User(UserCmd::List) => admin::user_list(&store).await?,
        Admin::User(UserCmd::Show { username }) => admin::user_show(&store, &username).await?,
        Admin::User(UserCmd::SetPassword {
            username,
            password,
            keep_sessions,
        }) => admin::user_set_password(&store, &username, &password, keep_sessions).await?,
        Admin::User(UserCmd::Disable { username }) => {
            admin::user_disable(&store, &username, true).await?
        }
        Admin::User(UserCmd::Enable { username }) => {
            admin::user_disable(&store, &username, false).await?
        }
        Admin::User(UserCmd::Remove { username }) => admin::user_remove(&store, &username).await?,
        Admin::Client(ClientCmd::Add {
            name,
            confidential,
            redirect_uris,
            scope,
        }) => admin::client_add(
            &store,
            &config,
            &name,
            confidential,
            &redirect_uris,
            scope.as_deref(),
        )
        .await?
        .to_string(),
        Admin::Client(ClientCmd::List) => admin::client_list(&store).await?,
        Admin::Client(ClientCmd::RotateSecret { client_id }) => {
            admin::client_rotate_secret(&store, &client_id).await?
        }
        Admin::Client(ClientCmd::Remove { client_id }) => {
            admin::client_remove(&store, &client_id).await?
        }
        Admin::Resource(ResourceCmd::Add {
            resource,
            name,
            client_id,
            machine_clients,
        }) => {
            admin::resource_add(&store, &config, &resource, name, client_id, machine_clients)
                .await?
        }
        Admin::Resource(ResourceCmd::List) => admin::resource_list(&store, &config).await?,
        Admin::Key(KeyCmd::Rotate) => admin::key_rotate(&store).await?,
        Admin::Key(KeyCmd::List) => admin::key_list(&store).await?,
        Admin::Grant(GrantCmd::List { username }) => admin::grants_list(&store, &username).await?,
        Admin::Grant(GrantCmd::Revoke { grant_id }) => {
            admin::grant_revoke(&store, &grant_id).await?
        }
        Admin::Audit { limit } => admin::audit_list(&store, limit).await?,
        Admin::Provider(ProviderCmd::List) => admin::provider_list(&store, &config).await?,
        Admin::Provider(ProviderCmd::Remove { name }) => {
            admin::provider_remove(&store, &config, &name).await?
        }
        Admin::Provider(ProviderCmd::Add {
            name,
            preset,
            issuer,
            tenant,
            client_id,
            client_secret_file,
            display_name,
            linking,
            trust_email,
            allowed_domains,
            allowed_tenants,
            allow_loopback_http,
            from_file,
        }) => {
            let secret = match &client_secret_file {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?
                        .trim()
                        .to_owned(),
                ),
                None => std::env::var("AUTHZ_PROVIDER_SECRET").ok(),
            };
            if let Some(path) = from_file {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let up = admin::from_toml(&text, &name, secret)?;
                admin::provider_add(&store, &config, up).await?
            } else {
                let linking = match linking.as_deref() {
                    None => None,
                    Some(l) => Some(
                        serde_json::from_value(serde_json::Value::String(l.into())).map_err(
                            |_| anyhow::anyhow!("--linking {l:?}: use existing_only, create or link_verified_email"),
                        )?,
                    ),
                };
                let new = admin::NewProvider {
                    name,
                    preset,
                    issuer,
                    tenant,
                    client_id: client_id.unwrap_or_default(),
                    client_secret: secret.ok_or_else(|| {
                        anyhow::anyhow!("give the client secret with --client-secret-file or AUTHZ_PROVIDER_SECRET")
                    })?,
                    display_name,
                    linking,
                    trust_email,
                    allowed_domains,
                    allowed_tenants,
                    allow_loopback_http,
                };
                admin::provider_add_flags(&store, &config, &new).await?
            }
        }
    };
    println!("{}", out.trim_end());
    store.close().await;
    Ok(())
}
