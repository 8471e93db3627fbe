//! `status` and `logout`: what the store holds, and forgetting it (with revocation).

use anyhow::bail;

use crate::oauth;
use crate::session::{client_auth, is_for, now};
use crate::store::{Entry, Store};

pub fn status(store: &Store, json: bool) -> anyhow::Result<String> {
    let contents = store.read()?;
    let now = now();
    let manual = std::env::var("MCP_ACCESS_TOKEN").is_ok_and(|t| !t.is_empty());
    if json {
        let entries: Vec<serde_json::Value> = contents
            .entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "resource": e.resource,
                    "issuer": e.issuer,
                    "client_id": e.client_id,
                    "scope": e.scope,
                    "expires_at": (e.expires_at != 0).then_some(e.expires_at),
                    "has_access_token": e.access_token.is_some(),
                    "has_refresh_token": e.refresh_token.is_some(),
                })
            })
            .collect();
        let doc = serde_json::json!({
            "store": store.path(),
            "token_from": if manual { "MCP_ACCESS_TOKEN" } else { "store" },
            "entries": entries,
        });
        return Ok(format!("{}\n", serde_json::to_string_pretty(&doc)?));
    }
    let mut out = format!("token store: {}\n", store.path().display());
    if manual {
        out.push_str("MCP_ACCESS_TOKEN is set: every command uses it instead of the store\n");
    }
    if contents.entries.is_empty() {
        out.push_str("not signed in anywhere\n");
    }
    for e in &contents.entries {
        let expiry = match (&e.access_token, e.expires_at) {
            (None, _) => "no access token (log in again)".to_owned(),
            (Some(_), 0) => "access token without a stated lifetime".to_owned(),
            (Some(_), at) if at <= now => "access token expired".to_owned(),
            (Some(_), at) => format!("access token valid for {} more minutes", (at - now) / 60),
        };
        out.push_str(&format!(
            "{}\n  issuer   {}\n  scope    {}\n  token    {expiry}{}\n",
            e.resource,
            e.issuer,
            e.scope,
            if e.refresh_token.is_some() {
                ", refreshable"
            } else {
                ""
            }
        ));
    }
    Ok(out)
}

/// Revokes (RFC 7009) and forgets the entries for `url`, or all. An entry is forgotten even
/// when revoking fails; the lines say what happened.
pub async fn logout(store: &Store, url: Option<&str>) -> anyhow::Result<Vec<String>> {
    let _lock = store.lock()?;
    let mut contents = store.read()?;
    let (gone, kept): (Vec<Entry>, Vec<Entry>) = contents
        .entries
        .drain(..)
        .partition(|e| url.is_none_or(|u| is_for(e, u)));
    contents.entries = kept;
    if gone.is_empty() {
        bail!("not signed in for {}", url.unwrap_or("any server"));
    }
    let http = oauth::http();
    let mut lines = Vec::new();
    for e in &gone {
        let revoked = match &e.revocation_endpoint {
            None => "the server offers no revocation".to_owned(),
            Some(endpoint) => {
                let auth = client_auth(e);
                // The refresh token first: revoking it ends the whole grant on most servers.
                let mut outcome = "revoked".to_owned();
                for (token, hint) in [
                    (&e.refresh_token, "refresh_token"),
                    (&e.access_token, "access_token"),
                ] {
                    let Some(token) = token else { continue };
                    let mut form = vec![
                        ("token", token.clone()),
                        ("token_type_hint", hint.to_owned()),
                    ];
                    let req = auth.apply(http.post(endpoint), &mut form);
                    match req.form(&form).send().await {
                        Ok(r) if r.status().is_success() => {}
                        Ok(r) => outcome = format!("revocation answered {}", r.status()),
                        Err(err) => outcome = format!("revocation failed: {err}"),
                    }
                }
                outcome
            }
        };
        lines.push(format!("logged out of {} ({revoked})", e.resource));
    }
    store.write(&contents)?;
    Ok(lines)
}
