//! Usage counts for `get_api_usage`: which calls count. The bearer check counts them, with
//! the calls it parsed, before the MCP handler runs (so a call refused for bad arguments
//! counts too).

use super::scopes::TOOL_SCOPES;

/// The name a call is counted under in `get_api_usage`: the user's own tools and resources.
pub fn usage_name(method: &str, params: &serde_json::Value) -> Option<String> {
    match method {
        "tools/call" => {
            let name = params.get("name")?.as_str()?;
            TOOL_SCOPES
                .iter()
                .any(|(tool, _)| *tool == name)
                .then(|| name.to_owned())
        }
        "resources/read" => Some("resources/read".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn own_tools_and_resources_are_counted() {
        let call = |name: &str| json!({"name": name});
        assert_eq!(
            usage_name("tools/call", &call("get_api_usage")).as_deref(),
            Some("get_api_usage")
        );
        assert_eq!(usage_name("tools/call", &call("nope")), None);
    }
}
