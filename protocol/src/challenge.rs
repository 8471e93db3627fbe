//! `WWW-Authenticate: Bearer` challenges (RFC 6750 §3, RFC 9728 §5.1): built by the resource
//! server, parsed by the tests and clients. Values are always quoted strings.

/// One Bearer challenge. `error` is absent when the request carried no credentials
/// (RFC 6750 §3.1: "the resource server SHOULD NOT include an error code").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BearerChallenge {
    pub resource_metadata: Option<String>,
    pub scope: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

impl BearerChallenge {
    /// Renders `Bearer k="v", …` in a fixed order, escaping `"` and `\`.
    pub fn to_header_value(&self) -> String {
        let mut parts = Vec::new();
        let pairs = [
            ("error", &self.error),
            ("error_description", &self.error_description),
            ("scope", &self.scope),
            ("resource_metadata", &self.resource_metadata),
        ];
        for (key, value) in pairs {
            if let Some(v) = value {
                parts.push(format!("{key}=\"{}\"", escape(v)));
            }
        }
        if parts.is_empty() {
            "Bearer".to_owned()
        } else {
            format!("Bearer {}", parts.join(", "))
        }
    }

    /// Parses a single Bearer challenge. Accepts quoted or token values.
    pub fn parse(header: &str) -> Option<Self> {
        let header = header.trim();
        let scheme_end = header.find(' ').unwrap_or(header.len());
        if !header[..scheme_end].eq_ignore_ascii_case("bearer") {
            return None;
        }
        let mut out = Self::default();
        for (key, value) in parse_params(&header[scheme_end..])? {
            match key.to_ascii_lowercase().as_str() {
                "resource_metadata" => out.resource_metadata = Some(value),
                "scope" => out.scope = Some(value),
                "error" => out.error = Some(value),
                "error_description" => out.error_description = Some(value),
                _ => {}
            }
        }
        Some(out)
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"")
}

fn parse_params(mut s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if s.is_empty() {
            return Some(out);
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_owned();
        s = s[eq + 1..].trim_start();
        let value;
        if let Some(rest) = s.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = rest.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => v.push(chars.next()?.1),
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => v.push(c),
                }
            }
            s = &rest[end? + 1..];
            value = v;
        } else {
            let end = s.find(',').unwrap_or(s.len());
            value = s[..end].trim().to_owned();
            s = &s[end..];
        }
        out.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rfc9728_example_shape() {
        let c = BearerChallenge {
            resource_metadata: Some(
                "https://rs.example/.well-known/oauth-protected-resource/mcp".into(),
            ),
            scope: Some("mcp:read mcp:write".into()),
            ..Default::default()
        };
        let v = c.to_header_value();
        assert_eq!(
            v,
            r#"Bearer scope="mcp:read mcp:write", resource_metadata="https://rs.example/.well-known/oauth-protected-resource/mcp""#
        );
        assert_eq!(BearerChallenge::parse(&v), Some(c));
    }

    #[test]
    fn round_trips_errors_and_escapes() {
        let c = BearerChallenge {
            error: Some("insufficient_scope".into()),
            error_description: Some(r#"needs "mcp:write" \ now"#.into()),
            scope: Some("mcp:write".into()),
            resource_metadata: Some("https://r/x".into()),
        };
        assert_eq!(BearerChallenge::parse(&c.to_header_value()), Some(c));
    }

    #[test]
    fn parses_rfc6750_example_and_tokens() {
        let c = BearerChallenge::parse(
            r#"Bearer realm="example", error="invalid_token", error_description="The access token expired""#,
        )
        .unwrap();
        assert_eq!(c.error.as_deref(), Some("invalid_token"));
        assert_eq!(
            c.error_description.as_deref(),
            Some("The access token expired")
        );
        let t = BearerChallenge::parse("bearer error=invalid_token,scope=a").unwrap();
        assert_eq!(t.error.as_deref(), Some("invalid_token"));
        assert_eq!(t.scope.as_deref(), Some("a"));
        assert!(BearerChallenge::parse("Basic realm=\"x\"").is_none());
        assert!(BearerChallenge::parse("Bearer error=\"unterminated").is_none());
    }
}
