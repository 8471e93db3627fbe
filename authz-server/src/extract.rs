//! Request extractors that own their rejections, so a handler only ever sees well-formed
//! input: the back-channel form with its client credentials (answered with RFC 6749 §5.2
//! JSON errors) and the HTML pages' forms (answered with an error page).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oauth_protocol::form::Params;

use crate::clients::{Credentials, credentials};
use crate::error::OAuthError;
use crate::templates::error_page;

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// An `application/x-www-form-urlencoded` body without repeated parameters (RFC 6749 §3.2),
/// with the client credentials it carries (RFC 6749 §2.3.1: `client_secret_basic` with its
/// form-decoding, `client_secret_post`, or a bare `client_id` for public clients).
pub struct OAuthForm {
    pub params: Params,
    pub credentials: Option<Credentials>,
}

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = OAuthError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        if !is_form(&headers) {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|_| OAuthError::invalid_request("the body could not be read"))?;
        let params = Params::parse(&body);
        if let Some(dup) = params.first_duplicate() {
            return Err(OAuthError::invalid_request(format!(
                "parameter {dup} is repeated"
            )));
        }
        let credentials = credentials(&headers, &params)?;
        Ok(Self {
            params,
            credentials,
        })
    }
}

/// The body of one of our HTML forms: the same content-type and repeated-parameter rules
/// as the token endpoint, refused with an error page.
pub struct PageForm(pub Params);

pub struct PageFormRejection(&'static str);

impl IntoResponse for PageFormRejection {
    fn into_response(self) -> Response {
        error_page(StatusCode::BAD_REQUEST, "Invalid request", self.0)
    }
}

impl<S: Send + Sync> FromRequest<S> for PageForm {
    type Rejection = PageFormRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_form(req.headers()) {
            return Err(PageFormRejection("The form was not sent as a form."));
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|_| PageFormRejection("The form could not be read."))?;
        let params = Params::parse(&body);
        if params.first_duplicate().is_some() {
            return Err(PageFormRejection("A form field was sent twice."));
        }
        Ok(Self(params))
    }
}
