//! grant_type=urn:ietf:params:oauth:grant-type:device_code (RFC 8628 §3.4–3.5): the device polls
//! until the person decides. Too-fast polls get `slow_down` and a longer interval, stored so
//! every instance enforces it; an approved device code is redeemed once, in the statement that
//! checks it is still approved. No PKCE: the device code itself never left the back channel.

use super::issue_user_tokens;
use crate::oauth::device::{DEVICE_CODE_PURPOSE, GRANT_TYPE, SLOW_DOWN_STEP};
use crate::oauth::params::Params;
use crate::oauth::{OAuthError, refresh_token, scope};
use crate::state::AppState;
use crate::store::{Client, DeviceAuthorization, DeviceCodeStore, Grant, GrantStore, UserStore};

/// `jkt`: the key of the request's DPoP proof, which binds the tokens (and a public client's
/// refresh tokens) as at the code grant.
pub async fn exchange(
    state: &AppState,
    client: &Client,
    params: &Params,
    jkt: Option<&str>,
) -> Result<super::TokenResponse, OAuthError> {
    if !client.allows_grant(GRANT_TYPE) {
        return Err(OAuthError::unauthorized_client("the client may not use the device_code grant"));
    }
    let device_code =
        params.get("device_code").ok_or_else(|| OAuthError::invalid_request("device_code is required"))?;
    let hash = state.secret.keyed_hash(DEVICE_CODE_PURPOSE, device_code);
    let authorization = state
        .db
        .device_authorization_by_device_code(&hash)
        .await?
        .filter(|a| a.client_id == client.id)
        .ok_or_else(|| OAuthError::invalid_grant("the device code is invalid"))?;
    let now = state.now();
    match authorization.status.as_str() {
        "consumed" => Err(OAuthError::invalid_grant("the device code was already used")),
        _ if authorization.expires_at <= now => Err(OAuthError::expired_token("the device code has expired")),
        "denied" => Err(OAuthError::access_denied("the user denied the request")),
        "approved" => redeem(state, client, authorization, jkt).await,
        _ => poll(state, &authorization, now).await,
    }
}

/// A poll while the person has not decided: `slow_down` (interval + 5 s, kept) when it came
/// sooner than the interval after the last one, else `authorization_pending`.
async fn poll(
    state: &AppState,
    authorization: &DeviceAuthorization,
    now: i64,
) -> Result<super::TokenResponse, OAuthError> {
    let too_fast = authorization.last_polled_at.is_some_and(|last| now - last < authorization.poll_interval);
    let interval = if too_fast { authorization.poll_interval + SLOW_DOWN_STEP } else { authorization.poll_interval };
    let recorded = state.db.record_device_poll(&authorization.id, authorization.last_polled_at, now, interval).await?;
    if too_fast || !recorded {
        // A concurrent poll recorded first: this one came too fast as well.
        return Err(OAuthError::slow_down(format!("poll at most every {interval} seconds")));
    }
    Err(OAuthError::authorization_pending("the user has not yet approved the request"))
}

async fn redeem(
    state: &AppState,
    client: &Client,
    authorization: DeviceAuthorization,
    jkt: Option<&str>,
) -> Result<super::TokenResponse, OAuthError> {
    let now = state.now();
    let grant_id = uuid::Uuid::new_v4().to_string();
    if !state.db.consume_device(&authorization.id, &grant_id).await? {
        return Err(OAuthError::invalid_grant("the device code was already used"));
    }
    let corrupt = || OAuthError::Internal("approved device authorization without its approval".into());
    let user_id = authorization.user_id.ok_or_else(corrupt)?;
    let session_id = authorization.session_id.ok_or_else(corrupt)?;
    let user = state
        .db
        .user_by_id(&user_id)
        .await?
        .filter(|user| user.is_active())
        .ok_or_else(|| OAuthError::invalid_grant("the user is no longer active"))?;
    let scopes = scope::parse(&authorization.scope)?;
    let grant = Grant {
        id: grant_id,
        client_id: client.id.clone(),
        user_id: user.id.clone(),
        scope: authorization.scope.clone(),
        resource: authorization.resource.clone(),
        auth_time: authorization.auth_time.ok_or_else(corrupt)?,
        amr: authorization.amr.ok_or_else(corrupt)?,
        created_at: now,
        expires_at: refresh_token::family_end(state, now),
        revoked_at: None,
        session_id: Some(session_id.clone()),
        dpop_jkt: if client.is_public { jkt.map(str::to_string) } else { None },
    };
    state.db.insert_grant(&grant).await?;
    let refresh_token = if refresh_token::may_issue(client, &scopes) {
        Some(refresh_token::start_family(state, &grant).await?)
    } else {
        None
    };
    crate::oidc::backchannel::took_part(state, &session_id, &user.id, &client.id).await?;
    let sid = crate::oidc::backchannel::sid(state, &session_id);
    issue_user_tokens(state, client, &user, &grant, &scopes, None, refresh_token, Some(&sid), jkt).await
}
