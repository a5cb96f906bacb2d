//! Password login with brute-force limits per account and per client IP (SPEC §8). Shared by
//! the login page, the JSON API and identity linking, so all count against the same limits.
//!
//! Per account (a hash of the normalized email, so unknown accounts are counted alike): the
//! first `login_free_failures` failures cost nothing; each further one makes the next attempt
//! wait `login_delay` seconds, doubling up to `login_max_delay`; `login_account_limit` failures
//! within `login_lock_window` lock the account until the window ends. Per IP: only the limit.
//! An attempt is counted before its password is checked, in one step with the decision, so
//! parallel attempts cannot slip past; a success resets the account and gives the IP its
//! attempt back.

use crate::audit::{self, Actor, Event, Origin};
use crate::config::Config;
use crate::crypto::{b64url, sha256};
use crate::kv::{Admission, Throttle};
use crate::passwords;
use crate::state::AppState;
use crate::store::{User, UserStore, users::normalize_email};

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Wrong email or password; deliberately one case.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// Too many failures for this account or address, or too soon after the last one; says
    /// nothing about whether the account exists.
    #[error("too many failed attempts; try again later")]
    Locked { retry_after: i64, reason: LockReason },
    /// The password-hash gate is full; nothing was checked.
    #[error("too many password checks at once")]
    Busy,
    #[error("service unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<passwords::GateError> for LoginError {
    fn from(error: passwords::GateError) -> Self {
        match error {
            passwords::GateError::Busy => LoginError::Busy,
            passwords::GateError::Internal(message) => LoginError::Internal(message),
        }
    }
}

/// Why an attempt was refused before its password was checked; for the audit log only, the
/// caller sees the same answer either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockReason {
    /// Inside the wait after a recent failure.
    Delay,
    /// The account's or the address's limit is reached.
    Lock,
}

impl LockReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LockReason::Delay => "delay",
            LockReason::Lock => "lock",
        }
    }
}

crate::store::from_store_error!(LoginError);

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

fn account_throttle(config: &Config) -> Throttle {
    Throttle {
        limit: config.login_account_limit,
        window: config.login_lock_window,
        free: config.login_free_failures,
        delay: config.login_delay,
        max_delay: config.login_max_delay,
    }
}

/// Many people may share an address (NAT): no waits there, only the limit.
fn ip_throttle(config: &Config) -> Throttle {
    Throttle { limit: config.login_ip_limit, window: config.login_lock_window, free: 0, delay: 0, max_delay: 0 }
}

fn refused(admission: Admission) -> Option<LoginError> {
    match admission {
        Admission::Admitted => None,
        Admission::Delayed { retry_after } => {
            Some(LoginError::Locked { retry_after: retry_after.max(1), reason: LockReason::Delay })
        }
        Admission::Locked { retry_after } => {
            Some(LoginError::Locked { retry_after: retry_after.max(1), reason: LockReason::Lock })
        }
    }
}

/// Checks a password login and audits the outcome (`login.succeeded`, `login.failed`, `login.locked`).
pub async fn password_login(
    state: &AppState,
    email: &str,
    password: &str,
    origin: &Origin,
) -> Result<User, LoginError> {
    let ip = origin.ip.as_deref().unwrap_or("unknown");
    let result = throttled(state, email, ip, verify(state, email, password)).await;
    audit_attempt(state, origin, email, "pwd", &result).await?;
    result
}

/// Checks the current password of a signed-in user (before changing it) under the same
/// counters as the sign-in for the account and the address, so it is no side door for guessing;
/// failures and refusals are audited like sign-ins (`method` `password_change`).
pub async fn confirm_password(
    state: &AppState,
    user: &User,
    password: &str,
    origin: &Origin,
) -> Result<(), LoginError> {
    let ip = origin.ip.as_deref().unwrap_or("unknown");
    // An account without an email (made from an upstream) is counted by its id.
    let counted_as = user.email.clone().unwrap_or_else(|| format!("user:{}", user.id));
    let check = async {
        let stored = user.password_hash.clone();
        let verified = state.password_gate.verify(password, stored).await?;
        if verified && user.is_active() { Ok(user.clone()) } else { Err(LoginError::InvalidCredentials) }
    };
    let result = throttled(state, &counted_as, ip, check).await;
    if result.is_err() {
        audit_attempt(state, origin, &counted_as, "password_change", &result).await?;
    }
    result.map(|_| ())
}

async fn audit_attempt(
    state: &AppState,
    origin: &Origin,
    email: &str,
    method: &str,
    result: &Result<User, LoginError>,
) -> Result<(), LoginError> {
    let (actor, action, target) = match result {
        Ok(user) => (Actor::User(user.id.clone()), "login.succeeded", Some(("user", user.id.as_str()))),
        Err(LoginError::InvalidCredentials) => (Actor::Anonymous, "login.failed", None),
        Err(LoginError::Locked { .. }) => (Actor::Anonymous, "login.locked", None),
        Err(_) => return Ok(()),
    };
    if result.is_err() {
        crate::observability::login_failed("password");
    }
    // The email is recorded as typed (hashed), so failures for unknown accounts are countable
    // without storing what someone typed.
    let mut details =
        serde_json::json!({ "method": method, "email_hash": &b64url(sha256(normalize_email(email)))[..16] });
    if let Err(LoginError::Locked { reason, .. }) = result {
        details["reason"] = reason.as_str().into();
    }
    audit::record(state, origin, Event { actor, action, target, details }).await?;
    Ok(())
}

/// Admits an attempt for the account (`email`) and the address, runs `check` (the password
/// check) and counts its outcome.
async fn throttled(
    state: &AppState,
    email: &str,
    ip: &str,
    check: impl std::future::Future<Output = Result<User, LoginError>>,
) -> Result<User, LoginError> {
    let (account_key, ip_key) = (account_key(email), ip_key(ip));
    if let Some(error) = refused(state.kv.admit(&ip_key, &ip_throttle(&state.config)).await?) {
        return Err(error);
    }
    let account = match state.kv.admit(&account_key, &account_throttle(&state.config)).await {
        Ok(admission) => refused(admission),
        Err(error) => Some(error.into()),
    };
    if let Some(error) = account {
        // Refused before any password check: the address's attempt was not used.
        give_back(state, &ip_key).await;
        return Err(error);
    }
    let result = check.await;
    match &result {
        Ok(_) => {
            let reset = state.kv.delete(&account_key).await;
            give_back(state, &ip_key).await;
            reset?;
        }
        // Both attempts stay counted as failures.
        Err(LoginError::InvalidCredentials) => {}
        // Not the caller's failure: neither counts against them.
        Err(_) => {
            give_back(state, &account_key).await;
            give_back(state, &ip_key).await;
        }
    }
    result
}

/// Releases an admitted attempt. Best effort: if the store fails now, the attempt stays
/// counted, which errs on the safe side.
async fn give_back(state: &AppState, key: &str) {
    if let Err(error) = state.kv.release(key).await {
        tracing::warn!(%error, "could not release a login attempt");
    }
}

/// The password check itself: a dummy hash for unknown accounts, so the work is the same.
async fn verify(state: &AppState, email: &str, password: &str) -> Result<User, LoginError> {
    let user = state.db.user_by_email(email).await?;
    let stored = user.as_ref().and_then(|user| user.password_hash.clone());
    // argon2 takes tens of milliseconds of CPU: the gate runs it off the async workers.
    let checked = state.password_gate.verify_upgrading(password, stored).await?;
    match user {
        Some(user) if checked.matches && user.is_active() => {
            if let Some(upgraded) = &checked.upgraded {
                // An imported hash (bcrypt, PBKDF2, ...) is replaced by argon2id once proven.
                state.db.set_password_hash(&user.id, upgraded, state.now()).await?;
                crate::observability::legacy_password_rehashed();
            }
            Ok(user)
        }
        _ => Err(LoginError::InvalidCredentials),
    }
}
