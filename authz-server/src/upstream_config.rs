//! `[[upstream]]`: the OpenID Providers people may sign in through, and how a first sign-in
//! finds its local user.

use oauth_protocol::secret::Secret;
use oauth_protocol::uri::validate_issuer;
use serde::Deserialize;

/// How a first sign-in through an upstream provider finds its local user. An identity is
/// always keyed by (provider, issuer, subject); email only ever links under `link_verified_email`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Linking {
    /// Only identities an administrator or the user linked before may sign in.
    #[default]
    ExistingOnly,
    /// A new identity creates a local user.
    Create,
    /// A new identity links to the local user with the same email, only when the provider
    /// says the email is verified and `trust_email` is set; otherwise it is refused.
    LinkVerifiedEmail,
}

/// An OpenID Provider people may sign in through (`[[upstream]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Short name: the callback is `/federation/{name}/callback`.
    pub name: String,
    /// What the login page's button says: "Continue with {display_name}".
    #[serde(default)]
    pub display_name: Option<String>,
    /// The provider's issuer; its discovery document is read from it.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
    #[serde(default = "default_upstream_scopes")]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub linking: Linking,
    /// Whether this provider's `email_verified` may be relied on for linking.
    #[serde(default)]
    pub trust_email: bool,
    /// When set, only identities with an email in one of these domains may sign in.
    #[serde(default)]
    pub allowed_email_domains: Vec<String>,
    /// Permit a plain-http issuer on a loopback address (tests and development only).
    #[serde(default)]
    pub allow_loopback_http: bool,
}

fn default_upstream_scopes() -> Vec<String> {
    vec!["openid".into(), "email".into(), "profile".into()]
}

impl Upstream {
    pub fn label(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.name)
    }
}

/// Start-up checks with messages that say what to change.
pub fn validate(upstreams: &[Upstream]) -> anyhow::Result<()> {
    let mut names = std::collections::HashSet::new();
    for up in upstreams {
        if up.name.is_empty()
            || !up
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            anyhow::bail!(
                "upstream {:?}: the name must be lowercase letters, digits and '-' (it is part of the callback path)",
                up.name
            );
        }
        if !names.insert(up.name.as_str()) {
            anyhow::bail!("upstream {:?} is configured twice", up.name);
        }
        let issuer = url::Url::parse(&up.issuer)
            .map_err(|_| anyhow::anyhow!("upstream {:?}: issuer is not a URL", up.name))?;
        let loopback = oauth_protocol::uri::is_loopback_host(&issuer);
        validate_issuer(&up.issuer, loopback && up.allow_loopback_http)
            .map_err(|e| anyhow::anyhow!("upstream {:?}: issuer {e}", up.name))?;
        if !up.scopes.iter().any(|s| s == "openid") {
            anyhow::bail!("upstream {:?}: scopes must include openid", up.name);
        }
    }
    Ok(())
}
