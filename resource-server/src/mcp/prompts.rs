//! The server's own prompt: `summarize_notes`, built from the signed-in user's notes, so
//! that a client's `prompts/list` and `prompts/get` work without the conformance fixtures.

use rmcp::ErrorData as McpError;
use rmcp::model::{
    ContentBlock, GetPromptRequestParams, GetPromptResult, Prompt, PromptArgument, PromptMessage,
    Role,
};

use crate::store::Store;

pub const SUMMARIZE_NOTES: &str = "summarize_notes";
/// Notes put into one prompt at most (newest first).
const MAX_NOTES: usize = 50;

pub fn list() -> Vec<Prompt> {
    vec![Prompt::new(
        SUMMARIZE_NOTES,
        Some("Summarize your notes, optionally with a focus"),
        Some(vec![
            PromptArgument::new("focus")
                .with_description("What the summary should pay attention to")
                .with_required(false),
        ]),
    )]
}

/// The prompt for `user`, or `None` when the name is not ours.
pub async fn get(
    store: &Store,
    user: &str,
    request: &GetPromptRequestParams,
) -> Result<Option<GetPromptResult>, McpError> {
    if request.name != SUMMARIZE_NOTES {
        return Ok(None);
    }
    let focus = request
        .arguments
        .as_ref()
        .and_then(|a| a.get("focus"))
        .and_then(|v| v.as_str())
        .filter(|f| !f.trim().is_empty());
    let notes = store.notes(user).await.map_err(|e| {
        tracing::error!(error = %e, "storage failure");
        McpError::internal_error("storage failure", None)
    })?;
    let mut text = match focus {
        Some(f) => format!("Summarize my notes, focusing on: {f}\n"),
        None => "Summarize my notes.\n".to_owned(),
    };
    if notes.is_empty() {
        text.push_str("\nI have no notes yet.");
    }
    for note in notes.iter().take(MAX_NOTES) {
        text.push_str(&format!("\n## {}\n{}\n", note.title, note.content));
    }
    Ok(Some(
        GetPromptResult::new(vec![PromptMessage::new(
            Role::User,
            ContentBlock::text(text),
        )])
        .with_description(format!(
            "A summary of {} note(s)",
            notes.len().min(MAX_NOTES)
        )),
    ))
}
