//! Demo data for trying the stack out: a user, a public client and the introspection
//! credentials of a local resource server. Created on first start only; never for production.

use crate::config::ResourceServer;
use crate::ids::new_id;
use crate::password::hash_password_blocking;
use crate::state::now;
use crate::store::{ClientRow, Store, User};

pub const DEMO_USER: &str = "testuser";
pub const DEMO_PASSWORD: &str = "testpass";
pub const DEMO_CLIENT: &str = "mcp-test-client";
pub const DEMO_RESOURCE: &str = "http://127.0.0.1:8002/mcp";
pub const DEMO_RS_CLIENT_ID: &str = "mcp-resource-server";
/// File in the data directory holding the demo resource server's introspection secret,
/// made on first start so that no two installations share one.
pub const DEMO_RS_SECRET_FILE: &str = "resource-server-secret";

/// Creates the demo user and the demo public client unless they exist (a second start
/// keeps the data as it is).
pub async fn seed(store: &Store) -> anyhow::Result<()> {
    if store.user_by_username(DEMO_USER).await?.is_none() {
        store
            .insert_user(&User {
                id: new_id(),
                username: DEMO_USER.into(),
                password_hash: hash_password_blocking(DEMO_PASSWORD.into()).await,
                email: Some("testuser@example.com".into()),
                display_name: Some("Test User".into()),
                disabled: 0,
                created_at: now(),
            })
            .await?;
    }
    if store.client(DEMO_CLIENT).await?.is_none() {
        let metadata = oauth_protocol::register::ClientMetadata::from_json(
            &serde_json::json!({
                "client_name": "MCP test client",
                "redirect_uris": ["http://127.0.0.1/callback", "http://localhost/callback"],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
            }),
            &oauth_protocol::Scope::parse("mcp:read mcp:write").expect("valid scopes"),
        )
        .map_err(|e| anyhow::anyhow!("demo client: {e:?}"))?;
        store
            .insert_client(&ClientRow {
                client_id: DEMO_CLIENT.into(),
                secret_hash: None,
                metadata: serde_json::to_string(&metadata)?,
                client_id_issued_at: now(),
                origin: "admin".into(),
            })
            .await?;
    }
    Ok(())
}

/// The demo resource server's introspection secret: read from `dir`, or made there (readable
/// by this user only) on first use.
pub fn resource_server_secret(dir: &std::path::Path) -> anyhow::Result<String> {
    let path = dir.join(DEMO_RS_SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => return Ok(s.trim().to_owned()),
        Ok(_) => anyhow::bail!(
            "{} is too short; delete it to make a new one",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    }
    std::fs::create_dir_all(dir)?;
    let secret = crate::ids::new_secret();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    use std::io::Write;
    options
        .open(&path)
        .and_then(|mut f| f.write_all(secret.as_bytes()))
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(secret)
}

/// The demo resource server's registration, for a configuration without any.
pub fn resource_server(resource: &str, secret: &str) -> ResourceServer {
    ResourceServer {
        resource: resource.to_owned(),
        name: Some("Demo MCP server".into()),
        client_id: DEMO_RS_CLIENT_ID.into(),
        client_secret: oauth_protocol::secret::Secret::new(secret),
        machine_clients: false,
        secret_digest: None,
    }
}
