//! End-to-end tests: the real authorization server on a loopback port, real SQLite or
//! PostgreSQL (`DATABASE_URL`), driven over HTTP by a browser-like client and the `oauth2`
//! crate. One test binary for the whole crate keeps linking cheap.

mod authorize;
mod cimd;
mod device;
#[cfg(feature = "everything")]
mod everything;
mod fast_paths;
mod federation_github;
mod federation_tokens;
mod fixtures;
mod flow;
mod gateway;
mod limits;
mod mcp;
mod metadata;
mod operations;
mod pages;
mod races;
mod register;
mod revocation_feed;
mod rmcp_client;
mod scale_out;
mod security;
mod store;
mod token;
