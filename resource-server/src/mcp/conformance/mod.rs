//! Conformance fixtures: the tools, resources, prompts, logging, completion and subscriptions
//! the official MCP conformance suite's server scenarios call, served only when `fixtures` is
//! configured. The values are the ones the suite checks or states (see
//! `interop/conformance/NOTES.md`, "Fixture spec for the RS"). Nothing here reads or writes user
//! data.
//!
//! Both wires are served on the same endpoint: 2025-11-25 sessions, where the server asks the
//! client through server-to-client requests, and stateless 2026-07-28, where it answers with an
//! `InputRequiredResult` (SEP-2322) instead and reads the answers from the retried request
//! (`input`).

// Logging, sampling and roots are deprecated by SEP-2577, yet still part of the 2025-11-25
// wire the suite tests.
#![expect(deprecated)]

/// Returns from the enclosing tool with the `InputRequiredResult` when the client has not
/// answered yet.
macro_rules! answers {
    ($asked:expr) => {
        match $asked {
            Asked::Pending(more) => return Ok(more.into()),
            Asked::Answered(answers) => answers,
        }
    };
}

mod catalog;
mod input;
pub mod reconnect;
pub mod server;
mod tools;

pub use catalog::*;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::handler::server::tool::InputResponses;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult, CompletionInfo,
    ContentBlock, GetPromptRequestParams, GetPromptResponse, GetPromptResult, JsonObject,
    LoggingLevel, LoggingMessageNotificationParam, ProgressNotificationParam, Prompt,
    PromptArgument, PromptMessage, ProtocolVersion, ReadResourceResult, Reference, Resource,
    ResourceContents, ResourceTemplate, Role, ServerCapabilities, SetLevelRequestParams,
};
use rmcp::service::{RequestContext, ServiceError};
use rmcp::{ErrorData as McpError, RoleServer, schemars, tool, tool_router};
use serde_json::{Value, json};

use super::McpServer;
use input::{Asked, Round};

/// A 1×1 red RGBA PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A WAV file: 8 kHz, mono, 16-bit, one silent sample.
const WAV: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQIAAAAAAA==";
/// The pause between progress or log notifications, so clients see them arrive over time.
const STEP: Duration = Duration::from_millis(50);

const STATIC_TEXT: &str = "test://static-text";
const STATIC_BINARY: &str = "test://static-binary";
const WATCHED: &str = "test://watched-resource";
const TEMPLATE: &str = "test://template/{id}/data";

/// Every fixture tool, for the scope check (`mcp:read`) before routing.
const TOOLS: [&str; 26] = [
    "test_simple_text",
    "test_image_content",
    "test_audio_content",
    "test_embedded_resource",
    "test_multiple_content_types",
    "test_error_handling",
    "test_tool_with_progress",
    "test_tool_with_logging",
    "test_sampling",
    "test_elicitation",
    "test_elicitation_sep1034_defaults",
    "test_elicitation_sep1330_enums",
    "test_reconnection",
    "json_schema_2020_12_tool",
    "test_missing_capability",
    "test_streaming_elicitation",
    "test_logging_tool",
    "test_custom_header",
    "test_input_required_result_elicitation",
    "test_input_required_result_sampling",
    "test_input_required_result_list_roots",
    "test_input_required_result_request_state",
    "test_input_required_result_multiple_inputs",
    "test_input_required_result_multi_round",
    "test_input_required_result_tampered_state",
    "test_input_required_result_capabilities",
];

pub fn is_fixture_tool(name: &str) -> bool {
    TOOLS.contains(&name)
}

/// Fixture state: the key that seals `requestState`, shared by every handler, and the logging
/// level of one session.
#[derive(Clone)]
pub struct Fixtures {
    /// Clients echo `requestState` verbatim, so it is sealed with this (random) key to be
    /// trusted when it comes back.
    key: ring::hmac::Key,
    /// Set by `logging/setLevel` in this session; `None` sends every level.
    level: Arc<Mutex<Option<LoggingLevel>>>,
}

impl Fixtures {
    /// Fixture state with a new random key.
    pub fn generate() -> Self {
        let key =
            ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
                .expect("the OS random source failed");
        Self {
            key,
            level: Arc::default(),
        }
    }

    /// The same key, with the state of a new session.
    pub fn for_session(&self) -> Self {
        Self {
            key: self.key.clone(),
            level: Arc::default(),
        }
    }

    /// `logging/setLevel`, a 2025-11-25 method: the 2026-07-28 wire sets the level per request
    /// in `_meta` and must answer "method not found".
    pub fn set_level(
        &self,
        request: SetLevelRequestParams,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if stateless(ctx) {
            return Err(McpError::method_not_found::<
                rmcp::model::SetLevelRequestMethod,
            >());
        }
        *self.level.lock().expect("logging level lock") = Some(request.level);
        Ok(())
    }

    /// Sends `data` as a log message if the client asked for `level`: in this session
    /// (2025-11-25), or in the request's `_meta` (2026-07-28, where no level means no logs).
    async fn log(
        &self,
        ctx: &RequestContext<RoleServer>,
        level: LoggingLevel,
        data: &str,
    ) -> Result<(), McpError> {
        let threshold = if stateless(ctx) {
            ctx.meta.log_level()
        } else {
            Some(
                self.level
                    .lock()
                    .expect("logging level lock")
                    .unwrap_or(LoggingLevel::Debug),
            )
        };
        if threshold.is_some_and(|t| severity(level) >= severity(t)) {
            ctx.peer
                .notify_logging_message(
                    LoggingMessageNotificationParam::new(level, json!(data))
                        .with_logger("conformance-fixtures"),
                )
                .await
                .map_err(unreachable_client)?;
        }
        Ok(())
    }

    pub async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let args = request.arguments.unwrap_or_default();
        let user = |content| PromptMessage::new(Role::User, content);
        let messages = match request.name.as_str() {
            "test_simple_prompt" => vec![user(ContentBlock::text(
                "This is a simple prompt for testing.",
            ))],
            "test_prompt_with_arguments" => {
                let (arg1, arg2) = (argument(&args, "arg1")?, argument(&args, "arg2")?);
                vec![user(ContentBlock::text(format!(
                    "Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"
                )))]
            }
            "test_prompt_with_embedded_resource" => {
                let uri = argument(&args, "resourceUri")?;
                vec![
                    user(ContentBlock::resource(
                        ResourceContents::text("Embedded resource content for testing.", uri)
                            .with_mime_type("text/plain"),
                    )),
                    user(ContentBlock::text(
                        "Please process the embedded resource above.",
                    )),
                ]
            }
            "test_prompt_with_image" => vec![
                user(ContentBlock::image(PNG, "image/png")),
                user(ContentBlock::text("Please analyze the image above.")),
            ],
            "test_input_required_result_prompt" => {
                let round = Round::new(
                    "test_input_required_result_prompt",
                    request.input_responses,
                    request.request_state,
                );
                let question = input::elicitation(
                    "What context should the prompt use?",
                    json!({"type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]}),
                );
                let answers = answers!(
                    self.ask(ctx, &round, vec![("user_context", question)], None)
                        .await?
                );
                let context = input::accepted_field(&answers, "user_context", "context")?;
                let context = context.as_deref().unwrap_or("none given");
                vec![user(ContentBlock::text(format!(
                    "Use this context: {context}"
                )))]
            }
            other => {
                return Err(McpError::invalid_params(
                    format!("no prompt named {other:?}"),
                    None,
                ));
            }
        };
        Ok(GetPromptResult::new(messages).into())
    }
}

/// Whether the request came on the stateless 2026-07-28 wire (or later).
fn stateless(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.protocol_version()
        .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

fn unreachable_client(e: ServiceError) -> McpError {
    McpError::internal_error(format!("the client could not be reached: {e}"), None)
}

fn argument<'a>(args: &'a JsonObject, name: &str) -> Result<&'a str, McpError> {
    args.get(name).and_then(Value::as_str).ok_or_else(|| {
        McpError::invalid_params(format!("argument {name:?} (a string) is required"), None)
    })
}

fn text(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

/// An input schema given as JSON.
fn schema(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(object) => Arc::new(object),
        _ => unreachable!("input schemas are objects"),
    }
}

/// Capabilities on the 2025-11-25 wire (`initialize`).
pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities::builder()
        .enable_tools()
        .enable_resources()
        .enable_resources_subscribe()
        .enable_prompts()
        .enable_logging()
        .enable_completions()
        .build()
}

/// Capabilities on the 2026-07-28 wire (`server/discover`): that wire subscribes through
/// `subscriptions/listen`, which is not served, so nothing that needs it is declared; and it
/// sets the log level per request, so `logging` is gone.
pub fn stateless_capabilities(capabilities: &mut ServerCapabilities) {
    capabilities.logging = None;
    if let Some(resources) = capabilities.resources.as_mut() {
        resources.subscribe = None;
        resources.list_changed = None;
    }
    if let Some(tools) = capabilities.tools.as_mut() {
        tools.list_changed = None;
    }
    if let Some(prompts) = capabilities.prompts.as_mut() {
        prompts.list_changed = None;
    }
}

impl McpServer {
    /// The three log messages of the logging fixtures, 50 ms apart.
    pub(super) async fn log_steps(&self, ctx: &RequestContext<RoleServer>) -> Result<(), McpError> {
        let fx = self.fx()?;
        for (i, message) in [
            "Tool execution started",
            "Tool processing data",
            "Tool execution completed",
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                tokio::time::sleep(STEP).await;
            }
            fx.log(ctx, LoggingLevel::Info, message).await?;
        }
        Ok(())
    }

    /// Asks one elicitation question and reports the answer as `<label>: action=…, content=…`.
    pub(super) async fn elicit(
        &self,
        name: &'static str,
        ctx: &RequestContext<RoleServer>,
        responses: Option<rmcp::model::InputResponses>,
        question: rmcp::model::InputRequest,
        label: &str,
    ) -> Result<CallToolResponse, McpError> {
        let round = Round::new(name, responses, None);
        let answers = answers!(
            self.fx()?
                .ask(ctx, &round, vec![("form", question)], None)
                .await?
        );
        let (action, content) = input::elicited(&answers, "form")?;
        let content = content.map(Value::Object).unwrap_or_else(|| json!({}));
        Ok(text(format!("{label}: action={action}, content={content}")).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_routed_fixture_tool_needs_read_scope() {
        let mut routed: Vec<String> = (McpServer::fixture_tools()
            + McpServer::input_required_tools())
        .list_all()
        .into_iter()
        .map(|t| t.name.into_owned())
        .collect();
        routed.sort();
        let mut listed: Vec<String> = TOOLS.iter().map(|t| (*t).to_owned()).collect();
        listed.sort();
        assert_eq!(routed, listed);
    }

    #[test]
    fn template_ids() {
        assert_eq!(template_id("test://template/123/data"), Some("123"));
        assert_eq!(template_id("test://template//data"), None);
        assert_eq!(template_id("test://template/a/b/data"), None);
        let read = read("test://template/123/data").unwrap();
        let value = serde_json::to_value(&read).unwrap();
        assert_eq!(value["contents"][0]["mimeType"], "application/json");
        assert!(
            value["contents"][0]["text"]
                .as_str()
                .unwrap()
                .contains("123")
        );
        assert!(read_is_not_found("test://nope"));
    }

    fn read_is_not_found(uri: &str) -> bool {
        read(uri).is_err_and(|e| e.code == rmcp::model::ErrorCode::RESOURCE_NOT_FOUND)
    }

    #[test]
    fn completion_filters_candidates_by_prefix() {
        let request: CompleteRequestParams = serde_json::from_value(json!({
            "ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"},
            "argument": {"name": "arg1", "value": "test"}
        }))
        .unwrap();
        let result = serde_json::to_value(complete(&request).unwrap()).unwrap();
        assert_eq!(
            result["completion"],
            json!({"values": ["testValue1"], "total": 1, "hasMore": false})
        );
        let unknown: CompleteRequestParams = serde_json::from_value(json!({
            "ref": {"type": "ref/prompt", "name": "nope"},
            "argument": {"name": "arg1", "value": ""}
        }))
        .unwrap();
        assert!(complete(&unknown).is_err());
    }

    #[test]
    fn stateless_capabilities_declare_no_subscriptions() {
        let mut c = capabilities();
        let legacy = serde_json::to_value(&c).unwrap();
        assert_eq!(legacy["resources"]["subscribe"], true);
        assert!(legacy.get("logging").is_some());
        stateless_capabilities(&mut c);
        let stateless = serde_json::to_value(&c).unwrap();
        assert_eq!(
            stateless,
            json!({"completions": {}, "prompts": {}, "resources": {}, "tools": {}})
        );
    }
}
