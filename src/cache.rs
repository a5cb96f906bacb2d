//! Database rows kept in memory while a shared "stamp" says they are current.
//!
//! Every change to a cached kind of row writes a fresh random stamp to the key-value store after
//! the database commit; a reader reads the stamp *before* the row, so an entry can only be older
//! than its stamp, never newer. With Redis the stamp is shared, so a change made at one
//! instance is seen by the next request at every other; in-process it is exact for the one
//! instance there is. A lost stamp (expired, Redis restarted) only causes reloads.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::kv::{Kv, KvResult};

/// Stamps live long; when one expires every cache of its kind reloads, which is harmless.
const STAMP_TTL: i64 = 7 * 24 * 3600;

pub struct StampedCache<V> {
    stamp_key: &'static str,
    capacity: usize,
    entries: RwLock<HashMap<String, (Vec<u8>, V)>>,
}

impl<V: Clone> StampedCache<V> {
    pub fn new(stamp_key: &'static str, capacity: usize) -> Self {
        Self { stamp_key, capacity, entries: RwLock::new(HashMap::new()) }
    }

    /// The cached value when its stamp is current, else `load()`'s (cached when it is `Some`).
    pub async fn get_or_load<E, F>(&self, kv: &Kv, id: &str, load: F) -> Result<Option<V>, E>
    where
        E: From<crate::kv::KvError>,
        F: Future<Output = Result<Option<V>, E>>,
    {
        let stamp = self.current_stamp(kv).await?;
        if let Some((entry_stamp, value)) = self.read().get(id)
            && *entry_stamp == stamp
        {
            return Ok(Some(value.clone()));
        }
        let loaded = load.await?;
        if let Some(value) = &loaded {
            let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
            // Stale entries go first; a full cache of current ones starts over (no LRU needed
            // for the few hundred clients a deployment has).
            if entries.len() >= self.capacity {
                entries.retain(|_, (entry_stamp, _)| *entry_stamp == stamp);
                if entries.len() >= self.capacity {
                    entries.clear();
                }
            }
            entries.insert(id.to_string(), (stamp, value.clone()));
        }
        Ok(loaded)
    }

    /// Call after every committed change to a row of this kind.
    pub async fn changed(&self, kv: &Kv) -> KvResult<()> {
        self.clear_local();
        kv.put(self.stamp_key, crate::crypto::random_token(16).into_bytes(), STAMP_TTL).await
    }

    async fn current_stamp(&self, kv: &Kv) -> KvResult<Vec<u8>> {
        if let Some(stamp) = kv.get(self.stamp_key).await? {
            return Ok(stamp);
        }
        let stamp = crate::crypto::random_token(16).into_bytes();
        kv.put(self.stamp_key, stamp.clone(), STAMP_TTL).await?;
        Ok(stamp)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, (Vec<u8>, V)>> {
        self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Entries are stale once the stamp changes anyway; dropping them frees the memory at once.
    fn clear_local(&self) {
        self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
    }
}

/// Access tokens whose signature and shape were verified, by the SHA-256 of the whole token,
/// until the token expires. Resource servers introspect the same token again and again; the
/// exact bytes verified once need no second RSA verification. Revocation is still checked
/// on every use: this caches only what cannot change (signature, claims).
pub struct VerifiedTokens<V> {
    capacity: usize,
    entries: RwLock<HashMap<[u8; 32], (i64, V)>>,
}

impl<V: Clone> VerifiedTokens<V> {
    pub fn new(capacity: usize) -> Self {
        Self { capacity, entries: RwLock::new(HashMap::new()) }
    }

    /// The key a token is remembered under; computed once per request by the caller.
    pub fn key(token: &str) -> [u8; 32] {
        crate::crypto::sha256(token)
    }

    pub fn get(&self, key: &[u8; 32], now: i64) -> Option<V> {
        let entries = self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (expires_at, value) = entries.get(key)?;
        (*expires_at > now).then(|| value.clone())
    }

    pub fn insert(&self, key: [u8; 32], expires_at: i64, value: V, now: i64) {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= self.capacity {
            entries.retain(|_, (expires, _)| *expires > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (expires_at, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_tokens_expire_and_match_exact_bytes() {
        let key = VerifiedTokens::<i32>::key;
        let cache = VerifiedTokens::new(2);
        cache.insert(key("a.b.c"), 100, 1, 0);
        assert_eq!(cache.get(&key("a.b.c"), 99), Some(1));
        assert_eq!(cache.get(&key("a.b.c"), 100), None, "not after its expiry");
        assert_eq!(cache.get(&key("a.b.d"), 0), None, "another signature is another token");
        cache.insert(key("x"), 50, 2, 0);
        cache.insert(key("y"), 50, 3, 60); // full: the expired entries go first
        assert_eq!(cache.get(&key("a.b.c"), 60), Some(1));
        assert_eq!(cache.get(&key("x"), 40), None);
        assert_eq!(cache.get(&key("y"), 40), Some(3));
    }
}
