//! Organizations (tenants) and memberships: a user may belong to several organizations, with a
//! role in each. Membership changes, slug changes and deletions move the affected users'
//! permissions versions (in the store, in the same transaction).

use super::{PermissionError, check_token, invalid};
use serde_json::json;

use crate::audit::Initiator;
use crate::state::AppState;
use crate::store::{MembershipWrite, Organization, OrganizationStore, StoreError};

pub const MAX_SLUG_CHARS: usize = 64;
pub const MAX_NAME_CHARS: usize = 200;

/// A slug: 1 to 64 of `a-z 0-9 -`, not starting or ending with `-`.
pub fn check_slug(slug: &str) -> Result<(), PermissionError> {
    let valid = !slug.is_empty()
        && slug.len() <= MAX_SLUG_CHARS
        && slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(invalid("slug", format!("1 to {MAX_SLUG_CHARS} of a-z, 0-9 and -, not starting or ending with -")))
    }
}

/// A display name: 1 to 200 characters after trimming, no control characters.
pub fn check_name(name: &str) -> Result<String, PermissionError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(invalid("name", format!("must be 1 to {MAX_NAME_CHARS} characters")));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("name", "must not contain control characters"));
    }
    Ok(name.to_string())
}

fn slug_taken(error: StoreError) -> PermissionError {
    match error {
        StoreError::Conflict => {
            PermissionError::Conflict { code: "slug_taken", message: "another organization has this slug".into() }
        }
        other => other.into(),
    }
}

const NO_ORGANIZATION: PermissionError = PermissionError::NotFound("no such organization");

pub async fn create(state: &AppState, by: &Initiator, name: &str, slug: &str) -> Result<Organization, PermissionError> {
    let name = check_name(name)?;
    check_slug(slug)?;
    let organization = state.db.create_organization(&name, slug, state.now()).await.map_err(slug_taken)?;
    let details = json!({ "name": organization.name, "slug": organization.slug });
    by.record(state, "organization.create", ("organization", &organization.id), details).await?;
    Ok(organization)
}

pub async fn update(
    state: &AppState,
    by: &Initiator,
    id: &str,
    name: Option<&str>,
    slug: Option<&str>,
) -> Result<Organization, PermissionError> {
    let name = name.map(check_name).transpose()?;
    if let Some(slug) = slug {
        check_slug(slug)?;
    }
    let organization = state
        .db
        .update_organization(id, name.as_deref(), slug, state.now())
        .await
        .map_err(slug_taken)?
        .ok_or(NO_ORGANIZATION)?;
    let details = json!({ "name": name, "slug": slug });
    by.record(state, "organization.update", ("organization", &organization.id), details).await?;
    Ok(organization)
}

pub async fn delete(state: &AppState, by: &Initiator, id: &str) -> Result<(), PermissionError> {
    if !state.db.delete_organization(id).await? {
        return Err(NO_ORGANIZATION);
    }
    by.record(state, "organization.delete", ("organization", id), json!({})).await?;
    Ok(())
}

/// Adds the user to the organization with `role`, or changes their role; false when the user
/// already was a member with that role.
pub async fn set_member(
    state: &AppState,
    by: &Initiator,
    id: &str,
    user_id: &str,
    role: &str,
) -> Result<bool, PermissionError> {
    check_token("role", role)?;
    let changed = membership_outcome(state.db.set_membership(id, user_id, role, state.now()).await?)?;
    let details = json!({ "organization_id": id, "role": role, "changed": changed });
    by.record(state, "organization.member.set", ("user", user_id), details).await?;
    Ok(changed)
}

/// False when the user was not a member.
pub async fn remove_member(state: &AppState, by: &Initiator, id: &str, user_id: &str) -> Result<bool, PermissionError> {
    let changed = membership_outcome(state.db.remove_membership(id, user_id).await?)?;
    let details = json!({ "organization_id": id, "changed": changed });
    by.record(state, "organization.member.remove", ("user", user_id), details).await?;
    Ok(changed)
}

fn membership_outcome(write: MembershipWrite) -> Result<bool, PermissionError> {
    match write {
        MembershipWrite::Done { changed } => Ok(changed),
        MembershipWrite::OrganizationMissing => Err(NO_ORGANIZATION),
        MembershipWrite::UserMissing => Err(PermissionError::NotFound("no such user")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for good in ["acme", "acme-2", "a", &"a".repeat(MAX_SLUG_CHARS)] {
            assert!(check_slug(good).is_ok(), "{good}");
        }
        for bad in ["", "Acme", "-acme", "acme-", "ac me", "acme_", "äcme", &"a".repeat(MAX_SLUG_CHARS + 1)] {
            assert!(check_slug(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(check_name("  Acme Inc. ").ok().as_deref(), Some("Acme Inc."));
        assert!(check_name("   ").is_err());
        assert!(check_name("a\u{0}b").is_err());
    }
}
