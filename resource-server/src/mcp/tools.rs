//! The server's own tools, per signed-in user: profile, notes and usage.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::{ErrorData as McpError, schemars, tool, tool_router};
use serde_json::json;

use super::{McpServer, NOTE_PREFIX, Parts, conformance, internal, principal, profile};
use crate::store::{Note, Store};

const MAX_TITLE: usize = 200;
const MAX_CONTENT: usize = 10_000;
const PREVIEW: usize = 80;

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

fn json_text(value: serde_json::Value) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(value.to_string())])
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
            conformance::Fixtures::generate()
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
            fixtures: self
                .fixtures
                .as_ref()
                .map(conformance::Fixtures::for_session),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_short() {
        assert_eq!(preview("short"), "short");
        assert_eq!(preview(&"é".repeat(100)).chars().count(), PREVIEW + 1);
    }
}
