//! The MCP tools and resources, per authenticated user. The user is the `Principal` the
//! bearer middleware put into the request; tools never see the token.
//!
//! Scopes: `mcp:read` for reading tools and resources, `mcp:write` for `create_secure_note`.
//! With `fixtures` on, the conformance suite's test items are served too, by the wrapper in
//! `conformance::server` (this handler knows nothing of them); they need `mcp:read` at most.

pub mod conformance;
pub mod json_reply;
pub mod prompts;
pub mod scopes;
pub mod tools;
pub mod usage;

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    DiscoverResult, GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, ServerCapabilities, ServerConfig,
};
// Logging is deprecated by SEP-2577 but still part of the 2025-11-25 wire.
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, tool_handler};
use serde_json::json;

use crate::principal::Principal;
use crate::store::Store;

const NOTE_PREFIX: &str = "user://notes/";

pub use scopes::{Need, READ, WRITE, required_scope};

#[derive(Clone)]
pub struct McpServer {
    tool_router: ToolRouter<Self>,
    store: Store,
    /// The conformance fixtures, when configured.
    fixtures: Option<conformance::Fixtures>,
    clock: Arc<dyn oauth_protocol::clock::Clock>,
}

type Parts = axum::http::request::Parts;

fn principal(parts: &Parts) -> Result<Arc<Principal>, McpError> {
    parts
        .extensions
        .get::<Arc<Principal>>()
        .cloned()
        .ok_or_else(|| McpError::internal_error("request is not authenticated", None))
}

fn internal(e: sqlx::Error) -> McpError {
    tracing::error!(error = %e, "storage failure");
    McpError::internal_error("storage failure", None)
}

fn profile(p: &Principal) -> serde_json::Value {
    json!({
        "id": p.sub,
        "username": p.username,
        "email": p.email,
        "display_name": p.name,
        "scopes": p.scope.iter().collect::<Vec<_>>(),
        "client_id": p.client_id,
    })
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_prompts()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("resource-server", env!("CARGO_PKG_VERSION")))
            .with_instructions("Per-user profile, private notes and usage counts. Reading needs mcp:read; creating notes needs mcp:write.")
    }

    async fn discover(&self, _ctx: RequestContext<RoleServer>) -> Result<DiscoverResult, McpError> {
        let info = self.get_info();
        Ok(DiscoverResult::from_server_info(
            self.supported_protocol_versions().into_owned(),
            info,
        ))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        // The profile stays first: clients that read "the first resource" get a real one.
        let resources = vec![
            Resource::new("user://profile", "profile")
                .with_description("The signed-in user's profile")
                .with_mime_type("application/json"),
        ];
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let templates = vec![
            ResourceTemplate::new("user://notes/{note_id}", "note")
                .with_description("One of the signed-in user's notes")
                .with_mime_type("application/json"),
        ];
        Ok(ListResourceTemplatesResult::with_all_items(templates))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let parts = ctx
            .extensions
            .get::<Parts>()
            .ok_or_else(|| McpError::internal_error("request is not authenticated", None))?;
        let p = principal(parts)?;
        let uri = request.uri.clone();
        let body = if uri == "user://profile" {
            profile(&p)
        } else if let Some(id) = uri.strip_prefix(NOTE_PREFIX) {
            // Unknown and foreign ids get the same answer.
            let note = self.store.note(&p.sub, id).await.map_err(internal)?;
            let note = note.ok_or_else(|| {
                McpError::resource_not_found("no such note", Some(json!({"uri": uri})))
            })?;
            serde_json::to_value(&note).expect("a note serializes")
        } else {
            return Err(McpError::resource_not_found(
                "no such resource",
                Some(json!({"uri": uri})),
            ));
        };
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(body.to_string(), uri).with_mime_type("application/json"),
        ])
        .into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(prompts::list()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let parts = ctx
            .extensions
            .get::<Parts>()
            .ok_or_else(|| McpError::internal_error("request is not authenticated", None))?;
        let user = principal(parts)?;
        match prompts::get(&self.store, &user.sub, &request).await? {
            Some(prompt) => Ok(prompt.into()),
            None => Err(McpError::invalid_params(
                format!("no prompt named {:?}", request.name),
                None,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_per_call() {
        let call = |name: &str| json!({"name": name});
        assert_eq!(
            required_scope("tools/call", &call("create_secure_note")),
            Need::Scope(WRITE)
        );
        assert_eq!(
            required_scope("tools/call", &call("get_user_profile")),
            Need::Scope(READ)
        );
        // Default-deny: a tool without an entry is refused (it needed nothing before).
        assert_eq!(
            required_scope("tools/call", &call("unknown")),
            Need::Refused
        );
        assert_eq!(
            required_scope("resources/read", &json!({"uri": "user://profile"})),
            Need::Scope(READ)
        );
        assert_eq!(required_scope("tools/list", &json!({})), Need::Nothing);
    }
}
