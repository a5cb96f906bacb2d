//! Initial access tokens (RFC 7591 §3): what `OXIDP_DYNAMIC_REGISTRATION=token` asks of a
//! registering party. Made by `oxidp registration-token create` and the admin API; only a keyed
//! hash is stored, with the expiry and the uses left.

use serde_json::json;

use super::RegistrationError;
use crate::audit::Initiator;
use crate::crypto::random_token;
use crate::state::AppState;
use crate::store::RegistrationStore;

pub(super) const PURPOSE: &str = "registration-initial-token";
/// A year: an initial access token is meant for one onboarding, not for ever.
const MAX_LIFETIME: i64 = 365 * 86_400;

pub struct IssuedToken {
    pub id: String,
    /// Shown once.
    pub token: String,
    pub expires_at: i64,
    /// `None`: unlimited.
    pub uses: Option<i64>,
}

pub async fn create_initial_token(
    state: &AppState,
    by: &Initiator,
    expires_in: i64,
    uses: Option<i64>,
) -> Result<IssuedToken, RegistrationError> {
    if expires_in <= 0 || expires_in > MAX_LIFETIME {
        return Err(RegistrationError::InvalidMetadata(format!("expires_in must be 1 to {MAX_LIFETIME} seconds")));
    }
    if uses.is_some_and(|uses| uses < 1) {
        return Err(RegistrationError::InvalidMetadata("uses must be at least 1".into()));
    }
    let (id, token) = (random_token(12), random_token(32));
    let expires_at = state.now().saturating_add(expires_in);
    let hash = state.secret.keyed_hash(PURPOSE, &token);
    state.db.create_registration_token(&id, &hash, expires_at, uses, state.now()).await?;
    let details = json!({ "expires_at": expires_at, "uses": uses });
    by.record(state, "registration_token.create", ("registration_token", &id), details).await?;
    Ok(IssuedToken { id, token, expires_at, uses })
}
