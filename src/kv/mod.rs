//! Short-lived key-value state: pending authorization requests, single-use values and
//! rate-limit counters. In-process by default; Redis implements the same trait.

mod memory;

pub use memory::MemoryKv;

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
}

impl Kv {
    pub async fn put(&self, key: &str, value: Vec<u8>, ttl: i64) -> KvResult<()> {
        match self {
            Kv::Memory(kv) => kv.put(key, value, ttl).await,
        }
    }
    pub async fn get(&self, key: &str) -> KvResult<Option<Vec<u8>>> {
        match self {
            Kv::Memory(kv) => kv.get(key).await,
        }
    }
    pub async fn take(&self, key: &str) -> KvResult<Option<Vec<u8>>> {
        match self {
            Kv::Memory(kv) => kv.take(key).await,
        }
    }
    pub async fn delete(&self, key: &str) -> KvResult<()> {
        match self {
            Kv::Memory(kv) => kv.delete(key).await,
        }
    }
    pub async fn increment(&self, key: &str, ttl: i64) -> KvResult<i64> {
        match self {
            Kv::Memory(kv) => kv.increment(key, ttl).await,
        }
    }
    pub async fn counter(&self, key: &str) -> KvResult<(i64, i64)> {
        match self {
            Kv::Memory(kv) => kv.counter(key).await,
        }
    }
}
