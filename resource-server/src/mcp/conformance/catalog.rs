//! The fixtures' resources, resource templates, prompts and completions: fixed values the
//! suite checks.

use super::*;

pub fn resources() -> Vec<Resource> {
    vec![
        Resource::new(STATIC_TEXT, "static-text")
            .with_description("A static text resource (conformance fixture)")
            .with_mime_type("text/plain"),
        Resource::new(STATIC_BINARY, "static-binary")
            .with_description("A static PNG image (conformance fixture)")
            .with_mime_type("image/png"),
        Resource::new(WATCHED, "watched-resource")
            .with_description("A resource clients may subscribe to (conformance fixture)")
            .with_mime_type("text/plain"),
    ]
}

pub fn resource_templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(TEMPLATE, "template-data")
            .with_description("JSON data for any id (conformance fixture)")
            .with_mime_type("application/json"),
    ]
}

pub fn is_fixture_uri(uri: &str) -> bool {
    uri.starts_with("test://")
}

pub fn read(uri: &str) -> Result<ReadResourceResult, McpError> {
    let contents = match uri {
        STATIC_TEXT => {
            ResourceContents::text("This is the content of the static text resource.", uri)
                .with_mime_type("text/plain")
        }
        STATIC_BINARY => ResourceContents::blob(PNG, uri).with_mime_type("image/png"),
        WATCHED => {
            ResourceContents::text("Watched resource content", uri).with_mime_type("text/plain")
        }
        _ => match template_id(uri) {
            Some(id) => ResourceContents::text(
                json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")})
                    .to_string(),
                uri,
            )
            .with_mime_type("application/json"),
            None => {
                return Err(McpError::resource_not_found(
                    "no such resource",
                    Some(json!({"uri": uri})),
                ));
            }
        },
    };
    Ok(ReadResourceResult::new(vec![contents]))
}

/// `id` of `test://template/{id}/data`.
pub(super) fn template_id(uri: &str) -> Option<&str> {
    let id = uri
        .strip_prefix("test://template/")?
        .strip_suffix("/data")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// `resources/subscribe` and `resources/unsubscribe` (2025-11-25): the resource must exist.
/// Fixture resources never change, so no subscription is ever owed an update notification
/// and none needs to be remembered.
pub fn subscribable(uri: &str) -> Result<(), McpError> {
    if is_fixture_uri(uri) {
        read(uri).map(|_| ())
    } else {
        Err(McpError::invalid_params(
            "only test:// resources can be subscribed to",
            Some(json!({"uri": uri})),
        ))
    }
}

pub fn prompts() -> Vec<Prompt> {
    let required = |name: &str, description: &str| {
        PromptArgument::new(name)
            .with_description(description)
            .with_required(true)
    };
    vec![
        Prompt::new(
            "test_simple_prompt",
            Some("A prompt without arguments"),
            None,
        ),
        Prompt::new(
            "test_prompt_with_arguments",
            Some("A prompt with two required arguments"),
            Some(vec![
                required("arg1", "First test argument"),
                required("arg2", "Second test argument"),
            ]),
        ),
        Prompt::new(
            "test_prompt_with_embedded_resource",
            Some("A prompt that embeds a resource"),
            Some(vec![required(
                "resourceUri",
                "URI of the resource to embed",
            )]),
        ),
        Prompt::new(
            "test_prompt_with_image",
            Some("A prompt with an image"),
            None,
        ),
        Prompt::new(
            "test_input_required_result_prompt",
            Some("A prompt that asks the client for context first (SEP-2322)"),
            None,
        ),
    ]
}

/// `completion/complete`: the values of a small candidate list that start with what the user
/// typed.
pub fn complete(request: &CompleteRequestParams) -> Result<CompleteResult, McpError> {
    let argument = request.argument.name.as_str();
    let candidates: &[&str] = match &request.r#ref {
        Reference::Prompt(p) if p.name == "test_prompt_with_arguments" => match argument {
            "arg1" => &["testValue1"],
            "arg2" => &["testValue2"],
            _ => &[],
        },
        Reference::Prompt(p) if prompts().iter().any(|known| known.name == p.name) => &[],
        Reference::Prompt(p) => {
            return Err(McpError::invalid_params(
                format!("no prompt named {:?}", p.name),
                None,
            ));
        }
        Reference::Resource(r) if r.uri == TEMPLATE && argument == "id" => &["123"],
        _ => &[],
    };
    let values = candidates
        .iter()
        .filter(|c| c.starts_with(request.argument.value.as_str()))
        .map(|c| (*c).to_owned())
        .collect();
    let completion =
        CompletionInfo::with_all_values(values).map_err(|e| McpError::internal_error(e, None))?;
    Ok(CompleteResult::new(completion))
}
