//! /userinfo: claims by the access token's scopes, `sub` equal to the ID token's.

use serde_json::{Map, Value};

use crate::oauth::dpop::{self, Presentation};
use crate::oauth::{OAuthError, access_token, scope};
use crate::state::AppState;
use crate::store::UserStore;

pub async fn userinfo(
    state: &AppState,
    bearer: &str,
    presentation: &Presentation<'_>,
) -> Result<Map<String, Value>, OAuthError> {
    let token = access_token::validate(state, bearer).await?;
    dpop::check_presentation(state, token.jkt.as_deref(), bearer, presentation).await?;
    if !token.has_scope(scope::OPENID) {
        return Err(OAuthError::insufficient_scope("the access token lacks the openid scope"));
    }
    if token.is_client_token() {
        return Err(OAuthError::invalid_token("the access token does not belong to a user"));
    }
    let user = state
        .db
        .user_by_sub(&token.subject)
        .await?
        .filter(|user| user.is_active())
        .ok_or_else(|| OAuthError::invalid_token("the user is no longer active"))?;
    let mut claims = Map::new();
    let subject = super::subject::for_client(state, &token.client_id, &user).await?;
    claims.insert("sub".into(), Value::String(subject));
    claims.extend(super::claims::for_scopes(&user, &token.scopes));
    Ok(claims)
}
