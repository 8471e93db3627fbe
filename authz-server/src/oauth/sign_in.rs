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
    // Failures count per account and address, per account from every address together
    // (a larger quota), and per address: one address can hold an account's sign-in off only
    // for itself, and holding it off everywhere takes many addresses.
    let account = username.to_lowercase();
    let pair = match address {
        Some(ip) => format!("{account}|{ip}"),
        None => account.clone(),
    };
    let mut held: Vec<crate::throttle::Reservation> = Vec::with_capacity(3);
    let checks = [
        (&state.login_by_user, pair, false),
        (&state.login_by_account, account, false),
        (
            &state.login_by_address,
            address.map(|ip| ip.to_string()).unwrap_or_default(),
            true,
        ),
    ];
    for (throttle, key, is_address) in checks {
        if is_address && address.is_none() {
            continue;
        }
        match throttle.reserve(&key).await {
            Ok(r) => held.push(r),
            Err(wait) => {
                held.into_iter()
                    .for_each(crate::throttle::Reservation::give_back);
                state.metrics.inc("logins_failed_total", &[]);
                let user_id = match (is_address, state.store.user_by_username(username).await) {
                    (false, Ok(user)) => user.map(|u| u.id),
                    _ => None,
                };
                let detail = match address {
                    Some(ip) if is_address => format!("address {ip}"),
                    _ => username.to_owned(),
                };
                state
                    .audit("login_throttled", user_id.as_deref(), client_id, &detail)
                    .await;
                return Err(SignInError::Throttled(wait));
            }
        }
    }
    let give_back = |held: Vec<crate::throttle::Reservation>| {
        held.into_iter()
            .for_each(crate::throttle::Reservation::give_back);
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
            give_back(held);
            return Err(SignInError::Busy);
        }
    };
    match user {
        Some(u) if ok => {
            give_back(held);
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
