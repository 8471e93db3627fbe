//! Providers set up by their well-known variables alone: Google, GitHub, Microsoft, Okta.

use crate::upstream_config::{ClaimNames, ClientAuth, Kind, Linking, Upstream};

/// `GOOGLE_OAUTH_CLIENT_ID`/`_SECRET`; `GITHUB_OAUTH_CLIENT_ID`/`_SECRET` (with
/// `GITHUB_OAUTH_URL` and `GITHUB_OAUTH_API_URL` for GitHub Enterprise Server);
/// `MICROSOFT_OAUTH_CLIENT_ID`/`_SECRET` with `MICROSOFT_OAUTH_TENANT` (a tenant id or
/// domain); `OKTA_ORG_URL` (or an Okta authorization server's issuer), `OKTA_CLIENT_ID`/
/// `OKTA_CLIENT_SECRET`. `<PROVIDER>_OAUTH_LINKING`, `<PROVIDER>_OAUTH_TRUST_EMAIL` and
/// `<PROVIDER>_OAUTH_ALLOWED_DOMAINS` (comma-separated) are optional.
pub fn presets(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Vec<Upstream>> {
    let mut out = Vec::new();
    let list = |name: &str| -> Vec<String> {
        get(name)
            .map(|v| {
                v.split(',')
                    .map(|d| d.trim().to_owned())
                    .filter(|d| !d.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    let preset = |name: &str, label: &str, issuer: &str, (id, secret): (String, String)| {
        let prefix = name.to_uppercase();
        let mut up = Upstream::oidc(name, issuer, &id, &secret);
        up.display_name = Some(label.into());
        up.linking = match get(&format!("{prefix}_OAUTH_LINKING")).as_deref() {
            None | Some("existing_only") => Linking::ExistingOnly,
            Some("create") => Linking::Create,
            Some("link_verified_email") => Linking::LinkVerifiedEmail,
            Some(other) => anyhow::bail!(
                "{prefix}_OAUTH_LINKING={other:?}: use existing_only, create or link_verified_email"
            ),
        };
        up.trust_email = match get(&format!("{prefix}_OAUTH_TRUST_EMAIL")).as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => anyhow::bail!("{prefix}_OAUTH_TRUST_EMAIL={other:?}: use true or false"),
        };
        up.allowed_email_domains = list(&format!("{prefix}_OAUTH_ALLOWED_DOMAINS"));
        anyhow::Ok(up)
    };
    let pair = |id: &str, secret: &str| -> anyhow::Result<Option<(String, String)>> {
        match (get(id), get(secret)) {
            (None, None) => Ok(None),
            (Some(i), Some(s)) => Ok(Some((i, s))),
            _ => anyhow::bail!("set both {id} and {secret}"),
        }
    };
    if let Some(creds) = pair("GOOGLE_OAUTH_CLIENT_ID", "GOOGLE_OAUTH_CLIENT_SECRET")? {
        out.push(preset(
            "google",
            "Google",
            "https://accounts.google.com",
            creds,
        )?);
    }
    if let Some(creds) = pair("GITHUB_OAUTH_CLIENT_ID", "GITHUB_OAUTH_CLIENT_SECRET")? {
        out.push(github(
            preset("github", "GitHub", "https://github.com", creds)?,
            get("GITHUB_OAUTH_URL").as_deref(),
            get("GITHUB_OAUTH_API_URL").as_deref(),
        ));
    }
    if let Some(creds) = pair("MICROSOFT_OAUTH_CLIENT_ID", "MICROSOFT_OAUTH_CLIENT_SECRET")? {
        let tenant = get("MICROSOFT_OAUTH_TENANT")
            .filter(|t| t != "consumers")
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "set MICROSOFT_OAUTH_TENANT to your directory (tenant) id or domain, or to common/organizations with MICROSOFT_OAUTH_ALLOWED_TENANTS"
                )
            })?;
        let issuer = format!("https://login.microsoftonline.com/{tenant}/v2.0");
        let mut up = preset("microsoft", "Microsoft", &issuer, creds)?;
        up.allowed_tenants = list("MICROSOFT_OAUTH_ALLOWED_TENANTS");
        out.push(up);
    }
    if let Some(org) = get("OKTA_ORG_URL") {
        let creds = pair("OKTA_CLIENT_ID", "OKTA_CLIENT_SECRET")?.ok_or_else(|| {
            anyhow::anyhow!("OKTA_ORG_URL is set: set OKTA_CLIENT_ID and OKTA_CLIENT_SECRET too")
        })?;
        out.push(preset("okta", "Okta", org.trim_end_matches('/'), creds)?);
    }
    Ok(out)
}

/// GitHub (or GitHub Enterprise Server at `web`, with its API at `api`): a plain OAuth 2.0
/// provider. The subject is the numeric account `id` (a login can be renamed and taken by
/// someone else); the email is the verified primary one from `/user/emails`, since `/user`
/// shows only a public one, verified or not.
pub fn github(mut up: Upstream, web: Option<&str>, api: Option<&str>) -> Upstream {
    let web = web.unwrap_or("https://github.com").trim_end_matches('/');
    let api = api
        .unwrap_or("https://api.github.com")
        .trim_end_matches('/');
    up.kind = Kind::Oauth2;
    up.issuer = web.to_owned();
    up.authorization_endpoint = Some(format!("{web}/login/oauth/authorize"));
    up.token_endpoint = Some(format!("{web}/login/oauth/access_token"));
    up.userinfo_endpoint = Some(format!("{api}/user"));
    up.emails_endpoint = Some(format!("{api}/user/emails"));
    up.scopes = vec!["read:user".into(), "user:email".into()];
    // GitHub documents the client credentials as form parameters.
    up.token_endpoint_auth_method = ClientAuth::ClientSecretPost;
    up.claims = ClaimNames {
        subject: "id".into(),
        email: "email".into(),
        email_verified: None,
        username: "login".into(),
        name: "name".into(),
    };
    up
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream_config::validate;

    #[test]
    fn presets_come_from_their_variables() {
        let vars = [
            ("GOOGLE_OAUTH_CLIENT_ID", "g-id"),
            ("GOOGLE_OAUTH_CLIENT_SECRET", "g-secret"),
            ("GOOGLE_OAUTH_LINKING", "create"),
            ("GITHUB_OAUTH_CLIENT_ID", "gh-id"),
            ("GITHUB_OAUTH_CLIENT_SECRET", "gh-secret"),
            ("GITHUB_OAUTH_TRUST_EMAIL", "true"),
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
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].issuer, "https://accounts.google.com");
        assert_eq!(list[0].linking, Linking::Create);
        assert_eq!(list[1].kind, Kind::Oauth2);
        assert_eq!(list[1].claims.subject, "id");
        assert!(list[1].trust_email);
        assert_eq!(
            list[1].emails_endpoint.as_deref(),
            Some("https://api.github.com/user/emails")
        );
        assert_eq!(list[2].issuer, "https://corp.okta.com");
        assert_eq!(list[2].allowed_email_domains, ["corp.example", "corp.test"]);
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

    #[test]
    fn an_oauth2_provider_needs_its_endpoints_and_an_oidc_one_takes_none() {
        let mut up = Upstream::oidc("corp", "https://id.corp.example", "id", "secret");
        up.token_endpoint = Some("https://id.corp.example/token".into());
        let e = validate(std::slice::from_ref(&up)).unwrap_err().to_string();
        assert!(e.contains("discovery"), "{e}");
        up.kind = Kind::Oauth2;
        let e = validate(std::slice::from_ref(&up)).unwrap_err().to_string();
        assert!(e.contains("needs authorization_endpoint"), "{e}");
        up.authorization_endpoint = Some("https://id.corp.example/authorize".into());
        up.userinfo_endpoint = Some("http://id.corp.example/me".into());
        let e = validate(std::slice::from_ref(&up)).unwrap_err().to_string();
        assert!(e.contains("userinfo_endpoint must use https"), "{e}");
        up.userinfo_endpoint = Some("https://id.corp.example/me".into());
        validate(std::slice::from_ref(&up)).unwrap();
    }
}
