//! A login at an upstream, between `/login/{provider}` and its callback: the PKCE verifier, the
//! nonce and the authorization request to continue, kept in the key-value store under a hash
//! of the `state` parameter. Single-use (taken, never read twice), ten minutes at most, and
//! bound to the browser that started it by a cookie holding another hash of the state.

use serde::{Deserialize, Serialize};

use super::error::FederationError;
use crate::crypto::{ServerSecret, constant_time_eq};
use crate::kv::Kv;

/// How long a user may take at the upstream (SPEC §2).
pub const ATTEMPT_TTL: i64 = 10 * 60;

const KEY_PURPOSE: &str = "federation-state";
const BINDING_PURPOSE: &str = "federation-binding";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginAttempt {
    pub provider: String,
    /// The pending authorization request to continue afterwards, when there is one.
    pub request_id: Option<String>,
    pub pkce_verifier: String,
    /// OIDC only: the `nonce` the ID token must carry.
    pub nonce: Option<String>,
    pub created_at: i64,
}

fn key(secret: &ServerSecret, raw_state: &str) -> String {
    format!("federation:{}", secret.keyed_hash(KEY_PURPOSE, raw_state))
}

/// The binding cookie's value for a state: a keyed hash, so the cookie reveals nothing and
/// cannot be made from a state seen elsewhere (in a referrer or the upstream's logs).
pub fn binding(secret: &ServerSecret, raw_state: &str) -> String {
    secret.keyed_hash(BINDING_PURPOSE, raw_state)
}

pub async fn save(
    kv: &Kv,
    secret: &ServerSecret,
    raw_state: &str,
    attempt: &LoginAttempt,
) -> Result<(), FederationError> {
    let bytes = serde_json::to_vec(attempt).map_err(|e| FederationError::Internal(e.to_string()))?;
    kv.put(&key(secret, raw_state), bytes, ATTEMPT_TTL).await?;
    Ok(())
}

/// Checks the browser binding, then takes the attempt (it can be used once only).
///
/// The binding is checked first: a callback arriving in another browser must not use up the
/// attempt of the browser that started it.
pub async fn redeem(
    kv: &Kv,
    secret: &ServerSecret,
    now: i64,
    provider: &str,
    raw_state: Option<&str>,
    binding_cookie: Option<&str>,
) -> Result<LoginAttempt, FederationError> {
    let raw_state = raw_state.filter(|s| !s.is_empty() && s.len() <= 256).ok_or(FederationError::StateMissing)?;
    let Some(cookie) = binding_cookie else { return Err(FederationError::NotBound) };
    if !constant_time_eq(cookie.as_bytes(), binding(secret, raw_state).as_bytes()) {
        return Err(FederationError::StateMismatch);
    }
    let Some(bytes) = kv.take(&key(secret, raw_state)).await? else {
        return Err(FederationError::StateUnknown);
    };
    let attempt: LoginAttempt = serde_json::from_slice(&bytes).map_err(|e| FederationError::Internal(e.to_string()))?;
    // The store expires the attempt too; this keeps the rule where it can be read.
    if attempt.created_at + ATTEMPT_TTL <= now {
        return Err(FederationError::StateUnknown);
    }
    if attempt.provider != provider {
        return Err(FederationError::StateMismatch);
    }
    Ok(attempt)
}
