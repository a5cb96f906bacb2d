//! grant_type=refresh_token: rotation on every use; a rotated token presented again inside
//! the grace window gets the same successor (concurrent refreshes), later it revokes the family.

use super::issue_user_tokens;
use crate::oauth::params::Params;
use crate::oauth::{OAuthError, REFRESH_HASH_PURPOSE, scope};
use crate::state::AppState;
use crate::store::{Client, GrantStore, RefreshToken, UserStore};

pub async fn refresh(state: &AppState, client: &Client, params: &Params) -> Result<super::TokenResponse, OAuthError> {
    if !client.allows_grant("refresh_token") {
        return Err(OAuthError::unauthorized_client("the client may not use the refresh_token grant"));
    }
    let presented =
        params.get("refresh_token").ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let now = state.now();
    let token_hash = state.secret.keyed_hash(REFRESH_HASH_PURPOSE, presented);
    let Some((token, grant)) = state.db.refresh_token_by_hash(&token_hash).await? else {
        return Err(OAuthError::invalid_grant("the refresh token is invalid"));
    };
    if grant.client_id != client.id {
        return Err(OAuthError::invalid_grant("the refresh token was issued to another client"));
    }
    if grant.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("the refresh token has been revoked"));
    }
    let grace = state.config.refresh_reuse_grace;
    if let Some(rotated_at) = token.rotated_at
        && now - rotated_at >= grace
    {
        state.db.revoke_grant(&grant.id, now).await?;
        tracing::warn!(client_id = %client.id, grant_id = %grant.id, "refresh token reuse detected; family revoked");
        crate::observability::refresh_reuse_detected();
        let event = crate::audit::Event {
            actor: crate::audit::Actor::Client(client.id.clone()),
            action: "refresh_token.reuse_detected",
            target: Some(("user", &grant.user_id)),
            details: serde_json::json!({ "grant_id": grant.id }),
        };
        crate::audit::record(state, &crate::audit::Origin::default(), event).await?;
        return Err(OAuthError::invalid_grant("the refresh token was already used"));
    }
    if token.expires_at <= now || grant.expires_at <= now {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }
    let user = state
        .db
        .user_by_id(&grant.user_id)
        .await?
        .filter(|user| user.is_active())
        .ok_or_else(|| OAuthError::invalid_grant("the user is no longer active"))?;
    let granted = scope::parse(&grant.scope)?;
    let scopes = match params.get("scope") {
        Some(requested) => {
            let requested = scope::parse(requested)?;
            if let Some(extra) = requested.iter().find(|s| !scope::contains(&granted, s)) {
                return Err(OAuthError::invalid_scope(format!("scope '{extra}' was not granted")));
            }
            requested
        }
        None => granted,
    };

    // Whoever rotates first or comes inside the grace window: the successor is derived from
    // the presented token, so concurrent callers receive the same one.
    if token.rotated_at.is_none() {
        state.db.mark_refresh_rotated(&token_hash, now).await?;
    }
    let successor = state.secret.refresh_successor(presented);
    state
        .db
        .insert_refresh_token(&RefreshToken {
            token_hash: state.secret.keyed_hash(REFRESH_HASH_PURPOSE, &successor),
            grant_id: grant.id.clone(),
            created_at: now,
            expires_at: (now + state.config.refresh_token_ttl).min(grant.expires_at),
            rotated_at: None,
        })
        .await?;
    issue_user_tokens(state, client, &user, &grant, &scopes, None, Some(successor)).await
}
