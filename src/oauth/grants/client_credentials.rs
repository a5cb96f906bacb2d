//! grant_type=client_credentials: confidential clients acting for themselves. No refresh
//! token, no ID token, and nothing written: the token is verified by signature alone.

use crate::oauth::access_token::{self, AccessTokenSpec};
use crate::oauth::params::Params;
use crate::oauth::token_response::TokenResponse;
use crate::oauth::{OAuthError, scope};
use crate::state::AppState;
use crate::store::Client;

pub async fn issue(
    state: &AppState,
    client: &Client,
    params: &Params,
    jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    if client.is_public {
        return Err(OAuthError::unauthorized_client("public clients cannot use client_credentials"));
    }
    if !client.allows_grant("client_credentials") {
        return Err(OAuthError::unauthorized_client("the client may not use the client_credentials grant"));
    }
    let for_clients = |s: &String| !scope::USER_SCOPES.contains(&s.as_str()) && !scope::is_api_scope(s);
    let scopes: Vec<String> = match params.get("scope") {
        Some(text) => {
            let requested = scope::parse(text)?;
            if let Some(bad) = requested.iter().find(|s| !for_clients(s) || !scope::contains(&client.scopes, s)) {
                return Err(OAuthError::invalid_scope(format!("scope '{bad}' is not available to client_credentials")));
            }
            requested
        }
        None => client.scopes.iter().filter(|s| for_clients(s)).cloned().collect(),
    };
    let resource = params.get("resource");
    access_token::check_resource(state, client, resource)?;
    let audience = access_token::audience(state, client, resource, &scopes);
    let access = access_token::mint(
        state,
        AccessTokenSpec {
            client,
            subject: &client.id,
            scopes: &scopes,
            audience,
            auth_time: None,
            act: None,
            expires_at: None,
            jkt,
        },
    )?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: crate::oauth::token_response::token_type(jkt),
        expires_in: state.config.access_token_ttl,
        scope: scope::join(&scopes),
        refresh_token: None,
        id_token: None,
        issued_token_type: None,
    })
}
