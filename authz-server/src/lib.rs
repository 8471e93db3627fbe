//! OAuth 2.1 authorization server for MCP resource servers: RFC 8414 metadata, RFC 7591
//! registration and client ID metadata documents, authorization code with PKCE (S256),
//! refresh-token rotation, RFC 7662 introspection, RFC 7009 revocation, RFC 8707 resource
//! indicators, RFC 9207 `iss`, and RFC 9068 JWT access tokens.

pub mod admin;
pub mod app;
pub mod client_id_documents;
pub mod clients;
pub mod config;
mod config_env;
pub mod demo;
pub mod error;
pub mod extract;
pub mod ids;
pub mod oauth;
pub mod password;
pub mod password_pool;
#[cfg(test)]
mod properties;
pub mod routes;
pub mod signing_keys;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod templates;
pub mod throttle;
pub mod tls;
pub mod upstream;
pub mod upstream_config;
pub mod upstream_presets;

pub use app::Application;
pub use config::Config;
