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
