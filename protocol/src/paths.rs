//! Endpoint and well-known paths, shared by the routers, the metadata documents and the tests.

pub const AS_METADATA: &str = "/.well-known/oauth-authorization-server";
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
pub const PROTECTED_RESOURCE_METADATA: &str = "/.well-known/oauth-protected-resource";
pub const AUTHORIZE: &str = "/authorize";
pub const LOGIN: &str = "/login";
pub const CONSENT: &str = "/consent";
pub const LOGOUT: &str = "/logout";
pub const ACCOUNT: &str = "/account";
pub const ACCOUNT_REVOKE: &str = "/account/grants/revoke";
pub const TOKEN: &str = "/token";
/// RFC 8628 §3.1 and the page where a person enters the code (§3.3).
pub const DEVICE_AUTHORIZATION: &str = "/device_authorization";
pub const DEVICE: &str = "/device";
pub const REGISTER: &str = "/register";
pub const INTROSPECT: &str = "/introspect";
pub const REVOKE: &str = "/revoke";
/// The revocation feed resource servers read (this project's own, not an RFC endpoint).
pub const REVOCATIONS: &str = "/revocations";
pub const JWKS: &str = "/jwks.json";
pub const STYLESHEET: &str = "/assets/style.css";
