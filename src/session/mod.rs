//! Browser sessions: absolute lifetime, idle timeout, a fresh id at every login.
//!
//! They live in Redis when `OXIDP_REDIS_URL` is set (shared by every instance, expired by
//! Redis itself), else in the database (durable across restarts of a single instance).

pub mod store;

pub use store::Sessions;

use crate::crypto::random_token;
use crate::state::AppState;
use crate::store::{Session, SessionStore, StoreResult, User, UserStore};

pub const TOKEN_HASH_PURPOSE: &str = "browser-session";
/// Last-seen updates are written at most this often, to keep reads cheap.
const TOUCH_EVERY: i64 = 60;

/// A live session and its (active) user.
#[derive(Debug, Clone)]
pub struct ActiveSession {
    pub session: Session,
    pub user: User,
}

/// Resolves the session cookie's token to a live session, or `None`.
pub async fn current(state: &AppState, token: Option<&str>) -> StoreResult<Option<ActiveSession>> {
    let Some(token) = token else { return Ok(None) };
    let now = state.now();
    let token_hash = state.secret.keyed_hash(TOKEN_HASH_PURPOSE, token);
    let Some(session) = state.sessions.session_by_token_hash(&token_hash).await? else { return Ok(None) };
    if !session.is_live(now, state.config.session_idle_ttl) {
        state.sessions.delete_session(&session).await?;
        crate::oidc::backchannel::session_ended(state, &session.id).await?;
        return Ok(None);
    }
    let Some(user) = state.db.user_by_id(&session.user_id).await?.filter(User::is_active) else {
        return Ok(None);
    };
    if now - session.last_seen_at >= TOUCH_EVERY {
        state.sessions.touch_session(&session, now).await?;
    }
    Ok(Some(ActiveSession { session, user }))
}

pub struct NewSession {
    /// The cookie value; only its keyed hash is stored.
    pub token: String,
    pub session: Session,
}

/// Starts a session after a successful login, ending the one the browser had (so a
/// session id planted before login is worthless after it).
pub async fn start(
    state: &AppState,
    user: &User,
    amr: &str,
    previous_token: Option<&str>,
    ip: Option<String>,
    user_agent: Option<String>,
) -> StoreResult<NewSession> {
    if let Some(previous) = previous_token {
        end(state, previous).await?;
    }
    let now = state.now();
    let token = random_token(32);
    let session = Session {
        id: uuid::Uuid::new_v4().to_string(),
        token_hash: state.secret.keyed_hash(TOKEN_HASH_PURPOSE, &token),
        user_id: user.id.clone(),
        auth_time: now,
        amr: amr.to_string(),
        ip,
        user_agent: user_agent.map(|ua| ua.chars().take(512).collect()),
        created_at: now,
        last_seen_at: now,
        expires_at: now + state.config.session_ttl,
    };
    state.sessions.insert_session(&session).await?;
    Ok(NewSession { token, session })
}

pub async fn end(state: &AppState, token: &str) -> StoreResult<()> {
    let token_hash = state.secret.keyed_hash(TOKEN_HASH_PURPOSE, token);
    if let Some(session) = state.sessions.session_by_token_hash(&token_hash).await? {
        state.sessions.delete_session(&session).await?;
        crate::oidc::backchannel::session_ended(state, &session.id).await?;
    }
    Ok(())
}
