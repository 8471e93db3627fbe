//! Authorization requests (RFC 6749 §4.1.1, OAuth 2.1 §4.1.1, RFC 7636 §4.3, RFC 8707 §2,
//! OpenID Connect `prompt`): the query string as typed parts. The rules that need the
//! client (is it known, is the redirect URI registered, which grants and scopes did it
//! register) and the resource servers are the server's; everything else is here.
//!
//! Errors come in two kinds (§4.1.2.1): those found before the redirect URI can be trusted
//! must be shown to the person, the rest go back to the client. So the parse keeps each
//! later refusal in its place instead of stopping at the first.

use crate::error::{ErrorCode, Refusal};
use crate::form::Params;
use crate::pkce;
use crate::scope::Scope;

/// A fault that must never be sent to the redirect URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Untrusted {
    RepeatedClientId,
    MissingClientId,
    RepeatedRedirectUri,
}

/// `prompt` values this server acts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// What the code will be bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeParams {
    pub code_challenge: String,
    /// The requested scope, all of it supported; empty when none was asked for.
    pub scope: Scope,
    pub resource: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: Option<String>,
    /// Echoed back verbatim; a repeated `state` is dropped rather than guessed.
    pub state: Option<String>,
    /// Repeated parameters and `response_type`: checked first once the redirect is trusted.
    pub form: Result<(), Refusal>,
    /// PKCE and the scope's syntax: checked after the client's grant types.
    pub code: Result<CodeParams, Refusal>,
    /// Checked last.
    pub prompt: Result<Prompt, Refusal>,
}

impl AuthorizationRequest {
    /// Parses a raw query string; `supported` is the scope this server offers.
    pub fn parse(query: &str, supported: &Scope) -> Result<Self, Untrusted> {
        let p = Params::parse(query.as_bytes());
        if p.is_duplicated("client_id") {
            return Err(Untrusted::RepeatedClientId);
        }
        let client_id = p.get("client_id").ok_or(Untrusted::MissingClientId)?;
        if p.is_duplicated("redirect_uri") {
            return Err(Untrusted::RepeatedRedirectUri);
        }
        Ok(Self {
            client_id: client_id.to_owned(),
            redirect_uri: p.get("redirect_uri").map(str::to_owned),
            state: (!p.is_duplicated("state"))
                .then(|| p.get("state").map(str::to_owned))
                .flatten(),
            form: form_rules(&p),
            code: code_params(&p, supported),
            prompt: prompt(&p),
        })
    }
}

fn refuse<T>(code: ErrorCode, description: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal::new(code, description))
}

fn form_rules(p: &Params) -> Result<(), Refusal> {
    if p.is_duplicated("resource") {
        return refuse(
            ErrorCode::InvalidTarget,
            "one resource per request is supported",
        );
    }
    if let Some(dup) = p.first_duplicate() {
        return refuse(
            ErrorCode::InvalidRequest,
            format!("parameter {dup} is repeated"),
        );
    }
    match p.get("response_type") {
        None => refuse(ErrorCode::InvalidRequest, "response_type is required"),
        Some("code") => Ok(()),
        Some(_) => refuse(
            ErrorCode::UnsupportedResponseType,
            "only response_type=code is supported",
        ),
    }
}

fn code_params(p: &Params, supported: &Scope) -> Result<CodeParams, Refusal> {
    let Some(code_challenge) = p.get("code_challenge") else {
        return refuse(
            ErrorCode::InvalidRequest,
            "code_challenge is required (PKCE)",
        );
    };
    match p.get("code_challenge_method") {
        Some("S256") => {}
        None => {
            return refuse(
                ErrorCode::InvalidRequest,
                "code_challenge_method is required and must be S256",
            );
        }
        Some(_) => {
            return refuse(
                ErrorCode::InvalidRequest,
                "code_challenge_method must be S256",
            );
        }
    }
    if !pkce::is_valid_challenge(code_challenge) {
        return refuse(
            ErrorCode::InvalidRequest,
            "code_challenge is not a valid S256 challenge",
        );
    }
    let scope = match p.get("scope") {
        Some(s) => {
            Scope::parse(s).map_err(|e| Refusal::new(ErrorCode::InvalidScope, e.to_string()))?
        }
        None => Scope::default(),
    };
    let unknown = scope.difference(supported);
    if !unknown.is_empty() {
        return refuse(ErrorCode::InvalidScope, format!("unknown scope: {unknown}"));
    }
    Ok(CodeParams {
        code_challenge: code_challenge.to_owned(),
        scope,
        resource: p.get("resource").map(str::to_owned),
    })
}

fn prompt(p: &Params) -> Result<Prompt, Refusal> {
    let values: Vec<&str> = p.get("prompt").unwrap_or_default().split(' ').collect();
    let none = values.contains(&"none");
    if none && values.len() > 1 {
        return refuse(
            ErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values",
        );
    }
    Ok(Prompt {
        none,
        login: values.contains(&"login"),
        consent: values.contains(&"consent"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn parse(q: &str) -> Result<AuthorizationRequest, Untrusted> {
        AuthorizationRequest::parse(q, &Scope::parse("mcp:read mcp:write").unwrap())
    }

    #[test]
    fn a_complete_request_parses() {
        let r = parse(&format!(
            "client_id=c&redirect_uri=x&state=s&response_type=code&code_challenge={CHALLENGE}\
             &code_challenge_method=S256&scope=mcp:read&resource=r&prompt=login+consent"
        ))
        .unwrap();
        assert_eq!((r.client_id.as_str(), r.state.as_deref()), ("c", Some("s")));
        assert_eq!(r.form, Ok(()));
        let code = r.code.unwrap();
        assert_eq!(code.scope.to_string(), "mcp:read");
        assert_eq!(code.resource.as_deref(), Some("r"));
        assert_eq!(
            r.prompt,
            Ok(Prompt {
                none: false,
                login: true,
                consent: true
            })
        );
    }

    #[test]
    fn faults_land_in_their_channel() {
        assert_eq!(
            parse("client_id=a&client_id=b"),
            Err(Untrusted::RepeatedClientId)
        );
        assert_eq!(parse("state=x"), Err(Untrusted::MissingClientId));
        assert_eq!(
            parse("client_id=a&redirect_uri=x&redirect_uri=y"),
            Err(Untrusted::RepeatedRedirectUri)
        );
        let r = parse("client_id=a&state=1&state=2&response_type=token").unwrap();
        assert_eq!(r.state, None, "a repeated state is not echoed");
        assert_eq!(r.form.unwrap_err().code, ErrorCode::InvalidRequest);
        let r = parse("client_id=a&response_type=token").unwrap();
        assert_eq!(r.form.unwrap_err().code, ErrorCode::UnsupportedResponseType);
        let r = parse(&format!(
            "client_id=a&code_challenge={CHALLENGE}&code_challenge_method=plain"
        ))
        .unwrap();
        assert_eq!(r.code.unwrap_err().code, ErrorCode::InvalidRequest);
        let r = parse(&format!(
            "client_id=a&code_challenge={CHALLENGE}&code_challenge_method=S256&scope=admin"
        ))
        .unwrap();
        assert_eq!(r.code.unwrap_err().code, ErrorCode::InvalidScope);
        let r = parse("client_id=a&prompt=none+login").unwrap();
        assert_eq!(r.prompt.unwrap_err().code, ErrorCode::InvalidRequest);
    }
}
