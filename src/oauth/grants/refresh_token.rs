//! grant_type=refresh_token: the rotation rules are in `oauth::refresh_token`; this grant adds
//! the client and user checks, scope narrowing, and the audit record of a detected reuse.

use super::issue_user_tokens;
use crate::oauth::params::Params;
use crate::oauth::refresh_token::{self, Presented};
use crate::oauth::{OAuthError, scope};
use crate::state::AppState;
use crate::store::{Client, Grant, UserStore};

pub async fn refresh(
    state: &AppState,
    client: &Client,
    params: &Params,
    jkt: Option<&str>,
) -> Result<super::TokenResponse, OAuthError> {
    if !client.allows_grant("refresh_token") {
        return Err(OAuthError::unauthorized_client("the client may not use the refresh_token grant"));
    }
    let presented =
        params.get("refresh_token").ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let token = match refresh_token::check(state, &client.id, presented).await? {
        Presented::Usable(token) => token,
        Presented::Reused { family } => {
            audit_reuse(state, client, &family).await?;
            return Err(OAuthError::invalid_grant("the refresh token was already used"));
        }
    };
    let family = token.family().clone();
    let user = state
        .db
        .user_by_id(&family.user_id)
        .await?
        .filter(|user| user.is_active())
        .ok_or_else(|| OAuthError::invalid_grant("the user is no longer active"))?;
    let scopes = narrowed_scopes(&family, params.get("scope"))?;
    check_key(&family, jkt)?;
    // Rotate only after every check passed: a refused request leaves the token usable.
    let successor = token.rotate(state).await?;
    // The same `sid` as the code's ID token: a back-channel logout of that session names it.
    let sid = family.session_id.as_deref().map(|session| crate::oidc::backchannel::sid(state, session));
    issue_user_tokens(state, client, &user, &family, &scopes, None, Some(successor), sid.as_deref(), jkt).await
}

/// RFC 9449 §5: a public client's family bound to a DPoP key refreshes only with a proof of it.
fn check_key(family: &Grant, jkt: Option<&str>) -> Result<(), OAuthError> {
    match (family.dpop_jkt.as_deref(), jkt) {
        (Some(bound), Some(proven)) if bound != proven => {
            Err(OAuthError::invalid_grant("the refresh token is bound to another DPoP key"))
        }
        (Some(_), None) => Err(OAuthError::invalid_grant("the refresh token is DPoP-bound: a DPoP proof is required")),
        _ => Ok(()),
    }
}

/// The granted scopes, or the subset the request names (RFC 6749 §6).
fn narrowed_scopes(family: &Grant, requested: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let granted = scope::parse(&family.scope)?;
    let Some(requested) = requested else { return Ok(granted) };
    let requested = scope::parse(requested)?;
    if let Some(extra) = requested.iter().find(|s| !scope::contains(&granted, s)) {
        return Err(OAuthError::invalid_scope(format!("scope '{extra}' was not granted")));
    }
    Ok(requested)
}

async fn audit_reuse(state: &AppState, client: &Client, family: &Grant) -> Result<(), OAuthError> {
    let event = crate::audit::Event {
        actor: crate::audit::Actor::Client(client.id.clone()),
        action: "refresh_token.reuse_detected",
        target: Some(("user", &family.user_id)),
        details: serde_json::json!({ "grant_id": family.id }),
    };
    crate::audit::record(state, &crate::audit::Origin::default(), event).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::narrowed_scopes;
    use crate::oauth::{ErrorCode, OAuthError};
    use crate::store::Grant;

    fn family(scope: &str) -> Grant {
        Grant {
            id: "g".into(),
            client_id: "c".into(),
            user_id: "u".into(),
            scope: scope.into(),
            resource: None,
            auth_time: 0,
            amr: "pwd".into(),
            created_at: 0,
            expires_at: 100,
            revoked_at: None,
            session_id: None,
            dpop_jkt: None,
        }
    }

    #[test]
    fn scope_may_be_narrowed_but_not_widened() {
        let family = family("openid profile offline_access");
        assert_eq!(
            narrowed_scopes(&family, None).ok(),
            Some(vec!["openid".into(), "profile".into(), "offline_access".into()])
        );
        assert_eq!(narrowed_scopes(&family, Some("openid")).ok(), Some(vec!["openid".to_string()]));
        assert!(matches!(
            narrowed_scopes(&family, Some("openid email")),
            Err(OAuthError::Protocol { error: ErrorCode::InvalidScope, .. })
        ));
    }
}
