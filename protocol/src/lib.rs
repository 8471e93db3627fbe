//! The OAuth 2.1 protocol pieces shared by the authorization server, the MCP resource server
//! and the tests: typed wire messages and the rules that decide whether a value is acceptable.
//!
//! Covered: RFC 6749 / OAuth 2.1 (errors, form parameters), RFC 6750 (bearer challenges),
//! RFC 7009 (revocation), RFC 7591 (dynamic client registration), RFC 7636 (PKCE, S256 only),
//! RFC 7662 (introspection), RFC 8252 §7.3 (loopback redirects), RFC 8414 (AS metadata),
//! RFC 8707 (resource indicators), RFC 9207 (`iss`), RFC 9728 (protected resource metadata).

pub mod authorize;
pub mod challenge;
pub mod clock;
pub mod device;
pub mod error;
pub mod form;
pub mod grant;
pub mod introspect;
pub mod jose;
pub mod metadata;
pub mod paths;
pub mod pkce;
pub mod register;
pub mod revocations;
pub mod scope;
pub mod secret;
pub mod token;
pub mod uri;

#[cfg(test)]
mod properties;

pub use error::{ErrorCode, ErrorResponse, Refusal};
pub use scope::Scope;
