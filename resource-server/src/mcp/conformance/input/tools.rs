//! The SEP-2322 fixtures: tools that ask the client for input, on either wire.

use super::*;

#[tool_router(router = input_required_tools, vis = "pub(in crate::mcp)")]
impl McpServer {
    #[tool(description = "Asks the user's name, then greets them (SEP-2322 fixture).")]
    async fn test_input_required_result_elicitation(
        &self,
        ctx: RequestContext<RoleServer>,
        InputResponses(responses): InputResponses,
        RequestState(state): RequestState,
    ) -> Result<CallToolResponse, McpError> {
        let round = Round::new("test_input_required_result_elicitation", responses, state);
        let question = name_question("What is your name?");
        let answers = answers!(
            self.fx()?
                .ask(&ctx, &round, vec![("user_name", question)], None)
                .await?
        );
        Ok(match accepted_field(&answers, "user_name", "name")? {
            Some(name) => text(format!("Hello, {name}!")),
            None => text("No name was given."),
        }
        .into())
    }

    #[tool(
        description = "Asks the client's LLM a question and returns its answer (SEP-2322 fixture)."
    )]
    async fn test_input_required_result_sampling(
        &self,
        ctx: RequestContext<RoleServer>,
        InputResponses(responses): InputResponses,
        RequestState(state): RequestState,
    ) -> Result<CallToolResponse, McpError> {
        let round = Round::new("test_input_required_result_sampling", responses, state);
        let question = sampling("What is the capital of France?", 100);
        let answers = answers!(
            self.fx()?
                .ask(&ctx, &round, vec![("capital_question", question)], None)
                .await?
        );
        Ok(text(sampled_text(&answers, "capital_question")?).into())
    }

    #[tool(description = "Asks the client for its roots and lists them (SEP-2322 fixture).")]
    async fn test_input_required_result_list_roots(
        &self,
        ctx: RequestContext<RoleServer>,
        InputResponses(responses): InputResponses,
        RequestState(state): RequestState,
    ) -> Result<CallToolResponse, McpError> {
        let round = Round::new("test_input_required_result_list_roots", responses, state);
        let answers = answers!(
            self.fx()?
                .ask(&ctx, &round, vec![("client_roots", roots())], None)
                .await?
        );
        let roots = root_names(&answers, "client_roots")?;
        Ok(text(format!("Client roots: {}", roots.join(", "))).into())
    }

    #[tool(
        description = "Asks for a confirmation with a sealed requestState and checks it comes back intact (SEP-2322 fixture)."
    )]
    async fn test_input_required_result_request_state(
        &self,
        ctx: RequestContext<RoleServer>,
        InputResponses(responses): InputResponses,
        RequestState(state): RequestState,
    ) -> Result<CallToolResponse, McpError> {
        let round = Round::new("test_input_required_result_request_state", responses, state);
        self.confirm(&ctx, &round).await
    }

    #[tool(
        description = "Like test_input_required_result_request_state; a changed requestState is refused with -32602 (SEP-2322 fixture)."
    )]
    async fn test_input_required_result_tampered_state(
        &self,
        ctx: RequestContext<RoleServer>,
        InputResponses(responses): InputResponses,
        RequestState(state): RequestState,
    ) -> Result<CallToolResponse, McpError> {
        let round = Round::new(
            "test_input_required_result_tampered_state",
            responses,
            state,
        );
        self.confirm(&ctx, &round).await
    }

    #[tool(
        description = "Asks for a name, a generated greeting and the client's roots at once (SEP-2322 fixture)."
    )]
    async fn test_input_required_result_multiple_inputs(
        &self,
        ctx: RequestContext<RoleServer>,
        InputResponses(responses): InputResponses,
        RequestState(state): RequestState,
    ) -> Result<CallToolResponse, McpError> {
        let round = Round::new(
            "test_input_required_result_multiple_inputs",
            responses,
            state,
        );
        let questions = vec![
            ("user_name", name_question("What is your name?")),
            ("greeting", sampling("Generate a greeting", 50)),
            ("client_roots", roots()),
        ];
        let answers = answers!(
            self.fx()?
                .ask(&ctx, &round, questions, Some(json!({"step": "all"})))
                .await?
        );
        let name =
            accepted_field(&answers, "user_name", "name")?.unwrap_or_else(|| "someone".into());
        let greeting = sampled_text(&answers, "greeting")?;
        let roots = root_names(&answers, "client_roots")?;
        Ok(text(format!(
            "{greeting} {name}, your roots: {}",
            roots.join(", ")
        ))
        .into())
    }

    #[tool(
        description = "Asks for a name, then in a second round for a favorite color (SEP-2322 fixture)."
    )]
    async fn test_input_required_result_multi_round(
        &self,
        ctx: RequestContext<RoleServer>,
        InputResponses(responses): InputResponses,
        RequestState(state): RequestState,
    ) -> Result<CallToolResponse, McpError> {
        let round = Round::new("test_input_required_result_multi_round", responses, state);
        let fx = self.fx()?;
        // Round three brings only the color: the name travels in the sealed state.
        let sealed_name = fx
            .open(&round)?
            .and_then(|s| s["name"].as_str().map(str::to_owned));
        let name = match sealed_name {
            Some(name) => name,
            None => {
                let question = name_question("Step 1: What is your name?");
                let answers = answers!(
                    fx.ask(
                        &ctx,
                        &round,
                        vec![("step1", question)],
                        Some(json!({"step": 1}))
                    )
                    .await?
                );
                accepted_field(&answers, "step1", "name")?.unwrap_or_else(|| "someone".into())
            }
        };
        let question = elicitation(
            "Step 2: What is your favorite color?",
            json!({"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]}),
        );
        let state = json!({"step": 2, "name": name});
        let answers = answers!(
            fx.ask(&ctx, &round, vec![("step2", question)], Some(state))
                .await?
        );
        Ok(match accepted_field(&answers, "step2", "color")? {
            Some(color) => text(format!("{name}'s favorite color is {color}.")),
            None => text(format!("{name} did not name a color.")),
        }
        .into())
    }

    #[tool(
        description = "Asks only through the capabilities the request declares: elicitation, sampling or both (SEP-2322 fixture)."
    )]
    async fn test_input_required_result_capabilities(
        &self,
        ctx: RequestContext<RoleServer>,
        InputResponses(responses): InputResponses,
        RequestState(state): RequestState,
    ) -> Result<CallToolResponse, McpError> {
        let round = Round::new("test_input_required_result_capabilities", responses, state);
        let capabilities = ctx.client_capabilities().unwrap_or_default();
        let mut questions = Vec::new();
        if capabilities.elicitation.is_some() {
            questions.push(("user_name", name_question("What is your name?")));
        }
        if capabilities.sampling.is_some() || questions.is_empty() {
            // Without either capability this question makes the call fail with -32021.
            questions.push(("greeting", sampling("Generate a greeting", 50)));
        }
        let answers = answers!(self.fx()?.ask(&ctx, &round, questions, None).await?);
        let mut parts = Vec::new();
        if answers.contains_key("user_name") {
            let name = accepted_field(&answers, "user_name", "name")?;
            parts.push(format!("name: {}", name.as_deref().unwrap_or("(declined)")));
        }
        if answers.contains_key("greeting") {
            parts.push(format!("greeting: {}", sampled_text(&answers, "greeting")?));
        }
        Ok(text(parts.join("; ")).into())
    }
}

impl McpServer {
    /// One confirmation question whose answer must come back with the sealed state.
    async fn confirm(
        &self,
        ctx: &RequestContext<RoleServer>,
        round: &Round,
    ) -> Result<CallToolResponse, McpError> {
        let state = Some(json!({"step": "confirm"}));
        let answers = answers!(
            self.fx()?
                .ask(ctx, round, vec![("confirm", confirm_question())], state)
                .await?
        );
        let (action, content) = elicited(&answers, "confirm")?;
        let ok = content
            .as_ref()
            .and_then(|c| c.get("ok"))
            .and_then(Value::as_bool);
        Ok(text(format!(
            "state-ok: action={action}, ok={}",
            ok.unwrap_or(false)
        ))
        .into())
    }
}
