//! Usage counts for `get_api_usage`: each call of the user's own tools and resources is
//! counted, before the MCP handler runs (so a call refused for bad arguments counts too).
//! A layer of its own inside the bearer check, which hands over the calls it parsed.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::scopes::TOOL_SCOPES;
use crate::principal::Principal;
use crate::state::AppState;

/// The JSON-RPC calls of a request, `(method, params)`, as the bearer check parsed them.
#[derive(Clone, Default)]
pub struct RpcCalls(pub Arc<Vec<(String, serde_json::Value)>>);

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

pub async fn count(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let principal = req.extensions().get::<Arc<Principal>>().cloned();
    let calls = req.extensions().get::<RpcCalls>().cloned();
    if let (Some(p), Some(calls)) = (principal, calls) {
        for (method, params) in calls.0.iter() {
            if let Some(name) = usage_name(method, params) {
                state.store.count_request(&p.sub, &name);
            }
        }
    }
    next.run(req).await
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
