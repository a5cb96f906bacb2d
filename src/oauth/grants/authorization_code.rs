//! grant_type=authorization_code: one-time codes, PKCE, and replay revoking what the code issued.

use super::issue_user_tokens;
use crate::oauth::params::Params;
use crate::oauth::{CODE_HASH_PURPOSE, OAuthError, pkce, refresh_token, scope};
use crate::state::AppState;
use crate::store::{Client, CodeConsumption, CodeStore, Grant, GrantStore, StoreError, UserStore};

pub async fn exchange(
    state: &AppState,
    client: &Client,
    params: &Params,
    jkt: Option<&str>,
) -> Result<super::TokenResponse, OAuthError> {
    if !client.allows_grant("authorization_code") {
        return Err(OAuthError::unauthorized_client("the client may not use the authorization_code grant"));
    }
    let code = params.get("code").ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let now = state.now();
    let grant_id = uuid::Uuid::new_v4().to_string();
    let code_hash = state.secret.keyed_hash(CODE_HASH_PURPOSE, code);
    let code = match state.db.consume_code(&code_hash, &grant_id, now).await? {
        CodeConsumption::Consumed(code) => code,
        CodeConsumption::Replayed { grant_id, client_id } => {
            if let Some(grant_id) = grant_id {
                state.db.revoke_grant(&grant_id, now).await?;
            }
            tracing::warn!(client_id = %client_id, "authorization code replayed; revoked what it issued");
            return Err(OAuthError::invalid_grant("the authorization code was already used"));
        }
        CodeConsumption::Unknown => return Err(OAuthError::invalid_grant("the authorization code is invalid")),
    };
    if code.client_id != client.id {
        return Err(OAuthError::invalid_grant("the authorization code was issued to another client"));
    }
    if code.expires_at <= now {
        return Err(OAuthError::invalid_grant("the authorization code has expired"));
    }
    check_redirect_uri(params.get("redirect_uri"), &code.redirect_uri, code.redirect_uri_given)?;
    check_pkce(code.code_challenge.as_deref(), params.get("code_verifier"))?;
    check_dpop_jkt(code.dpop_jkt.as_deref(), jkt)?;
    let user = state
        .db
        .user_by_id(&code.user_id)
        .await?
        .filter(|user| user.is_active())
        .ok_or_else(|| OAuthError::invalid_grant("the user is no longer active"))?;

    let scopes = scope::parse(&code.scope)?;
    let grant = Grant {
        id: grant_id,
        client_id: client.id.clone(),
        user_id: user.id.clone(),
        scope: code.scope.clone(),
        resource: code.resource.clone(),
        auth_time: code.auth_time,
        amr: code.amr.clone(),
        created_at: now,
        expires_at: refresh_token::family_end(state, now),
        revoked_at: None,
        session_id: Some(code.session_id.clone()),
        // RFC 9449 §5: only a public client's refresh tokens are bound (a confidential client
        // authenticates anyway).
        dpop_jkt: if client.is_public { jkt.map(str::to_string) } else { None },
    };
    match state.db.insert_grant(&grant).await {
        // A replay revoked the grant between consuming the code and writing the grant.
        Err(StoreError::Conflict) => return Err(OAuthError::invalid_grant("the authorization code was already used")),
        other => other?,
    }
    let refresh_token = if refresh_token::may_issue(client, &scopes) {
        Some(refresh_token::start_family(state, &grant).await?)
    } else {
        None
    };
    crate::oidc::backchannel::took_part(state, &code.session_id, &user.id, &client.id).await?;
    let sid = crate::oidc::backchannel::sid(state, &code.session_id);
    issue_user_tokens(state, client, &user, &grant, &scopes, code.nonce.as_deref(), refresh_token, Some(&sid), jkt)
        .await
}

/// The redirect_uri must repeat the authorization request's when that one carried it.
fn check_redirect_uri(presented: Option<&str>, issued_for: &str, was_given: bool) -> Result<(), OAuthError> {
    match presented {
        Some(uri) if uri != issued_for => {
            Err(OAuthError::invalid_grant("redirect_uri differs from the authorization request"))
        }
        None if was_given => {
            Err(OAuthError::invalid_grant("redirect_uri is required because the authorization request had one"))
        }
        _ => Ok(()),
    }
}

/// RFC 9449 §10: a code bound with `dpop_jkt` is redeemed only with a proof of that key.
fn check_dpop_jkt(bound: Option<&str>, proven: Option<&str>) -> Result<(), OAuthError> {
    match (bound, proven) {
        (Some(bound), Some(proven)) if bound != proven => {
            Err(OAuthError::invalid_grant("the DPoP proof's key is not the one dpop_jkt named"))
        }
        (Some(_), None) => Err(OAuthError::invalid_grant("the code is bound to a DPoP key: a DPoP proof is required")),
        _ => Ok(()),
    }
}

/// PKCE (RFC 7636 §4.6), refusing a verifier for a code issued without a challenge (downgrade).
fn check_pkce(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), OAuthError> {
    match (challenge, verifier) {
        (Some(challenge), Some(verifier)) => {
            if pkce::is_valid_verifier(verifier) && pkce::s256_matches(verifier, challenge) {
                Ok(())
            } else {
                Err(OAuthError::invalid_grant("code_verifier does not match the code_challenge"))
            }
        }
        (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier is required")),
        (None, Some(_)) => {
            Err(OAuthError::invalid_grant("code_verifier given for a code issued without code_challenge"))
        }
        (None, None) => Ok(()),
    }
}
