//! `mcp-client`: signs in to OAuth-protected MCP servers (PKCE through a loopback redirect,
//! or the device flow), keeps the tokens in a private file, prints fresh access tokens for
//! scripts, and calls tools.

mod discover;
mod flows;
mod manage;
mod mcp;
mod oauth;
mod session;
mod store;

use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "mcp-client", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign in for an MCP server: discovery, registration, then the browser or the device flow.
    Login {
        url: String,
        /// A client registered beforehand, instead of dynamic registration.
        #[arg(long, env = "MCP_CLIENT_ID")]
        client_id: Option<String>,
        /// Its secret, for a confidential client.
        #[arg(long, env = "MCP_CLIENT_SECRET", hide_env_values = true)]
        client_secret: Option<String>,
        /// An https URL of this client's metadata document, used as its client id where the
        /// server supports client ID metadata documents.
        #[arg(long, env = "MCP_CLIENT_METADATA_URL")]
        client_metadata_url: Option<String>,
        /// The scope to ask for (default: what the server names).
        #[arg(long)]
        scope: Option<String>,
        /// The loopback port of the redirect (default: one the system picks).
        #[arg(long)]
        port: Option<u16>,
        /// Print the URL only; do not start a browser.
        #[arg(long)]
        no_browser: bool,
        /// Fetch the authorization URL without a browser (servers that approve at once).
        #[arg(long, conflicts_with = "device")]
        fetch: bool,
        /// RFC 8628: show a code to enter on another device instead.
        #[arg(long)]
        device: bool,
        /// A provider without MCP discovery: its authorization endpoint (with
        /// --token-endpoint and --client-id; URL then only names the entry).
        #[arg(long, env = "MCP_AUTHORIZATION_ENDPOINT", requires = "token_endpoint")]
        authorization_endpoint: Option<String>,
        #[arg(long, env = "MCP_TOKEN_ENDPOINT")]
        token_endpoint: Option<String>,
        #[arg(
            long,
            env = "MCP_DEVICE_AUTHORIZATION_ENDPOINT",
            requires = "token_endpoint"
        )]
        device_authorization_endpoint: Option<String>,
        #[arg(long, env = "MCP_REVOCATION_ENDPOINT", requires = "token_endpoint")]
        revocation_endpoint: Option<String>,
        /// The provider's issuer, to check RFC 9207 `iss` in its redirects.
        #[arg(long, env = "MCP_ISSUER", requires = "token_endpoint")]
        issuer: Option<String>,
        /// RFC 8707 `resource` to send to such a provider (none by default).
        #[arg(long, requires = "token_endpoint")]
        resource: Option<String>,
    },
    /// Print a valid access token (refreshed when it expires within five minutes).
    Token { url: String },
    /// What is stored: issuer, resource, scope, expiry.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Revoke at the authorization server and forget (forgotten even if revoking fails).
    Logout {
        url: Option<String>,
        #[arg(long, conflicts_with = "url")]
        all: bool,
    },
    /// List the server's tools.
    Tools { url: String },
    /// Call a tool with JSON arguments.
    Call {
        url: String,
        tool: String,
        #[arg(default_value = "{}")]
        arguments: String,
    },
    /// List the server's resources.
    Resources { url: String },
    /// Read a resource.
    Read { url: String, uri: String },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match run(Cli::parse().command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    let store = store::Store::default_location()?;
    match command {
        Command::Login {
            url,
            client_id,
            client_secret,
            client_metadata_url,
            scope,
            port,
            no_browser,
            fetch,
            device,
            authorization_endpoint,
            token_endpoint,
            device_authorization_endpoint,
            revocation_endpoint,
            issuer,
            resource,
        } => {
            let provider = token_endpoint.map(|token_endpoint| session::Provider {
                authorization_endpoint,
                token_endpoint,
                device_authorization_endpoint,
                revocation_endpoint,
                issuer,
                resource,
            });
            let browser = if fetch {
                oauth::Browser::Fetch
            } else if no_browser {
                oauth::Browser::Print
            } else {
                oauth::Browser::Open
            };
            let login = session::Login {
                client_id,
                client_secret,
                client_metadata_url,
                scope,
                port,
                browser,
                device,
                timeout: Duration::from_secs(300),
                provider,
            };
            match session::login(&store, &url, login).await? {
                Some(entry) => eprintln!(
                    "signed in for {} at {} (scope {:?})",
                    entry.resource, entry.issuer, entry.scope
                ),
                None => eprintln!("{url} does not ask for authorization: nothing to sign in to"),
            }
        }
        Command::Token { url } => println!("{}", session::access_token(&store, &url).await?),
        Command::Status { json } => print!("{}", manage::status(&store, json)?),
        Command::Logout { url, all } => {
            if url.is_none() && !all {
                anyhow::bail!("name the MCP server to log out of, or --all");
            }
            for line in manage::logout(&store, url.as_deref()).await? {
                eprintln!("{line}");
            }
        }
        Command::Tools { url } => print!("{}", mcp::execute(&store, &url, mcp::Op::Tools).await?),
        Command::Call {
            url,
            tool,
            arguments,
        } => {
            let op = mcp::Op::Call { tool, arguments };
            print!("{}", mcp::execute(&store, &url, op).await?)
        }
        Command::Resources { url } => {
            print!("{}", mcp::execute(&store, &url, mcp::Op::Resources).await?)
        }
        Command::Read { url, uri } => {
            print!(
                "{}",
                mcp::execute(&store, &url, mcp::Op::Read { uri }).await?
            )
        }
    }
    Ok(())
}
