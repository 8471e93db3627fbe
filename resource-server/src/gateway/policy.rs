//! Per-upstream permissions: which scope each tool, resource and prompt needs. Default deny:
//! what no rule names is hidden from the lists and refused.

use oauth_protocol::Scope;
use serde_json::Value;

use super::settings::Rule;

/// What a JSON-RPC call through the gateway needs from the caller's token.
#[derive(Debug, PartialEq, Eq)]
pub enum Need {
    Nothing,
    Scope(String),
    /// No rule names it: refused, whatever the token holds.
    Forbidden,
}

#[derive(Debug, Clone)]
pub struct Policy {
    rules: Vec<Rule>,
}

#[derive(Clone, Copy)]
enum Kind {
    Tool,
    Resource,
    Prompt,
}

impl Policy {
    pub fn new(rules: Vec<Rule>) -> Self {
        Self { rules }
    }

    fn scope_of(&self, kind: Kind, name: &str) -> Option<&str> {
        self.rules
            .iter()
            .find(|r| {
                let globs = match kind {
                    Kind::Tool => &r.tools,
                    Kind::Resource => &r.resources,
                    Kind::Prompt => &r.prompts,
                };
                globs.iter().any(|g| glob(g, name))
            })
            .map(|r| r.scope.as_str())
    }

    fn need_for(&self, kind: Kind, name: Option<&str>) -> Need {
        match name.and_then(|n| self.scope_of(kind, n)) {
            Some(scope) => Need::Scope(scope.to_owned()),
            None => Need::Forbidden,
        }
    }

    /// The need of one call, from its method and params.
    pub fn need(&self, method: &str, params: &Value) -> Need {
        let text = |k: &str| params.get(k).and_then(Value::as_str);
        match method {
            "tools/call" => self.need_for(Kind::Tool, text("name")),
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                self.need_for(Kind::Resource, text("uri"))
            }
            "prompts/get" => self.need_for(Kind::Prompt, text("name")),
            "completion/complete" => {
                let r = &params["ref"];
                match r["type"].as_str() {
                    Some("ref/prompt") => self.need_for(Kind::Prompt, r["name"].as_str()),
                    Some("ref/resource") => self.need_for(Kind::Resource, r["uri"].as_str()),
                    _ => Need::Forbidden,
                }
            }
            _ => Need::Nothing,
        }
    }

    fn may(&self, kind: Kind, name: &str, scope: &Scope) -> bool {
        self.scope_of(kind, name).is_some_and(|s| scope.contains(s))
    }

    pub fn may_call(&self, tool: &str, scope: &Scope) -> bool {
        self.may(Kind::Tool, tool, scope)
    }

    pub fn may_read(&self, uri: &str, scope: &Scope) -> bool {
        self.may(Kind::Resource, uri, scope)
    }

    pub fn may_prompt(&self, prompt: &str, scope: &Scope) -> bool {
        self.may(Kind::Prompt, prompt, scope)
    }
}

/// `*` matches any run of characters, `?` any one; everything else itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn globs() {
        assert!(glob("echo", "echo"));
        assert!(!glob("echo", "echo2"));
        assert!(glob("get-*", "get-sum"));
        assert!(glob("*", ""));
        assert!(glob(
            "demo://resource/static/*",
            "demo://resource/static/document/x.md"
        ));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("*a*b", "xxaxxb"));
        assert!(!glob("*a*b", "xxaxxbx"));
    }

    #[test]
    fn first_rule_wins_and_the_rest_is_forbidden() {
        let rule = |tools: &[&str], scope: &str| Rule {
            tools: tools.iter().map(|t| (*t).into()).collect(),
            resources: vec!["demo://*".into()],
            prompts: Vec::new(),
            scope: scope.into(),
        };
        let policy = Policy::new(vec![
            rule(&["admin-*"], "mcp:write"),
            rule(&["*"], "mcp:read"),
        ]);
        assert_eq!(
            policy.need("tools/call", &json!({"name": "admin-reset"})),
            Need::Scope("mcp:write".into())
        );
        assert_eq!(
            policy.need("tools/call", &json!({"name": "echo"})),
            Need::Scope("mcp:read".into())
        );
        assert_eq!(
            policy.need("prompts/get", &json!({"name": "p"})),
            Need::Forbidden
        );
        assert_eq!(
            policy.need("resources/read", &json!({"uri": "file:///etc/passwd"})),
            Need::Forbidden
        );
        assert_eq!(policy.need("tools/list", &json!({})), Need::Nothing);
        let read = Scope::parse("mcp:read").unwrap();
        assert!(policy.may_call("echo", &read));
        assert!(!policy.may_call("admin-reset", &read));
    }
}
