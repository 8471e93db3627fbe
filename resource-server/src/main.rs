//! `resource-server`: the MCP server protected by the authorization server.

use std::path::PathBuf;

use resource_server::app::{Application, shutdown_signal};
use resource_server::config::Config;

/// The MCP server protected by the authorization server. Configuration: a TOML file and
/// RS_* environment variables over it (see the README).
#[derive(clap::Parser)]
#[command(name = "resource-server", version)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "RS_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

// Requests allocate and free many small buffers; mimalloc does it faster than glibc's
// allocator and returns memory to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    let path = cli.config;
    let config = match Config::load(path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    resource_server::telemetry_init(&config.log_format);
    let result = async {
        let app = Application::build(config).await?;
        let stop = shutdown_signal();
        println!(
            "resource-server listening on http://{} (resource {})",
            app.local_addr(),
            app.state().config.resource
        );
        app.run_until(stop).await?;
        anyhow::Ok(())
    }
    .await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::Parser;

    #[test]
    fn config_needs_a_value() {
        assert!(Cli::try_parse_from(["resource-server", "--config"]).is_err());
        let cli = Cli::try_parse_from(["resource-server", "--config", "rs.toml"]).unwrap();
        assert_eq!(cli.config.unwrap().to_str(), Some("rs.toml"));
    }
}
