//! MCP resource server protected by OAuth 2.1: RFC 9728 protected resource metadata,
//! RFC 6750 bearer challenges with MCP step-up, RFC 7662 introspection behind a cache, and
//! per-user tools and resources over Streamable HTTP.

pub mod app;
pub mod auth;
pub mod config;
pub mod endpoint;
pub mod gateway;
pub mod introspection;
pub mod jwks;
pub mod mcp;
pub mod metadata;
pub mod principal;
pub mod revocations;
pub mod rpc;
pub mod state;
pub mod store;

pub use app::Application;

/// Makes rustls use ring (the one crypto provider in the tree) for outgoing https.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
pub use config::Config;

/// Logs to stderr, human-readable or JSON, filtered by `RUST_LOG`.
pub fn telemetry_init(format: &str) {
    observe::init_tracing(format);
}
