//! Password sign-in: bounded cost and bounded guessing. Each attempt is counted, per
//! username and per client address, before the password is checked, so parallel guesses
//! cannot slip past the limit and a refused attempt costs no hash; a correct password gives
//! back its own attempts and nothing more. Checks run on the password pool.

use std::net::IpAddr;
use std::time::Duration;

use crate::password_pool::Busy;
use crate::state::AppState;
use crate::store::StoreError;

pub enum SignInError {
    /// Too many failures for this username or address: wait this long.
    Throttled(Duration),
    /// The password pool stayed saturated: try again in a moment (503).
    Busy,
    /// Wrong username or password (indistinguishable on purpose).
    Wrong,
    Store(StoreError),
}

/// The signed-in user's id, or why not. `client_id` is the application the person is
/// signing in for (for the audit trail).
pub async fn sign_in(
    state: &AppState,
    username: &str,
    password: String,
    address: Option<IpAddr>,
    client_id: Option<&str>,
) -> Result<String, SignInError> {
    let by_user = match state.login_by_user.reserve(&username.to_lowercase()).await {
        Ok(r) => r,
        Err(wait) => {
            state.metrics.inc("logins_failed_total", &[]);
            let user_id = match state.store.user_by_username(username).await {
                Ok(user) => user.map(|u| u.id),
                Err(_) => None,
            };
            state
                .audit("login_throttled", user_id.as_deref(), client_id, username)
                .await;
            return Err(SignInError::Throttled(wait));
        }
    };
    let by_address = match address {
        Some(ip) => match state.login_by_address.reserve(&ip.to_string()).await {
            Ok(r) => Some(r),
            Err(wait) => {
                by_user.give_back();
                state.metrics.inc("logins_failed_total", &[]);
                state
                    .audit("login_throttled", None, client_id, &format!("address {ip}"))
                    .await;
                return Err(SignInError::Throttled(wait));
            }
        },
        None => None,
    };
    let give_back = |by_user: crate::throttle::Reservation,
                     by_address: Option<crate::throttle::Reservation>| {
        by_user.give_back();
        if let Some(r) = by_address {
            r.give_back();
        }
    };
    let user = match state.store.user_by_username(username).await {
        Ok(u) => u.filter(|u| u.disabled == 0),
        Err(e) => return Err(SignInError::Store(e)),
    };
    let ok = match state
        .passwords
        .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await
    {
        Ok(ok) => ok,
        Err(Busy) => {
            // Not the caller's fault: no attempt is counted.
            give_back(by_user, by_address);
            return Err(SignInError::Busy);
        }
    };
    match user {
        Some(u) if ok => {
            give_back(by_user, by_address);
            state.metrics.inc("logins_total", &[]);
            tracing::info!(user_id = %u.id, "signed in");
            state
                .audit("login_succeeded", Some(&u.id), client_id, &u.username)
                .await;
            Ok(u.id)
        }
        other => {
            state.metrics.inc("logins_failed_total", &[]);
            tracing::warn!("sign-in failed");
            let user_id = other.as_ref().map(|u| u.id.as_str());
            state
                .audit("login_failed", user_id, client_id, username)
                .await;
            Err(SignInError::Wrong)
        }
    }
}
