//! OIDC RP-Initiated Logout 1.0: validate the hint and where to send the user afterwards.

use serde_json::Value;

use crate::oauth::params::Params;
use crate::state::AppState;

#[derive(Debug)]
pub enum LogoutError {
    /// Shown on an error page; nothing is redirected.
    Invalid(String),
    Unavailable,
}

impl From<crate::store::StoreError> for LogoutError {
    fn from(error: crate::store::StoreError) -> Self {
        match error {
            crate::store::StoreError::Unavailable(_) => LogoutError::Unavailable,
            other => LogoutError::Invalid(format!("internal error: {other}")),
        }
    }
}

/// A logout request after validation.
#[derive(Debug, Clone)]
pub struct LogoutRequest {
    /// True when a valid `id_token_hint` came along: no confirmation needed.
    pub hinted: bool,
    /// The subject of the hint, to compare with the session's user.
    pub hint_subject: Option<String>,
    pub client_name: Option<String>,
    /// The client named by `client_id` or the hint's audience.
    pub client_id: Option<String>,
    /// Where to go afterwards, with `state` already appended.
    pub redirect: Option<String>,
}

pub async fn validate(state: &AppState, params: &Params) -> Result<LogoutRequest, LogoutError> {
    if let Some(name) = params.first_repeated() {
        return Err(LogoutError::Invalid(format!("The parameter '{name}' is repeated.")));
    }
    if params.first_oversized().is_some() {
        return Err(LogoutError::Invalid("A parameter is too long.".into()));
    }
    let mut client_id = params.get("client_id").map(str::to_string);
    let mut hint_subject = None;
    if let Some(hint) = params.get("id_token_hint") {
        // Accepted when expired: signature, issuer and audience are what identify the client.
        let (header, claims) =
            state.keys.verify(hint).map_err(|_| LogoutError::Invalid("The id_token_hint is not valid.".into()))?;
        // Our ID tokens are typed `JWT`; an access token (`at+jwt`) is not an ID token even
        // though the same key signed it and its `aud` may name the client (RFC 8725 §3.11).
        if header.get("typ").and_then(Value::as_str) != Some("JWT") {
            return Err(LogoutError::Invalid("The id_token_hint is not an ID token.".into()));
        }
        if claims.get("iss").and_then(Value::as_str) != Some(state.config.issuer.as_str()) {
            return Err(LogoutError::Invalid("The id_token_hint was issued by someone else.".into()));
        }
        let audience: Vec<&str> = match claims.get("aud") {
            Some(Value::String(aud)) => vec![aud.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        match &client_id {
            Some(id) if !audience.contains(&id.as_str()) => {
                return Err(LogoutError::Invalid("The id_token_hint was not issued to this client.".into()));
            }
            Some(_) => {}
            None => client_id = audience.first().map(|aud| aud.to_string()),
        }
        hint_subject = claims.get("sub").and_then(Value::as_str).map(str::to_string);
    }
    let client = match &client_id {
        Some(id) => Some(
            crate::oauth::clients::find(state, id)
                .await?
                .ok_or_else(|| LogoutError::Invalid("The client is not registered.".into()))?,
        ),
        None => None,
    };
    let redirect = match params.get("post_logout_redirect_uri") {
        Some(uri) => {
            let client = client.as_ref().ok_or_else(|| {
                LogoutError::Invalid("post_logout_redirect_uri needs a client_id or an id_token_hint.".into())
            })?;
            if !client.post_logout_redirect_uris.iter().any(|registered| registered == uri) {
                return Err(LogoutError::Invalid(
                    "The post_logout_redirect_uri is not registered for this client.".into(),
                ));
            }
            Some(crate::oauth::authorize::append_query(uri, &[("state", params.get("state"))]))
        }
        None => None,
    };
    Ok(LogoutRequest {
        hinted: hint_subject.is_some(),
        hint_subject,
        client_id: client.as_ref().map(|c| c.id.clone()),
        client_name: client.map(|c| c.name),
        redirect,
    })
}

impl LogoutRequest {
    /// Whether the hint's `sub` is `user` as the hinted client sees them (a pairwise client
    /// sees its own identifier).
    pub async fn hint_names(&self, state: &AppState, user: &crate::store::User) -> bool {
        let (Some(hinted), Some(client_id)) = (&self.hint_subject, &self.client_id) else { return false };
        super::subject::for_client(state, client_id, user).await.is_ok_and(|sub| &sub == hinted)
    }
}
