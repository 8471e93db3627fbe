//! Token requests (RFC 6749 §4.1.3, §4.4.2, §6; OAuth 2.1 §4.1.3, §4.3): the form
//! parameters of `POST /token` as one typed grant. Which client may use which grant, and
//! what a code or refresh token is worth, is the server's to decide; this only says what
//! the request asks for.

use crate::error::{ErrorCode, Refusal};
use crate::form::Params;
use crate::register::{
    GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_DEVICE_CODE, GRANT_REFRESH_TOKEN,
};
use crate::scope::Scope;

/// The grant types this server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    /// RFC 8628 §3.4.
    DeviceCode,
}

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => GRANT_AUTHORIZATION_CODE,
            Self::RefreshToken => GRANT_REFRESH_TOKEN,
            Self::ClientCredentials => GRANT_CLIENT_CREDENTIALS,
            Self::DeviceCode => GRANT_DEVICE_CODE,
        }
    }

    /// `grant_type` of a token request: missing is `invalid_request`, unknown is
    /// `unsupported_grant_type` (RFC 6749 §5.2).
    pub fn from_params(p: &Params) -> Result<Self, Refusal> {
        match p.get("grant_type") {
            None => Err(Refusal::new(
                ErrorCode::InvalidRequest,
                "grant_type is required",
            )),
            Some(GRANT_AUTHORIZATION_CODE) => Ok(Self::AuthorizationCode),
            Some(GRANT_REFRESH_TOKEN) => Ok(Self::RefreshToken),
            Some(GRANT_CLIENT_CREDENTIALS) => Ok(Self::ClientCredentials),
            Some(GRANT_DEVICE_CODE) => Ok(Self::DeviceCode),
            Some(other) => Err(Refusal::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant_type {other:?} is not supported"),
            )),
        }
    }
}

/// A token request's grant with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    AuthorizationCode {
        code: String,
        code_verifier: String,
        /// Required when the authorization request carried one; the server checks that.
        redirect_uri: Option<String>,
        resource: Option<String>,
    },
    RefreshToken {
        refresh_token: String,
        /// RFC 6749 §6: may narrow the original grant's scope, never widen it.
        scope: Option<Scope>,
        resource: Option<String>,
    },
    ClientCredentials {
        scope: Option<Scope>,
        resource: Option<String>,
    },
    DeviceCode {
        device_code: String,
    },
}

fn required(p: &Params, key: &str, what: &str) -> Result<String, Refusal> {
    p.get(key).map(str::to_owned).ok_or_else(|| {
        Refusal::new(
            ErrorCode::InvalidRequest,
            format!("{key} is required{what}"),
        )
    })
}

fn scope(p: &Params) -> Result<Option<Scope>, Refusal> {
    p.get("scope")
        .map(|s| Scope::parse(s).map_err(|e| Refusal::new(ErrorCode::InvalidScope, e.to_string())))
        .transpose()
        .map(|s| s.filter(|s| !s.is_empty()))
}

impl Grant {
    /// The parameters of a grant of type `grant_type`.
    pub fn from_params(grant_type: GrantType, p: &Params) -> Result<Self, Refusal> {
        let resource = p.get("resource").map(str::to_owned);
        Ok(match grant_type {
            GrantType::AuthorizationCode => Self::AuthorizationCode {
                code: required(p, "code", "")?,
                code_verifier: required(p, "code_verifier", " (PKCE)")?,
                redirect_uri: p.get("redirect_uri").map(str::to_owned),
                resource,
            },
            GrantType::RefreshToken => Self::RefreshToken {
                refresh_token: required(p, "refresh_token", "")?,
                scope: scope(p)?,
                resource,
            },
            GrantType::ClientCredentials => Self::ClientCredentials {
                scope: scope(p)?,
                resource,
            },
            GrantType::DeviceCode => Self::DeviceCode {
                device_code: required(p, "device_code", "")?,
            },
        })
    }

    pub fn grant_type(&self) -> GrantType {
        match self {
            Self::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            Self::RefreshToken { .. } => GrantType::RefreshToken,
            Self::ClientCredentials { .. } => GrantType::ClientCredentials,
            Self::DeviceCode { .. } => GrantType::DeviceCode,
        }
    }
}

/// OAuth 2.1 §4.3.1 rotation with a grace window: a refresh token rotated at `rotated_at`
/// still works for `grace` seconds (concurrent or retried refreshes of one client); after
/// that, using it is a replay.
pub fn rotated_token_usable(rotated_at: Option<i64>, now: i64, grace: i64) -> bool {
    rotated_at.is_none_or(|at| now - at <= grace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(body: &str) -> Result<Grant, String> {
        let p = Params::parse(body.as_bytes());
        GrantType::from_params(&p)
            .and_then(|t| Grant::from_params(t, &p))
            .map_err(|e| e.code.as_str().to_owned())
    }

    #[test]
    fn each_grant_reads_its_parameters() {
        assert_eq!(
            grant("grant_type=authorization_code&code=c&code_verifier=v&resource=r"),
            Ok(Grant::AuthorizationCode {
                code: "c".into(),
                code_verifier: "v".into(),
                redirect_uri: None,
                resource: Some("r".into()),
            })
        );
        assert_eq!(
            grant("grant_type=refresh_token&refresh_token=t&scope=a+b"),
            Ok(Grant::RefreshToken {
                refresh_token: "t".into(),
                scope: Some(Scope::parse("a b").unwrap()),
                resource: None,
            })
        );
        assert_eq!(
            grant("grant_type=client_credentials"),
            Ok(Grant::ClientCredentials {
                scope: None,
                resource: None
            })
        );
    }

    #[test]
    fn refusals_carry_the_rfc6749_codes() {
        for (body, code) in [
            ("code=c", "invalid_request"),
            ("grant_type=password", "unsupported_grant_type"),
            (
                "grant_type=authorization_code&code_verifier=v",
                "invalid_request",
            ),
            ("grant_type=authorization_code&code=c", "invalid_request"),
            ("grant_type=refresh_token", "invalid_request"),
            (
                "grant_type=client_credentials&scope=%22bad%22",
                "invalid_scope",
            ),
        ] {
            assert_eq!(grant(body), Err(code.to_owned()), "{body}");
        }
    }
}
