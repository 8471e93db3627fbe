//! The operations behind `authz-server admin …`, usable on SQLite and PostgreSQL alike.
//! Each returns what the command prints; secrets are shown once, here, and stored hashed.

use anyhow::{Context, bail};
use oauth_protocol::register::ClientMetadata;
use oauth_protocol::secret::digest;

use crate::config::Config;
use crate::ids::{new_id, new_secret};
use crate::password::hash_password_blocking;
use crate::signing_keys::Keys;
use crate::state::now;
use crate::store::{AuditEvent, ClientRow, ResourceServerRow, Store, User};

mod listings;
mod providers;

use listings::when;
pub use listings::{
    audit_list, client_list, grants_list, key_list, resource_list, user_list, user_show,
};
pub use providers::{
    NewProvider, from_toml, provider_add, provider_add_flags, provider_list, provider_remove,
};

/// The id of `username`, for the audit trail of an event about that user.
async fn user_id(store: &Store, username: &str) -> anyhow::Result<String> {
    Ok(store
        .user_by_username(username)
        .await?
        .with_context(|| format!("no user {username}"))?
        .id)
}

async fn audit(
    store: &Store,
    kind: &str,
    user_id: Option<&str>,
    client_id: Option<&str>,
    detail: &str,
) -> anyhow::Result<()> {
    store
        .audit(&AuditEvent {
            id: new_id(),
            at: now(),
            kind: kind.into(),
            user_id: user_id.map(str::to_owned),
            client_id: client_id.map(str::to_owned),
            detail: detail.into(),
        })
        .await?;
    Ok(())
}

fn check_password(password: &str) -> anyhow::Result<()> {
    if password.chars().count() < 8 {
        bail!("the password must be at least 8 characters");
    }
    Ok(())
}

pub async fn user_add(
    store: &Store,
    username: &str,
    password: &str,
    email: Option<String>,
    display_name: Option<String>,
) -> anyhow::Result<String> {
    if username.is_empty() || username.len() > 100 || username.chars().any(char::is_whitespace) {
        bail!("the username must be 1 to 100 characters without spaces");
    }
    check_password(password)?;
    let user = User {
        id: new_id(),
        username: username.into(),
        password_hash: hash_password_blocking(password.into()).await,
        email,
        display_name,
        disabled: 0,
        created_at: now(),
    };
    store
        .insert_user(&user)
        .await
        .with_context(|| format!("cannot add user {username}"))?;
    audit(store, "user_created", Some(&user.id), None, username).await?;
    Ok(format!("created user {username} ({})", user.id))
}

pub async fn user_set_password(
    store: &Store,
    username: &str,
    password: &str,
    keep_sessions: bool,
) -> anyhow::Result<String> {
    check_password(password)?;
    let id = user_id(store, username).await?;
    let hash = hash_password_blocking(password.into()).await;
    if !store
        .set_password(username, &hash, keep_sessions, now())
        .await?
    {
        bail!("no user {username}");
    }
    audit(store, "password_changed", Some(&id), None, username).await?;
    Ok(if keep_sessions {
        format!("password of {username} changed; sessions and grants kept (--keep-sessions)")
    } else {
        format!("password of {username} changed: sessions ended, grants revoked")
    })
}

pub async fn user_disable(store: &Store, username: &str, disabled: bool) -> anyhow::Result<String> {
    let id = user_id(store, username).await?;
    if !store.set_disabled(username, disabled, now()).await? {
        bail!("no user {username}");
    }
    let kind = if disabled {
        "user_disabled"
    } else {
        "user_enabled"
    };
    audit(store, kind, Some(&id), None, username).await?;
    Ok(if disabled {
        format!("{username} disabled: sessions ended, grants revoked")
    } else {
        format!("{username} enabled")
    })
}

pub async fn user_remove(store: &Store, username: &str) -> anyhow::Result<String> {
    let id = user_id(store, username).await?;
    if !store.delete_user(username).await? {
        bail!("no user {username}");
    }
    audit(store, "user_removed", Some(&id), None, username).await?;
    Ok(format!("removed {username} and everything issued to them"))
}

/// A client created by an administrator.
pub struct CreatedClient {
    pub client_id: String,
    pub client_secret: Option<String>,
}

pub async fn client_add(
    store: &Store,
    config: &Config,
    name: &str,
    confidential: bool,
    redirect_uris: &[String],
    scope: Option<&str>,
) -> anyhow::Result<CreatedClient> {
    let mut grants = vec!["refresh_token"];
    if !redirect_uris.is_empty() {
        grants.push("authorization_code");
    }
    if confidential {
        grants.push("client_credentials");
    }
    let doc = serde_json::json!({
        "client_name": name,
        "redirect_uris": redirect_uris,
        "grant_types": grants,
        "response_types": if redirect_uris.is_empty() { vec![] } else { vec!["code"] },
        "token_endpoint_auth_method": if confidential { "client_secret_basic" } else { "none" },
        "scope": scope,
    });
    let metadata = ClientMetadata::from_json(&doc, &config.supported_scopes())
        .map_err(|e| anyhow::anyhow!("{}: {}", e.error, e.error_description.unwrap_or_default()))?;
    let client_id = new_id();
    let secret = confidential.then(new_secret);
    store
        .insert_client(&ClientRow {
            client_id: client_id.clone(),
            secret_hash: secret.as_deref().map(digest),
            metadata: serde_json::to_string(&metadata)?,
            client_id_issued_at: now(),
            origin: crate::clients::ORIGIN_ADMIN.into(),
        })
        .await?;
    audit(store, "client_created", None, Some(&client_id), name).await?;
    Ok(CreatedClient {
        client_id,
        client_secret: secret,
    })
}

impl std::fmt::Display for CreatedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "client_id      {}", self.client_id)?;
        match &self.client_secret {
            Some(s) => write!(f, "client_secret  {s}\n(shown once: store it now)"),
            None => write!(f, "public client (PKCE, no secret)"),
        }
    }
}

pub async fn client_rotate_secret(store: &Store, client_id: &str) -> anyhow::Result<String> {
    let secret = new_secret();
    if !store.set_client_secret(client_id, &digest(&secret)).await? {
        bail!("no confidential client {client_id}");
    }
    audit(store, "client_secret_rotated", None, Some(client_id), "").await?;
    Ok(format!(
        "client_secret  {secret}\n(shown once: the previous secret no longer works)"
    ))
}

pub async fn client_remove(store: &Store, client_id: &str) -> anyhow::Result<String> {
    if !store.delete_client(client_id, now()).await? {
        bail!("no client {client_id}");
    }
    audit(store, "client_removed", None, Some(client_id), "").await?;
    Ok(format!(
        "removed {client_id}; its grants and tokens are revoked"
    ))
}

/// Registers a resource server and prints the introspection credentials it must use.
pub async fn resource_add(
    store: &Store,
    config: &Config,
    resource: &str,
    name: Option<String>,
    client_id: Option<String>,
    machine_clients: bool,
) -> anyhow::Result<String> {
    oauth_protocol::uri::validate_resource(resource).map_err(|e| {
        anyhow::anyhow!(
            "the resource must be the MCP endpoint URL, e.g. https://mcp.example.com/mcp: {resource:?} {e}"
        )
    })?;
    // A configured entry takes precedence over the database, so credentials made here for
    // the same resource (or the same introspection client id) would never be accepted.
    if let Some(rs) = config
        .resource_servers
        .iter()
        .find(|rs| rs.resource == resource || client_id.as_deref() == Some(rs.client_id.as_str()))
    {
        bail!(
            "refused: {} (introspection client {}) is already set by the configuration              (AUTHZ_RESOURCE or [[resource_servers]] in the file), which takes precedence:              credentials made here would never work. Change the configured entry, or remove              it and run this again",
            rs.resource,
            rs.client_id
        );
    }
    let client_id = client_id.unwrap_or_else(new_id);
    let secret = new_secret();
    store
        .insert_resource_server(&ResourceServerRow {
            resource: resource.into(),
            name,
            client_id: client_id.clone(),
            secret_hash: digest(&secret),
            created_at: now(),
            machine_clients: i64::from(machine_clients),
        })
        .await?;
    audit(
        store,
        "resource_server_added",
        None,
        Some(&client_id),
        resource,
    )
    .await?;
    Ok(format!(
        "resource       {resource}\nclient_id      {client_id}\nclient_secret  {secret}\n(shown once; running servers pick the resource up within a minute)"
    ))
}

pub async fn key_rotate(store: &Store) -> anyhow::Result<String> {
    let kid = Keys::rotate(store, now()).await?;
    audit(store, "signing_key_rotated", None, None, &kid).await?;
    Ok(format!(
        "new signing key {kid}; running servers sign with it within a minute"
    ))
}

pub async fn grant_revoke(store: &Store, grant_id: &str) -> anyhow::Result<String> {
    let grant = store
        .grant(grant_id)
        .await?
        .with_context(|| format!("no grant {grant_id}"))?;
    if let Some(at) = grant.revoked_at {
        return Ok(format!(
            "grant {grant_id} was already revoked at {}; nothing changed",
            when(at)
        ));
    }
    store.revoke_grant_and_consent(grant_id, now()).await?;
    audit(
        store,
        "grant_revoked",
        grant.user_id.as_deref(),
        Some(&grant.client_id),
        "admin",
    )
    .await?;
    Ok(format!(
        "revoked grant {grant_id}: its refresh and access tokens no longer work"
    ))
}
