//! Authentik's admin API (`OXIDP_AUTHENTIK__BASE_URL`, `__TOKEN`): making sure a user exists
//! there with the given username, name, email and active flag (SPEC §7).
//!
//! Idempotent: the user is looked up by username (`GET /api/v3/core/users/?username=…`, every
//! page of the paginated answer), created when missing (`POST /api/v3/core/users/`) and changed
//! only in the fields that differ (`PATCH /api/v3/core/users/{pk}/`). A create that loses a race
//! to another one finds the winner and updates it.

pub mod client;

pub use client::{AuthentikClient, AuthentikError, AuthentikUser, DesiredUser, EnsureRequest, Ensured};

use crate::audit::Initiator;
use crate::state::AppState;
use crate::store::UserStore;

/// Completes the request from the oxidp user it names and checks it.
async fn desired_user(state: &AppState, request: EnsureRequest) -> Result<DesiredUser, AuthentikError> {
    let invalid = |field, message: &str| AuthentikError::Invalid { field, message: message.into() };
    let user = match request.sub.as_deref() {
        Some(sub) => Some(state.db.user_by_sub(sub).await?.ok_or(AuthentikError::UnknownUser)?),
        None => None,
    };
    let email = request.email.or_else(|| user.as_ref().and_then(|u| u.email.clone()));
    let email = email.map(|e| e.trim().to_string()).ok_or_else(|| invalid("email", "email or sub is required"))?;
    crate::account::policy::check_email(&email).map_err(|message| invalid("email", message))?;
    let username = request.username.map(|u| u.trim().to_string()).unwrap_or_else(|| email.clone());
    if username.is_empty() || username.chars().count() > 150 || username.chars().any(char::is_whitespace) {
        return Err(invalid("username", "1 to 150 characters without spaces"));
    }
    let name = request.name.or_else(|| user.as_ref().and_then(|u| u.name.clone())).unwrap_or_else(|| username.clone());
    if name.trim().is_empty() || name.chars().count() > 256 || name.chars().any(char::is_control) {
        return Err(invalid("name", "1 to 256 characters, no control characters"));
    }
    let is_active = request.is_active.unwrap_or_else(|| user.as_ref().is_none_or(|u| u.is_active()));
    Ok(DesiredUser { username, name: name.trim().to_string(), email, is_active })
}

/// Creates or updates the Authentik user; calling it again with the same request changes nothing.
pub async fn ensure(state: &AppState, by: &Initiator, request: EnsureRequest) -> Result<Ensured, AuthentikError> {
    let ensured = ensure_user(state, request).await?;
    if ensured.created || ensured.updated {
        let action = if ensured.created { "authentik.user.create" } else { "authentik.user.update" };
        let pk = ensured.user.pk.to_string();
        let details = serde_json::json!({ "username": ensured.user.username });
        by.record(state, action, ("authentik_user", &pk), details).await.map_err(AuthentikError::from)?;
    }
    Ok(ensured)
}

async fn ensure_user(state: &AppState, request: EnsureRequest) -> Result<Ensured, AuthentikError> {
    let client = state.authentik.as_ref().ok_or(AuthentikError::NotConfigured)?;
    let desired = desired_user(state, request).await?;
    let existing = match client.find_by_username(&desired.username).await? {
        Some(existing) => existing,
        None => match client.create(&desired).await {
            Ok(user) => return Ok(Ensured { user, created: true, updated: false }),
            // Another call created it meanwhile (Authentik refuses a duplicate username with 400).
            Err(AuthentikError::Rejected { status: 400, detail }) => client
                .find_by_username(&desired.username)
                .await?
                .ok_or(AuthentikError::Rejected { status: 400, detail })?,
            Err(other) => return Err(other),
        },
    };
    let changes = desired.changes(&existing);
    if changes.is_empty() {
        return Ok(Ensured { user: existing, created: false, updated: false });
    }
    let user = client.update(existing.pk, &changes).await?;
    Ok(Ensured { user, created: false, updated: true })
}
