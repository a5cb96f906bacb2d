//! Issuing the authorization code and building redirect URLs.

use super::{AuthorizationRequest, AuthorizeError};
use crate::crypto::random_token;
use crate::oauth::CODE_HASH_PURPOSE;
use crate::session::ActiveSession;
use crate::state::AppState;
use crate::store::{AuthCode, CodeStore};

pub(super) async fn issue(
    state: &AppState,
    request: &AuthorizationRequest,
    session: &ActiveSession,
) -> Result<String, AuthorizeError> {
    let now = state.now();
    let code = random_token(32);
    let expires_at = now + state.config.code_ttl;
    let record = AuthCode {
        code_hash: state.secret.keyed_hash(CODE_HASH_PURPOSE, &code),
        client_id: request.client_id.clone(),
        user_id: session.user.id.clone(),
        session_id: session.session.id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        redirect_uri_given: request.redirect_uri_given,
        scope: request.scopes.join(" "),
        resource: request.resource.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        auth_time: session.session.auth_time,
        amr: session.session.amr.clone(),
        created_at: now,
        expires_at,
        consumed_at: None,
        grant_id: None,
        // A replay must be recognised for as long as anything the code issued can live.
        dpop_jkt: request.dpop_jkt.clone(),
        purge_after: expires_at + state.config.refresh_token_max_ttl.max(state.config.access_token_ttl),
    };
    state.db.insert_code(&record).await?;
    Ok(append_query(
        &request.redirect_uri,
        &[("code", Some(&code)), ("state", request.state.as_deref()), ("iss", Some(&state.config.issuer))],
    ))
}

/// Adds parameters to a redirect URI's query, keeping the query it already has.
pub fn append_query(uri: &str, params: &[(&str, Option<&str>)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        if let Some(value) = value {
            serializer.append_pair(name, value);
        }
    }
    let query = serializer.finish();
    if query.is_empty() {
        // Nothing to add (a logout without `state`): the URI exactly as registered, no stray '?'.
        return uri.to_string();
    }
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}{query}")
}
