//! Short-lived key-value state: pending authorization requests, single-use values,
//! rate-limit counters and brute-force throttles. In-process by default; Redis implements the
//! same trait. With Redis, browser sessions live there too ([`RedisSessions`]).

use std::sync::Arc;

mod memory;
mod redis;
mod sessions;

pub use memory::MemoryKv;
pub use redis::{RedisKv, eviction_warning};
pub use sessions::RedisSessions;

#[derive(Debug, thiserror::Error)]
#[error("key-value store unavailable: {0}")]
pub struct KvError(pub String);

pub type KvResult<T> = Result<T, KvError>;

/// How a brute-force throttle admits attempts under one key: at most `limit` within `window`
/// seconds of the first; the first `free` back to back, then each one `delay` seconds after the
/// previous, the wait doubling with every further attempt up to `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    pub limit: i64,
    pub window: i64,
    pub free: i64,
    /// The first wait in seconds; 0 turns waits off (only the limit applies).
    pub delay: i64,
    pub max_delay: i64,
}

impl Throttle {
    /// Seconds the next attempt must wait after the last one, when `attempts` were admitted.
    pub fn wait_after(&self, attempts: i64) -> i64 {
        if self.delay <= 0 || attempts <= self.free {
            return 0;
        }
        // Beyond 2^40 s every configured maximum is reached anyway; the shift stays in range.
        let doublings = (attempts - self.free - 1).clamp(0, 40) as u32;
        self.delay.saturating_mul(1_i64 << doublings).min(self.max_delay)
    }
}

/// A throttle's answer to one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Counted; go ahead.
    Admitted,
    /// Too soon after the previous attempt; nothing was counted.
    Delayed { retry_after: i64 },
    /// The limit is reached until the window ends; nothing was counted.
    Locked { retry_after: i64 },
}

/// Values expire after `ttl` seconds; every operation is atomic.
pub trait KeyValue: Send + Sync + 'static {
    fn put(&self, key: &str, value: Vec<u8>, ttl: i64) -> impl Future<Output = KvResult<()>> + Send;
    fn get(&self, key: &str) -> impl Future<Output = KvResult<Option<Vec<u8>>>> + Send;
    /// Reads and deletes in one step: the value is returned to exactly one caller.
    fn take(&self, key: &str) -> impl Future<Output = KvResult<Option<Vec<u8>>>> + Send;
    fn delete(&self, key: &str) -> impl Future<Output = KvResult<()>> + Send;
    /// Adds one to the counter (created with `ttl` when absent) and returns the new count.
    fn increment(&self, key: &str, ttl: i64) -> impl Future<Output = KvResult<i64>> + Send;
    /// The counter's value and seconds until it resets.
    fn counter(&self, key: &str) -> impl Future<Output = KvResult<(i64, i64)>> + Send;
    /// Decides and counts an attempt in one atomic step, so concurrent attempts cannot all pass
    /// a check made before any of them was counted.
    fn admit(&self, key: &str, throttle: &Throttle) -> impl Future<Output = KvResult<Admission>> + Send;
    /// Gives back one admitted attempt (it turned out not to be a failure); window and last
    /// attempt time stay.
    fn release(&self, key: &str) -> impl Future<Output = KvResult<()>> + Send;
}

/// The configured store. An enum rather than a trait object, so the async methods stay static.
pub enum Kv {
    Memory(MemoryKv),
    /// Shared with the session store, which uses the same connection.
    Redis(Arc<RedisKv>),
}

/// Runs the same call on whichever store is configured.
macro_rules! on_store {
    ($kv:expr, |$store:ident| $body:expr) => {
        match $kv {
            Kv::Memory($store) => $body,
            Kv::Redis($store) => $body,
        }
    };
}

impl Kv {
    pub fn backend(&self) -> &'static str {
        match self {
            Kv::Memory(_) => "in-process",
            Kv::Redis(_) => "redis",
        }
    }

    /// For readiness: in-process is always there; Redis answers PING.
    pub async fn is_reachable(&self) -> bool {
        match self {
            Kv::Memory(_) => true,
            Kv::Redis(redis) => redis.ping().await,
        }
    }

    pub async fn put(&self, key: &str, value: Vec<u8>, ttl: i64) -> KvResult<()> {
        on_store!(self, |kv| kv.put(key, value, ttl).await)
    }
    pub async fn get(&self, key: &str) -> KvResult<Option<Vec<u8>>> {
        on_store!(self, |kv| kv.get(key).await)
    }
    pub async fn take(&self, key: &str) -> KvResult<Option<Vec<u8>>> {
        on_store!(self, |kv| kv.take(key).await)
    }
    pub async fn delete(&self, key: &str) -> KvResult<()> {
        on_store!(self, |kv| kv.delete(key).await)
    }
    pub async fn increment(&self, key: &str, ttl: i64) -> KvResult<i64> {
        on_store!(self, |kv| kv.increment(key, ttl).await)
    }
    pub async fn counter(&self, key: &str) -> KvResult<(i64, i64)> {
        on_store!(self, |kv| kv.counter(key).await)
    }
    pub async fn admit(&self, key: &str, throttle: &Throttle) -> KvResult<Admission> {
        on_store!(self, |kv| kv.admit(key, throttle).await)
    }
    pub async fn release(&self, key: &str) -> KvResult<()> {
        on_store!(self, |kv| kv.release(key).await)
    }
}

#[cfg(test)]
mod tests {
    use super::Throttle;

    #[test]
    fn waits_double_after_the_free_attempts_up_to_the_maximum() {
        let throttle = Throttle { limit: 100, window: 900, free: 2, delay: 1, max_delay: 60 };
        let waits: Vec<i64> = (0..12).map(|n| throttle.wait_after(n)).collect();
        assert_eq!(waits, [0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(throttle.wait_after(i64::MAX), 60, "no overflow");
        let off = Throttle { delay: 0, ..throttle };
        assert_eq!(off.wait_after(50), 0);
        let slow = Throttle { free: 0, delay: 5, max_delay: 30, ..throttle };
        assert_eq!((1..6).map(|n| slow.wait_after(n)).collect::<Vec<_>>(), [5, 10, 20, 30, 30]);
    }
}
