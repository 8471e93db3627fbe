//! The authenticated caller of the MCP endpoint, as the tools see it: what the
//! authorization server said about the token, never the token itself.

use oauth_protocol::Scope;

/// The authenticated caller, as tools see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub sub: String,
    pub username: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub client_id: String,
    pub scope: Scope,
    pub exp: i64,
    /// The token's id, which the revocation feed names when this one token is revoked.
    pub jti: Option<String>,
    /// Acts for no user: a client-credentials token, whose subject is the client itself
    /// (RFC 9068 §2.2).
    pub machine: bool,
}
