//! RFC 7662. Full answers to the token's own client and to resource servers; everyone else,
//! and every revoked, expired or banned user's token, gets `{"active": false}`.

use serde_json::{Value, json};

use super::client_auth::{self, ClientCredentials};
use super::params::Params;
use super::{OAuthError, access_token, params::reject_malformed, refresh_token};
use crate::state::AppState;
use crate::store::UserStore;

pub async fn introspect(
    state: &AppState,
    params: &Params,
    credentials: &ClientCredentials,
) -> Result<Value, OAuthError> {
    reject_malformed(params)?;
    let caller = client_auth::authenticate(state, params, credentials).await?;
    let token = params.get("token").ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let inactive = json!({ "active": false });
    let now = state.now();
    // A public client has no secret, so it is never a resource server, whatever is stored.
    let may_see = |client_id: &str| client_id == caller.id || (caller.resource_server && !caller.is_public);

    // Refresh tokens are opaque base64url; a token with dots is a JWT, so skip the lookup.
    let refresh = if token.contains('.') { None } else { refresh_token::find(state, token).await? };
    if let Some((refresh, grant)) = refresh {
        let live = grant.revoked_at.is_none()
            && refresh.rotated_at.is_none()
            && refresh.expires_at.min(grant.expires_at) > now;
        if !live || !may_see(&grant.client_id) {
            return Ok(inactive);
        }
        let Some(user) = state.db.user_by_id(&grant.user_id).await?.filter(|user| user.is_active()) else {
            return Ok(inactive);
        };
        return Ok(json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": grant.scope,
            "client_id": grant.client_id,
            "sub": user.sub,
            "iss": state.config.issuer,
            "iat": refresh.created_at,
            "exp": refresh.expires_at.min(grant.expires_at),
        }));
    }
    match access_token::validate(state, token).await {
        Ok(access) if may_see(&access.client_id) => {
            let mut answer = access.claims.clone();
            answer.insert("active".into(), Value::Bool(true));
            // A bound token's `cnf` is among its claims: the resource server checks the proof.
            answer.insert("token_type".into(), Value::String(access.token_type().into()));
            Ok(Value::Object(answer))
        }
        Ok(_) => Ok(inactive),
        Err(OAuthError::Protocol { .. }) => Ok(inactive),
        Err(other) => Err(other),
    }
}
