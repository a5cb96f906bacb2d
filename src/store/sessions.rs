use super::{Db, StoreResult, on_pool};
use sqlx::AssertSqlSafe;

/// A browser session. The cookie holds a random token; only its keyed hash is stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Session {
    pub id: String,
    pub token_hash: String,
    pub user_id: String,
    pub auth_time: i64,
    pub amr: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

impl Session {
    /// When the session ends unless it is used again: its absolute end or its idle end,
    /// whichever comes first.
    pub fn ends_at(&self, idle_ttl: i64) -> i64 {
        self.expires_at.min(self.last_seen_at.saturating_add(idle_ttl))
    }

    pub fn is_live(&self, now: i64, idle_ttl: i64) -> bool {
        self.ends_at(idle_ttl) > now
    }
}

/// Where browser sessions live: the database ([`DatabaseSessions`]) or Redis
/// ([`crate::kv::RedisSessions`]). Both know the idle timeout, so both can tell a live
/// session from an ended one.
pub trait SessionStore {
    async fn insert_session(&self, session: &Session) -> StoreResult<()>;
    /// The session with this token hash, live or not (the caller checks its lifetimes).
    async fn session_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<Session>>;
    /// Records use at `now`: the idle timeout starts again (never past the absolute end).
    async fn touch_session(&self, session: &Session, now: i64) -> StoreResult<()>;
    async fn delete_session(&self, session: &Session) -> StoreResult<()>;
    /// A page of the user's live sessions at `now`, newest first, after the `(created_at, id)` cursor.
    async fn sessions_for_user(
        &self,
        user_id: &str,
        now: i64,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> StoreResult<Vec<Session>>;
    /// Ends one of the user's sessions; true when it existed.
    async fn delete_user_session(&self, user_id: &str, id: &str) -> StoreResult<bool>;
    /// Ends every session of the user except `keep`; returns how many ended.
    async fn delete_user_sessions(&self, user_id: &str, keep: Option<&str>) -> StoreResult<u64>;
    /// Removes the sessions that ended by `now`; returns their ids (each to exactly one caller,
    /// so the back-channel logout of an expired session is sent once across instances).
    async fn purge_expired_sessions(&self, now: i64) -> StoreResult<Vec<String>>;
}

/// Sessions in the `sessions` table: durable across restarts, the default without Redis.
#[derive(Clone, Debug)]
pub struct DatabaseSessions {
    db: Db,
    idle_ttl: i64,
}

impl DatabaseSessions {
    pub fn new(db: Db, idle_ttl: i64) -> Self {
        Self { db, idle_ttl }
    }
}

const SESSION_COLUMNS: &str =
    "id, token_hash, user_id, auth_time, amr, ip, user_agent, created_at, last_seen_at, expires_at";

impl SessionStore for DatabaseSessions {
    async fn insert_session(&self, s: &Session) -> StoreResult<()> {
        let sql = format!("INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
        on_pool!(&self.db, |pool| sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(&s.id)
            .bind(&s.token_hash)
            .bind(&s.user_id)
            .bind(s.auth_time)
            .bind(&s.amr)
            .bind(&s.ip)
            .bind(&s.user_agent)
            .bind(s.created_at)
            .bind(s.last_seen_at)
            .bind(s.expires_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn session_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<Session>> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = $1");
        Ok(on_pool!(&self.db, |pool| sqlx::query_as::<_, Session>(AssertSqlSafe(sql.as_str()))
            .bind(token_hash)
            .fetch_optional(pool)
            .await)?)
    }

    async fn touch_session(&self, session: &Session, now: i64) -> StoreResult<()> {
        on_pool!(&self.db, |pool| sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&session.id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn delete_session(&self, session: &Session) -> StoreResult<()> {
        on_pool!(&self.db, |pool| sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(&session.id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn sessions_for_user(
        &self,
        user_id: &str,
        now: i64,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> StoreResult<Vec<Session>> {
        let (created, id) = after.unwrap_or((i64::MAX, "\u{10FFFF}".to_string()));
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 \
             AND (created_at < $2 OR (created_at = $2 AND id < $3)) \
             AND expires_at > $5 AND last_seen_at + $6 > $5 \
             ORDER BY created_at DESC, id DESC LIMIT $4"
        ));
        Ok(on_pool!(&self.db, |pool| sqlx::query_as::<_, Session>(sql)
            .bind(user_id)
            .bind(created)
            .bind(id)
            .bind(limit)
            .bind(now)
            .bind(self.idle_ttl)
            .fetch_all(pool)
            .await)?)
    }

    async fn delete_user_session(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        let deleted = on_pool!(&self.db, |pool| sqlx::query("DELETE FROM sessions WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(deleted == 1)
    }

    async fn delete_user_sessions(&self, user_id: &str, keep: Option<&str>) -> StoreResult<u64> {
        Ok(on_pool!(&self.db, |pool| sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
            .bind(user_id)
            .bind(keep.unwrap_or(""))
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?)
    }

    async fn purge_expired_sessions(&self, now: i64) -> StoreResult<Vec<String>> {
        Ok(on_pool!(&self.db, |pool| sqlx::query_scalar::<_, String>(
            "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at + $2 <= $1 RETURNING id"
        )
        .bind(now)
        .bind(self.idle_ttl)
        .fetch_all(pool)
        .await)?)
    }
}
