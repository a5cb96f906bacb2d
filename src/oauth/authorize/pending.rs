//! Requests waiting for the login or consent page, kept in the key-value store.

use super::{AuthorizationRequest, AuthorizeError};
use crate::crypto::random_token;
use crate::state::AppState;

/// How long a user may take on the login and consent pages.
pub(super) const PENDING_TTL: i64 = 30 * 60;

#[derive(Debug, Clone)]
pub struct Pending {
    pub id: String,
    pub request: AuthorizationRequest,
}

fn key(id: &str) -> String {
    format!("authorize:{id}")
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

pub async fn load(state: &AppState, id: &str) -> Result<Option<Pending>, AuthorizeError> {
    if id.is_empty() || id.len() > 64 {
        return Ok(None);
    }
    let Some(bytes) = state.kv.get(&key(id)).await? else { return Ok(None) };
    let request = serde_json::from_slice(&bytes).map_err(|e| AuthorizeError::Internal(e.to_string()))?;
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

pub async fn mark_consent_given(state: &AppState, pending: &mut Pending) -> Result<(), AuthorizeError> {
    pending.request.consent_given = true;
    store(state, &pending.id, &pending.request).await
}
