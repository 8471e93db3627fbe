//! `POST /consent`: the person's decision on the consent page. The form's token is bound to
//! the session and to the exact request shown, so it approves that request and no other.

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use oauth_protocol::paths;

use super::pages::{refuse, see_other};
use super::session::{self, consent_purpose, session_csrf_ok};
use crate::extract::PageForm;
use crate::oauth::authorize::{AuthorizeError, page, validate};
use crate::oauth::consent::{approve, deny, within_limit};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(paths::CONSENT, post(consent))
}

/// Form fields `decision` (`approve` or `deny`), `csrf_token`, `request`.
#[tracing::instrument(skip_all)]
async fn consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm,
) -> Response {
    let query = form.get("request").unwrap_or_default().to_owned();
    let result = async {
        let req = validate(&state, &query).await?;
        let now = state.now();
        let Some(current) = session::session(&state, &headers, now).await? else {
            return Ok(see_other(&format!("{}?{query}", paths::AUTHORIZE)));
        };
        let req = within_limit(req, Some(&current))?;
        if !session_csrf_ok(
            &state,
            &headers,
            &consent_purpose(&query),
            form.get("csrf_token"),
        ) {
            return Err(page(
                "Form expired",
                "This consent form expired. Return to the application and try again.",
            ));
        }
        match form.get("decision") {
            Some("approve") => approve(&state, &req, &current.user_id, now)
                .await
                .map(|url| see_other(&url)),
            Some("deny") => Err(deny(&state, &req, &current.user_id).await),
            _ => Err(page("Invalid request", "Choose Allow or Deny.")),
        }
    }
    .await;
    result.unwrap_or_else(|e: AuthorizeError| refuse(e, &state))
}
