//! Discovery from an MCP endpoint (RFC 9728 protected resource metadata, found through the
//! 401's challenge or the well-known locations) to its authorization server's metadata
//! (RFC 8414, with the OpenID Connect discovery fallback).

use anyhow::{Context, bail};
use oauth_protocol::challenge::BearerChallenge;
use serde::Deserialize;

/// RFC 8414 §2, the fields a client uses.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: String,
    pub registration_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    pub device_authorization_endpoint: Option<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

/// What discovery found for an MCP endpoint.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// RFC 9728 `resource`: what tokens are requested for (RFC 8707).
    pub resource: String,
    pub server: ServerMetadata,
    /// The scope to ask for: the challenge's, else the resource's `scopes_supported`.
    pub scope: String,
}

/// RFC 9728 §5: the 401's `resource_metadata`, else the well-known location of the
/// endpoint's path, then of the host; then RFC 8414 for the first authorization server.
/// `None` when the endpoint neither asks for authorization nor publishes metadata for it.
pub async fn discover(http: &reqwest::Client, mcp_url: &str) -> anyhow::Result<Option<Discovered>> {
    let url = url::Url::parse(mcp_url).with_context(|| format!("{mcp_url:?} is not a URL"))?;
    let probe = http
        .post(mcp_url)
        .header("Accept", "application/json, text/event-stream")
        .json(&serde_json::json!({"jsonrpc":"2.0","id":0,"method":"ping"}))
        .send()
        .await
        .with_context(|| format!("cannot reach {mcp_url}"))?;
    let challenge = probe
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(BearerChallenge::parse);
    let origin = url.origin().ascii_serialization();
    let mut candidates = Vec::new();
    if let Some(m) = challenge.as_ref().and_then(|c| c.resource_metadata.clone()) {
        candidates.push(m);
    }
    let path = url.path().trim_end_matches('/');
    if !path.is_empty() {
        candidates.push(format!(
            "{origin}/.well-known/oauth-protected-resource{path}"
        ));
    }
    candidates.push(format!("{origin}/.well-known/oauth-protected-resource"));
    let mut prm = None;
    for c in &candidates {
        if let Ok(res) = http.get(c).send().await
            && res.status().is_success()
            && let Ok(doc) = res.json::<serde_json::Value>().await
        {
            prm = Some(doc);
            break;
        }
    }
    let unauthorized = probe.status() == reqwest::StatusCode::UNAUTHORIZED;
    let Some(prm) = prm else {
        if !unauthorized {
            return Ok(None);
        }
        bail!(
            "{mcp_url} asks for authorization but publishes no protected resource metadata (RFC 9728); tried {candidates:?}"
        );
    };
    let resource = prm["resource"].as_str().unwrap_or(mcp_url).to_owned();
    // RFC 9728 §7.3 and MCP: metadata for another resource must not send tokens elsewhere.
    if !covers(&resource, &url) {
        bail!(
            "the protected resource metadata is for {resource:?}, which is not {mcp_url}: refusing to sign in for it"
        );
    }
    let issuer = prm["authorization_servers"][0]
        .as_str()
        .context("the protected resource metadata names no authorization server")?
        .to_owned();
    let server = server_metadata(http, &issuer).await?;
    if !server
        .code_challenge_methods_supported
        .iter()
        .any(|m| m == "S256")
    {
        bail!("{issuer} does not advertise PKCE with S256, which MCP requires");
    }
    let scope = challenge
        .and_then(|c| c.scope)
        .or_else(|| {
            prm["scopes_supported"].as_array().map(|s| {
                s.iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
        })
        .unwrap_or_default();
    Ok(Some(Discovered {
        resource,
        server,
        scope,
    }))
}

/// Whether `resource` is the MCP endpoint `url` or a parent of it on the same origin.
fn covers(resource: &str, url: &url::Url) -> bool {
    let Ok(r) = url::Url::parse(resource) else {
        return false;
    };
    let (rp, up) = (
        r.path().trim_end_matches('/'),
        url.path().trim_end_matches('/'),
    );
    r.origin() == url.origin()
        && r.fragment().is_none()
        && (rp.is_empty() || up == rp || up.starts_with(&format!("{rp}/")))
}

/// RFC 8414 §3 (path-inserted), then OpenID Connect Discovery in both placements.
pub async fn server_metadata(
    http: &reqwest::Client,
    issuer: &str,
) -> anyhow::Result<ServerMetadata> {
    let url = url::Url::parse(issuer).with_context(|| format!("issuer {issuer:?} is not a URL"))?;
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    let candidates = [
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{origin}/.well-known/openid-configuration{path}"),
        format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        ),
    ];
    for c in &candidates {
        let Ok(res) = http.get(c).send().await else {
            continue;
        };
        if !res.status().is_success() {
            continue;
        }
        let meta: ServerMetadata = res
            .json()
            .await
            .with_context(|| format!("{c} is not authorization server metadata"))?;
        // RFC 8414 §3.3: the document must be the issuer's own.
        if meta.issuer != issuer {
            bail!("{c} names issuer {:?}, not {issuer:?}", meta.issuer);
        }
        return Ok(meta);
    }
    bail!("{issuer} publishes no authorization server metadata; tried {candidates:?}")
}

#[cfg(test)]
mod tests {
    use super::covers;

    #[test]
    fn metadata_covers_the_endpoint_or_a_parent_on_the_same_origin() {
        let url = url::Url::parse("https://mcp.example.com/team/mcp").unwrap();
        for (resource, ok) in [
            ("https://mcp.example.com/team/mcp", true),
            ("https://mcp.example.com/team/mcp/", true),
            ("https://mcp.example.com/team", true),
            ("https://mcp.example.com", true),
            ("https://mcp.example.com/te", false),
            ("https://mcp.example.com/other/mcp", false),
            ("https://evil.example.com/team/mcp", false),
            ("http://mcp.example.com/team/mcp", false),
            ("not a url", false),
        ] {
            assert_eq!(covers(resource, &url), ok, "{resource}");
        }
    }
}
