//! Revoked client_credentials access tokens, held in memory on a single instance.
//!
//! A client token is a self-contained JWT: nothing is written when it is issued, and its only
//! server-side state is "revoked or not". On the embedded default (one instance, in-process
//! key-value store) this set answers that without a database round trip; it is filled from the
//! database at start, so a restart forgets nothing. With Redis (several instances) the database
//! stays the one answer, because a set per instance could not see another instance's revocation.

use std::collections::HashMap;
use std::sync::Mutex;

pub struct RevokedClientTokens {
    /// jti → the token's own expiry, after which the entry is useless.
    entries: Mutex<HashMap<String, i64>>,
}

impl RevokedClientTokens {
    pub fn new(initial: Vec<(String, i64)>) -> Self {
        Self { entries: Mutex::new(initial.into_iter().collect()) }
    }

    pub fn insert(&self, jti: &str, expires_at: i64, now: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= 1024 && entries.len().is_power_of_two() {
            entries.retain(|_, expires| *expires > now);
        }
        entries.insert(jti.to_string(), expires_at);
    }

    pub fn contains(&self, jti: &str) -> bool {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).contains_key(jti)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_until_swept_after_expiry() {
        let set = RevokedClientTokens::new(vec![("loaded".into(), 100)]);
        assert!(set.contains("loaded"));
        set.insert("new", 50, 10);
        assert!(set.contains("new") && !set.contains("other"));
        // Growth sweeps only entries whose tokens expired.
        for i in 0..1100 {
            set.insert(&format!("t{i}"), 1000, 200);
        }
        assert!(!set.contains("loaded") && !set.contains("new"));
        assert!(set.contains("t0") && set.contains("t1099"));
    }
}
