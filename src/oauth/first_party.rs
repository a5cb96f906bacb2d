//! The built-in first-party client `oxidp-api`: oxidp's own JSON API logs users in with it,
//! and Swagger UI runs the authorization-code flow with it.

use super::grants::issue_user_tokens;
use super::token_response::TokenResponse;
use super::{OAuthError, refresh_token, scope};
use crate::state::AppState;
use crate::store::{ClientStore, Grant, GrantStore, NewClient, StoreResult, User};

pub const BUILTIN_CLIENT_ID: &str = "oxidp-api";

/// Registers `oxidp-api` on first start, and follows a changed issuer on later starts (its
/// redirect URI and audience contain the issuer).
pub async fn ensure_builtin_client(state: &AppState) -> StoreResult<()> {
    let client = builtin_client_registration(state);
    match state.db.client_by_id(BUILTIN_CLIENT_ID).await? {
        Some(existing) if existing.redirect_uris == client.redirect_uris && existing.audiences == client.audiences => {
            return Ok(());
        }
        Some(_) => state.db.update_client(&client, state.now()).await.map(|_| ())?,
        None => match state.db.create_client(client, state.now()).await {
            // Another instance registered it at the same moment.
            Err(crate::store::StoreError::Conflict) => (),
            other => other?,
        },
    }
    // At start Redis may not be reachable yet (it is not required to start): other instances'
    // cached copy of this client then stays until the next client change, which is harmless
    // for a registration that differs only after an issuer change.
    if let Err(error) = super::clients::changed(state).await {
        tracing::warn!(%error, "could not renew the client cache stamp after registering oxidp-api");
    }
    Ok(())
}

fn builtin_client_registration(state: &AppState) -> NewClient {
    let issuer = &state.config.issuer;
    NewClient {
        id: BUILTIN_CLIENT_ID.into(),
        name: "oxidp API".into(),
        secret_hash: None,
        redirect_uris: vec![format!("{issuer}/docs/oauth-receiver.html")],
        post_logout_redirect_uris: Vec::new(),
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scopes: ["openid", "profile", "email", "offline_access", scope::ACCOUNT, scope::ADMIN]
            .map(String::from)
            .to_vec(),
        audiences: vec![state.config.api_audience()],
        resources: Vec::new(),
        is_public: true,
        first_party: true,
        resource_server: false,
        pkce_exempt: false,
        api_access: true,
        id_token_alg: None,
        require_par: false,
        dpop_bound_access_tokens: false,
        registered_via: None,
    }
}

/// Tokens for a user who logged in with email and password through the JSON API:
/// scope `account` (plus `admin` for administrators) and a refresh token.
pub async fn login_tokens(state: &AppState, user: &User) -> Result<TokenResponse, OAuthError> {
    let client = super::clients::find(state, BUILTIN_CLIENT_ID)
        .await?
        .ok_or_else(|| OAuthError::Internal("the oxidp-api client is missing".into()))?;
    let mut scopes = vec![scope::ACCOUNT.to_string(), scope::OFFLINE_ACCESS.to_string()];
    if user.is_admin() {
        scopes.push(scope::ADMIN.to_string());
    }
    let now = state.now();
    let grant = Grant {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: client.id.clone(),
        user_id: user.id.clone(),
        scope: scopes.join(" "),
        resource: None,
        auth_time: now,
        amr: "pwd".into(),
        created_at: now,
        expires_at: refresh_token::family_end(state, now),
        revoked_at: None,
        session_id: None,
        dpop_jkt: None,
    };
    state.db.insert_grant(&grant).await?;
    let refresh = refresh_token::start_family(state, &grant).await?;
    issue_user_tokens(state, &client, user, &grant, &scopes, None, Some(refresh), None, None).await
}

/// Revokes the family of a refresh token issued to `oxidp-api` (logout); unknown tokens are ignored.
pub async fn logout(state: &AppState, presented: &str) -> Result<(), OAuthError> {
    refresh_token::revoke_family_of(state, presented, BUILTIN_CLIENT_ID).await?;
    Ok(())
}

/// Rotates a refresh token of `oxidp-api` through the refresh grant, so /token's rules apply.
pub async fn refresh(state: &AppState, presented: &str) -> Result<TokenResponse, OAuthError> {
    let client = super::clients::find(state, BUILTIN_CLIENT_ID)
        .await?
        .ok_or_else(|| OAuthError::Internal("the oxidp-api client is missing".into()))?;
    let params = super::params::Params::from_pairs([("grant_type", "refresh_token"), ("refresh_token", presented)]);
    super::grants::refresh_token::refresh(state, &client, &params, None).await
}
