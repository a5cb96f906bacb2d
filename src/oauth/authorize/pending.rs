//! Requests waiting for the login or consent page, kept in the key-value store.
//!
//! A pending request answers only to the browser that started it: it keeps a keyed hash of
//! that browser's authorization cookie, and every load compares it (issue #12 item 2). A link to
//! `/login?request=…` sent to someone else is therefore worthless. Each step re-keys the request
//! (a new id, the old one deleted), so an id seen once never works again.

use super::{AuthorizationRequest, AuthorizeError};
use crate::crypto::random_token;
use crate::state::AppState;

/// How long a user may take on the login and consent pages.
pub(super) const PENDING_TTL: i64 = 30 * 60;
const BROWSER_PURPOSE: &str = "authorize-browser";

#[derive(Debug, Clone)]
pub struct Pending {
    pub id: String,
    pub request: AuthorizationRequest,
}

fn key(id: &str) -> String {
    format!("authorize:{id}")
}

/// The value a pending request keeps of the browser's authorization cookie.
pub(super) fn browser_hash(state: &AppState, browser_cookie: &str) -> String {
    state.secret.keyed_hash(BROWSER_PURPOSE, browser_cookie)
}

pub(super) async fn save(state: &AppState, request: &AuthorizationRequest) -> Result<String, AuthorizeError> {
    let id = random_token(24);
    store(state, &id, request).await?;
    Ok(id)
}

async fn store(state: &AppState, id: &str, request: &AuthorizationRequest) -> Result<(), AuthorizeError> {
    let bytes = serde_json::to_vec(request).map_err(|e| AuthorizeError::Internal(e.to_string()))?;
    state.kv.put(&key(id), bytes, PENDING_TTL).await?;
    Ok(())
}

/// The pending request `id`, if it exists; [`AuthorizeError::OtherBrowser`] when it was started
/// in a browser that does not hold `browser_cookie`.
pub async fn load(state: &AppState, id: &str, browser_cookie: Option<&str>) -> Result<Option<Pending>, AuthorizeError> {
    if id.is_empty() || id.len() > 64 {
        return Ok(None);
    }
    let Some(bytes) = state.kv.get(&key(id)).await? else { return Ok(None) };
    let request: AuthorizationRequest =
        serde_json::from_slice(&bytes).map_err(|e| AuthorizeError::Internal(e.to_string()))?;
    let same_browser =
        browser_cookie.is_some_and(|cookie| state.secret.verify_keyed_hash(BROWSER_PURPOSE, cookie, &request.browser));
    if !same_browser {
        return Err(AuthorizeError::OtherBrowser);
    }
    Ok(Some(Pending { id: id.to_string(), request }))
}

pub(super) async fn forget(state: &AppState, id: &str) -> Result<(), AuthorizeError> {
    state.kv.delete(&key(id)).await?;
    Ok(())
}

pub async fn mark_fresh_login(state: &AppState, pending: &mut Pending, session_id: &str) -> Result<(), AuthorizeError> {
    pending.request.fresh_login_session = Some(session_id.to_string());
    store(state, &pending.id, &pending.request).await
}

/// Consent is recorded for the one person who gave it: nobody else's sign-in inherits it.
pub async fn mark_consent_given(state: &AppState, pending: &mut Pending, user_id: &str) -> Result<(), AuthorizeError> {
    pending.request.consent_given_by = Some(user_id.to_string());
    store(state, &pending.id, &pending.request).await
}
