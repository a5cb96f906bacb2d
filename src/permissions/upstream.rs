//! Users known by an upstream subject, for the internal service routes (SPEC §7): a service
//! that authenticates people upstream (Authentik by default) makes sure each has an oxidp user,
//! then asks for that user's permission snapshot by the upstream subject.
//!
//! Upserting is idempotent and safe under concurrency without any read-then-write: the
//! identity's `UNIQUE (provider, subject)` and the users' unique normalized email decide every
//! race, and the loser re-reads the winner.

use super::{PermissionError, check_subject, check_token, invalid};
use crate::audit::Initiator;
use crate::state::AppState;
use crate::store::{IdentityStore, LinkOutcome, NewUser, StoreError, User, UserStore};

/// The provider an upsert names when it names none. (SPEC §7 defaults it to the configured
/// Authentik provider; until Authentik is configurable that provider is `authentik`.)
pub const DEFAULT_PROVIDER: &str = "authentik";

#[derive(Debug, Clone)]
pub struct UpstreamUser {
    pub provider: Option<String>,
    pub sub: String,
    pub email: String,
    pub display_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Upserted {
    pub user: User,
    /// A new oxidp user was made for the subject.
    pub created: bool,
    /// The subject was linked to the existing user with its email.
    pub linked: bool,
    pub provider: String,
}

/// How often an upsert that lost a race re-reads and tries again before giving up (503).
const ATTEMPTS: usize = 5;

fn check_email(email: &str) -> Result<(), PermissionError> {
    crate::account::policy::check_email(email).map(|_| ()).map_err(|message| invalid("email", message))
}

/// Finds the user of (provider, sub), or makes one: a new user (email unverified, no
/// password) with the identity, or, when the email already belongs to a user, the identity
/// linked to that user — never to an administrator, never to an account whose email is not
/// verified, and never when that user already has another identity at the provider (all 409).
pub async fn upsert(state: &AppState, by: &Initiator, request: &UpstreamUser) -> Result<Upserted, PermissionError> {
    let upserted = find_or_make(state, request).await?;
    if upserted.created || upserted.linked {
        let action = if upserted.created { "user.upsert_by_sub.create" } else { "user.upsert_by_sub.link" };
        let details = serde_json::json!({ "provider": upserted.provider, "upstream_sub": request.sub });
        by.record(state, action, ("user", &upserted.user.id), details).await?;
    }
    Ok(upserted)
}

async fn find_or_make(state: &AppState, request: &UpstreamUser) -> Result<Upserted, PermissionError> {
    let provider = request.provider.clone().unwrap_or_else(|| DEFAULT_PROVIDER.to_string());
    check_token("provider", &provider)?;
    check_subject("sub", &request.sub)?;
    let email = request.email.trim();
    check_email(email)?;
    let name = match request.display_name.as_deref().map(str::trim) {
        Some(name) if name.chars().count() > 256 || name.chars().any(char::is_control) => {
            return Err(invalid("display_name", "at most 256 characters, no control characters"));
        }
        Some("") | None => None,
        Some(name) => Some(name.to_string()),
    };
    let done = |user: User, created: bool, linked: bool| Upserted { user, created, linked, provider: provider.clone() };
    for _ in 0..ATTEMPTS {
        if let Some(user) = user_of(state, &provider, &request.sub).await? {
            return Ok(done(user, false, false));
        }
        let new_user = NewUser {
            email: Some(email.to_string()),
            email_verified: false,
            password_hash: None,
            name: name.clone(),
            role: "user".into(),
        };
        match state.db.create_user_with_identity(new_user, &provider, &request.sub, state.now()).await {
            Ok(user_id) => {
                if let Some(user) = state.db.user_by_id(&user_id).await? {
                    return Ok(done(user, true, false));
                }
                continue;
            }
            Err(StoreError::Conflict) => {}
            Err(other) => return Err(other.into()),
        }
        // Lost a race for the subject (the next round returns the winner), or the email is taken.
        if state.db.identity(&provider, &request.sub).await?.is_some() {
            continue;
        }
        let Some(owner) = state.db.user_by_email(email).await? else { continue };
        if owner.is_admin() {
            return Err(admin_email());
        }
        // Account pre-hijacking: whoever registered this email without proving it may hold the
        // account's password, so an unverified account is never linked automatically.
        if !owner.email_verified {
            return Err(PermissionError::Conflict {
                code: "email_unverified",
                message: "the account with this email has not verified it and is not linked automatically".into(),
            });
        }
        match state.db.link_identity_unless_admin(&owner.id, &provider, &request.sub, email, state.now()).await? {
            LinkOutcome::Linked => {
                let user = state.db.user_by_id(&owner.id).await?.unwrap_or(owner);
                return Ok(done(user, false, true));
            }
            // Promoted (or erased) meanwhile, or the subject was taken meanwhile: look again.
            LinkOutcome::UserIsAdmin | LinkOutcome::SubjectTaken => continue,
            LinkOutcome::ProviderAlreadyLinked => {
                return Err(PermissionError::Conflict {
                    code: "identity_conflict",
                    message: format!("the account with this email is linked to another {provider} subject"),
                });
            }
        }
    }
    Err(PermissionError::Unavailable)
}

fn admin_email() -> PermissionError {
    PermissionError::Conflict {
        code: "admin_email",
        message: "the email belongs to an administrator, who is never linked automatically".into(),
    }
}

/// The user an upstream identity belongs to.
pub async fn user_of(state: &AppState, provider: &str, subject: &str) -> Result<Option<User>, PermissionError> {
    match state.db.identity(provider, subject).await? {
        Some(identity) => Ok(state.db.user_by_id(&identity.user_id).await?),
        None => Ok(None),
    }
}
