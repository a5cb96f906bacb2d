//! Short-lived key-value state: pending authorization requests, single-use values and
//! rate-limit counters. In-process by default; Redis implements the same trait. With Redis,
//! browser sessions live there too ([`RedisSessions`]).

use std::sync::Arc;

mod memory;
mod redis;
mod sessions;

pub use memory::MemoryKv;
pub use redis::RedisKv;
pub use sessions::RedisSessions;

#[derive(Debug, thiserror::Error)]
#[error("key-value store unavailable: {0}")]
pub struct KvError(pub String);

pub type KvResult<T> = Result<T, KvError>;

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
}
