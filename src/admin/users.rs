use crate::cli::CliError;
use crate::passwords;
use crate::state::AppState;
use crate::store::{NewUser, RoleChange, StoreError, User, UserStore};

/// The password policy of SPEC §3 that the CLI applies too: 10–256 characters, not the
/// email's local part.
pub fn check_password(email: &str, password: &str) -> Result<(), String> {
    let length = password.chars().count();
    if !(10..=256).contains(&length) {
        return Err("--password must be 10 to 256 characters long".into());
    }
    let local = email.split('@').next().unwrap_or("").to_lowercase();
    if local.len() >= 3 && password.to_lowercase().contains(&local) {
        return Err("--password must not contain the email's local part".into());
    }
    Ok(())
}

pub fn check_email(email: &str) -> Result<(), String> {
    let email = email.trim();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid { Ok(()) } else { Err(format!("--email '{email}' is not a valid email address")) }
}

pub async fn create(
    state: &AppState,
    email: &str,
    password: &str,
    name: Option<String>,
    admin: bool,
) -> Result<User, CliError> {
    check_email(email).map_err(CliError::Invalid)?;
    check_password(email, password).map_err(CliError::Invalid)?;
    let hash = passwords::hash_password(password).map_err(CliError::Failed)?;
    let user = NewUser {
        email: email.trim().to_string(),
        email_verified: true,
        password_hash: Some(hash),
        name,
        role: if admin { "admin" } else { "user" }.to_string(),
    };
    state.db.create_user(user, state.now()).await.map_err(|error| match error {
        StoreError::Conflict => {
            CliError::Invalid(format!("--email: a user with email '{}' already exists", email.trim()))
        }
        other => CliError::Failed(other.to_string()),
    })
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

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => AdminError::Unavailable,
            other => AdminError::Internal(other.to_string()),
        }
    }
}

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

pub async fn update(
    state: &AppState,
    acting_user: Option<&str>,
    id: &str,
    change: UserUpdate,
) -> Result<User, AdminError> {
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
pub async fn ban(state: &AppState, acting_user: Option<&str>, id: &str) -> Result<User, AdminError> {
    update(state, acting_user, id, UserUpdate { status: Some("banned".into()), ..UserUpdate::default() }).await
}

pub async fn unban(state: &AppState, acting_user: Option<&str>, id: &str) -> Result<User, AdminError> {
    let user = existing(state, id).await?;
    if user.status != "banned" {
        return Err(AdminError::Conflict("the user is not banned"));
    }
    update(state, acting_user, id, UserUpdate { status: Some("active".into()), ..UserUpdate::default() }).await
}

/// Soft delete: reversible with `restore`.
pub async fn soft_delete(state: &AppState, acting_user: Option<&str>, id: &str) -> Result<User, AdminError> {
    update(state, acting_user, id, UserUpdate { status: Some("deleted".into()), ..UserUpdate::default() }).await
}

pub async fn restore(state: &AppState, acting_user: Option<&str>, id: &str) -> Result<User, AdminError> {
    let user = existing(state, id).await?;
    if user.status != "deleted" {
        return Err(AdminError::Conflict("the user is not deleted"));
    }
    update(state, acting_user, id, UserUpdate { status: Some("active".into()), ..UserUpdate::default() }).await
}

/// Erase: the user's personal data is deleted for good; audit rows keep a pseudonym instead of
/// the id and lose their IP and user agent. Returns the pseudonym.
pub async fn erase(state: &AppState, acting_user: Option<&str>, id: &str) -> Result<String, AdminError> {
    use crate::store::AuditStore;
    let user = existing(state, id).await?;
    if acting_user == Some(user.id.as_str()) {
        return Err(AdminError::Guarded(Guard::OwnAccount));
    }
    // Marked deleted first, under the last-administrator guard, so a refused erase touches
    // nothing and a concurrent demotion cannot slip past it.
    set_role_and_status(state, &user, None, Some("deleted")).await?;
    cut_off(state, &user.id).await?;
    let pseudonym = format!("erased:{}", &state.secret.keyed_hash("erased-user", &user.id)[..16]);
    state.db.pseudonymise_audit(&user.id, &pseudonym).await?;
    state.db.delete_user_row(&user.id).await?;
    Ok(pseudonym)
}
