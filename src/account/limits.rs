//! Limits on unauthenticated work that mails someone or creates something: registrations,
//! password-reset requests and verification mails, each counted per source address and per
//! email address (a hash of the normalized address) in the key-value store, so the limits hold
//! across instances with Redis (issue 12, item 5).

use crate::crypto::{b64url, sha256};
use crate::kv::{Admission, Throttle};
use crate::state::AppState;
use crate::store::users::normalize_email;

use super::AccountError;

/// What is counted; each kind has its own counters.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Register,
    ForgotPassword,
    VerificationMail,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Register => "register",
            Kind::ForgotPassword => "forgot-password",
            Kind::VerificationMail => "verify-mail",
        }
    }
}

fn throttle(limit: i64, window: i64) -> Throttle {
    Throttle { limit, window, free: 0, delay: 0, max_delay: 0 }
}

/// Counts one attempt of `kind` from `ip` (when known) for `email`; refused with
/// [`AccountError::RateLimited`] when either is over its limit (then nothing is counted for the
/// email, and the address's attempt is given back when the email refuses). A failing store
/// refuses too (fail closed: 503).
pub async fn admit(state: &AppState, kind: Kind, ip: Option<&str>, email: &str) -> Result<(), AccountError> {
    let config = &state.config;
    let window = config.mail_limit_window;
    let ip_key = ip.map(|ip| format!("limit:{}:ip:{ip}", kind.as_str()));
    if let Some(key) = &ip_key {
        refuse(state.kv.admit(key, &throttle(config.mail_ip_limit, window)).await?)?;
    }
    let email_key = format!("limit:{}:email:{}", kind.as_str(), b64url(sha256(normalize_email(email))));
    let by_email = refuse(state.kv.admit(&email_key, &throttle(config.mail_email_limit, window)).await?);
    if by_email.is_err()
        && let Some(key) = &ip_key
        && let Err(error) = state.kv.release(key).await
    {
        tracing::warn!(%error, "could not release a counted attempt");
    }
    by_email
}

fn refuse(admission: Admission) -> Result<(), AccountError> {
    match admission {
        Admission::Admitted => Ok(()),
        Admission::Delayed { retry_after } | Admission::Locked { retry_after } => {
            Err(AccountError::RateLimited { retry_after: retry_after.max(1) })
        }
    }
}
