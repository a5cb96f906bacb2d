//! Password login with brute-force limits per account and per client IP. Shared by the
//! login page and (later) the JSON API, so both count against the same limits.

use crate::audit::{self, Actor, Event, Origin};
use crate::crypto::{b64url, sha256};
use crate::passwords;
use crate::state::AppState;
use crate::store::{StoreError, User, UserStore, users::normalize_email};

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Wrong email or password; deliberately one case.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// Too many failures for this account or address; says nothing about whether the account exists.
    #[error("too many failed attempts; try again later")]
    Locked { retry_after: i64 },
    #[error("service unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for LoginError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => LoginError::Unavailable,
            other => LoginError::Internal(other.to_string()),
        }
    }
}

impl From<crate::kv::KvError> for LoginError {
    fn from(_: crate::kv::KvError) -> Self {
        // Fail closed: without counters we cannot limit guessing, so we do not guess.
        LoginError::Unavailable
    }
}

fn account_key(email: &str) -> String {
    format!("login-fail:account:{}", b64url(sha256(normalize_email(email))))
}

fn ip_key(ip: &str) -> String {
    format!("login-fail:ip:{ip}")
}

/// Checks a password login and audits the outcome (`login.succeeded`, `login.failed`, `login.locked`).
pub async fn password_login(
    state: &AppState,
    email: &str,
    password: &str,
    origin: &Origin,
) -> Result<User, LoginError> {
    let result = check_password_login(state, email, password, origin.ip.as_deref().unwrap_or("unknown")).await;
    let (actor, action, target) = match &result {
        Ok(user) => (Actor::User(user.id.clone()), "login.succeeded", Some(("user", user.id.as_str()))),
        Err(LoginError::InvalidCredentials) => (Actor::Anonymous, "login.failed", None),
        Err(LoginError::Locked { .. }) => (Actor::Anonymous, "login.locked", None),
        Err(_) => return result,
    };
    if result.is_err() {
        crate::observability::login_failed("password");
    }
    // The email is recorded as typed (hashed), so failures for unknown accounts are countable
    // without storing what someone typed.
    let details = serde_json::json!({ "method": "pwd", "email_hash": &b64url(sha256(normalize_email(email)))[..16] });
    audit::record(state, origin, Event { actor, action, target, details }).await?;
    result
}

async fn check_password_login(state: &AppState, email: &str, password: &str, ip: &str) -> Result<User, LoginError> {
    let window = state.config.login_lock_window;
    let (account_failures, account_reset) = state.kv.counter(&account_key(email)).await?;
    let (ip_failures, ip_reset) = state.kv.counter(&ip_key(ip)).await?;
    if account_failures >= state.config.login_account_limit {
        return Err(LoginError::Locked { retry_after: account_reset.max(1) });
    }
    if ip_failures >= state.config.login_ip_limit {
        return Err(LoginError::Locked { retry_after: ip_reset.max(1) });
    }
    let user = state.db.user_by_email(email).await?;
    let stored = user.as_ref().and_then(|user| user.password_hash.clone());
    let password = password.to_string();
    let _slot = state.password_checks.acquire().await.map_err(|e| LoginError::Internal(e.to_string()))?;
    // argon2 takes tens of milliseconds of CPU: keep it off the async workers.
    let verified = tokio::task::spawn_blocking(move || passwords::verify_password(&password, stored.as_deref()))
        .await
        .map_err(|e| LoginError::Internal(e.to_string()))?;
    match user {
        Some(user) if verified && user.is_active() => {
            state.kv.delete(&account_key(email)).await?;
            Ok(user)
        }
        _ => {
            state.kv.increment(&account_key(email), window).await?;
            state.kv.increment(&ip_key(ip), window).await?;
            Err(LoginError::InvalidCredentials)
        }
    }
}
