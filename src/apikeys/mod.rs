//! API keys (SPEC §4): `oxk_` + 32 random bytes in base62, returned once; stored as a keyed
//! hash plus a short lookup prefix. Verifying a key costs one keyed hash.

use rand::RngCore;

use crate::audit::Initiator;
use crate::state::AppState;
use crate::store::{ApiKey, ApiKeyStore, User, UserStore};

pub const PREFIX: &str = "oxk_";
const HASH_PURPOSE: &str = "api-key";
/// Characters of the random part used for lookup.
const LOOKUP_LEN: usize = 8;
pub const READ_USERS: &str = "read:users";
pub const WRITE_USERS: &str = "write:users";
pub const ADMIN: &str = "admin";
pub const SCOPES: [&str; 3] = [READ_USERS, WRITE_USERS, ADMIN];
/// `last_used_at` is written at most this often per key.
const TOUCH_EVERY: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("the API key is invalid, expired or revoked")]
    Unauthenticated,
    /// The credential asking may not mint this key (`code` says why, stable for clients).
    #[error("{message}")]
    NotAllowed { code: &'static str, message: String },
    #[error("service unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

crate::store::from_store_error!(ApiKeyError);

fn base62(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    // Repeated division of the big-endian number by 62.
    let mut digits: Vec<u8> = bytes.to_vec();
    let mut out = Vec::new();
    while digits.iter().any(|&d| d != 0) {
        let mut remainder = 0u32;
        for digit in digits.iter_mut() {
            let value = (remainder << 8) | u32::from(*digit);
            *digit = (value / 62) as u8;
            remainder = value % 62;
        }
        out.push(ALPHABET[remainder as usize]);
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The credential that asks for a new key: a key never has more rights than what minted it.
#[derive(Debug, Clone)]
pub struct Minter {
    /// The scopes of the access token.
    pub scopes: Vec<String>,
    /// When the person behind the token signed in (`auth_time`).
    pub auth_time: Option<i64>,
    /// A token from another issuer (a trusted issuer, later token exchange): it never mints.
    pub external: bool,
}

impl Minter {
    /// Refuses what this credential may not hand on (issue #12: no privilege escalation).
    fn check(&self, state: &AppState, owner: &User, scopes: &[String]) -> Result<(), ApiKeyError> {
        if self.external {
            return refuse("external_token", "a token from another issuer cannot create credentials");
        }
        if !owner.email_verified {
            return refuse("email_unverified", "verify your email address before creating API keys");
        }
        if scopes.iter().any(|s| s == ADMIN) {
            self.check_admin(state)?;
        }
        Ok(())
    }

    /// An administrator's credential (an `admin` key, an API client, a client secret) is made
    /// only by an administrator at the keyboard: a token of this issuer that carries `admin` and
    /// a sign-in within `OXIDP_STEP_UP_MAX_AGE`.
    pub fn check_admin(&self, state: &AppState) -> Result<(), ApiKeyError> {
        if self.external {
            return refuse("external_token", "a token from another issuer cannot create credentials");
        }
        if !self.scopes.iter().any(|s| s == crate::oauth::scope::ADMIN) {
            return refuse(
                "insufficient_scope",
                "an administrator's credential needs an access token with the admin scope",
            );
        }
        let max_age = state.config.step_up_max_age;
        if self.auth_time.is_none_or(|at| state.now() - at > max_age) {
            return refuse(
                "step_up_required",
                &format!(
                    "an administrator's credential needs a sign-in within the last {max_age} seconds; sign in again"
                ),
            );
        }
        Ok(())
    }
}

fn refuse(code: &'static str, message: &str) -> Result<(), ApiKeyError> {
    Err(ApiKeyError::NotAllowed { code, message: message.into() })
}

pub struct CreatedKey {
    pub key: ApiKey,
    /// The full key, shown once.
    pub secret: String,
}

pub async fn create(
    state: &AppState,
    by: &Initiator,
    minter: &Minter,
    owner: &User,
    name: &str,
    scopes: Vec<String>,
    expires_at: Option<i64>,
) -> Result<CreatedKey, ApiKeyError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiKeyError::Invalid { field: "name", message: "1 to 100 characters".into() });
    }
    if scopes.is_empty() {
        return Err(ApiKeyError::Invalid {
            field: "scopes",
            message: format!("at least one of {}", SCOPES.join(", ")),
        });
    }
    if let Some(unknown) = scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
        return Err(ApiKeyError::Invalid { field: "scopes", message: format!("unknown scope '{unknown}'") });
    }
    if scopes.iter().any(|s| s == ADMIN) && !owner.is_admin() {
        return Err(ApiKeyError::Invalid {
            field: "scopes",
            message: "only administrators may create admin keys".into(),
        });
    }
    minter.check(state, owner, &scopes)?;
    let now = state.now();
    if expires_at.is_some_and(|at| at <= now) {
        return Err(ApiKeyError::Invalid { field: "expires_at", message: "must be in the future".into() });
    }
    let mut random = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut random);
    let body = format!("{:0>43}", base62(&random));
    let secret = format!("{PREFIX}{body}");
    let mut scopes = scopes;
    scopes.sort();
    scopes.dedup();
    let key = ApiKey {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: owner.id.clone(),
        name: name.to_string(),
        prefix: body[..LOOKUP_LEN].to_string(),
        key_hash: state.secret.keyed_hash(HASH_PURPOSE, &secret),
        scopes,
        created_at: now,
        expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    state.db.insert_api_key(&key).await?;
    let details = serde_json::json!({ "name": key.name, "scopes": key.scopes });
    by.record(state, "api_key.create", ("api_key", &key.id), details).await?;
    Ok(CreatedKey { key, secret })
}

/// Revokes one of the owner's keys; false when the owner has no such key.
pub async fn revoke(state: &AppState, by: &Initiator, owner: &User, id: &str) -> Result<bool, ApiKeyError> {
    if !state.db.revoke_api_key(&owner.id, id, state.now()).await? {
        return Ok(false);
    }
    by.record(state, "api_key.revoke", ("api_key", id), serde_json::json!({})).await?;
    Ok(true)
}

/// The key's owner and the key, when the key is well-formed, known, live, and its owner active.
pub async fn authenticate(state: &AppState, presented: &str) -> Result<(User, ApiKey), ApiKeyError> {
    let body = presented.strip_prefix(PREFIX).ok_or(ApiKeyError::Unauthenticated)?;
    if body.len() != 43 || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiKeyError::Unauthenticated);
    }
    let now = state.now();
    let candidates = state.db.api_keys_by_prefix(&body[..LOOKUP_LEN]).await?;
    let key = candidates
        .into_iter()
        .find(|key| state.secret.verify_keyed_hash(HASH_PURPOSE, presented, &key.key_hash))
        .filter(|key| key.revoked_at.is_none() && key.expires_at.is_none_or(|at| at > now))
        .ok_or(ApiKeyError::Unauthenticated)?;
    let owner = state.db.user_by_id(&key.user_id).await?.filter(User::is_active).ok_or(ApiKeyError::Unauthenticated)?;
    if key.last_used_at.is_none_or(|at| now - at >= TOUCH_EVERY) {
        state.db.touch_api_key(&key.id, now).await?;
    }
    Ok((owner, key))
}

/// What a key may do now: its scopes, less `admin` when the owner is no longer an admin.
pub fn effective_scopes(key: &ApiKey, owner: &User) -> Vec<String> {
    key.scopes.iter().filter(|scope| *scope != ADMIN || owner.is_admin()).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base62_of_known_values() {
        assert_eq!(base62(&[0, 61]), "z");
        assert_eq!(base62(&[0, 62]), "10");
        assert_eq!(base62(&[1, 0]), "48");
        assert_eq!(base62(&[0xff; 32]).len(), 43);
    }
}
