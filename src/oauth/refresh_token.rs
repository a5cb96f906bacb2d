//! Refresh tokens (SPEC §1): every rule about them lives here. A *family* is the chain of
//! refresh tokens one grant issues: the first comes with the grant, each use rotates to the next.
//!
//! - Issued only when the client has the `refresh_token` grant and `offline_access` was granted
//!   ([`may_issue`]); never for client_credentials.
//! - A token lives `refresh_token_ttl` from its issue (sliding), never past the family's absolute
//!   end, `refresh_token_max_ttl` after the grant ([`family_end`]).
//! - Every use rotates ([`check`], then [`UsableToken::rotate`]). The successor is derived from
//!   the presented token, so refreshes racing inside the grace window (`refresh_reuse_grace`)
//!   all receive the same successor.
//! - A rotated token presented after the grace window is reuse: the whole family is revoked.
//! - Revoking a family ([`revoke_family`]) also revokes the access tokens its grant issued.
//! - Tokens are opaque random strings stored only as keyed hashes. Rotated and revoked ones are
//!   kept until the family's end, so reuse is recognised for as long as the family could live.

use super::{OAuthError, REFRESH_HASH_PURPOSE, scope};
use crate::state::AppState;
use crate::store::{Client, Grant, GrantStore, RefreshToken};

/// Whether a grant of `scopes` to `client` comes with a refresh token.
pub fn may_issue(client: &Client, scopes: &[String]) -> bool {
    client.allows_grant("refresh_token") && scope::contains(scopes, scope::OFFLINE_ACCESS)
}

/// The absolute end of a family whose grant is written at `now`.
pub fn family_end(state: &AppState, now: i64) -> i64 {
    now + state.config.refresh_token_max_ttl
}

/// Starts the family of a grant just written: returns its first refresh token.
pub async fn start_family(state: &AppState, grant: &Grant) -> Result<String, OAuthError> {
    let token = crate::crypto::random_token(32);
    // The first token is as old as its grant.
    store(state, &token, grant, grant.created_at).await?;
    Ok(token)
}

/// The presented token's record and its family's grant, if it is a refresh token at all.
pub async fn find(state: &AppState, presented: &str) -> Result<Option<(RefreshToken, Grant)>, OAuthError> {
    Ok(state.db.refresh_token_by_hash(&hash(state, presented)).await?)
}

/// What a presented refresh token turned out to be, when it was not refused outright.
pub enum Presented<'a> {
    /// Unrotated, or rotated inside the grace window: it may be rotated (again).
    Usable(UsableToken<'a>),
    /// Rotated before the grace window: reuse. The family is already revoked; the caller
    /// reports it and refuses the request.
    Reused { family: Grant },
}

/// A refresh token that passed [`check`]; [`UsableToken::rotate`] gives its successor.
pub struct UsableToken<'a> {
    presented: &'a str,
    token_hash: String,
    already_rotated: bool,
    family: Grant,
    /// The instant of the check, kept so the rotation is dated like the decision that allowed it.
    checked_at: i64,
}

/// Checks a token `client_id` presented: refused when unknown, another client's, revoked or
/// expired; a reuse revokes its family here.
pub async fn check<'a>(state: &AppState, client_id: &str, presented: &'a str) -> Result<Presented<'a>, OAuthError> {
    let now = state.now();
    let token_hash = hash(state, presented);
    let Some((token, family)) = state.db.refresh_token_by_hash(&token_hash).await? else {
        return Err(OAuthError::invalid_grant("the refresh token is invalid"));
    };
    if family.client_id != client_id {
        return Err(OAuthError::invalid_grant("the refresh token was issued to another client"));
    }
    if family.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("the refresh token has been revoked"));
    }
    if let Some(rotated_at) = token.rotated_at
        && now - rotated_at >= state.config.refresh_reuse_grace
    {
        // Checked before expiry: a stolen token presented late still burns its family.
        state.db.revoke_grant(&family.id, now).await?;
        tracing::warn!(client_id, grant_id = %family.id, "refresh token reuse detected; family revoked");
        crate::observability::refresh_reuse_detected();
        return Ok(Presented::Reused { family });
    }
    if token.expires_at <= now || family.expires_at <= now {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }
    Ok(Presented::Usable(UsableToken {
        presented,
        token_hash,
        already_rotated: token.rotated_at.is_some(),
        family,
        checked_at: now,
    }))
}

impl UsableToken<'_> {
    /// The family's grant: its user, scope and lifetime.
    pub fn family(&self) -> &Grant {
        &self.family
    }

    /// Marks the presented token rotated (the first caller's time starts the grace window) and
    /// returns its successor; callers inside the grace window receive the same one.
    pub async fn rotate(self, state: &AppState) -> Result<String, OAuthError> {
        if !self.already_rotated {
            state.db.mark_refresh_rotated(&self.token_hash, self.checked_at).await?;
        }
        let successor = state.secret.refresh_successor(self.presented);
        store(state, &successor, &self.family, self.checked_at).await?;
        Ok(successor)
    }
}

/// Revokes a family: its grant, every refresh token of it, and the access tokens it issued.
pub async fn revoke_family(state: &AppState, family: &Grant) -> Result<(), OAuthError> {
    Ok(state.db.revoke_grant(&family.id, state.now()).await?)
}

/// Revokes the family of `presented` when it is a refresh token issued to `client_id`.
/// Returns whether `presented` is a refresh token at all, of any client.
pub async fn revoke_family_of(state: &AppState, presented: &str, client_id: &str) -> Result<bool, OAuthError> {
    let Some((_, family)) = find(state, presented).await? else { return Ok(false) };
    if family.client_id == client_id {
        revoke_family(state, &family).await?;
    }
    Ok(true)
}

fn hash(state: &AppState, token: &str) -> String {
    state.secret.keyed_hash(REFRESH_HASH_PURPOSE, token)
}

/// Stores a token of the family issued at `now`, living until its sliding expiry or the family's end.
async fn store(state: &AppState, token: &str, family: &Grant, now: i64) -> Result<(), OAuthError> {
    let record = RefreshToken {
        token_hash: hash(state, token),
        grant_id: family.id.clone(),
        created_at: now,
        expires_at: (now + state.config.refresh_token_ttl).min(family.expires_at),
        rotated_at: None,
    };
    Ok(state.db.insert_refresh_token(&record).await?)
}
