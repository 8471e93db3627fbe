//! The listings of `authz-server admin …`: tab-separated, a header line first, times in
//! RFC 3339 (UTC), text from the database made printable.

use std::fmt::Write;

use anyhow::Context;
use oauth_protocol::register::ClientMetadata;

use crate::config::Config;
use crate::store::{Store, audit_text};

/// RFC 3339 in UTC (`2026-12-01T21:47:12Z`): unambiguous, sorts as text, and readable.
pub(super) fn when(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| at.to_string())
}

pub async fn user_list(store: &Store) -> anyhow::Result<String> {
    let mut out = String::from("ID\tUSERNAME\tSTATUS\tEMAIL\n");
    for u in store.list_users().await? {
        let status = if u.disabled == 0 {
            "active"
        } else {
            "disabled"
        };
        let _ = writeln!(
            out,
            "{}\t{}\t{status}\t{}",
            u.id,
            u.username,
            u.email.unwrap_or_default()
        );
    }
    Ok(out)
}

pub async fn client_list(store: &Store) -> anyhow::Result<String> {
    let mut out = String::from("CLIENT_ID\tTYPE\tORIGIN\tNAME\tREDIRECT_URIS\n");
    for c in store.list_clients().await? {
        let m: ClientMetadata = serde_json::from_str(&c.metadata)?;
        let kind = if c.secret_hash.is_some() {
            "confidential"
        } else {
            "public"
        };
        let _ = writeln!(
            out,
            "{}\t{kind}\t{}\t{}\t{}",
            c.client_id,
            c.origin,
            m.client_name.unwrap_or_default(),
            m.redirect_uris.join(" ")
        );
    }
    Ok(out)
}

pub async fn resource_list(store: &Store, config: &Config) -> anyhow::Result<String> {
    let mut out = String::from("RESOURCE\tINTROSPECTION_CLIENT_ID\tSOURCE\tNAME\n");
    for rs in &config.resource_servers {
        let _ = writeln!(
            out,
            "{}\t{}\tconfiguration\t{}",
            rs.resource,
            rs.client_id,
            rs.name.clone().unwrap_or_default()
        );
    }
    for rs in store.list_resource_servers().await? {
        let _ = writeln!(
            out,
            "{}\t{}\tdatabase\t{}",
            rs.resource,
            rs.client_id,
            rs.name.unwrap_or_default()
        );
    }
    Ok(out)
}

pub async fn key_list(store: &Store) -> anyhow::Result<String> {
    let mut out = String::from("KID\tCREATED\tSTATUS\n");
    for k in store.signing_keys().await? {
        let status = match k.retired_at {
            None => "active".to_owned(),
            Some(at) => format!("retired at {}", when(at)),
        };
        let _ = writeln!(out, "{}\t{}\t{status}", k.kid, when(k.created_at));
    }
    Ok(out)
}

pub async fn grants_list(store: &Store, username: &str) -> anyhow::Result<String> {
    let user = store
        .user_by_username(username)
        .await?
        .with_context(|| format!("no user {username}"))?;
    let mut out = String::from("GRANT_ID\tCLIENT_ID\tSCOPE\tRESOURCE\tLAST_USED\n");
    for g in store.user_grants(&user.id).await? {
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}",
            g.id,
            g.client_id,
            g.scope,
            g.resource,
            when(g.last_used_at)
        );
    }
    Ok(out)
}

pub async fn audit_list(store: &Store, limit: i64) -> anyhow::Result<String> {
    let mut out = String::from("AT\tEVENT\tUSER_ID\tCLIENT_ID\tDETAIL\n");
    for e in store.audit_events(limit).await? {
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}",
            when(e.at),
            audit_text(&e.kind, usize::MAX),
            audit_text(&e.user_id.unwrap_or_default(), usize::MAX),
            audit_text(&e.client_id.unwrap_or_default(), usize::MAX),
            audit_text(&e.detail, usize::MAX)
        );
    }
    Ok(out)
}

pub async fn user_show(store: &Store, username: &str) -> anyhow::Result<String> {
    let user = store
        .user_by_username(username)
        .await?
        .with_context(|| format!("no user {username}"))?;
    let mut out = format!(
        "id\t{}\nusername\t{}\nemail\t{}\ndisplay_name\t{}\nstatus\t{}\ncreated\t{}\npassword\t{}\n",
        user.id,
        audit_text(&user.username, usize::MAX),
        audit_text(user.email.as_deref().unwrap_or_default(), usize::MAX),
        audit_text(user.display_name.as_deref().unwrap_or_default(), usize::MAX),
        if user.disabled == 0 {
            "enabled"
        } else {
            "disabled"
        },
        when(user.created_at),
        if user.password_hash == "!" {
            "none (signs in through a provider)"
        } else {
            "set"
        },
    );
    out.push_str("IDENTITY_PROVIDER\tISSUER\tSUBJECT\tEMAIL\tLINKED\n");
    for l in store.linked_identities(&user.id).await? {
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}",
            l.provider,
            l.issuer,
            audit_text(&l.subject, usize::MAX),
            audit_text(l.email.as_deref().unwrap_or_default(), usize::MAX),
            when(l.created_at)
        );
    }
    Ok(out)
}
