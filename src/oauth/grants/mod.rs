pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod refresh_token;
pub mod token_exchange;

use super::OAuthError;
use super::access_token::{self, AccessTokenSpec};
use super::token_response::TokenResponse;
use crate::oidc::id_token::{self, IdTokenSpec};
use crate::state::AppState;
use crate::store::{Client, Grant, GrantStore, User};

/// Access token (recorded against its grant) and, with `openid`, an ID token.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn issue_user_tokens(
    state: &AppState,
    client: &Client,
    user: &User,
    grant: &Grant,
    scopes: &[String],
    nonce: Option<&str>,
    refresh_token: Option<String>,
    sid: Option<&str>,
    jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let audience = access_token::audience(state, client, grant.resource.as_deref(), scopes);
    let access = access_token::mint(
        state,
        AccessTokenSpec {
            client,
            subject: &user.sub,
            scopes,
            audience,
            auth_time: Some(grant.auth_time),
            act: None,
            expires_at: None,
            jkt,
        },
    )?;
    state.db.record_access_token(&access.jti, &client.id, Some(&grant.id), Some(&user.id), access.expires_at).await?;
    let id_token = if super::scope::contains(scopes, super::scope::OPENID) {
        let subject = crate::oidc::subject::for_client(state, &client.id, user).await?;
        Some(id_token::mint(
            state,
            IdTokenSpec {
                client_id: &client.id,
                alg: client.id_token_alg.as_deref().unwrap_or(crate::keys::DEFAULT_ALG),
                user,
                subject: &subject,
                scopes,
                nonce,
                auth_time: grant.auth_time,
                amr: &grant.amr,
                access_token: Some(&access.token),
                sid,
            },
        )?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token: access.token,
        token_type: super::token_response::token_type(jkt),
        expires_in: state.config.access_token_ttl,
        scope: super::scope::join(scopes),
        refresh_token,
        id_token,
        issued_token_type: None,
    })
}
