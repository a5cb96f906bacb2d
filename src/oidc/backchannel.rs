//! OIDC Back-Channel Logout 1.0: when a session ends, every client that took part in it and
//! registered a `backchannel_logout_uri` is sent a logout token through the delivery queue
//! (so the person's logout never waits for a client).

use serde_json::{Map, Value, json};

use crate::state::AppState;
use crate::store::{BackchannelStore, ClientStore, SessionParticipant, StoreResult, UserStore};

/// The delivery kind of logout tokens.
pub const KIND: &str = "backchannel_logout";
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Lifetime of a logout token (minted afresh at each attempt).
const TOKEN_TTL: i64 = 120;

/// The `sid` of a session in ID and logout tokens: a keyed hash of its id (never the cookie).
pub fn sid(state: &AppState, session_id: &str) -> String {
    state.secret.keyed_hash("oidc-sid", session_id)
}

/// Remembers that the client received tokens for this session.
pub async fn took_part(state: &AppState, session_id: &str, user_id: &str, client_id: &str) -> StoreResult<()> {
    state.db.record_session_client(session_id, user_id, client_id, state.now()).await
}

/// The session ended (logout, revocation, expiry): queue a logout token for each participant.
pub async fn session_ended(state: &AppState, session_id: &str) -> StoreResult<()> {
    let participants = state.db.take_session_participants(session_id).await?;
    notify(state, participants).await
}

/// Every session of the user but `keep` ended (password reset, ban, erasure).
pub async fn user_sessions_ended(state: &AppState, user_id: &str, keep: Option<&str>) -> StoreResult<()> {
    let participants = state.db.take_user_participants(user_id, keep).await?;
    notify(state, participants).await
}

async fn notify(state: &AppState, participants: Vec<SessionParticipant>) -> StoreResult<()> {
    for participant in participants {
        // The sub this client knows: its own for a pairwise client.
        let sub = match state.db.user_by_id(&participant.user_id).await? {
            Some(user) => Some(super::subject::for_client(state, &participant.client_id, &user).await?),
            None => None,
        };
        let payload = json!({
            "client_id": participant.client_id,
            "sub": sub,
            "sid": sid(state, &participant.session_id),
        });
        crate::delivery::enqueue(state, KIND, &participant.uri, &payload).await?;
    }
    Ok(())
}

/// Mints the logout token of a queued delivery; its `jti` is the delivery's id, so every attempt
/// carries the same event.
pub async fn logout_token(state: &AppState, delivery_id: &str, payload: &Value) -> Result<String, String> {
    let client_id = payload.get("client_id").and_then(Value::as_str).ok_or("payload without client_id")?;
    let client = state.db.client_by_id(client_id).await.map_err(|e| e.to_string())?.ok_or("the client is gone")?;
    let now = state.now();
    let mut claims = Map::new();
    claims.insert("iss".into(), Value::String(state.config.issuer.clone()));
    claims.insert("aud".into(), Value::String(client.id.clone()));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + TOKEN_TTL));
    claims.insert("jti".into(), Value::String(delivery_id.to_string()));
    claims.insert("events".into(), json!({ EVENT: {} }));
    for name in ["sub", "sid"] {
        if let Some(value) = payload.get(name).and_then(Value::as_str) {
            claims.insert(name.into(), Value::String(value.to_string()));
        }
    }
    let alg = client.id_token_alg.as_deref().unwrap_or(crate::keys::DEFAULT_ALG);
    state.keys.sign_with(alg, "logout+jwt", &claims).map_err(|e| e.to_string())
}

/// The delivery queue's renderer of logout tokens (installed by `startup`).
pub struct LogoutTokens;

impl crate::delivery::Renderer for LogoutTokens {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn render<'a>(
        &'a self,
        state: &'a AppState,
        delivery_id: &'a str,
        payload: &'a Value,
    ) -> crate::delivery::Rendered<'a> {
        Box::pin(
            async move { Ok(vec![("logout_token".to_string(), logout_token(state, delivery_id, payload).await?)]) },
        )
    }
}
