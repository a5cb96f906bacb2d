//! Where browser sessions live: Redis when configured, else the database.

use crate::kv::{Kv, RedisSessions};
use crate::store::{DatabaseSessions, Db, Session, SessionStore, StoreResult};

/// The configured session store. An enum rather than a trait object, so the async methods stay static.
pub enum Sessions {
    Database(DatabaseSessions),
    Redis(Box<RedisSessions>),
}

impl Sessions {
    /// Redis when the key-value store is Redis, else the database.
    pub fn for_deployment(kv: &Kv, db: &Db, idle_ttl: i64) -> Sessions {
        match kv {
            Kv::Redis(redis) => Sessions::Redis(Box::new(RedisSessions::new(redis.clone(), idle_ttl))),
            Kv::Memory(_) => Sessions::Database(DatabaseSessions::new(db.clone(), idle_ttl)),
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Sessions::Database(_) => "database",
            Sessions::Redis(_) => "redis",
        }
    }
}

/// Runs the same call on whichever store is configured.
macro_rules! on_store {
    ($sessions:expr, |$store:ident| $body:expr) => {
        match $sessions {
            Sessions::Database($store) => $body,
            Sessions::Redis($store) => $body,
        }
    };
}

impl SessionStore for Sessions {
    async fn insert_session(&self, session: &Session) -> StoreResult<()> {
        on_store!(self, |store| store.insert_session(session).await)
    }
    async fn session_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<Session>> {
        on_store!(self, |store| store.session_by_token_hash(token_hash).await)
    }
    async fn touch_session(&self, session: &Session, now: i64) -> StoreResult<()> {
        on_store!(self, |store| store.touch_session(session, now).await)
    }
    async fn delete_session(&self, session: &Session) -> StoreResult<()> {
        on_store!(self, |store| store.delete_session(session).await)
    }
    async fn sessions_for_user(
        &self,
        user_id: &str,
        now: i64,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> StoreResult<Vec<Session>> {
        on_store!(self, |store| store.sessions_for_user(user_id, now, after, limit).await)
    }
    async fn delete_user_session(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        on_store!(self, |store| store.delete_user_session(user_id, id).await)
    }
    async fn delete_user_sessions(&self, user_id: &str, keep: Option<&str>) -> StoreResult<u64> {
        on_store!(self, |store| store.delete_user_sessions(user_id, keep).await)
    }
    async fn purge_expired_sessions(&self, now: i64) -> StoreResult<Vec<String>> {
        on_store!(self, |store| store.purge_expired_sessions(now).await)
    }
}
