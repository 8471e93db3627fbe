//! `admin provider add/remove/list`: upstream providers kept in the database, beside those of
//! the configuration file. Running servers pick changes up within a minute.

use std::fmt::Write as _;

use anyhow::bail;

use super::audit;
use crate::config::{Config, Upstream};
use crate::state::now;
use crate::store::Store;
use crate::upstream_config::{Linking, from_row, to_row, validate};

/// What `admin provider add` was told.
pub struct NewProvider {
    pub name: String,
    /// `google`, `github`, `microsoft` or `okta`: their endpoints and claims.
    pub preset: Option<String>,
    /// The OpenID issuer; Okta's org URL; GitHub Enterprise Server's web URL.
    pub issuer: Option<String>,
    /// Microsoft: the tenant (or `common`/`organizations` with `allowed_tenants`).
    pub tenant: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    pub display_name: Option<String>,
    pub linking: Option<Linking>,
    pub trust_email: bool,
    pub allowed_domains: Vec<String>,
    pub allowed_tenants: Vec<String>,
    pub allow_loopback_http: bool,
}

impl NewProvider {
    /// The provider these settings describe: a preset (built by the same code as the
    /// presets' variables) or a plain OpenID Provider.
    fn upstream(&self) -> anyhow::Result<Upstream> {
        let mut up = match self.preset.as_deref() {
            None => {
                let Some(issuer) = &self.issuer else {
                    bail!("give --issuer (the provider's OpenID issuer URL) or --preset");
                };
                Upstream::oidc(&self.name, issuer, &self.client_id, &self.client_secret)
            }
            Some(preset) => {
                let prefix = preset.to_uppercase();
                let mut vars = vec![
                    (format!("{prefix}_OAUTH_CLIENT_ID"), self.client_id.clone()),
                    (
                        format!("{prefix}_OAUTH_CLIENT_SECRET"),
                        self.client_secret.clone(),
                    ),
                ];
                match preset {
                    "google" => {}
                    "github" => {
                        if let Some(web) = &self.issuer {
                            vars.push(("GITHUB_OAUTH_URL".into(), web.clone()));
                            vars.push((
                                "GITHUB_OAUTH_API_URL".into(),
                                format!("{}/api/v3", web.trim_end_matches('/')),
                            ));
                        }
                    }
                    "microsoft" => {
                        let Some(tenant) = &self.tenant else {
                            bail!("--preset microsoft needs --tenant");
                        };
                        vars.push(("MICROSOFT_OAUTH_TENANT".into(), tenant.clone()));
                    }
                    "okta" => {
                        let Some(org) = &self.issuer else {
                            bail!(
                                "--preset okta needs --issuer (the org URL or authorization server issuer)"
                            );
                        };
                        vars = vec![
                            ("OKTA_ORG_URL".into(), org.clone()),
                            ("OKTA_CLIENT_ID".into(), self.client_id.clone()),
                            ("OKTA_CLIENT_SECRET".into(), self.client_secret.clone()),
                        ];
                    }
                    other => {
                        bail!("unknown preset {other:?}: use google, github, microsoft or okta")
                    }
                }
                let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                let mut up = crate::upstream_presets::presets(&get)?
                    .pop()
                    .expect("the preset's variables are set");
                up.name.clone_from(&self.name);
                up
            }
        };
        if let Some(label) = &self.display_name {
            up.display_name = Some(label.clone());
        }
        if let Some(linking) = self.linking {
            up.linking = linking;
        }
        up.trust_email |= self.trust_email;
        up.allowed_email_domains
            .extend(self.allowed_domains.iter().cloned());
        up.allowed_tenants
            .extend(self.allowed_tenants.iter().cloned());
        up.allow_loopback_http = self.allow_loopback_http;
        Ok(up)
    }
}

/// Parses an `[[upstream]]`-shaped TOML table (every setting, for providers the flags do not
/// cover: `oauth2` ones, claim rules) for the provider `name`. The secret given apart fills a
/// missing `client_secret`.
pub fn from_toml(text: &str, name: &str, secret: Option<String>) -> anyhow::Result<Upstream> {
    let mut table: toml::Table = toml::from_str(text)?;
    if let Some(toml::Value::Array(list)) = table.remove("upstream") {
        let [toml::Value::Table(one)] = <[toml::Value; 1]>::try_from(list)
            .map_err(|_| anyhow::anyhow!("the file must hold exactly one [[upstream]]"))?
        else {
            bail!("[[upstream]] must be a table");
        };
        table = one;
    }
    table.insert("name".into(), toml::Value::String(name.into()));
    if !table.contains_key("client_secret") {
        let Some(secret) = secret else {
            bail!("no client_secret in the file, --client-secret-file or AUTHZ_PROVIDER_SECRET");
        };
        table.insert("client_secret".into(), toml::Value::String(secret));
    }
    Ok(table.try_into()?)
}

/// Stores a provider, refusing one the configuration already names (it would take
/// precedence, and this one would never be used).
pub async fn provider_add(store: &Store, config: &Config, up: Upstream) -> anyhow::Result<String> {
    validate(std::slice::from_ref(&up))?;
    if config.upstream.iter().any(|u| u.name == up.name) {
        bail!(
            "refused: the configuration already has a provider named {:?}, which takes precedence",
            up.name
        );
    }
    store.insert_provider(&to_row(&up, now())).await?;
    audit(store, "provider_added", None, None, &up.name).await?;
    Ok(format!(
        "added {}\nredirect URI   {}\n(register it at the provider; running servers offer it within a minute)",
        up.name,
        config.endpoint(&format!("/federation/{}/callback", up.name))
    ))
}

pub async fn provider_add_flags(
    store: &Store,
    config: &Config,
    new: &NewProvider,
) -> anyhow::Result<String> {
    provider_add(store, config, new.upstream()?).await
}

pub async fn provider_remove(store: &Store, config: &Config, name: &str) -> anyhow::Result<String> {
    if config.upstream.iter().any(|u| u.name == name) {
        bail!("{name:?} is set by the configuration file or the environment: remove it there");
    }
    if !store.delete_provider(name).await? {
        bail!("no provider {name} was added with this command");
    }
    audit(store, "provider_removed", None, None, name).await?;
    Ok(format!(
        "removed {name}; its users' links are kept (adding it again restores them); running servers stop offering it within a minute"
    ))
}

fn line(out: &mut String, config: &Config, up: &Upstream, source: &str) {
    let _ = writeln!(
        out,
        "{}\t{:?}\t{}\t{:?}\t{source}\t{}",
        up.name,
        up.kind,
        up.issuer,
        up.linking,
        config.endpoint(&format!("/federation/{}/callback", up.name))
    );
}

/// Every provider, configured and added, with the redirect URI to register at each.
pub async fn provider_list(store: &Store, config: &Config) -> anyhow::Result<String> {
    let mut out = String::from("NAME\tKIND\tISSUER\tLINKING\tSOURCE\tREDIRECT_URI\n");
    for up in &config.upstream {
        line(&mut out, config, up, "config");
    }
    for row in store.list_providers().await? {
        match from_row(&row) {
            Ok(up) => line(&mut out, config, &up, "admin"),
            Err(e) => {
                let _ = writeln!(out, "{}\t?\t?\t?\tadmin\tcannot be used: {e}", row.name);
            }
        }
    }
    Ok(out)
}
