use std::collections::HashMap;
use std::sync::Mutex;

use super::{Admission, KeyValue, KvError, KvResult, Throttle};
use crate::clock::SharedClock;

struct Entry {
    value: Vec<u8>,
    expires_at: i64,
}

#[derive(Default)]
struct Entries {
    map: HashMap<String, Entry>,
    /// When a full store was last swept: at most one sweep per second, so a flood against a
    /// full store costs one pass over it per second, not one per request.
    swept_at: i64,
}

/// What a new entry is, for the room it may take.
#[derive(Clone, Copy)]
enum Kind {
    /// Pending requests and single-use values: up to the capacity.
    Value,
    /// Counters and throttles: a tenth more, so a store full of pending requests still counts
    /// failed sign-ins (and refuses them when even that room is gone: never unthrottled).
    Counter,
}

/// In-process store for a single instance, bounded (`OXIDP_KV_MAX_ENTRIES`). Expired entries
/// are swept as the map grows and whenever it is full; a live entry is never evicted, so when
/// the store is still full a new entry is refused (503 to the caller). Sessions do not live
/// here (without Redis they are in the database).
pub struct MemoryKv {
    clock: SharedClock,
    entries: Mutex<Entries>,
    max_entries: usize,
}

impl MemoryKv {
    pub fn new(clock: SharedClock, max_entries: usize) -> Self {
        Self { clock, entries: Mutex::new(Entries::default()), max_entries }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Entry>, i64) -> T) -> T {
        self.with_entries(|entries, now| f(&mut entries.map, now))
    }

    fn with_entries<T>(&self, f: impl FnOnce(&mut Entries, i64) -> T) -> T {
        let now = self.clock.now();
        // A panic while holding the lock cannot leave an entry half-written, so a poisoned map is still sound.
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.map.len() > 1024 && entries.map.len().is_power_of_two() {
            entries.map.retain(|_, entry| entry.expires_at > now);
        }
        f(&mut entries, now)
    }

    /// Runs `f` when `key` exists or there is room for it (after sweeping expired entries).
    fn with_room<T>(
        &self,
        key: &str,
        kind: Kind,
        f: impl FnOnce(&mut HashMap<String, Entry>, i64) -> T,
    ) -> KvResult<T> {
        let limit = match kind {
            Kind::Value => self.max_entries,
            Kind::Counter => self.max_entries.saturating_add(self.max_entries / 10),
        };
        self.with_entries(|entries, now| {
            if !entries.map.contains_key(key) && entries.map.len() >= limit {
                if entries.swept_at != now {
                    entries.map.retain(|_, entry| entry.expires_at > now);
                    entries.swept_at = now;
                }
                if entries.map.len() >= limit {
                    return Err(KvError("the in-process store is full (OXIDP_KV_MAX_ENTRIES)".into()));
                }
            }
            Ok(f(&mut entries.map, now))
        })
    }
}

fn live(entry: Option<&Entry>, now: i64) -> Option<&Entry> {
    entry.filter(|entry| entry.expires_at > now)
}

impl KeyValue for MemoryKv {
    async fn put(&self, key: &str, value: Vec<u8>, ttl: i64) -> KvResult<()> {
        self.with_room(key, Kind::Value, |entries, now| {
            entries.insert(key.to_string(), Entry { value, expires_at: now + ttl });
        })
    }

    async fn get(&self, key: &str) -> KvResult<Option<Vec<u8>>> {
        Ok(self.with(|entries, now| live(entries.get(key), now).map(|entry| entry.value.clone())))
    }

    async fn take(&self, key: &str) -> KvResult<Option<Vec<u8>>> {
        Ok(self
            .with(|entries, now| entries.remove(key).filter(|entry| entry.expires_at > now).map(|entry| entry.value)))
    }

    async fn delete(&self, key: &str) -> KvResult<()> {
        self.with(|entries, _| entries.remove(key));
        Ok(())
    }

    async fn increment(&self, key: &str, ttl: i64) -> KvResult<i64> {
        self.with_room(key, Kind::Counter, |entries, now| {
            let count = live(entries.get(key), now).map(counter_value).unwrap_or(0) + 1;
            let expires_at = live(entries.get(key), now).map(|entry| entry.expires_at).unwrap_or(now + ttl);
            entries.insert(key.to_string(), Entry { value: count.to_string().into_bytes(), expires_at });
            count
        })
    }

    async fn counter(&self, key: &str) -> KvResult<(i64, i64)> {
        Ok(self.with(|entries, now| {
            live(entries.get(key), now).map(|entry| (counter_value(entry), entry.expires_at - now)).unwrap_or((0, 0))
        }))
    }

    async fn admit(&self, key: &str, throttle: &Throttle) -> KvResult<Admission> {
        self.with_room(key, Kind::Counter, |entries, now| {
            let (count, last, expires_at) = match live(entries.get(key), now) {
                Some(entry) => {
                    let (count, last) = throttle_value(entry);
                    (count, last, entry.expires_at)
                }
                None => (0, 0, now + throttle.window),
            };
            if count >= throttle.limit {
                return Admission::Locked { retry_after: expires_at - now };
            }
            let ready_at = last + throttle.wait_after(count);
            if now < ready_at {
                return Admission::Delayed { retry_after: ready_at - now };
            }
            entries.insert(key.to_string(), Entry { value: format!("{}:{now}", count + 1).into_bytes(), expires_at });
            Admission::Admitted
        })
    }

    async fn release(&self, key: &str) -> KvResult<()> {
        self.with(|entries, now| {
            if let Some(entry) = entries.get_mut(key).filter(|entry| entry.expires_at > now) {
                let (count, last) = throttle_value(entry);
                entry.value = format!("{}:{last}", (count - 1).max(0)).into_bytes();
            }
        });
        Ok(())
    }
}

/// A throttle's entry holds `count:last_attempt_at`; its expiry is the end of the window.
fn throttle_value(entry: &Entry) -> (i64, i64) {
    let text = std::str::from_utf8(&entry.value).unwrap_or("");
    let (count, last) = text.split_once(':').unwrap_or((text, "0"));
    (count.parse().unwrap_or(0), last.parse().unwrap_or(0))
}

fn counter_value(entry: &Entry) -> i64 {
    std::str::from_utf8(&entry.value).ok().and_then(|text| text.parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::Arc;

    #[tokio::test]
    async fn values_expire_and_take_is_single_use() {
        let clock = ManualClock::new(1000);
        let kv = MemoryKv::new(Arc::new(clock.clone()), 1000);
        kv.put("a", b"1".to_vec(), 10).await.expect("put");
        assert_eq!(kv.take("a").await.expect("take"), Some(b"1".to_vec()));
        assert_eq!(kv.take("a").await.expect("take"), None);
        kv.put("b", b"2".to_vec(), 10).await.expect("put");
        clock.advance(10);
        assert_eq!(kv.get("b").await.expect("get"), None);
    }

    #[tokio::test]
    async fn counters_reset_after_their_window() {
        let clock = ManualClock::new(1000);
        let kv = MemoryKv::new(Arc::new(clock.clone()), 1000);
        assert_eq!(kv.increment("c", 60).await.expect("inc"), 1);
        clock.advance(30);
        assert_eq!(kv.increment("c", 60).await.expect("inc"), 2);
        assert_eq!(kv.counter("c").await.expect("counter"), (2, 30));
        clock.advance(30);
        assert_eq!(kv.increment("c", 60).await.expect("inc"), 1);
    }

    #[tokio::test]
    async fn throttles_delay_then_lock_and_reset_with_their_window() {
        let clock = ManualClock::new(1000);
        let kv = MemoryKv::new(Arc::new(clock.clone()), 1000);
        let throttle = Throttle { limit: 5, window: 100, free: 2, delay: 1, max_delay: 60 };
        for _ in 0..3 {
            assert_eq!(kv.admit("t", &throttle).await.expect("admit"), Admission::Admitted);
        }
        assert_eq!(kv.admit("t", &throttle).await.expect("admit"), Admission::Delayed { retry_after: 1 });
        clock.advance(1);
        assert_eq!(kv.admit("t", &throttle).await.expect("admit"), Admission::Admitted);
        assert_eq!(kv.admit("t", &throttle).await.expect("admit"), Admission::Delayed { retry_after: 2 });
        // A released attempt is no longer counted: the wait is the previous one again.
        kv.release("t").await.expect("release");
        assert_eq!(kv.admit("t", &throttle).await.expect("admit"), Admission::Delayed { retry_after: 1 });
        clock.advance(1);
        assert_eq!(kv.admit("t", &throttle).await.expect("admit"), Admission::Admitted);
        clock.advance(2);
        assert_eq!(kv.admit("t", &throttle).await.expect("admit"), Admission::Admitted);
        assert_eq!(kv.admit("t", &throttle).await.expect("admit"), Admission::Locked { retry_after: 96 });
        clock.advance(96);
        assert_eq!(kv.admit("t", &throttle).await.expect("admit"), Admission::Admitted, "a new window");
        kv.release("t").await.expect("release");
        kv.release("t").await.expect("release");
        assert_eq!(kv.admit("t", &throttle).await.expect("admit"), Admission::Admitted, "never below zero");
    }

    #[tokio::test]
    async fn a_full_store_sweeps_expired_entries_then_refuses_and_never_evicts() {
        let clock = ManualClock::new(1000);
        let kv = MemoryKv::new(Arc::new(clock.clone()), 10);
        for n in 0..5 {
            kv.put(&format!("short{n}"), b"x".to_vec(), 10).await.expect("put");
        }
        for n in 0..5 {
            kv.put(&format!("long{n}"), b"x".to_vec(), 1000).await.expect("put");
        }
        assert!(kv.put("one-more", b"x".to_vec(), 10).await.is_err(), "full: refused");
        kv.put("long0", b"y".to_vec(), 1000).await.expect("an existing key is replaced");
        // Counters have a tenth more room: one here.
        assert_eq!(kv.increment("counter", 60).await.expect("counter room"), 1);
        assert!(kv.increment("counter2", 60).await.is_err(), "even the counters' room is full");
        clock.advance(10);
        // Five expired entries go; five live ones and the counter stay: room for four.
        for n in 0..4 {
            kv.put(&format!("new{n}"), b"x".to_vec(), 10).await.expect("expired entries went first");
        }
        assert!(kv.put("again", b"x".to_vec(), 10).await.is_err());
        for n in 0..5 {
            assert!(kv.get(&format!("long{n}")).await.expect("get").is_some(), "live entries stay");
        }
        assert_eq!(kv.counter("counter").await.expect("counter").0, 1, "counters stay");
    }
}
