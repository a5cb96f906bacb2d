//! RFC 7009. A client revokes only tokens issued to it; the answer is the same either way.

use super::client_auth::{self, ClientCredentials};
use super::params::Params;
use super::{OAuthError, access_token, params::reject_malformed, refresh_token};
use crate::state::AppState;
use crate::store::GrantStore;

pub async fn revoke(state: &AppState, params: &Params, credentials: &ClientCredentials) -> Result<(), OAuthError> {
    reject_malformed(params)?;
    let client = client_auth::authenticate(state, params, credentials).await?;
    let token = params.get("token").ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    // Revoking a refresh token revokes its family and the access tokens of the same grant.
    if refresh_token::revoke_family_of(state, token, &client.id).await? {
        return Ok(());
    }
    let now = state.now();
    if let Ok(access) = access_token::parse_signed(state, token)
        && access.client_id == client.id
    {
        state.db.revoke_access_token(&access.jti, &client.id, access.expires_at, now).await?;
        if access.is_client_token()
            && let Some(revoked) = &state.revoked_client_tokens
        {
            revoked.insert(&access.jti, access.expires_at, now);
        }
    }
    Ok(())
}
