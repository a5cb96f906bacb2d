//! User passwords: argon2id. Only for passwords people choose; generated secrets use keyed hashes.
//! Hashes imported from other systems (see [`legacy`]) are verified here too and replaced by
//! argon2id at the first sign-in that proves the password.
//!
//! Every slow hash or verification (argon2id here, bcrypt of migrated API clients) goes through
//! the one [`PasswordGate`] of the process: a few at once, a short bounded queue behind them, and
//! [`GateError::Busy`] (503 with `Retry-After`) for everyone else, so a burst of registrations or
//! logins costs bounded memory and leaves CPU for everything else.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

pub mod legacy;

/// Seconds a caller turned away by a full gate is told to wait (`Retry-After`).
pub const BUSY_RETRY_AFTER: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// Every slot is taken and the queue is full, or the wait ran out.
    #[error("too many password checks at once")]
    Busy,
    #[error("internal error: {0}")]
    Internal(String),
}

/// Bounds slow password work: `slots` run at once (each argon2id check holds 19 MiB), at most
/// `max_waiting` callers wait for a slot and none longer than `max_wait`; the rest are refused
/// at once. The slot moves into the blocking task, so a caller that goes away (a dropped
/// connection) cannot free it while the hash still runs.
pub struct PasswordGate {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    max_wait: Duration,
}

/// Leaves the queue however the wait ends (also when the waiting future is dropped).
struct InQueue<'a>(&'a AtomicUsize);

impl Drop for InQueue<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PasswordGate {
    pub fn new(slots: usize, max_waiting: usize, max_wait: Duration) -> Self {
        Self { slots: Arc::new(Semaphore::new(slots.max(1))), waiting: AtomicUsize::new(0), max_waiting, max_wait }
    }

    async fn enter(&self) -> Result<tokio::sync::OwnedSemaphorePermit, GateError> {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return Ok(slot);
        }
        let queued = InQueue(&self.waiting);
        if queued.0.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            return Err(GateError::Busy);
        }
        match tokio::time::timeout(self.max_wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => Ok(slot),
            _ => Err(GateError::Busy),
        }
    }

    /// Runs `work` (CPU-heavy) on the blocking pool once a slot is free.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, GateError> {
        let slot = self.enter().await?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            work()
        })
        .await
        .map_err(|e| GateError::Internal(e.to_string()))
    }

    pub async fn hash(&self, password: &str) -> Result<String, GateError> {
        let password = password.to_string();
        self.run(move || hash_password(&password)).await?.map_err(GateError::Internal)
    }

    /// [`verify_password`] through the gate.
    pub async fn verify(&self, password: &str, stored: Option<String>) -> Result<bool, GateError> {
        let password = password.to_string();
        self.run(move || verify_password(&password, stored.as_deref())).await
    }

    /// As [`Self::verify`]; when the password matches a hash that is not today's argon2id (an
    /// imported one), also its argon2id hash, made in the same slot, for the caller to store.
    pub async fn verify_upgrading(&self, password: &str, stored: Option<String>) -> Result<Checked, GateError> {
        let password = password.to_string();
        self.run(move || {
            let matches = verify_password(&password, stored.as_deref());
            let upgraded = match stored.as_deref() {
                Some(stored) if matches && needs_upgrade(stored) => hash_password(&password).ok(),
                _ => None,
            };
            Checked { matches, upgraded }
        })
        .await
    }
}

/// A password check: whether it matched, and the argon2id hash to store in place of a legacy one.
#[derive(Debug)]
pub struct Checked {
    pub matches: bool,
    pub upgraded: Option<String>,
}

/// The prefix every hash made by [`hash_password`] today starts with.
const CURRENT_PREFIX: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

/// Whether a stored hash is not today's argon2id (bcrypt, PBKDF2, argon2i, other parameters).
pub fn needs_upgrade(stored: &str) -> bool {
    !stored.starts_with(CURRENT_PREFIX)
}

/// 19 MiB, 2 passes: the OWASP argon2id baseline, well under 50 ms here.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    hasher().hash_password(password.as_bytes(), &salt).map(|hash| hash.to_string()).map_err(|e| e.to_string())
}

/// Verifies against `stored`, or against a fixed dummy hash when there is no account, so an
/// unknown email costs the same work as a wrong password.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    if let Some(stored) = stored.filter(|stored| !stored.starts_with("$argon2")) {
        return legacy::verify(password, stored);
    }
    let candidate = stored.unwrap_or(DUMMY_HASH);
    let matches = PasswordHash::new(candidate)
        .map(|hash| hasher().verify_password(password.as_bytes(), &hash).is_ok())
        .unwrap_or(false);
    matches && stored.is_some()
}

/// argon2id hash of a random string nobody knows, with the same parameters as real hashes.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0yA8cQv3Wo1oNXDGMnvONl0Dz1yENUCh6N0d8eynKk4";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_gate_refuses_beyond_its_queue() {
        let gate = Arc::new(PasswordGate::new(1, 1, Duration::from_millis(200)));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let holder = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.run(move || rx.recv().is_ok()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let waiter = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.run(|| 1).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        // One running, one waiting: the next is refused at once.
        assert!(matches!(gate.run(|| 2).await, Err(GateError::Busy)));
        // The waiter gives up after its bounded wait.
        assert!(matches!(waiter.await.expect("join"), Err(GateError::Busy)));
        tx.send(()).expect("send");
        assert!(holder.await.expect("join").expect("ran"));
        assert_eq!(gate.run(|| 3).await.expect("free again"), 3);
    }

    #[test]
    fn hash_and_verify() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", Some(&hash)));
        assert!(!verify_password("wrong", Some(&hash)));
        assert!(!verify_password("anything", None));
    }

    #[test]
    fn dummy_hash_parses_with_real_parameters() {
        let parsed = PasswordHash::new(DUMMY_HASH).expect("dummy hash parses");
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        let real = hash_password("x").expect("hash");
        let real = PasswordHash::new(&real).expect("parse");
        assert_eq!(parsed.params.to_string(), real.params.to_string());
    }
}
