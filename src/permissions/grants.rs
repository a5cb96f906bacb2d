//! Granting and revoking a direct permission. Both are idempotent: granting what is held, or
//! revoking what is not, changes nothing and answers `changed: false` with the version unmoved.

use super::{PermissionError, check_token, invalid};
use crate::audit::Initiator;
use crate::state::AppState;
use crate::store::{ORGANIZATION_SCOPE, PermissionKey, PermissionStore, PermissionWrite, User, UserStore};

/// A permission of the user with subject `sub` (oxidp's subjects are UUIDs, so the narrow
/// name rules apply to it as well).
#[derive(Debug, Clone)]
pub struct PermissionRequest {
    pub sub: String,
    pub scope_type: String,
    pub scope_id: String,
    pub module: String,
    pub action: String,
}

/// What a grant or revoke did to the user.
#[derive(Debug, Clone)]
pub struct PermissionChange {
    pub user: User,
    pub key: PermissionKey,
    /// False when the user already held (grant) or did not hold (revoke) the permission.
    pub changed: bool,
    /// The user's permissions version after the call.
    pub version: i64,
}

impl PermissionChange {
    /// The audit entry's details.
    fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "sub": self.user.sub,
            "scope_type": self.key.scope_type,
            "scope_id": self.key.scope_id,
            "module": self.key.module,
            "action": self.key.action,
            "changed": self.changed,
            "version": self.version,
        })
    }
}

impl PermissionRequest {
    /// Checks every field; a permission scoped to an organization must name it by id, which
    /// the grant itself checks against the organizations (atomically with the write).
    pub fn key(&self) -> Result<PermissionKey, PermissionError> {
        check_token("sub", &self.sub)?;
        check_token("scope_type", &self.scope_type)?;
        check_token("scope_id", &self.scope_id)?;
        check_token("module", &self.module)?;
        check_token("action", &self.action)?;
        Ok(PermissionKey {
            scope_type: self.scope_type.clone(),
            scope_id: self.scope_id.clone(),
            module: self.module.clone(),
            action: self.action.clone(),
        })
    }
}

async fn holder(state: &AppState, sub: &str) -> Result<User, PermissionError> {
    state.db.user_by_sub(sub).await?.ok_or(PermissionError::NotFound("no user with this sub"))
}

fn outcome(user: User, key: PermissionKey, write: PermissionWrite) -> Result<PermissionChange, PermissionError> {
    match write {
        PermissionWrite::Done { changed, version } => Ok(PermissionChange { user, key, changed, version }),
        PermissionWrite::UserMissing => Err(PermissionError::NotFound("no user with this sub")),
        PermissionWrite::OrganizationMissing => Err(invalid("scope_id", "no organization has this id")),
    }
}

/// Grants a permission; audited as `permission.grant`.
pub async fn grant(
    state: &AppState,
    by: &Initiator,
    request: &PermissionRequest,
) -> Result<PermissionChange, PermissionError> {
    let key = request.key()?;
    let user = holder(state, &request.sub).await?;
    let write = state.db.grant_permission(&user.id, &key, state.now()).await?;
    let change = outcome(user, key, write)?;
    by.record(state, "permission.grant", ("user", &change.user.id), change.details()).await?;
    Ok(change)
}

/// Revoking needs no existing organization: a permission on a deleted organization is gone
/// already, and revoking it again is the usual idempotent no-op.
pub async fn revoke(
    state: &AppState,
    by: &Initiator,
    request: &PermissionRequest,
) -> Result<PermissionChange, PermissionError> {
    let key = request.key()?;
    let user = holder(state, &request.sub).await?;
    let write = state.db.revoke_permission(&user.id, &key).await?;
    let change = outcome(user, key, write)?;
    by.record(state, "permission.revoke", ("user", &change.user.id), change.details()).await?;
    Ok(change)
}

/// Whether a key is scoped to an organization (its `scope_id` is then an organization id).
pub fn is_organization_scoped(key: &PermissionKey) -> bool {
    key.scope_type == ORGANIZATION_SCOPE
}
