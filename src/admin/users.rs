use serde_json::json;

use crate::account::policy;
use crate::audit::Initiator;
use crate::passwords;
use crate::state::AppState;
use crate::store::{NewUser, RoleChange, StoreError, User, UserStore};

/// Creates a user with a password (the operator's command line; the fuzzing and test
/// harnesses). The email and password follow the one policy of `account::policy`.
pub async fn create(
    state: &AppState,
    by: &Initiator,
    email: &str,
    password: &str,
    name: Option<String>,
    admin: bool,
) -> Result<User, AdminError> {
    let email = policy::check_email(email).map_err(|message| invalid("email", message))?;
    policy::check_password(&email, password).map_err(|problem| invalid("password", problem.message()))?;
    let hash = state.password_gate.hash(password).await.map_err(|error| match error {
        passwords::GateError::Busy => AdminError::Unavailable,
        passwords::GateError::Internal(message) => AdminError::Internal(message),
    })?;
    let user = NewUser {
        email: Some(email.clone()),
        email_verified: true,
        password_hash: Some(hash),
        name,
        role: if admin { "admin" } else { "user" }.to_string(),
    };
    let user = state.db.create_user(user, state.now()).await.map_err(|error| match error {
        StoreError::Conflict => invalid("email", format!("a user with email '{email}' already exists")),
        other => other.into(),
    })?;
    by.record(state, "user.create", ("user", &user.id), json!({ "role": user.role })).await?;
    Ok(user)
}

fn invalid(field: &'static str, message: impl Into<String>) -> AdminError {
    AdminError::Invalid { field, message: message.into() }
}

/// What an admin may change about a user.
#[derive(Debug, Default)]
pub struct UserUpdate {
    pub role: Option<String>,
    pub status: Option<String>,
    pub email_verified: Option<bool>,
    pub name: Option<Option<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("no such user")]
    NotFound,
    #[error("{0}")]
    Conflict(&'static str),
    /// Refused so that administrators cannot lock themselves out.
    #[error("{}", .0.detail())]
    Guarded(Guard),
    #[error("service unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

crate::store::from_store_error!(AdminError);

/// Changes refused so that the deployment keeps an administrator who can act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// An administrator banning, deleting, erasing or demoting themselves; another
    /// administrator must do it (a slip cannot lock the caller out mid-session).
    OwnAccount,
    /// The change would leave no active administrator.
    LastAdmin,
}

impl Guard {
    /// The problem's `code`; stable for clients.
    pub fn code(self) -> &'static str {
        match self {
            Guard::OwnAccount => "own_account",
            Guard::LastAdmin => "last_admin",
        }
    }

    pub fn detail(self) -> &'static str {
        match self {
            Guard::OwnAccount => {
                "administrators cannot ban, delete, erase or demote themselves; another administrator must do it"
            }
            Guard::LastAdmin => "the user is the last active administrator; make another user an administrator first",
        }
    }
}

pub const ROLES: [&str; 3] = ["user", "moderator", "admin"];
pub const STATUSES: [&str; 3] = ["active", "banned", "deleted"];

async fn existing(state: &AppState, id: &str) -> Result<User, AdminError> {
    state.db.user_by_id(id).await?.ok_or(AdminError::NotFound)
}

/// Ends everything the user holds: browser sessions, refresh tokens (and their access tokens), API keys.
async fn cut_off(state: &AppState, user_id: &str) -> Result<(), AdminError> {
    use crate::store::{ApiKeyStore, GrantStore, SessionStore};
    let now = state.now();
    state.sessions.delete_user_sessions(user_id, None).await?;
    crate::oidc::backchannel::user_sessions_ended(state, user_id, None).await?;
    state.db.revoke_user_grants(user_id, None, now).await?;
    state.db.revoke_user_api_keys(user_id, now).await?;
    Ok(())
}

/// True when the change takes an active administrator's rights away (role or status).
fn removes_admin(user: &User, role: Option<&str>, status: Option<&str>) -> bool {
    let stays = role.unwrap_or(&user.role) == "admin" && status.unwrap_or(&user.status) == "active";
    user.is_admin() && user.is_active() && !stays
}

/// Refuses what an administrator must not do to their own account (`acting_user`: the calling
/// administrator's id; none for an API client).
fn guard_own_account(acting_user: Option<&str>, user: &User, removes: bool) -> Result<(), AdminError> {
    if removes && acting_user == Some(user.id.as_str()) { Err(AdminError::Guarded(Guard::OwnAccount)) } else { Ok(()) }
}

/// Sets role and status; the store refuses to leave no active administrator.
async fn set_role_and_status(
    state: &AppState,
    user: &User,
    role: Option<&str>,
    status: Option<&str>,
) -> Result<(), AdminError> {
    match state.db.set_role_and_status(&user.id, role, status, state.now()).await? {
        RoleChange::LastActiveAdmin => Err(AdminError::Guarded(Guard::LastAdmin)),
        RoleChange::Changed | RoleChange::Unchanged => Ok(()),
    }
}

pub async fn update(state: &AppState, by: &Initiator, id: &str, change: UserUpdate) -> Result<User, AdminError> {
    let details = json!({ "role": change.role, "status": change.status, "email_verified": change.email_verified });
    let user = apply(state, by.user_id(), id, change).await?;
    by.record(state, "user.update", ("user", &user.id), details).await?;
    Ok(user)
}

/// Applies a change without auditing it: the caller records what it was asked to do.
async fn apply(state: &AppState, acting_user: Option<&str>, id: &str, change: UserUpdate) -> Result<User, AdminError> {
    if let Some(role) = &change.role
        && !ROLES.contains(&role.as_str())
    {
        return Err(AdminError::Invalid { field: "role", message: format!("one of {}", ROLES.join(", ")) });
    }
    if let Some(status) = &change.status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(AdminError::Invalid { field: "status", message: format!("one of {}", STATUSES.join(", ")) });
    }
    let user = existing(state, id).await?;
    let (role, status) = (change.role.as_deref(), change.status.as_deref());
    guard_own_account(acting_user, &user, removes_admin(&user, role, status))?;
    // First, so that a refused change changes nothing else either.
    set_role_and_status(state, &user, role, status).await?;
    let now = state.now();
    if status.is_some_and(|status| status != "active") {
        cut_off(state, id).await?;
    }
    if change.email_verified == Some(true) && !user.email_verified {
        state.db.set_email_verified(id, now).await?;
    }
    if let Some(name) = change.name {
        let profile = crate::store::Profile {
            name,
            given_name: user.given_name.clone(),
            family_name: user.family_name.clone(),
            picture: user.picture.clone(),
            phone_number: user.phone_number.clone(),
            locale: user.locale.clone(),
            zoneinfo: user.zoneinfo.clone(),
        };
        state.db.update_profile(id, &profile, now).await?;
    }
    existing(state, id).await
}

/// Ban: the user can no longer log in, and every session, refresh token and API key ends at once.
pub async fn ban(state: &AppState, by: &Initiator, id: &str) -> Result<User, AdminError> {
    set_status(state, by, id, "banned", "user.ban").await
}

async fn set_status(
    state: &AppState,
    by: &Initiator,
    id: &str,
    status: &str,
    action: &str,
) -> Result<User, AdminError> {
    let change = UserUpdate { status: Some(status.into()), ..UserUpdate::default() };
    let user = apply(state, by.user_id(), id, change).await?;
    by.record(state, action, ("user", &user.id), json!({})).await?;
    Ok(user)
}

pub async fn unban(state: &AppState, by: &Initiator, id: &str) -> Result<User, AdminError> {
    let user = existing(state, id).await?;
    if user.status != "banned" {
        return Err(AdminError::Conflict("the user is not banned"));
    }
    set_status(state, by, id, "active", "user.unban").await
}

/// Soft delete: reversible with `restore`.
pub async fn soft_delete(state: &AppState, by: &Initiator, id: &str) -> Result<User, AdminError> {
    set_status(state, by, id, "deleted", "user.delete").await
}

pub async fn restore(state: &AppState, by: &Initiator, id: &str) -> Result<User, AdminError> {
    let user = existing(state, id).await?;
    if user.status != "deleted" {
        return Err(AdminError::Conflict("the user is not deleted"));
    }
    set_status(state, by, id, "active", "user.restore").await
}

/// Erase: the user's personal data is deleted for good; audit rows keep a pseudonym instead of
/// the id and lose their IP and user agent. Returns the pseudonym.
pub async fn erase(state: &AppState, by: &Initiator, id: &str) -> Result<String, AdminError> {
    use crate::store::AuditStore;
    let user = existing(state, id).await?;
    if by.user_id() == Some(user.id.as_str()) {
        return Err(AdminError::Guarded(Guard::OwnAccount));
    }
    // Marked deleted first, under the last-administrator guard, so a refused erase touches
    // nothing and a concurrent demotion cannot slip past it.
    set_role_and_status(state, &user, None, Some("deleted")).await?;
    cut_off(state, &user.id).await?;
    let pseudonym = format!("erased:{}", &state.secret.keyed_hash("erased-user", &user.id)[..16]);
    state.db.pseudonymise_audit(&user.id, &pseudonym).await?;
    state.db.delete_user_row(&user.id).await?;
    by.record(state, "user.erase", ("user", &pseudonym), json!({})).await?;
    Ok(pseudonym)
}
