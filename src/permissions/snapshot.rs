//! A user's effective permissions as services cache them: the role, the direct permissions,
//! the organizations with the user's role and the permissions scoped to each, labelled with the
//! user's `permissions_version` and the `ETag` `"v{version}"`.
//!
//! The version is read before the content and read again after it; when the two reads differ,
//! a change landed in between and the snapshot is read again. So the content a version labels
//! is the content of that version, and a cache keyed by the `ETag` never keeps stale rights.

use serde::Serialize;

use super::PermissionError;
use super::grants::is_organization_scoped;
use crate::state::AppState;
use crate::store::{OrganizationStore, PermissionKey, PermissionStore, User, UserMembership, UserStore};

/// A permission as the snapshot lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Permission {
    pub scope_type: String,
    pub scope_id: String,
    pub module: String,
    pub action: String,
}

/// A (module, action) pair inside one organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleAction {
    pub module: String,
    pub action: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrganizationRole {
    pub id: String,
    pub slug: String,
    /// The user's role in the organization.
    pub role: String,
    /// The user's permissions scoped to this organization.
    pub permissions: Vec<ModuleAction>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub sub: String,
    pub version: i64,
    /// `user`, `moderator` or `admin`.
    pub role: String,
    /// `active`, `banned` or `deleted`. Only an active user holds rights: otherwise
    /// `permissions` and `organizations` are empty.
    pub status: String,
    /// Every direct permission, including those scoped to an organization.
    pub permissions: Vec<Permission>,
    pub organizations: Vec<OrganizationRole>,
}

impl Snapshot {
    pub fn etag(&self) -> String {
        etag(self.version)
    }
}

pub fn etag(version: i64) -> String {
    format!("\"v{version}\"")
}

/// Whether an `If-None-Match` header value matches `etag` (RFC 9110 §13.1.2: `*`, or any
/// entity tag of the list by weak comparison).
pub fn if_none_match(header: &str, etag: &str) -> bool {
    let bare = |tag: &str| tag.trim().trim_start_matches("W/").to_string();
    header.split(',').map(str::trim).any(|candidate| candidate == "*" || bare(candidate) == bare(etag))
}

/// How often a snapshot is read again when changes keep landing while it is read.
const ATTEMPTS: usize = 5;

/// The snapshot of the user with this id; `None` when there is no such user.
pub async fn of_user(state: &AppState, user_id: &str) -> Result<Option<Snapshot>, PermissionError> {
    let mut attempt = 1;
    loop {
        let Some(user) = state.db.user_by_id(user_id).await? else { return Ok(None) };
        let memberships = state.db.memberships_of(user_id).await?;
        let permissions = state.db.permissions_of(user_id).await?;
        let settled = state.db.permissions_version(user_id).await? == Some(user.permissions_version);
        // Content read after its version is at least as new as the label; a last unsettled read
        // is still safe to serve: the next request with this ETag sees the newer version.
        if settled || attempt == ATTEMPTS {
            return Ok(Some(assemble(user, memberships, permissions)));
        }
        attempt += 1;
    }
}

pub async fn of_sub(state: &AppState, sub: &str) -> Result<Option<Snapshot>, PermissionError> {
    match state.db.user_by_sub(sub).await? {
        Some(user) => of_user(state, &user.id).await,
        None => Ok(None),
    }
}

fn assemble(user: User, memberships: Vec<UserMembership>, permissions: Vec<PermissionKey>) -> Snapshot {
    let mut snapshot = Snapshot {
        sub: user.sub.clone(),
        version: user.permissions_version,
        role: user.role.clone(),
        status: user.status.clone(),
        permissions: Vec::new(),
        organizations: Vec::new(),
    };
    if !user.is_active() {
        return snapshot;
    }
    snapshot.organizations = memberships
        .into_iter()
        .map(|m| OrganizationRole {
            permissions: permissions
                .iter()
                .filter(|p| is_organization_scoped(p) && p.scope_id == m.organization_id)
                .map(|p| ModuleAction { module: p.module.clone(), action: p.action.clone() })
                .collect(),
            id: m.organization_id,
            slug: m.slug,
            role: m.role,
        })
        .collect();
    snapshot.permissions = permissions
        .into_iter()
        .map(|p| Permission { scope_type: p.scope_type, scope_id: p.scope_id, module: p.module, action: p.action })
        .collect();
    snapshot
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists() {
        let tag = etag(7);
        assert_eq!(tag, "\"v7\"");
        assert!(if_none_match("\"v7\"", &tag));
        assert!(if_none_match("W/\"v7\"", &tag));
        assert!(if_none_match("\"v6\", \"v7\"", &tag));
        assert!(if_none_match("*", &tag));
        assert!(!if_none_match("\"v70\"", &tag));
        assert!(!if_none_match("v7", &tag));
        assert!(!if_none_match("", &tag));
    }
}
