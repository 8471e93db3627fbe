//! `[[upstream]]`: the providers people may sign in through (OpenID Providers, and plain
//! OAuth 2.0 providers such as GitHub), and how a first sign-in finds its local user.

use std::collections::BTreeMap;

use oauth_protocol::secret::Secret;
use oauth_protocol::uri::validate_issuer;
use serde::{Deserialize, Serialize};

/// How a first sign-in through an upstream provider finds its local user. An identity is
/// always keyed by (provider, issuer, subject); email only ever links under `link_verified_email`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
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

/// What an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An OpenID Provider: discovery, a signed id_token.
    #[default]
    Oidc,
    /// A plain OAuth 2.0 provider (GitHub): configured endpoints, the identity from its
    /// userinfo endpoint by claim names.
    Oauth2,
}

/// How this server authenticates at the provider's token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
}

/// Where an `oauth2` provider's userinfo answer keeps each part of the identity: a member
/// name, or a JSON pointer (`/data/id`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimNames {
    pub subject: String,
    pub email: String,
    /// Absent: the email counts as unverified (unless `emails_endpoint` vouches for it).
    pub email_verified: Option<String>,
    pub username: String,
    pub name: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self {
            subject: "sub".into(),
            email: "email".into(),
            email_verified: Some("email_verified".into()),
            username: "preferred_username".into(),
            name: "name".into(),
        }
    }
}

/// The scopes a user may be granted, from the values of one claim:
/// `scope_claim = { claim = "groups", scopes = { admins = ["mcp:admin"], staff = ["mcp:read"] } }`.
/// A user none of whose values is listed may be granted no scope.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeClaim {
    pub claim: String,
    pub scopes: BTreeMap<String, Vec<String>>,
}

/// A provider people may sign in through (`[[upstream]]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Short name: the callback is `/federation/{name}/callback`.
    pub name: String,
    /// What the login page's button says: "Continue with {display_name}".
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub kind: Kind,
    /// The provider's issuer: an OpenID Provider's discovery document is read from it; for an
    /// `oauth2` provider it only names the provider in linked identities.
    pub issuer: String,
    pub client_id: String,
    #[serde(skip_serializing)]
    pub client_secret: Secret,
    #[serde(default = "default_upstream_scopes")]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_method: ClientAuth,
    /// `oauth2` only: the provider's endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    /// `oauth2` only: a GitHub-style list of `{email, primary, verified}`; the verified
    /// primary address is the identity's email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emails_endpoint: Option<String>,
    /// `oauth2` only: where the userinfo answer keeps the identity.
    #[serde(default)]
    pub claims: ClaimNames,
    #[serde(default)]
    pub linking: Linking,
    /// Whether this provider's `email_verified` may be relied on for linking.
    #[serde(default)]
    pub trust_email: bool,
    /// When set, only identities with an email in one of these domains may sign in.
    #[serde(default)]
    pub allowed_email_domains: Vec<String>,
    /// When set, only these Google Workspace domains (the id_token's `hd`).
    #[serde(default)]
    pub allowed_hosted_domains: Vec<String>,
    /// When set, only these Microsoft Entra tenants (the id_token's `tid`).
    #[serde(default)]
    pub allowed_tenants: Vec<String>,
    /// Only identities whose claim holds one of the listed values, for every claim listed:
    /// `required_claims = { groups = ["mcp-users"] }`.
    #[serde(default)]
    pub required_claims: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_claim: Option<ScopeClaim>,
    /// Permit plain-http endpoints on a loopback address (tests and development only).
    #[serde(default)]
    pub allow_loopback_http: bool,
}

fn default_upstream_scopes() -> Vec<String> {
    vec!["openid".into(), "email".into(), "profile".into()]
}

impl Upstream {
    /// An OpenID Provider with the defaults: `existing_only`, no allow-lists.
    pub fn oidc(name: &str, issuer: &str, client_id: &str, client_secret: &str) -> Self {
        Self {
            name: name.into(),
            display_name: None,
            kind: Kind::Oidc,
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret: Secret::new(client_secret),
            scopes: default_upstream_scopes(),
            token_endpoint_auth_method: ClientAuth::default(),
            authorization_endpoint: None,
            token_endpoint: None,
            userinfo_endpoint: None,
            emails_endpoint: None,
            claims: ClaimNames::default(),
            linking: Linking::default(),
            trust_email: false,
            allowed_email_domains: Vec::new(),
            allowed_hosted_domains: Vec::new(),
            allowed_tenants: Vec::new(),
            required_claims: BTreeMap::new(),
            scope_claim: None,
            allow_loopback_http: false,
        }
    }

    pub fn label(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.name)
    }
}

/// A provider stored by `admin provider add`, checked as the configuration's are.
pub fn from_row(row: &crate::store::federation::ProviderRow) -> anyhow::Result<Upstream> {
    let mut settings: serde_json::Value = serde_json::from_str(&row.settings)?;
    settings["client_secret"] = serde_json::Value::String(row.client_secret.clone());
    let up: Upstream = serde_json::from_value(settings)?;
    validate(std::slice::from_ref(&up))?;
    Ok(up)
}

/// The row `admin provider add` stores for `up`.
pub fn to_row(up: &Upstream, now: i64) -> crate::store::federation::ProviderRow {
    crate::store::federation::ProviderRow {
        name: up.name.clone(),
        // The secret is not serialized: it has its own column.
        settings: serde_json::to_string(up).expect("settings serialize"),
        client_secret: up.client_secret.expose().to_owned(),
        created_at: now,
    }
}

/// A claim by member name or JSON pointer (`/realm_access/roles`).
pub fn claim<'a>(claims: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    if name.starts_with('/') {
        claims.pointer(name)
    } else {
        claims.get(name)
    }
}

/// A claim's values as strings: a string, each string or number of an array, a number or a
/// boolean.
pub fn claim_values(value: Option<&serde_json::Value>) -> Vec<String> {
    use serde_json::Value;
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(one).collect(),
        Some(v) => one(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// Start-up checks with messages that say what to change.
pub fn validate(upstreams: &[Upstream]) -> anyhow::Result<()> {
    let mut names = std::collections::HashSet::new();
    for up in upstreams {
        let fail = |what: String| anyhow::anyhow!("upstream {:?}: {what}", up.name);
        if !settings::is_path_name(&up.name) {
            return Err(fail(
                "the name must be lowercase letters, digits and '-' (it is part of the callback path)".into(),
            ));
        }
        if !names.insert(up.name.as_str()) {
            anyhow::bail!("upstream {:?} is configured twice", up.name);
        }
        let issuer = url::Url::parse(&up.issuer).map_err(|_| fail("issuer is not a URL".into()))?;
        let loopback = oauth_protocol::uri::is_loopback_host(&issuer);
        validate_issuer(&up.issuer, loopback && up.allow_loopback_http)
            .map_err(|e| fail(format!("issuer {e}")))?;
        if is_multi_tenant(&up.issuer) && up.allowed_tenants.is_empty() {
            return Err(fail(
                "a multi-tenant issuer accepts any organisation's accounts: list the tenant ids that may sign in in allowed_tenants".into(),
            ));
        }
        let endpoints = [
            ("authorization_endpoint", &up.authorization_endpoint),
            ("token_endpoint", &up.token_endpoint),
            ("userinfo_endpoint", &up.userinfo_endpoint),
        ];
        match up.kind {
            Kind::Oidc => {
                if !up.scopes.iter().any(|s| s == "openid") {
                    return Err(fail("scopes must include openid".into()));
                }
                if let Some((name, _)) = endpoints.iter().find(|(_, v)| v.is_some()) {
                    return Err(fail(format!(
                        "{name} is read from the provider's discovery document (kind = \"oidc\"); set kind = \"oauth2\" to configure endpoints"
                    )));
                }
            }
            Kind::Oauth2 => {
                for (name, value) in endpoints
                    .iter()
                    .copied()
                    .chain([("emails_endpoint", &up.emails_endpoint)])
                {
                    match value {
                        Some(v) => endpoint_url(v, up.allow_loopback_http)
                            .map_err(|e| fail(format!("{name} {e}")))?,
                        None if name == "emails_endpoint" => {}
                        None => return Err(fail(format!("kind = \"oauth2\" needs {name}"))),
                    }
                }
            }
        }
        if let Some(map) = &up.scope_claim
            && map.scopes.is_empty()
        {
            return Err(fail("scope_claim lists no values".into()));
        }
    }
    Ok(())
}

/// An endpoint must be https (plain http on loopback only with `allow_loopback_http`).
fn endpoint_url(value: &str, loopback_http: bool) -> Result<(), String> {
    let url = url::Url::parse(value).map_err(|_| "is not a URL".to_owned())?;
    let loopback = oauth_protocol::uri::is_loopback_host(&url);
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback && loopback_http => Ok(()),
        _ => Err("must use https".into()),
    }
}

/// The placeholder of a multi-tenant issuer (Microsoft Entra).
pub const TENANT: &str = "{tenantid}";

/// Whether `template` is the tenant-independent form of the multi-tenant `configured`
/// issuer: `…/{tenantid}/v2.0` for `…/common/v2.0` or `…/organizations/v2.0`.
pub fn is_tenant_template(template: &str, configured: &str) -> bool {
    template.contains(TENANT)
        && ["common", "organizations"]
            .iter()
            .any(|t| template.replace(TENANT, t) == configured)
}

/// Whether an issuer is a multi-tenant endpoint: its tokens come from any tenant, so a
/// tenant allow-list is required.
pub fn is_multi_tenant(issuer: &str) -> bool {
    url::Url::parse(issuer).is_ok_and(|u| {
        u.path_segments()
            .and_then(|mut s| s.next())
            .is_some_and(|first| matches!(first, "common" | "organizations"))
    })
}

#[cfg(test)]
mod tenant_tests {
    use super::*;

    #[test]
    fn multi_tenant_issuers_are_recognised() {
        let common = "https://login.microsoftonline.com/common/v2.0";
        let template = "https://login.microsoftonline.com/{tenantid}/v2.0";
        assert!(is_tenant_template(template, common));
        assert!(is_tenant_template(
            template,
            "https://login.microsoftonline.com/organizations/v2.0"
        ));
        assert!(!is_tenant_template(
            template,
            "https://login.microsoftonline.com/contoso/v2.0"
        ));
        assert!(!is_tenant_template(
            "https://evil.example/{tenantid}/v2.0",
            common
        ));
        assert!(is_multi_tenant(common));
        assert!(!is_multi_tenant(
            "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"
        ));
    }
}
