//! Browser sessions on Redis, shared by every instance, used when `OXIDP_REDIS_URL` is set.
//!
//! Keys (under the configured prefix):
//! - `session:{token_hash}`: a hash with the session's fields. Its Redis TTL is the time left
//!   until the session's end (absolute or idle, whichever is first) and is renewed on every
//!   touch, so Redis removes ended sessions by itself.
//! - `user-sessions:{user_id}`: a hash from session id to token hash, for listing and ending a
//!   user's sessions. It lives as long as the longest session in it; entries whose session
//!   Redis already removed are dropped when the user's sessions are next read.
//! - `session-ends`: a sorted set of session ids scored by their end (by the server's clock),
//!   moved on every touch. Housekeeping takes the ended ones from it so the clients that took
//!   part in a session that simply expired still get their back-channel logout token.
//!
//! Reads still check the lifetimes against the server's clock (as the database store does), so
//! a session ends on time even before Redis gets to it, and lifetimes stay testable.

use std::collections::HashMap;
use std::sync::Arc;

use redis::{AsyncCommands, Script};

use super::RedisKv;
use super::redis::failed;
use crate::store::{Session, SessionStore, StoreError, StoreResult};

pub struct RedisSessions {
    redis: Arc<RedisKv>,
    idle_ttl: i64,
    insert_script: Script,
    touch_script: Script,
    delete_one_script: Script,
    delete_all_script: Script,
    take_ended_script: Script,
}

/// Ended sessions taken from the expiry index per round trip.
const ENDED_BATCH: usize = 500;

/// The scripts below name session keys from the index's values, so they assume one Redis
/// server (as the connection manager does), not a cluster.
impl RedisSessions {
    pub fn new(redis: Arc<RedisKv>, idle_ttl: i64) -> Self {
        RedisSessions {
            redis,
            idle_ttl,
            // KEYS: session, index, ends. ARGV: session TTL, id, token hash, index TTL, end, fields...
            insert_script: Script::new(
                "redis.call('DEL', KEYS[1]); \
                 redis.call('HSET', KEYS[1], unpack(ARGV, 6)); \
                 redis.call('EXPIRE', KEYS[1], ARGV[1]); \
                 redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]); \
                 if redis.call('TTL', KEYS[2]) < tonumber(ARGV[4]) then redis.call('EXPIRE', KEYS[2], ARGV[4]) end; \
                 redis.call('ZADD', KEYS[3], ARGV[5], ARGV[2]); \
                 return 1",
            ),
            // Never recreates a session ended meanwhile (a partial hash would be a broken session).
            // KEYS: session, ends. ARGV: now, new TTL, id, new end.
            touch_script: Script::new(
                "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end; \
                 redis.call('HSET', KEYS[1], 'last_seen_at', ARGV[1]); \
                 redis.call('EXPIRE', KEYS[1], ARGV[2]); \
                 redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3]); \
                 return 1",
            ),
            // KEYS: index, ends. ARGV: id, session key prefix. Returns 1 when the session existed.
            delete_one_script: Script::new(
                "local hash = redis.call('HGET', KEYS[1], ARGV[1]); \
                 if not hash then return 0 end; \
                 redis.call('HDEL', KEYS[1], ARGV[1]); \
                 redis.call('ZREM', KEYS[2], ARGV[1]); \
                 return redis.call('DEL', ARGV[2] .. hash)",
            ),
            // KEYS: index, ends. ARGV: id to keep ('' for none), session key prefix. Returns how many ended.
            delete_all_script: Script::new(
                "local entries = redis.call('HGETALL', KEYS[1]); local ended = 0; \
                 for i = 1, #entries, 2 do \
                   if entries[i] ~= ARGV[1] then \
                     ended = ended + redis.call('DEL', ARGV[2] .. entries[i + 1]); \
                     redis.call('HDEL', KEYS[1], entries[i]); \
                     redis.call('ZREM', KEYS[2], entries[i]) \
                   end \
                 end; \
                 return ended",
            ),
            // Takes (reads and removes at once, so one instance gets each) the ids of sessions
            // that ended by ARGV[1]. KEYS: ends. ARGV: now, batch size.
            take_ended_script: Script::new(
                "local ended = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2]); \
                 if #ended > 0 then redis.call('ZREM', KEYS[1], unpack(ended)) end; \
                 return ended",
            ),
        }
    }

    fn session_key(&self, token_hash: &str) -> String {
        self.redis.key(&format!("session:{token_hash}"))
    }

    fn index_key(&self, user_id: &str) -> String {
        self.redis.key(&format!("user-sessions:{user_id}"))
    }

    fn ends_key(&self) -> String {
        self.redis.key("session-ends")
    }

    /// Seconds Redis keeps the session after `now`: until its end, at least one.
    fn ttl(&self, session: &Session, now: i64) -> i64 {
        (session.ends_at(self.idle_ttl) - now).max(1)
    }
}

fn fields(session: &Session) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("id", session.id.clone()),
        ("token_hash", session.token_hash.clone()),
        ("user_id", session.user_id.clone()),
        ("auth_time", session.auth_time.to_string()),
        ("amr", session.amr.clone()),
        ("created_at", session.created_at.to_string()),
        ("last_seen_at", session.last_seen_at.to_string()),
        ("expires_at", session.expires_at.to_string()),
    ];
    if let Some(ip) = &session.ip {
        fields.push(("ip", ip.clone()));
    }
    if let Some(user_agent) = &session.user_agent {
        fields.push(("user_agent", user_agent.clone()));
    }
    fields
}

/// A stored hash back into a session; `None` for an empty hash (no such key).
fn parse(mut hash: HashMap<String, String>) -> StoreResult<Option<Session>> {
    if hash.is_empty() {
        return Ok(None);
    }
    let mut text = |name: &str| hash.remove(name).ok_or_else(|| StoreError::Corrupt(format!("session without {name}")));
    let id = text("id")?;
    let token_hash = text("token_hash")?;
    let user_id = text("user_id")?;
    let amr = text("amr")?;
    let number = |name: &str, value: String| {
        value.parse::<i64>().map_err(|_| StoreError::Corrupt(format!("session {name} is not a number")))
    };
    let auth_time = number("auth_time", text("auth_time")?)?;
    let created_at = number("created_at", text("created_at")?)?;
    let last_seen_at = number("last_seen_at", text("last_seen_at")?)?;
    let expires_at = number("expires_at", text("expires_at")?)?;
    Ok(Some(Session {
        id,
        token_hash,
        user_id,
        auth_time,
        amr,
        ip: hash.remove("ip"),
        user_agent: hash.remove("user_agent"),
        created_at,
        last_seen_at,
        expires_at,
    }))
}

impl SessionStore for RedisSessions {
    async fn insert_session(&self, session: &Session) -> StoreResult<()> {
        let mut connection = self.redis.connection().await?;
        let now = session.last_seen_at;
        let mut invocation = self.insert_script.prepare_invoke();
        invocation
            .key(self.session_key(&session.token_hash))
            .key(self.index_key(&session.user_id))
            .key(self.ends_key())
            .arg(self.ttl(session, now))
            .arg(&session.id)
            .arg(&session.token_hash)
            // The index outlives every session in it: none lasts past its absolute end.
            .arg((session.expires_at - now).max(1))
            .arg(session.ends_at(self.idle_ttl));
        for (name, value) in fields(session) {
            invocation.arg(name).arg(value);
        }
        invocation.invoke_async::<i64>(&mut connection).await.map_err(failed)?;
        Ok(())
    }

    async fn session_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<Session>> {
        let mut connection = self.redis.connection().await?;
        let hash: HashMap<String, String> = connection.hgetall(self.session_key(token_hash)).await.map_err(failed)?;
        parse(hash)
    }

    async fn touch_session(&self, session: &Session, now: i64) -> StoreResult<()> {
        let mut connection = self.redis.connection().await?;
        let touched = Session { last_seen_at: now, ..session.clone() };
        self.touch_script
            .key(self.session_key(&session.token_hash))
            .key(self.ends_key())
            .arg(now)
            .arg(self.ttl(&touched, now))
            .arg(&session.id)
            .arg(touched.ends_at(self.idle_ttl))
            .invoke_async::<i64>(&mut connection)
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn delete_session(&self, session: &Session) -> StoreResult<()> {
        let mut connection = self.redis.connection().await?;
        redis::pipe()
            .atomic()
            .del(self.session_key(&session.token_hash))
            .hdel(self.index_key(&session.user_id), &session.id)
            .zrem(self.ends_key(), &session.id)
            .query_async::<()>(&mut connection)
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn sessions_for_user(
        &self,
        user_id: &str,
        now: i64,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> StoreResult<Vec<Session>> {
        let mut connection = self.redis.connection().await?;
        let index_key = self.index_key(user_id);
        // A user has few sessions (each is a login): read them all, then sort and cut a page.
        let index: HashMap<String, String> = connection.hgetall(&index_key).await.map_err(failed)?;
        if index.is_empty() {
            return Ok(Vec::new());
        }
        let entries: Vec<(String, String)> = index.into_iter().collect();
        let mut reads = redis::pipe();
        for (_, token_hash) in &entries {
            reads.hgetall(self.session_key(token_hash));
        }
        let hashes: Vec<HashMap<String, String>> = reads.query_async(&mut connection).await.map_err(failed)?;
        let mut sessions = Vec::new();
        let mut gone = Vec::new();
        for ((id, _), hash) in entries.into_iter().zip(hashes) {
            match parse(hash)? {
                Some(session) => sessions.push(session),
                None => gone.push(id),
            }
        }
        if !gone.is_empty() {
            // Redis expired these sessions; their index entries go too (best effort: a failure
            // here only leaves entries that the next read drops).
            let _ = connection.hdel::<_, _, ()>(&index_key, gone).await;
        }
        sessions.retain(|session| {
            session.is_live(now, self.idle_ttl)
                && after
                    .as_ref()
                    .is_none_or(|(created, id)| (session.created_at, session.id.as_str()) < (*created, id.as_str()))
        });
        sessions.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        sessions.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(sessions)
    }

    async fn delete_user_session(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        let mut connection = self.redis.connection().await?;
        let ended: i64 = self
            .delete_one_script
            .key(self.index_key(user_id))
            .key(self.ends_key())
            .arg(id)
            .arg(self.redis.key("session:"))
            .invoke_async(&mut connection)
            .await
            .map_err(failed)?;
        Ok(ended == 1)
    }

    async fn delete_user_sessions(&self, user_id: &str, keep: Option<&str>) -> StoreResult<u64> {
        let mut connection = self.redis.connection().await?;
        let ended: i64 = self
            .delete_all_script
            .key(self.index_key(user_id))
            .key(self.ends_key())
            .arg(keep.unwrap_or(""))
            .arg(self.redis.key("session:"))
            .invoke_async(&mut connection)
            .await
            .map_err(failed)?;
        Ok(u64::try_from(ended).unwrap_or(0))
    }

    /// Redis removes the session keys itself (each carries a TTL to its end); this takes the
    /// ended ids from the expiry index.
    async fn purge_expired_sessions(&self, now: i64) -> StoreResult<Vec<String>> {
        let mut connection = self.redis.connection().await?;
        let mut ended = Vec::new();
        loop {
            let batch: Vec<String> = self
                .take_ended_script
                .key(self.ends_key())
                .arg(now)
                .arg(ENDED_BATCH)
                .invoke_async(&mut connection)
                .await
                .map_err(failed)?;
            let done = batch.len() < ENDED_BATCH;
            ended.extend(batch);
            if done {
                return Ok(ended);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            id: "id-1".into(),
            token_hash: "hash".into(),
            user_id: "user".into(),
            auth_time: 10,
            amr: "pwd".into(),
            ip: None,
            user_agent: Some("agent".into()),
            created_at: 10,
            last_seen_at: 20,
            expires_at: 100,
        }
    }

    #[test]
    fn a_session_survives_its_hash_form() {
        let original = session();
        let hash: HashMap<String, String> =
            fields(&original).into_iter().map(|(name, value)| (name.to_string(), value)).collect();
        assert_eq!(parse(hash).expect("parse"), Some(original));
        assert_eq!(parse(HashMap::new()).expect("parse"), None);
    }

    #[test]
    fn a_broken_hash_is_corrupt_not_a_session() {
        let mut hash: HashMap<String, String> =
            fields(&session()).into_iter().map(|(name, value)| (name.to_string(), value)).collect();
        hash.insert("expires_at".into(), "soon".into());
        assert!(matches!(parse(hash.clone()), Err(StoreError::Corrupt(_))));
        hash.remove("user_id");
        assert!(matches!(parse(hash), Err(StoreError::Corrupt(_))));
    }
}
