//! `resource-server`: the MCP server protected by the authorization server.

use std::path::PathBuf;

use resource_server::app::{Application, shutdown_signal};
use resource_server::config::Config;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let mut path = std::env::var_os("RS_CONFIG").map(PathBuf::from);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => path = args.next().map(PathBuf::from),
            "--help" | "-h" => {
                println!(
                    "resource-server [--config FILE]\n\nConfiguration: a TOML file and RS_* environment variables (see README)."
                );
                return std::process::ExitCode::SUCCESS;
            }
            "--version" | "-V" => {
                println!("resource-server {}", env!("CARGO_PKG_VERSION"));
                return std::process::ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?}; try --help");
                return std::process::ExitCode::from(2);
            }
        }
    }
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
        println!(
            "resource-server listening on http://{} (resource {})",
            app.local_addr(),
            app.state().config.resource
        );
        app.run_until(shutdown_signal()).await?;
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
