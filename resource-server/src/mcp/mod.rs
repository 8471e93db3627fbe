//! The MCP tools and resources, per authenticated user. The user is the `Principal` the
//! bearer middleware put into the request; tools never see the token.
//!
//! Scopes: `mcp:read` for reading tools and resources, `mcp:write` for `create_secure_note`.
//! With `fixtures` on, the conformance suite's test items are served too (`fixtures`); they
//! need `mcp:read` at most.

pub mod fixtures;
pub mod prompts;
pub mod scopes;
pub mod usage;

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, CompleteRequestMethod, CompleteRequestParams, CompleteResult, ConstString,
    ContentBlock, DiscoverResult, GetPromptRequestMethod, GetPromptRequestParams,
    GetPromptResponse, Implementation, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Resource, ResourceContents, ResourceTemplate, ServerCapabilities,
    ServerConfig, SetLevelRequestMethod, SubscribeRequestMethod, SubscribeRequestParams,
    UnsubscribeRequestMethod, UnsubscribeRequestParams,
};
// Logging is deprecated by SEP-2577 but still part of the 2025-11-25 wire.
#[expect(deprecated)]
use rmcp::model::SetLevelRequestParams;
use rmcp::service::RequestContext;
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler, schemars, tool, tool_handler, tool_router,
};
use serde_json::json;

use crate::principal::Principal;
use crate::store::{Note, Store};

const MAX_TITLE: usize = 200;
const MAX_CONTENT: usize = 10_000;
const PREVIEW: usize = 80;
const NOTE_PREFIX: &str = "user://notes/";

pub use scopes::{Need, READ, WRITE, required_scope};

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct CreateNote {
    /// The note's text (1 to 10000 characters).
    pub content: String,
    /// A short title (at most 200 characters).
    #[serde(default = "untitled")]
    pub title: String,
}

fn untitled() -> String {
    "Untitled".into()
}

#[derive(Clone)]
pub struct McpServer {
    tool_router: ToolRouter<Self>,
    store: Store,
    /// The conformance fixtures, when configured.
    fixtures: Option<fixtures::Fixtures>,
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

fn json_text(value: serde_json::Value) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(value.to_string())])
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

fn preview(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(PREVIEW).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

#[tool_router]
impl McpServer {
    pub fn new(
        store: Store,
        with_fixtures: bool,
        clock: Arc<dyn oauth_protocol::clock::Clock>,
    ) -> Self {
        let mut tool_router = Self::tool_router();
        let fixtures = with_fixtures.then(|| {
            tool_router += Self::fixture_tools() + Self::input_required_tools();
            fixtures::Fixtures::generate()
        });
        Self {
            tool_router,
            store,
            fixtures,
            clock,
        }
    }

    /// The server's own tools (without the fixtures).
    pub fn own_tools() -> ToolRouter<Self> {
        Self::tool_router()
    }

    /// The handler for a new MCP session: shares the router, the store and the fixture key,
    /// with fresh per-session fixture state (the logging level).
    pub fn for_session(&self) -> Self {
        Self {
            fixtures: self.fixtures.as_ref().map(fixtures::Fixtures::for_session),
            ..self.clone()
        }
    }

    #[tool(
        description = "The signed-in user's profile: id, username, email, display name, granted scopes and client id."
    )]
    async fn get_user_profile(
        &self,
        Extension(parts): Extension<Parts>,
    ) -> Result<CallToolResult, McpError> {
        let p = principal(&parts)?;
        Ok(json_text(profile(&p)))
    }

    #[tool(description = "Store a private note for the signed-in user. Returns the note's id.")]
    async fn create_secure_note(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<CreateNote>,
    ) -> Result<CallToolResult, McpError> {
        let p = principal(&parts)?;
        let content = args.content.trim();
        let title = args.title.trim();
        if content.is_empty() {
            return Err(McpError::invalid_params("content must not be empty", None));
        }
        if content.chars().count() > MAX_CONTENT {
            return Err(McpError::invalid_params(
                format!("content is longer than {MAX_CONTENT} characters"),
                None,
            ));
        }
        if title.is_empty() || title.chars().count() > MAX_TITLE {
            return Err(McpError::invalid_params(
                format!("title must be 1 to {MAX_TITLE} characters"),
                None,
            ));
        }
        let note = Note {
            id: new_note_id(),
            title: title.to_owned(),
            content: content.to_owned(),
            created_at: self.clock.now(),
        };
        self.store
            .insert_note(&p.sub, &note)
            .await
            .map_err(internal)?;
        Ok(json_text(
            json!({"id": note.id, "title": note.title, "uri": format!("{NOTE_PREFIX}{}", note.id)}),
        ))
    }

    #[tool(description = "List the signed-in user's notes with a short preview of each.")]
    async fn list_secure_notes(
        &self,
        Extension(parts): Extension<Parts>,
    ) -> Result<CallToolResult, McpError> {
        let p = principal(&parts)?;
        let notes = self.store.notes(&p.sub).await.map_err(internal)?;
        let items: Vec<_> = notes
            .iter()
            .map(|n| json!({"id": n.id, "title": n.title, "preview": preview(&n.content), "created_at": n.created_at}))
            .collect();
        Ok(json_text(json!({"notes": items, "count": items.len()})))
    }

    #[tool(description = "The signed-in user's request counts, per tool and in total.")]
    async fn get_api_usage(
        &self,
        Extension(parts): Extension<Parts>,
    ) -> Result<CallToolResult, McpError> {
        let p = principal(&parts)?;
        let usage = self.store.usage(&p.sub).await.map_err(internal)?;
        let total: i64 = usage.iter().map(|(_, n)| n).sum();
        let per: serde_json::Map<String, serde_json::Value> =
            usage.into_iter().map(|(k, n)| (k, n.into())).collect();
        Ok(json_text(json!({"total": total, "by_name": per})))
    }
}

/// 128 random bits, so ids cannot be guessed.
fn new_note_id() -> String {
    use base64::Engine;
    use ring::rand::SecureRandom;
    let mut buf = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut buf)
        .expect("the OS random source failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = match &self.fixtures {
            Some(_) => fixtures::capabilities(),
            None => ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_prompts()
                .build(),
        };
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("resource-server", env!("CARGO_PKG_VERSION")))
            .with_instructions("Per-user profile, private notes and usage counts. Reading needs mcp:read; creating notes needs mcp:write.")
    }

    async fn discover(&self, _ctx: RequestContext<RoleServer>) -> Result<DiscoverResult, McpError> {
        let mut info = self.get_info();
        if self.fixtures.is_some() {
            fixtures::stateless_capabilities(&mut info.capabilities);
        }
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
        let mut resources = vec![
            Resource::new("user://profile", "profile")
                .with_description("The signed-in user's profile")
                .with_mime_type("application/json"),
        ];
        if self.fixtures.is_some() {
            resources.extend(fixtures::resources());
        }
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let mut templates = vec![
            ResourceTemplate::new("user://notes/{note_id}", "note")
                .with_description("One of the signed-in user's notes")
                .with_mime_type("application/json"),
        ];
        if self.fixtures.is_some() {
            templates.extend(fixtures::resource_templates());
        }
        Ok(ListResourceTemplatesResult::with_all_items(templates))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        if self.fixtures.is_some() && fixtures::is_fixture_uri(&request.uri) {
            return fixtures::read(&request.uri).map(Into::into);
        }
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
        let mut all = prompts::list();
        if self.fixtures.is_some() {
            all.extend(fixtures::prompts());
        }
        Ok(ListPromptsResult::with_all_items(all))
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
        if let Some(prompt) = prompts::get(&self.store, &user.sub, &request).await? {
            return Ok(prompt.into());
        }
        self.fixtures::<GetPromptRequestMethod>()?
            .get_prompt(request, &ctx)
            .await
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        self.fixtures::<CompleteRequestMethod>()?;
        fixtures::complete(&request)
    }

    #[expect(deprecated)]
    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.fixtures::<SetLevelRequestMethod>()?
            .set_level(request, &ctx)
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.fixtures::<SubscribeRequestMethod>()?;
        fixtures::subscribable(&request.uri)
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.fixtures::<UnsubscribeRequestMethod>()?;
        fixtures::subscribable(&request.uri)
    }
}

impl McpServer {
    /// The fixtures, or what method `M` answers without them: "method not found".
    fn fixtures<M: ConstString>(&self) -> Result<&fixtures::Fixtures, McpError> {
        self.fixtures
            .as_ref()
            .ok_or_else(McpError::method_not_found::<M>)
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

    #[test]
    fn previews_are_short() {
        assert_eq!(preview("short"), "short");
        assert_eq!(preview(&"é".repeat(100)).chars().count(), PREVIEW + 1);
    }
}
