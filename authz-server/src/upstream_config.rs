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
    /// When set, only these Google Workspace domains (the id_token's `hd`).
    #[serde(default)]
    pub allowed_hosted_domains: Vec<String>,
    /// When set, only these Microsoft Entra tenants (the id_token's `tid`).
    #[serde(default)]
    pub allowed_tenants: Vec<String>,
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
        if is_multi_tenant(&up.issuer) && up.allowed_tenants.is_empty() {
            anyhow::bail!(
                "upstream {:?}: a multi-tenant issuer accepts any organisation's accounts: list the tenant ids that may sign in in allowed_tenants",
                up.name
            );
        }
        if !up.scopes.iter().any(|s| s == "openid") {
            anyhow::bail!("upstream {:?}: scopes must include openid", up.name);
        }
    }
    Ok(())
}

/// Providers set up by their well-known variables alone: `GOOGLE_OAUTH_CLIENT_ID`/`_SECRET`;
/// `MICROSOFT_OAUTH_CLIENT_ID`/`_SECRET` with `MICROSOFT_OAUTH_TENANT` (a tenant id or
/// domain); `OKTA_ORG_URL` (or an Okta authorization server's issuer), `OKTA_CLIENT_ID`/
/// `OKTA_CLIENT_SECRET`. `<PROVIDER>_OAUTH_LINKING` and `<PROVIDER>_OAUTH_ALLOWED_DOMAINS`
/// (comma-separated) are optional.
pub fn presets(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Vec<Upstream>> {
    let mut out = Vec::new();
    let extra = |prefix: &str| -> anyhow::Result<(Linking, Vec<String>)> {
        let linking = match get(&format!("{prefix}_OAUTH_LINKING")).as_deref() {
            None | Some("existing_only") => Linking::ExistingOnly,
            Some("create") => Linking::Create,
            Some("link_verified_email") => Linking::LinkVerifiedEmail,
            Some(other) => anyhow::bail!(
                "{prefix}_OAUTH_LINKING={other:?}: use existing_only, create or link_verified_email"
            ),
        };
        let domains = get(&format!("{prefix}_OAUTH_ALLOWED_DOMAINS"))
            .map(|v| {
                v.split(',')
                    .map(|d| d.trim().to_owned())
                    .filter(|d| !d.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok((linking, domains))
    };
    let preset =
        |name: &str, label: &str, issuer: String, id: String, secret: String, prefix: &str| {
            let (linking, domains) = extra(prefix)?;
            anyhow::Ok(Upstream {
                name: name.into(),
                display_name: Some(label.into()),
                issuer,
                client_id: id,
                client_secret: Secret::new(secret),
                scopes: default_upstream_scopes(),
                linking,
                trust_email: false,
                allowed_email_domains: domains,
                allowed_hosted_domains: Vec::new(),
                allowed_tenants: Vec::new(),
                allow_loopback_http: false,
            })
        };
    let pair = |id: &str, secret: &str| -> anyhow::Result<Option<(String, String)>> {
        match (get(id), get(secret)) {
            (None, None) => Ok(None),
            (Some(i), Some(s)) => Ok(Some((i, s))),
            _ => anyhow::bail!("set both {id} and {secret}"),
        }
    };
    if let Some((id, secret)) = pair("GOOGLE_OAUTH_CLIENT_ID", "GOOGLE_OAUTH_CLIENT_SECRET")? {
        out.push(preset(
            "google",
            "Google",
            "https://accounts.google.com".into(),
            id,
            secret,
            "GOOGLE",
        )?);
    }
    if let Some((id, secret)) = pair("MICROSOFT_OAUTH_CLIENT_ID", "MICROSOFT_OAUTH_CLIENT_SECRET")?
    {
        let tenant = get("MICROSOFT_OAUTH_TENANT")
            .filter(|t| t != "consumers")
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "set MICROSOFT_OAUTH_TENANT to your directory (tenant) id or domain, or to common/organizations with MICROSOFT_OAUTH_ALLOWED_TENANTS"
                )
            })?;
        let issuer = format!("https://login.microsoftonline.com/{tenant}/v2.0");
        let mut up = preset("microsoft", "Microsoft", issuer, id, secret, "MICROSOFT")?;
        up.allowed_tenants = get("MICROSOFT_OAUTH_ALLOWED_TENANTS")
            .map(|v| {
                v.split(',')
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        out.push(up);
    }
    if let Some(org) = get("OKTA_ORG_URL") {
        let (id, secret) = pair("OKTA_CLIENT_ID", "OKTA_CLIENT_SECRET")?.ok_or_else(|| {
            anyhow::anyhow!("OKTA_ORG_URL is set: set OKTA_CLIENT_ID and OKTA_CLIENT_SECRET too")
        })?;
        let issuer = org.trim_end_matches('/').to_owned();
        out.push(preset("okta", "Okta", issuer, id, secret, "OKTA")?);
    }
    Ok(out)
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
mod tests {
    use super::*;

    #[test]
    fn presets_come_from_their_variables() {
        let vars = [
            ("GOOGLE_OAUTH_CLIENT_ID", "g-id"),
            ("GOOGLE_OAUTH_CLIENT_SECRET", "g-secret"),
            ("GOOGLE_OAUTH_LINKING", "create"),
            ("OKTA_ORG_URL", "https://corp.okta.com/"),
            ("OKTA_CLIENT_ID", "o-id"),
            ("OKTA_CLIENT_SECRET", "o-secret"),
            ("OKTA_OAUTH_ALLOWED_DOMAINS", "corp.example, corp.test"),
        ];
        let get = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        };
        let list = presets(&get).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].issuer, "https://accounts.google.com");
        assert_eq!(list[0].linking, Linking::Create);
        assert_eq!(list[1].issuer, "https://corp.okta.com");
        assert_eq!(list[1].allowed_email_domains, ["corp.example", "corp.test"]);
        validate(&list).unwrap();
        let half = |k: &str| (k == "GOOGLE_OAUTH_CLIENT_ID").then(|| "x".to_owned());
        assert!(
            presets(&half)
                .unwrap_err()
                .to_string()
                .contains("GOOGLE_OAUTH_CLIENT_SECRET")
        );
        let ms = |k: &str| match k {
            "MICROSOFT_OAUTH_CLIENT_ID" | "MICROSOFT_OAUTH_CLIENT_SECRET" => Some("x".to_owned()),
            "MICROSOFT_OAUTH_TENANT" => Some("common".to_owned()),
            _ => None,
        };
        let list = presets(&ms).unwrap();
        let e = validate(&list).unwrap_err().to_string();
        assert!(e.contains("allowed_tenants"), "{e}");
    }
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
