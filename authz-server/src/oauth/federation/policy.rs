//! Who may sign in through a provider, and what they may be granted: the allow-lists (email
//! domain, Google `hd`, Entra `tid`, required claim values) and the claim-to-scopes mapping.

use oauth_protocol::Scope;

use super::FederationError;
use super::answer::Claims;
use crate::config::Upstream;
use crate::upstream_config::{claim, claim_values};

/// Refuses an identity that a provider's allow-lists leave out.
pub(super) fn allowed(up: &Upstream, claims: &Claims) -> Result<(), FederationError> {
    let listed = |list: &[String], name: &str| {
        list.is_empty()
            || claim_values(claim(&claims.all, name))
                .iter()
                .any(|v| list.iter().any(|a| a.eq_ignore_ascii_case(v)))
    };
    if !listed(&up.allowed_hosted_domains, "hd") || !listed(&up.allowed_tenants, "tid") {
        return Err(FederationError::NotAllowed(format!(
            "This {} account belongs to an organisation that may not sign in here.",
            up.label()
        )));
    }
    // Claim values are compared exactly: group names and role ids are case-sensitive.
    for (name, values) in &up.required_claims {
        let have = claim_values(claim(&claims.all, name));
        if !have.iter().any(|v| values.contains(v)) {
            return Err(FederationError::NotAllowed(format!(
                "Your {} account is not in a group allowed to sign in here.",
                up.label()
            )));
        }
    }
    if up.allowed_email_domains.is_empty() {
        return Ok(());
    }
    let domain = claims
        .email
        .as_deref()
        .filter(|_| claims.email_verified)
        .and_then(|e| e.rsplit_once('@'))
        .map(|(_, d)| d.to_lowercase());
    match domain {
        Some(d)
            if up
                .allowed_email_domains
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&d)) =>
        {
            Ok(())
        }
        _ => Err(FederationError::NotAllowed(format!(
            "Only accounts of {} may sign in here through {}.",
            up.allowed_email_domains.join(", "),
            up.label()
        ))),
    }
}

/// The scopes this identity may be granted, when the provider maps a claim to scopes: the
/// union of the scopes of each of the claim's values. `None` when the provider maps none.
pub(super) fn scope_limit(up: &Upstream, claims: &Claims) -> Option<String> {
    let map = up.scope_claim.as_ref()?;
    let mut scope = Scope::default();
    for value in claim_values(claim(&claims.all, &map.claim)) {
        if let Some(scopes) = map.scopes.get(&value) {
            scope = scope.union(&Scope::from_tokens(scopes.iter().map(String::as_str)));
        }
    }
    Some(scope.to_string())
}
