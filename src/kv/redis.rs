//! The key-value trait on Redis, shared by every instance. Values carry their logical expiry
//! (from the server's clock, so lifetimes stay testable) and a real Redis TTL for clean-up.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

use super::{Admission, KeyValue, KvError, KvResult, Throttle};
use crate::clock::SharedClock;

pub struct RedisKv {
    client: redis::Client,
    /// Made on first use and retried on every use until it succeeds, so oxidp starts (and
    /// serves what needs no Redis) while Redis is away.
    connection: tokio::sync::OnceCell<ConnectionManager>,
    prefix: String,
    clock: SharedClock,
    take_script: Script,
    increment_script: Script,
    admit_script: Script,
    release_script: Script,
}

pub(super) fn failed(error: redis::RedisError) -> KvError {
    KvError(error.to_string())
}

/// A stored value is `expires_at` (decimal) + `:` + the payload.
fn encode(expires_at: i64, value: &[u8]) -> Vec<u8> {
    let mut out = format!("{expires_at}:").into_bytes();
    out.extend_from_slice(value);
    out
}

fn decode(stored: &[u8], now: i64) -> Option<Vec<u8>> {
    let colon = stored.iter().position(|&b| b == b':')?;
    let expires_at: i64 = std::str::from_utf8(&stored[..colon]).ok()?.parse().ok()?;
    (expires_at > now).then(|| stored[colon + 1..].to_vec())
}

/// Redis keeps a key a little longer than its logical lifetime; reads enforce the exact one.
fn redis_ttl(ttl: i64) -> u64 {
    (ttl.max(1) as u64) + 60
}

impl RedisKv {
    /// Checks the URL and tries a first connection; an unreachable Redis is not a start-up error.
    pub async fn connect(url: &str, prefix: &str, clock: SharedClock) -> KvResult<RedisKv> {
        let client = redis::Client::open(url).map_err(failed)?;
        let kv = RedisKv {
            client,
            connection: tokio::sync::OnceCell::new(),
            prefix: prefix.to_string(),
            clock,
            take_script: Script::new("local v = redis.call('GET', KEYS[1]); redis.call('DEL', KEYS[1]); return v"),
            // A counter: a hash of count and logical expiry; restarted when expired.
            increment_script: Script::new(
                "local now = tonumber(ARGV[1]); local ttl = tonumber(ARGV[2]); \
                 local expires = tonumber(redis.call('HGET', KEYS[1], 'expires_at') or '0'); \
                 if expires <= now then \
                   redis.call('HSET', KEYS[1], 'count', 1, 'expires_at', now + ttl); \
                   redis.call('EXPIRE', KEYS[1], ttl + 60); \
                   return {1, ttl} \
                 end; \
                 return {redis.call('HINCRBY', KEYS[1], 'count', 1), expires - now}",
            ),
            // A throttle: the counter's hash plus the last admitted attempt's time. Answers
            // {0, 0} admitted, {1, seconds} delayed, {2, seconds} locked. The wait is the one
            // `Throttle::wait_after` computes; Lua numbers are doubles, exact at these sizes.
            admit_script: Script::new(
                "local now = tonumber(ARGV[1]); local window = tonumber(ARGV[2]); \
                 local limit = tonumber(ARGV[3]); local free = tonumber(ARGV[4]); \
                 local delay = tonumber(ARGV[5]); local max_delay = tonumber(ARGV[6]); \
                 local h = redis.call('HMGET', KEYS[1], 'count', 'expires_at', 'last_at'); \
                 local count = tonumber(h[1] or '0') or 0; local expires = tonumber(h[2] or '0') or 0; \
                 local last = tonumber(h[3] or '0') or 0; \
                 if expires <= now then count = 0; last = 0; expires = now + window end; \
                 if count >= limit then return {2, expires - now} end; \
                 local wait = 0; \
                 if delay > 0 and count > free then \
                   wait = math.min(delay * 2 ^ math.min(count - free - 1, 40), max_delay) \
                 end; \
                 if now < last + wait then return {1, last + wait - now} end; \
                 redis.call('HSET', KEYS[1], 'count', count + 1, 'expires_at', expires, 'last_at', now); \
                 redis.call('EXPIRE', KEYS[1], expires - now + 60); \
                 return {0, 0}",
            ),
            release_script: Script::new(
                "local expires = tonumber(redis.call('HGET', KEYS[1], 'expires_at') or '0') or 0; \
                 local count = tonumber(redis.call('HGET', KEYS[1], 'count') or '0') or 0; \
                 if expires > tonumber(ARGV[1]) and count > 0 then redis.call('HINCRBY', KEYS[1], 'count', -1) end; \
                 return 0",
            ),
        };
        if let Err(error) = kv.connection().await {
            tracing::warn!(%error, "Redis is not reachable yet; logins and token requests answer 503 until it is");
        }
        Ok(kv)
    }

    pub(super) async fn connection(&self) -> KvResult<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2);
        self.connection
            .get_or_try_init(|| async { self.client.get_connection_manager_with_config(config).await.map_err(failed) })
            .await
            .cloned()
    }

    pub(super) fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    /// Redis's `maxmemory-policy`; `None` when Redis refuses to say (CONFIG disabled or renamed,
    /// as on some managed services). Errors only when Redis cannot be reached.
    pub async fn eviction_policy(&self) -> KvResult<Option<String>> {
        let mut connection = self.connection().await?;
        let answer = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async::<std::collections::HashMap<String, String>>(&mut connection)
            .await;
        match answer {
            Ok(values) => Ok(values.get("maxmemory-policy").cloned()),
            Err(error) if error.is_io_error() || error.is_timeout() || error.is_connection_dropped() => {
                Err(failed(error))
            }
            Err(_) => Ok(None),
        }
    }

    /// Logs a warning at start unless Redis is known to never evict keys; returns it.
    pub async fn warn_unless_noeviction(&self) -> Option<String> {
        let warning = match self.eviction_policy().await {
            Ok(policy) => eviction_warning(policy.as_deref()),
            // Unreachable at start is already reported; the policy is checked at the next start.
            Err(_) => None,
        }?;
        tracing::warn!("{warning}");
        Some(warning)
    }

    pub async fn ping(&self) -> bool {
        let Ok(mut connection) = self.connection().await else { return false };
        redis::cmd("PING").query_async::<String>(&mut connection).await.is_ok()
    }
}

/// The start-up warning for Redis's eviction policy: none for `noeviction`, where a full Redis
/// refuses new keys (503) instead of silently dropping sessions, single-use state or throttles.
pub fn eviction_warning(policy: Option<&str>) -> Option<String> {
    match policy {
        Some("noeviction") => None,
        Some(policy) => Some(format!(
            "Redis maxmemory-policy is {policy}: under memory pressure Redis may evict sessions, \
             single-use state and sign-in throttles; set maxmemory-policy noeviction"
        )),
        None => Some(
            "Redis's maxmemory-policy could not be read (CONFIG is disabled): make sure it is noeviction, \
             or Redis may evict sessions, single-use state and sign-in throttles"
                .to_string(),
        ),
    }
}

impl KeyValue for RedisKv {
    async fn put(&self, key: &str, value: Vec<u8>, ttl: i64) -> KvResult<()> {
        let mut connection = self.connection().await?;
        let stored = encode(self.clock.now() + ttl, &value);
        connection.set_ex::<_, _, ()>(self.key(key), stored, redis_ttl(ttl)).await.map_err(failed)
    }

    async fn get(&self, key: &str) -> KvResult<Option<Vec<u8>>> {
        let mut connection = self.connection().await?;
        let stored: Option<Vec<u8>> = connection.get(self.key(key)).await.map_err(failed)?;
        Ok(stored.and_then(|stored| decode(&stored, self.clock.now())))
    }

    async fn take(&self, key: &str) -> KvResult<Option<Vec<u8>>> {
        let mut connection = self.connection().await?;
        let stored: Option<Vec<u8>> =
            self.take_script.key(self.key(key)).invoke_async(&mut connection).await.map_err(failed)?;
        Ok(stored.and_then(|stored| decode(&stored, self.clock.now())))
    }

    async fn delete(&self, key: &str) -> KvResult<()> {
        let mut connection = self.connection().await?;
        connection.del::<_, ()>(self.key(key)).await.map_err(failed)
    }

    async fn increment(&self, key: &str, ttl: i64) -> KvResult<i64> {
        let mut connection = self.connection().await?;
        let (count, _): (i64, i64) = self
            .increment_script
            .key(self.key(key))
            .arg(self.clock.now())
            .arg(ttl)
            .invoke_async(&mut connection)
            .await
            .map_err(failed)?;
        Ok(count)
    }

    async fn counter(&self, key: &str) -> KvResult<(i64, i64)> {
        let mut connection = self.connection().await?;
        let (count, expires_at): (Option<i64>, Option<i64>) = redis::cmd("HMGET")
            .arg(self.key(key))
            .arg("count")
            .arg("expires_at")
            .query_async(&mut connection)
            .await
            .map_err(failed)?;
        let now = self.clock.now();
        Ok(match (count, expires_at) {
            (Some(count), Some(expires_at)) if expires_at > now => (count, expires_at - now),
            _ => (0, 0),
        })
    }

    async fn admit(&self, key: &str, throttle: &Throttle) -> KvResult<Admission> {
        let mut connection = self.connection().await?;
        let (outcome, seconds): (i64, i64) = self
            .admit_script
            .key(self.key(key))
            .arg(self.clock.now())
            .arg(throttle.window)
            .arg(throttle.limit)
            .arg(throttle.free)
            .arg(throttle.delay)
            .arg(throttle.max_delay)
            .invoke_async(&mut connection)
            .await
            .map_err(failed)?;
        Ok(match outcome {
            0 => Admission::Admitted,
            1 => Admission::Delayed { retry_after: seconds },
            _ => Admission::Locked { retry_after: seconds },
        })
    }

    async fn release(&self, key: &str) -> KvResult<()> {
        let mut connection = self.connection().await?;
        self.release_script
            .key(self.key(key))
            .arg(self.clock.now())
            .invoke_async::<i64>(&mut connection)
            .await
            .map_err(failed)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_their_logical_expiry() {
        let stored = encode(100, b"a:b");
        assert_eq!(decode(&stored, 99), Some(b"a:b".to_vec()));
        assert_eq!(decode(&stored, 100), None);
        assert_eq!(decode(b"garbage", 0), None);
    }

    #[test]
    fn only_noeviction_goes_without_a_warning() {
        assert_eq!(eviction_warning(Some("noeviction")), None);
        for policy in ["allkeys-lru", "volatile-lru", "allkeys-random", "volatile-ttl", "allkeys-lfu"] {
            assert!(eviction_warning(Some(policy)).is_some_and(|w| w.contains(policy)), "{policy}");
        }
        assert!(eviction_warning(None).is_some(), "an unknown policy is warned about");
    }
}
