//! The fixtures' tools, on both wires.

use super::*;

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct SamplingArgs {
    /// The prompt to send to the LLM
    pub prompt: String,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct ElicitationArgs {
    /// The message to show the user
    pub message: String,
}

#[tool_router(router = fixture_tools, vis = "pub(crate)")]
impl McpServer {
    pub(super) fn fx(&self) -> Result<&Fixtures, McpError> {
        self.fixtures
            .as_ref()
            .ok_or_else(|| McpError::internal_error("fixtures are not configured", None))
    }

    #[tool(
        description = "Returns one text block (conformance fixture).",
        input_schema = schema(json!({"type": "object", "properties": {}}))
    )]
    async fn test_simple_text(&self) -> CallToolResult {
        text("This is a simple text response for testing.")
    }

    #[tool(description = "Returns a PNG image (conformance fixture).")]
    async fn test_image_content(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::image(PNG, "image/png")])
    }

    #[tool(description = "Returns a WAV sound (conformance fixture).")]
    async fn test_audio_content(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::audio(WAV, "audio/wav")])
    }

    #[tool(description = "Returns an embedded text resource (conformance fixture).")]
    async fn test_embedded_resource(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::resource(
            ResourceContents::text(
                "This is an embedded resource content.",
                "test://embedded-resource",
            )
            .with_mime_type("text/plain"),
        )])
    }

    #[tool(description = "Returns text, an image and a resource (conformance fixture).")]
    async fn test_multiple_content_types(&self) -> CallToolResult {
        CallToolResult::success(vec![
            ContentBlock::text("Multiple content types test:"),
            ContentBlock::image(PNG, "image/png"),
            ContentBlock::resource(
                ResourceContents::text(
                    json!({"test": "data", "value": 123}).to_string(),
                    "test://mixed-content-resource",
                )
                .with_mime_type("application/json"),
            ),
        ])
    }

    #[tool(description = "Always fails with a tool error result (conformance fixture).")]
    async fn test_error_handling(&self) -> CallToolResult {
        CallToolResult::error(vec![ContentBlock::text(
            "This tool intentionally returns an error for testing",
        )])
    }

    #[tool(
        description = "Reports progress 0, 50 and 100 of 100 to a caller that sent a progress token (conformance fixture)."
    )]
    async fn test_tool_with_progress(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let token = ctx.meta.get_progress_token();
        for (i, progress) in [0u32, 50, 100].into_iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(STEP).await;
            }
            if let Some(token) = &token {
                ctx.peer
                    .notify_progress(
                        ProgressNotificationParam::new(token.clone(), progress.into())
                            .with_total(100.0)
                            .with_message(format!("Completed step {progress} of 100")),
                    )
                    .await
                    .map_err(unreachable_client)?;
            }
        }
        Ok(text("Progress reported: 0, 50, 100 of 100"))
    }

    #[tool(
        description = "Logs three info messages while it runs, at the level the client set (conformance fixture)."
    )]
    async fn test_tool_with_logging(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.log_steps(&ctx).await?;
        Ok(text("Tool with logging executed successfully"))
    }

    #[tool(
        description = "Logs only when the request's _meta sets io.modelcontextprotocol/logLevel (2026-07-28 diagnostic)."
    )]
    async fn test_logging_tool(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.log_steps(&ctx).await?;
        Ok(text("Logging tool executed"))
    }

    #[tool(description = "Asks the client's LLM to answer a prompt (conformance fixture).")]
    async fn test_sampling(
        &self,
        ctx: RequestContext<RoleServer>,
        InputResponses(responses): InputResponses,
        Parameters(args): Parameters<SamplingArgs>,
    ) -> Result<CallToolResponse, McpError> {
        let round = Round::new("test_sampling", responses, None);
        let question = input::sampling(&args.prompt, 100);
        let answers = answers!(
            self.fx()?
                .ask(&ctx, &round, vec![("sampling", question)], None)
                .await?
        );
        let answer = input::sampled_text(&answers, "sampling")?;
        Ok(text(format!("LLM response: {answer}")).into())
    }

    #[tool(description = "Asks the user for a username and an email (conformance fixture).")]
    async fn test_elicitation(
        &self,
        ctx: RequestContext<RoleServer>,
        InputResponses(responses): InputResponses,
        Parameters(args): Parameters<ElicitationArgs>,
    ) -> Result<CallToolResponse, McpError> {
        let question = input::elicitation(
            &args.message,
            json!({
                "type": "object",
                "properties": {
                    "username": {"type": "string", "description": "User's response"},
                    "email": {"type": "string", "description": "User's email address"}
                },
                "required": ["username", "email"]
            }),
        );
        self.elicit(
            "test_elicitation",
            &ctx,
            responses,
            question,
            "User response",
        )
        .await
    }

    #[tool(
        description = "Asks the user to review a form whose fields all have defaults (SEP-1034, conformance fixture)."
    )]
    async fn test_elicitation_sep1034_defaults(
        &self,
        ctx: RequestContext<RoleServer>,
        InputResponses(responses): InputResponses,
    ) -> Result<CallToolResponse, McpError> {
        let question = input::elicitation(
            "Please review and update the form fields with defaults",
            json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "User name", "default": "John Doe"},
                    "age": {"type": "integer", "description": "User age", "default": 30},
                    "score": {"type": "number", "description": "User score", "default": 95.5},
                    "status": {
                        "type": "string",
                        "description": "User status",
                        "enum": ["active", "inactive", "pending"],
                        "default": "active"
                    },
                    "verified": {"type": "boolean", "description": "Verification status", "default": true}
                },
                "required": []
            }),
        );
        self.elicit(
            "test_elicitation_sep1034_defaults",
            &ctx,
            responses,
            question,
            "Elicitation completed",
        )
        .await
    }

    #[tool(
        description = "Asks the user to pick from single- and multi-select enums, titled and untitled (SEP-1330, conformance fixture)."
    )]
    async fn test_elicitation_sep1330_enums(
        &self,
        ctx: RequestContext<RoleServer>,
        InputResponses(responses): InputResponses,
    ) -> Result<CallToolResponse, McpError> {
        let question = input::elicitation(
            "Please select options from the enum fields",
            json!({
                "type": "object",
                "properties": {
                    "untitledSingle": {
                        "type": "string",
                        "description": "Select one option",
                        "enum": ["option1", "option2", "option3"]
                    },
                    "titledSingle": {
                        "type": "string",
                        "description": "Select one option with titles",
                        "oneOf": [
                            {"const": "value1", "title": "First Option"},
                            {"const": "value2", "title": "Second Option"},
                            {"const": "value3", "title": "Third Option"}
                        ]
                    },
                    "legacyEnum": {
                        "type": "string",
                        "description": "Select one option (legacy)",
                        "enum": ["opt1", "opt2", "opt3"],
                        "enumNames": ["Option One", "Option Two", "Option Three"]
                    },
                    "untitledMulti": {
                        "type": "array",
                        "description": "Select multiple options",
                        "minItems": 1,
                        "maxItems": 3,
                        "items": {"type": "string", "enum": ["option1", "option2", "option3"]}
                    },
                    "titledMulti": {
                        "type": "array",
                        "description": "Select multiple options with titles",
                        "minItems": 1,
                        "maxItems": 3,
                        "items": {
                            "anyOf": [
                                {"const": "value1", "title": "First Choice"},
                                {"const": "value2", "title": "Second Choice"},
                                {"const": "value3", "title": "Third Choice"}
                            ]
                        }
                    }
                },
                "required": []
            }),
        );
        self.elicit(
            "test_elicitation_sep1330_enums",
            &ctx,
            responses,
            question,
            "Elicitation completed",
        )
        .await
    }

    #[tool(
        description = "Answers after a pause; in a session its POST stream is closed after the priming event, so the answer arrives on the client's reconnection with Last-Event-ID (SEP-1699, conformance fixture)."
    )]
    async fn test_reconnection(&self) -> CallToolResult {
        tokio::time::sleep(reconnect::ANSWER_DELAY).await;
        text(
            "Reconnection test completed successfully. If you received this, the client properly reconnected after stream closure.",
        )
    }

    #[tool(
        description = "Tool with JSON Schema 2020-12 features",
        input_schema = schema(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": {
                "address": {
                    "$anchor": "addressDef",
                    "type": "object",
                    "properties": {"street": {"type": "string"}, "city": {"type": "string"}}
                }
            },
            "properties": {
                "name": {"type": "string"},
                "address": {"$ref": "#/$defs/address"},
                "contactMethod": {"type": "string", "enum": ["phone", "email"]},
                "phone": {"type": "string"},
                "email": {"type": "string"}
            },
            "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
            "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
            "then": {"required": ["phone"]},
            "else": {"required": ["email"]},
            "additionalProperties": false
        }))
    )]
    async fn json_schema_2020_12_tool(&self, args: JsonObject) -> CallToolResult {
        text(format!("Received: {}", Value::Object(args)))
    }

    #[tool(
        description = "Needs the client's sampling capability: without it the call fails with -32021 (2026-07-28 diagnostic)."
    )]
    async fn test_missing_capability(
        &self,
        ctx: RequestContext<RoleServer>,
        InputResponses(responses): InputResponses,
    ) -> Result<CallToolResponse, McpError> {
        let round = Round::new("test_missing_capability", responses, None);
        let question = input::sampling("Reply with any text.", 20);
        let answers = answers!(
            self.fx()?
                .ask(&ctx, &round, vec![("sample", question)], None)
                .await?
        );
        let answer = input::sampled_text(&answers, "sample")?;
        Ok(text(format!("The client sampled: {answer}")).into())
    }

    #[tool(
        description = "Asks the user to confirm; on 2026-07-28 through an InputRequiredResult, never a request on the response stream (2026-07-28 diagnostic)."
    )]
    async fn test_streaming_elicitation(
        &self,
        ctx: RequestContext<RoleServer>,
        InputResponses(responses): InputResponses,
    ) -> Result<CallToolResponse, McpError> {
        let question = input::elicitation(
            "Please confirm",
            json!({"type": "object", "properties": {"confirmed": {"type": "boolean"}}, "required": ["confirmed"]}),
        );
        self.elicit(
            "test_streaming_elicitation",
            &ctx,
            responses,
            question,
            "Confirmation",
        )
        .await
    }

    #[tool(
        description = "Echoes a region that clients also send in the Mcp-Param-Region header (SEP-2243, conformance fixture).",
        input_schema = schema(json!({
            "type": "object",
            "properties": {
                "region": {"type": "string", "description": "A region name", "x-mcp-header": "Region"}
            },
            "required": ["region"]
        }))
    )]
    async fn test_custom_header(&self, args: JsonObject) -> Result<CallToolResult, McpError> {
        let region = argument(&args, "region")?;
        Ok(text(format!("Region: {region}")))
    }
}
