use std::collections::HashMap;
use std::sync::Mutex;

use super::{Admission, KeyValue, KvResult, Throttle};
use crate::clock::SharedClock;

struct Entry {
    value: Vec<u8>,
    expires_at: i64,
}

/// In-process store for a single instance. Expired entries are swept as the map grows.
pub struct MemoryKv {
    clock: SharedClock,
    entries: Mutex<HashMap<String, Entry>>,
}

impl MemoryKv {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, entries: Mutex::new(HashMap::new()) }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Entry>, i64) -> T) -> T {
        let now = self.clock.now();
        // A panic while holding the lock cannot leave an entry half-written, so a poisoned map is still sound.
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() > 1024 && entries.len().is_power_of_two() {
            entries.retain(|_, entry| entry.expires_at > now);
        }
        f(&mut entries, now)
    }
}

fn live(entry: Option<&Entry>, now: i64) -> Option<&Entry> {
    entry.filter(|entry| entry.expires_at > now)
}

impl KeyValue for MemoryKv {
    async fn put(&self, key: &str, value: Vec<u8>, ttl: i64) -> KvResult<()> {
        self.with(|entries, now| {
            entries.insert(key.to_string(), Entry { value, expires_at: now + ttl });
        });
        Ok(())
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
        Ok(self.with(|entries, now| {
            let count = live(entries.get(key), now).map(counter_value).unwrap_or(0) + 1;
            let expires_at = live(entries.get(key), now).map(|entry| entry.expires_at).unwrap_or(now + ttl);
            entries.insert(key.to_string(), Entry { value: count.to_string().into_bytes(), expires_at });
            count
        }))
    }

    async fn counter(&self, key: &str) -> KvResult<(i64, i64)> {
        Ok(self.with(|entries, now| {
            live(entries.get(key), now).map(|entry| (counter_value(entry), entry.expires_at - now)).unwrap_or((0, 0))
        }))
    }

    async fn admit(&self, key: &str, throttle: &Throttle) -> KvResult<Admission> {
        Ok(self.with(|entries, now| {
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
        }))
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
        let kv = MemoryKv::new(Arc::new(clock.clone()));
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
        let kv = MemoryKv::new(Arc::new(clock.clone()));
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
        let kv = MemoryKv::new(Arc::new(clock.clone()));
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
}
