//! Self-service account operations (SPEC §3), free of HTTP: registration, email verification,
//! password recovery, profile and password changes.

pub mod limits;
pub mod policy;
mod recovery;
mod sessions;

pub use recovery::{forgot_password, reset_password};

pub use sessions::{end_session, unlink_identity};

use serde_json::json;

use crate::audit::Initiator;
use crate::crypto::random_token;
use crate::passwords;
use crate::state::AppState;
use crate::store::{GrantStore, NewUser, OneTimeTokenStore, Profile, SessionStore, StoreError, User, UserStore};
use limits::Kind;

const VERIFY_PURPOSE: &str = "verify-email";
pub(crate) const RESET_PURPOSE: &str = "reset-password";
pub(crate) const TOKEN_HASH_PURPOSE: &str = "one-time-token";
const VERIFY_TTL: i64 = 24 * 3600;
pub(crate) const RESET_TTL: i64 = 3600;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// A field's value is not acceptable; `field` names it.
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("the token is invalid, expired or already used")]
    BadToken,
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("{0}")]
    NotFound(&'static str),
    /// Unlinking would leave the account with no way to sign in.
    #[error("this identity is the account's last way to sign in")]
    LastLoginMethod,
    /// Over a per-address or per-email limit (registrations, mails, password checks).
    #[error("too many attempts; try again later")]
    RateLimited { retry_after: i64 },
    /// The password-hash gate is full.
    #[error("too many password checks at once")]
    Busy,
    #[error("service unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<passwords::GateError> for AccountError {
    fn from(error: passwords::GateError) -> Self {
        match error {
            passwords::GateError::Busy => AccountError::Busy,
            passwords::GateError::Internal(message) => AccountError::Internal(message),
        }
    }
}

impl From<crate::kv::KvError> for AccountError {
    fn from(_: crate::kv::KvError) -> Self {
        // Fail closed: without counters the limits cannot hold.
        AccountError::Unavailable
    }
}

impl From<StoreError> for AccountError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => AccountError::Unavailable,
            StoreError::Conflict => AccountError::EmailTaken,
            other => AccountError::Internal(other.to_string()),
        }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> AccountError {
    AccountError::Invalid { field, message: message.into() }
}

pub fn check_new_password(email: &str, password: &str, field: &'static str) -> Result<(), AccountError> {
    policy::check_password(email, password).map_err(|problem| invalid(field, problem.message()))
}

async fn hash(state: &AppState, password: &str) -> Result<String, AccountError> {
    Ok(state.password_gate.hash(password).await?)
}

pub async fn register(
    state: &AppState,
    by: &Initiator,
    email: &str,
    password: &str,
    name: Option<String>,
) -> Result<User, AccountError> {
    if state.config.registration == crate::config::Registration::Closed {
        return Err(AccountError::Forbidden("registration is closed"));
    }
    policy::check_email(email).map_err(|message| invalid("email", message))?;
    check_new_password(email, password, "password")?;
    if name.as_ref().is_some_and(|n| n.chars().count() > 256) {
        return Err(invalid("name", "at most 256 characters"));
    }
    // Counted before any hashing, per source address and per email.
    limits::admit(state, Kind::Register, by.origin.ip.as_deref(), email).await?;
    let user = NewUser {
        email: Some(email.trim().to_string()),
        email_verified: false,
        password_hash: Some(hash(state, password).await?),
        name,
        role: "user".into(),
    };
    let user = state.db.create_self_registered_user(user, state.now()).await?;
    by.record(state, "user.register", ("user", &user.id), json!({})).await?;
    send_verification(state, &user).await?;
    Ok(user)
}

async fn issue_token(state: &AppState, user_id: &str, purpose: &str, ttl: i64) -> Result<String, AccountError> {
    let token = random_token(32);
    let now = state.now();
    let token_hash = state.secret.keyed_hash(TOKEN_HASH_PURPOSE, &token);
    state.db.insert_one_time_token(&token_hash, user_id, purpose, now, now + ttl).await?;
    Ok(token)
}

pub(crate) async fn use_token(state: &AppState, token: &str, purpose: &str) -> Result<User, AccountError> {
    if token.is_empty() || token.len() > 256 {
        return Err(AccountError::BadToken);
    }
    let token_hash = state.secret.keyed_hash(TOKEN_HASH_PURPOSE, token);
    let user_id =
        state.db.use_one_time_token(&token_hash, purpose, state.now()).await?.ok_or(AccountError::BadToken)?;
    state.db.user_by_id(&user_id).await?.filter(User::is_active).ok_or(AccountError::BadToken)
}

/// Mails a verification code, unless the address has had its share of them (then nothing is
/// sent; the caller's answer does not change). An account without an email gets none.
pub async fn send_verification(state: &AppState, user: &User) -> Result<(), AccountError> {
    let Some(email) = user.email.as_deref() else { return Ok(()) };
    match limits::admit(state, Kind::VerificationMail, None, email).await {
        Ok(()) => {}
        Err(AccountError::RateLimited { .. }) => return Ok(()),
        Err(other) => return Err(other),
    }
    let token = issue_token(state, &user.id, VERIFY_PURPOSE, VERIFY_TTL).await?;
    let body = format!(
        "Confirm your email address for {issuer} with this code (valid 24 hours):\n\n{token}\n\n\
         POST it as {{\"token\": \"...\"}} to {issuer}/api/v1/auth/verify-email.",
        issuer = state.config.issuer
    );
    state
        .mailer
        .send(email, "Confirm your email address", &body)
        .await
        .map_err(|e| AccountError::Internal(e.to_string()))
}

pub async fn verify_email(state: &AppState, by: &Initiator, token: &str) -> Result<(), AccountError> {
    let user = use_token(state, token, VERIFY_PURPOSE).await?;
    state.db.set_email_verified(&user.id, state.now()).await?;
    by.record(state, "user.verify_email", ("user", &user.id), json!({})).await?;
    Ok(())
}

/// Changes the password after checking the current one; other sessions and refresh tokens end,
/// the caller's own grant (`keep_grant`) survives.
pub async fn change_password(
    state: &AppState,
    by: &Initiator,
    user: &User,
    current: &str,
    new: &str,
    keep_grant: Option<&str>,
) -> Result<(), AccountError> {
    use crate::login::LoginError;
    // The sign-in's counters for the account and the address, and its audit of failures.
    crate::login::confirm_password(state, user, current, &by.origin).await.map_err(|error| match error {
        LoginError::InvalidCredentials => AccountError::WrongPassword,
        LoginError::Locked { retry_after, .. } => AccountError::RateLimited { retry_after },
        LoginError::Busy => AccountError::Busy,
        LoginError::Unavailable => AccountError::Unavailable,
        LoginError::Internal(message) => AccountError::Internal(message),
    })?;
    check_new_password(user.email.as_deref().unwrap_or_default(), new, "new_password")?;
    replace_password(state, user, new, keep_grant, None).await?;
    by.record(state, "user.password_change", ("user", &user.id), json!({})).await?;
    Ok(())
}

pub(crate) async fn replace_password(
    state: &AppState,
    user: &User,
    password: &str,
    keep_grant: Option<&str>,
    keep_session: Option<&str>,
) -> Result<(), AccountError> {
    let now = state.now();
    state.db.set_password_hash(&user.id, &hash(state, password).await?, now).await?;
    state.sessions.delete_user_sessions(&user.id, keep_session).await?;
    crate::oidc::backchannel::user_sessions_ended(state, &user.id, keep_session).await?;
    state.db.revoke_user_grants(&user.id, keep_grant, now).await?;
    Ok(())
}

/// Field limits for the profile claims (lengths in characters).
pub fn validate_profile(profile: &Profile) -> Result<(), AccountError> {
    let fields: [(&'static str, &Option<String>, usize); 7] = [
        ("name", &profile.name, 256),
        ("given_name", &profile.given_name, 128),
        ("family_name", &profile.family_name, 128),
        ("picture", &profile.picture, 2048),
        ("phone_number", &profile.phone_number, 32),
        ("locale", &profile.locale, 35),
        ("zoneinfo", &profile.zoneinfo, 64),
    ];
    for (field, value, limit) in fields {
        if let Some(value) = value
            && (value.chars().count() > limit || value.chars().any(char::is_control))
        {
            return Err(invalid(field, format!("at most {limit} characters, no control characters")));
        }
    }
    if let Some(picture) = &profile.picture {
        let url = url::Url::parse(picture).map_err(|_| invalid("picture", "must be an absolute https URL"))?;
        if url.scheme() != "https" {
            return Err(invalid("picture", "must be an absolute https URL"));
        }
    }
    if let Some(phone) = &profile.phone_number {
        let ok = phone.starts_with('+')
            && phone.len() > 4
            && phone[1..].chars().all(|c| c.is_ascii_digit() || c == ' ' || c == '-');
        if !ok {
            return Err(invalid("phone_number", "must be in E.164 form, e.g. +14155550100"));
        }
    }
    if let Some(locale) = &profile.locale
        && !locale.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid("locale", "must be a BCP 47 language tag, e.g. en-US"));
    }
    Ok(())
}

pub async fn update_profile(
    state: &AppState,
    by: &Initiator,
    user: &User,
    profile: Profile,
) -> Result<User, AccountError> {
    validate_profile(&profile)?;
    state.db.update_profile(&user.id, &profile, state.now()).await?;
    by.record(state, "user.profile_update", ("user", &user.id), json!({})).await?;
    state.db.user_by_id(&user.id).await?.ok_or_else(|| AccountError::Internal("user vanished".into()))
}
