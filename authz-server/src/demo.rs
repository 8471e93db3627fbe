//! Demo data for trying the stack out: a user, a public client and the introspection
//! credentials of a local resource server. Created on first start only; never for production.

use crate::config::ResourceServer;
use crate::crypto::{hash_password_blocking, new_id};
use crate::state::now;
use crate::store::{ClientRow, Store, User};

pub const DEMO_USER: &str = "testuser";
pub const DEMO_PASSWORD: &str = "testpass";
pub const DEMO_CLIENT: &str = "mcp-test-client";
pub const DEMO_RESOURCE: &str = "http://127.0.0.1:8002/mcp";
pub const DEMO_RS_CLIENT_ID: &str = "mcp-resource-server";
pub const DEMO_RS_SECRET: &str = "demo-resource-server-secret";

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

/// The demo resource server's registration, for a configuration without any.
pub fn resource_server(resource: &str) -> ResourceServer {
    ResourceServer {
        resource: resource.to_owned(),
        name: Some("Demo MCP server".into()),
        client_id: DEMO_RS_CLIENT_ID.into(),
        client_secret: oauth_protocol::secret::Secret::new(DEMO_RS_SECRET),
        machine_clients: false,
        secret_digest: None,
    }
}
