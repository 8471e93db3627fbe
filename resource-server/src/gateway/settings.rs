//! `[[upstream]]`: the MCP servers served behind this one, each at `/<name>/mcp` with its own
//! audience. The command line of a stdio upstream is the administrator's: nothing in a
//! request ever adds to it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use oauth_protocol::secret::Secret;
use serde::Deserialize;

/// Which scope a tool, resource or prompt needs: the first rule naming it wins; anything no
/// rule names is hidden and refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Tool names, exact or with `*` and `?`.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Resource URIs (and URI templates), exact or globs.
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub prompts: Vec<String>,
    pub scope: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// The endpoint is `/<name>/mcp`.
    pub name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// A stdio server: the program, its arguments, environment and working directory.
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// A Streamable HTTP server.
    #[serde(default)]
    pub url: Option<String>,
    /// stdio: one child shared by every session, for servers that keep no per-user state.
    /// By default each session gets its own child.
    #[serde(default)]
    pub stateless: bool,
    /// Most upstream sessions (stdio children, or HTTP sessions) at once.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// An upstream session unused this long is closed (its child stopped).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// This endpoint's credentials at the authorization server's introspection endpoint: it
    /// is a resource server of its own there (`admin resource add <url>/<name>/mcp`).
    pub client_id: String,
    pub client_secret: Secret,
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// HTTP: the header that carries the caller's identity as a short-lived signed JWT.
    #[serde(default = "default_identity_header")]
    pub identity_header: String,
    /// stdio: also pass the caller's `sub` to every tool call as this argument (for servers
    /// written to read a user argument). Off by default: the identity is in `_meta`.
    #[serde(default)]
    pub identity_argument: Option<String>,
    /// Request headers passed on to an HTTP upstream; never `Authorization` or `Cookie`.
    #[serde(default)]
    pub forward_headers: Vec<String>,
    /// Keep tool arguments in the audit trail.
    #[serde(default)]
    pub audit_arguments: bool,
}

fn default_max_sessions() -> usize {
    32
}

fn default_idle_timeout() -> u64 {
    600
}

fn default_identity_header() -> String {
    "X-MCP-Identity".into()
}

impl Upstream {
    pub fn label(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.name)
    }

    /// The upstream's own URL, or the command line (for logs and `/readyz`).
    pub fn target(&self) -> String {
        match (&self.url, &self.command) {
            (Some(url), _) => url.clone(),
            (None, Some(cmd)) => std::iter::once(cmd.as_str())
                .chain(self.args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            (None, None) => String::new(),
        }
    }
}

/// Headers that carry the caller's own credentials: never forwarded.
const NEVER_FORWARDED: &[&str] = &["authorization", "cookie", "proxy-authorization", "host"];

/// Start-up checks, with messages that say what to change. `scopes` are the scopes this
/// server announces: every rule's scope must be one of them.
pub fn validate(upstreams: &[Upstream], scopes: &[String]) -> anyhow::Result<()> {
    let mut names = std::collections::HashSet::new();
    for up in upstreams {
        let fail = |what: String| anyhow::anyhow!("upstream {:?}: {what}", up.name);
        if !::settings::is_path_name(&up.name) || up.name == "mcp" {
            return Err(fail(
                "the name must be lowercase letters, digits and '-' (and not \"mcp\"): it is the path /<name>/mcp".into(),
            ));
        }
        if !names.insert(up.name.as_str()) {
            anyhow::bail!("upstream {:?} is configured twice", up.name);
        }
        match (&up.command, &up.url) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(fail(
                    "set either command (stdio) or url (Streamable HTTP)".into(),
                ));
            }
            (Some(cmd), None) => {
                if find_program(cmd).is_none() {
                    return Err(fail(format!(
                        "command {cmd:?} is not an executable file nor found on PATH"
                    )));
                }
                if let Some(dir) = &up.cwd
                    && !dir.is_dir()
                {
                    return Err(fail(format!("cwd {} is not a directory", dir.display())));
                }
            }
            (None, Some(url)) => {
                let parsed =
                    url::Url::parse(url).map_err(|_| fail(format!("url {url:?} is not a URL")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(fail(format!("url {url:?} must be http or https")));
                }
            }
        }
        if up.client_id.is_empty() || up.client_secret.expose().is_empty() {
            return Err(fail(
                "set client_id and client_secret: this endpoint's introspection credentials (its own resource at the authorization server)".into(),
            ));
        }
        if up.max_sessions == 0 {
            return Err(fail("max_sessions must be at least 1".into()));
        }
        for rule in &up.rules {
            if !scopes.contains(&rule.scope) {
                return Err(fail(format!(
                    "rule scope {:?} is not one of scopes_supported ({})",
                    rule.scope,
                    scopes.join(" ")
                )));
            }
        }
        if let Some(h) = up
            .forward_headers
            .iter()
            .find(|h| NEVER_FORWARDED.contains(&h.to_ascii_lowercase().as_str()))
        {
            return Err(fail(format!(
                "{h} is never forwarded: the caller's credentials stay here"
            )));
        }
        axum::http::HeaderName::from_bytes(up.identity_header.as_bytes()).map_err(|_| {
            fail(format!(
                "identity_header {:?} is not a header name",
                up.identity_header
            ))
        })?;
    }
    Ok(())
}

/// The program a command names: a path to an executable file, or a name found on `PATH`.
pub fn find_program(cmd: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if cmd.contains('/') {
        let p = PathBuf::from(cmd);
        return executable(&p).then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(cmd))
            .find(|p| executable(p))
    })
}

/// `RS_UPSTREAM_*`: one upstream from the environment. `RS_UPSTREAM_RULES` is
/// `glob=scope` pairs separated by spaces or commas, for tools (`tools:`), resources
/// (`resources:`) or prompts (`prompts:`); a bare glob is a tool.
pub fn from_env(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<Upstream>> {
    let Some(name) = get("RS_UPSTREAM_NAME") else {
        return Ok(None);
    };
    let mut rules = Vec::new();
    for pair in get("RS_UPSTREAM_RULES")
        .unwrap_or_default()
        .split([' ', ','])
        .filter(|p| !p.is_empty())
    {
        let Some((glob, scope)) = pair.rsplit_once('=') else {
            anyhow::bail!("RS_UPSTREAM_RULES: {pair:?} is not glob=scope");
        };
        let mut rule = Rule {
            tools: Vec::new(),
            resources: Vec::new(),
            prompts: Vec::new(),
            scope: scope.into(),
        };
        match glob.split_once(':') {
            Some(("resources", g)) => rule.resources.push(g.into()),
            Some(("prompts", g)) => rule.prompts.push(g.into()),
            Some(("tools", g)) => rule.tools.push(g.into()),
            _ => rule.tools.push(glob.into()),
        }
        rules.push(rule);
    }
    Ok(Some(Upstream {
        name,
        display_name: None,
        command: get("RS_UPSTREAM_COMMAND"),
        args: get("RS_UPSTREAM_ARGS")
            .map(|a| a.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        env: BTreeMap::new(),
        cwd: get("RS_UPSTREAM_CWD").map(PathBuf::from),
        url: get("RS_UPSTREAM_URL"),
        stateless: get("RS_UPSTREAM_STATELESS").is_some_and(|v| v == "true"),
        max_sessions: default_max_sessions(),
        idle_timeout_secs: default_idle_timeout(),
        client_id: get("RS_UPSTREAM_CLIENT_ID").unwrap_or_default(),
        client_secret: Secret::new(get("RS_UPSTREAM_CLIENT_SECRET").unwrap_or_default()),
        rules,
        identity_header: default_identity_header(),
        identity_argument: None,
        forward_headers: Vec::new(),
        audit_arguments: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Upstream {
        serde_json::from_value(serde_json::json!({
            "name": "tools", "command": "sh", "client_id": "gw", "client_secret": "s",
            "rules": [{"tools": ["*"], "scope": "mcp:read"}],
        }))
        .unwrap()
    }

    #[test]
    fn broken_upstreams_are_refused_at_start_with_what_to_change() {
        let scopes = vec!["mcp:read".to_owned()];
        let check = |up: Upstream| {
            validate(&[up], &scopes)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(check(base()), "");
        let mut up = base();
        up.command = Some("no-such-program-here".into());
        assert!(check(up).contains("not an executable file nor found on PATH"));
        let mut up = base();
        up.url = Some("http://127.0.0.1:9/mcp".into());
        assert!(check(up).contains("either command"));
        let mut up = base();
        up.command = None;
        up.url = Some("ftp://x/mcp".into());
        assert!(check(up).contains("http or https"));
        let mut up = base();
        up.rules[0].scope = "admin".into();
        assert!(check(up).contains("not one of scopes_supported"));
        let mut up = base();
        up.forward_headers = vec!["Authorization".into()];
        assert!(check(up).contains("never forwarded"));
        let mut up = base();
        up.name = "mcp".into();
        assert!(check(up).contains("the path /<name>/mcp"));
        let mut up = base();
        up.client_secret = Secret::new("");
        assert!(check(up).contains("introspection credentials"));
        assert!(
            validate(&[base(), base()], &scopes)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
    }

    #[test]
    fn one_upstream_from_the_environment() {
        let vars = [
            ("RS_UPSTREAM_NAME", "everything"),
            ("RS_UPSTREAM_COMMAND", "npx"),
            (
                "RS_UPSTREAM_ARGS",
                "-y @modelcontextprotocol/server-everything",
            ),
            ("RS_UPSTREAM_CLIENT_ID", "gw"),
            ("RS_UPSTREAM_CLIENT_SECRET", "s"),
            (
                "RS_UPSTREAM_RULES",
                "get-*=mcp:read echo=mcp:read,resources:demo://*=mcp:read",
            ),
        ];
        let get = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        };
        let up = from_env(&get).unwrap().unwrap();
        assert_eq!(up.args, ["-y", "@modelcontextprotocol/server-everything"]);
        assert_eq!(up.rules.len(), 3);
        assert_eq!(up.rules[2].resources, ["demo://*"]);
        assert!(from_env(&|_: &str| None).unwrap().is_none());
    }
}
