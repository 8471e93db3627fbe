//! Which scope each MCP call needs, checked by the bearer middleware before routing.
//! Default-deny: a tool without an entry here is refused, so a tool added to the router
//! cannot become callable by everyone by accident (a test checks every routed tool has one).

use super::conformance;

pub const READ: &str = "mcp:read";
pub const WRITE: &str = "mcp:write";

/// The server's own tools and the scope each needs.
pub const TOOL_SCOPES: &[(&str, &str)] = &[
    ("get_user_profile", READ),
    ("list_secure_notes", READ),
    ("get_api_usage", READ),
    ("create_secure_note", WRITE),
];

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Nothing,
    Scope(&'static str),
    /// A tool without an entry: never routed.
    Refused,
}

/// Fixture tools, prompts and subscriptions only read, so they need `mcp:read`.
pub fn required_scope(method: &str, params: &serde_json::Value) -> Need {
    match method {
        "tools/call" => {
            let Some(name) = params.get("name").and_then(|n| n.as_str()) else {
                return Need::Nothing; // rmcp answers a malformed call itself
            };
            match TOOL_SCOPES.iter().find(|(tool, _)| *tool == name) {
                Some((_, scope)) => Need::Scope(scope),
                None if conformance::is_fixture_tool(name) => Need::Scope(READ),
                None => Need::Refused,
            }
        }
        "resources/read"
        | "resources/list"
        | "resources/templates/list"
        | "resources/subscribe"
        | "resources/unsubscribe"
        | "prompts/get" => Need::Scope(READ),
        _ => Need::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::McpServer;

    #[test]
    fn every_routed_tool_has_an_entry() {
        for tool in McpServer::own_tools().list_all() {
            assert!(
                matches!(
                    required_scope("tools/call", &serde_json::json!({"name": tool.name})),
                    Need::Scope(_)
                ),
                "tool {} has no scope entry",
                tool.name
            );
        }
    }
}
