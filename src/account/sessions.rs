//! What a person ends or removes themselves: one of their browser sessions, a linked upstream
//! identity.

use serde_json::json;

use super::AccountError;
use crate::audit::Initiator;
use crate::state::AppState;
use crate::store::{IdentityLinkStore, SessionStore, UnlinkOutcome, User};

pub async fn end_session(state: &AppState, by: &Initiator, user: &User, id: &str) -> Result<(), AccountError> {
    if !state.sessions.delete_user_session(&user.id, id).await? {
        return Err(AccountError::NotFound("no such session"));
    }
    crate::oidc::backchannel::session_ended(state, id).await?;
    by.record(state, "session.revoke", ("user", &user.id), json!({ "session_id": id })).await?;
    Ok(())
}

/// Unlinks an upstream identity, unless it is the account's last way to sign in.
pub async fn unlink_identity(state: &AppState, by: &Initiator, user: &User, id: &str) -> Result<(), AccountError> {
    match state.db.unlink_identity(&user.id, id, &state.federation.names()).await? {
        UnlinkOutcome::Unlinked => {}
        UnlinkOutcome::NotFound => return Err(AccountError::NotFound("no such identity")),
        UnlinkOutcome::LastLoginMethod => return Err(AccountError::LastLoginMethod),
    }
    by.record(state, "identity.unlink", ("user", &user.id), json!({ "identity_id": id })).await?;
    Ok(())
}
