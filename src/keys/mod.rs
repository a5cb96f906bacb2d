//! Signing keys: stored encrypted in the database, held parsed in memory, rotated in two steps.
//!
//! A new key is published in the JWKS first and signs only from `activates_at`, which is
//! the JWKS cache lifetime plus every instance's reload interval after its creation. A key
//! that a newer one superseded stays published until every token it signed has expired.

mod jwk;

use std::sync::{Arc, RwLock};

use josekit::jwk::Jwk;
use josekit::jwk::KeyPair;
use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};
use josekit::jwk::alg::ed::{EdCurve, EdKeyPair};
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jws::{ES256, EdDSA, JwsSigner, JwsVerifier, RS256};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::clock::SharedClock;
use crate::crypto::{ServerSecret, b64url};
use crate::store::{Db, SigningKeyRecord, SigningKeyStore, StoreError};

pub use jwk::thumbprint;

/// RS256 signs access tokens and, unless a client asks otherwise, ID tokens.
pub const DEFAULT_ALG: &str = "RS256";
/// JWS algorithms oxidp can hold keys for: RSA-2048+ PKCS#1 v1.5, ECDSA P-256, Ed25519.
pub const SUPPORTED_ALGS: [&str; 3] = ["RS256", "ES256", "EdDSA"];

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("key material: {0}")]
    Material(String),
    #[error("no signing key is active")]
    NoActiveKey,
}

impl From<josekit::JoseError> for KeyError {
    fn from(error: josekit::JoseError) -> Self {
        KeyError::Material(error.to_string())
    }
}

/// A JSON object: a JWT header or claims set.
pub type JsonObject = Map<String, Value>;

/// Why a token failed verification; callers map every case to `invalid_token` or similar.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidJwt(pub String);

struct LoadedKey {
    kid: String,
    alg: String,
    activates_at: i64,
    signer: Box<dyn JwsSigner>,
    verifier: Box<dyn JwsVerifier>,
    public_jwk: Value,
}

#[derive(Default)]
struct KeySet {
    /// Ordered by `activates_at`.
    keys: Vec<LoadedKey>,
}

impl KeySet {
    /// The newest key of `alg` whose activation time has come. Each algorithm has its own
    /// timeline: a new ES256 key supersedes the previous ES256 key, never an RS256 one.
    fn signing_index(&self, alg: &str, now: i64) -> Option<usize> {
        self.keys.iter().rposition(|key| key.alg == alg && key.activates_at <= now)
    }

    /// When the key at `index` stopped signing: its successor's (same algorithm) activation.
    fn superseded_at(&self, index: usize, now: i64) -> Option<i64> {
        let alg = &self.keys[index].alg;
        self.keys[index + 1..].iter().filter(|key| &key.alg == alg).map(|key| key.activates_at).find(|&at| at <= now)
    }
}

/// One row of `oxidp keys list`.
#[derive(Debug, Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: String,
    pub status: &'static str,
    pub created_at: i64,
    pub activates_at: i64,
}

/// What `keys rotate` and `keys import` print.
#[derive(Debug, Serialize)]
pub struct NewKey {
    pub kid: String,
    pub alg: String,
    pub activates_at: i64,
}

pub struct KeyManager {
    db: Db,
    secret: ServerSecret,
    clock: SharedClock,
    rsa_bits: u32,
    /// Algorithms that get a key at bootstrap (RS256 first).
    algs: Vec<String>,
    /// Seconds between creating a key and letting it sign.
    activation_delay: i64,
    /// The longest lifetime of a signed token: how long a superseded key stays published.
    max_token_ttl: i64,
    set: RwLock<Arc<KeySet>>,
    /// The serialised JWKS and what it was made from: it changes only at rotation boundaries.
    jwks_cache: RwLock<Option<JwksCache>>,
}

struct JwksCache {
    set: Arc<KeySet>,
    published: Vec<usize>,
    body: String,
}

impl KeyManager {
    pub fn new(
        db: Db,
        secret: ServerSecret,
        clock: SharedClock,
        rsa_bits: u32,
        algs: Vec<String>,
        activation_delay: i64,
        max_token_ttl: i64,
    ) -> Self {
        Self {
            db,
            secret,
            clock,
            rsa_bits,
            algs,
            activation_delay,
            max_token_ttl,
            set: RwLock::new(Arc::default()),
            jwks_cache: RwLock::new(None),
        }
    }

    /// Creates the first key of each configured algorithm that has none (under a database
    /// lock, so instances starting together create one each), then loads all keys.
    pub async fn bootstrap(&self) -> Result<(), KeyError> {
        let existing = self.db.signing_keys().await?;
        for alg in &self.algs {
            if existing.iter().any(|record| &record.alg == alg) {
                continue;
            }
            let record = self.generate_record(alg, self.clock.now(), 0)?;
            if self.db.insert_first_signing_key(&record).await? {
                tracing::info!(kid = %record.kid, alg = %record.alg, "created the first signing key");
            }
        }
        self.reload().await
    }

    /// Re-reads keys from the database; cheap when nothing changed.
    pub async fn reload(&self) -> Result<(), KeyError> {
        let records = self.db.signing_keys().await?;
        let current: Vec<String> = self.snapshot().keys.iter().map(|key| key.kid.clone()).collect();
        if records.iter().map(|record| &record.kid).eq(current.iter()) {
            return Ok(());
        }
        let mut keys = Vec::with_capacity(records.len());
        for record in records {
            match self.load(&record) {
                Ok(key) => keys.push(key),
                // One unreadable key must not take the others down with it.
                Err(error) => {
                    tracing::error!(kid = %record.kid, %error, "skipping a signing key that cannot be loaded")
                }
            }
        }
        *self.set.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(KeySet { keys });
        Ok(())
    }

    /// Generates an RS256 key that starts signing after the activation delay.
    pub async fn rotate(&self) -> Result<NewKey, KeyError> {
        self.rotate_alg(DEFAULT_ALG).await
    }

    /// Generates a key of `alg` that starts signing after the activation delay.
    pub async fn rotate_alg(&self, alg: &str) -> Result<NewKey, KeyError> {
        let record = self.generate_record(alg, self.clock.now(), self.activation_delay)?;
        self.db.insert_signing_key(&record).await?;
        self.reload().await?;
        Ok(NewKey { kid: record.kid, alg: record.alg, activates_at: record.activates_at })
    }

    /// Stores an operator's RSA private key (PKCS#1 or PKCS#8 PEM) with the same two-step activation.
    pub async fn import_pem(&self, pem: &[u8]) -> Result<NewKey, KeyError> {
        let pair = RsaKeyPair::from_pem(pem)?;
        if pair.key_len() * 8 < 2048 {
            return Err(KeyError::Material("RSA keys must have at least 2048 bits".into()));
        }
        let now = self.clock.now();
        let record = self.record_from_pair(&pair, DEFAULT_ALG, now, now + self.activation_delay, "imported")?;
        self.db.insert_signing_key(&record).await?;
        self.reload().await?;
        Ok(NewKey { kid: record.kid, alg: record.alg, activates_at: record.activates_at })
    }

    pub async fn list(&self) -> Result<Vec<KeyInfo>, KeyError> {
        let records = self.db.signing_keys().await?;
        let now = self.clock.now();
        Ok(records
            .iter()
            .enumerate()
            .map(|(index, record)| {
                let same_alg = |r: &&SigningKeyRecord| r.alg == record.alg;
                let active_index = records.iter().rposition(|r| r.alg == record.alg && r.activates_at <= now);
                let superseded_at =
                    records[index + 1..].iter().filter(same_alg).map(|r| r.activates_at).find(|&at| at <= now);
                let status = match (active_index, superseded_at) {
                    _ if record.activates_at > now => "pending",
                    (Some(active), _) if active == index => "active",
                    (_, Some(at)) if at + self.max_token_ttl > now => "retired",
                    _ => "expired",
                };
                KeyInfo {
                    kid: record.kid.clone(),
                    alg: record.alg.clone(),
                    status,
                    created_at: record.created_at,
                    activates_at: record.activates_at,
                }
            })
            .collect())
    }

    /// Signs `claims` as a compact JWS with the active RS256 key and the given `typ`.
    pub fn sign(&self, typ: &str, claims: &Map<String, Value>) -> Result<String, KeyError> {
        self.sign_with(DEFAULT_ALG, typ, claims)
    }

    /// Signs with the active key of `alg`.
    pub fn sign_with(&self, alg: &str, typ: &str, claims: &Map<String, Value>) -> Result<String, KeyError> {
        let set = self.snapshot();
        let key =
            set.signing_index(alg, self.clock.now()).map(|index| &set.keys[index]).ok_or(KeyError::NoActiveKey)?;
        let header = serde_json::json!({ "alg": key.alg, "typ": typ, "kid": key.kid });
        let mut message = b64url(header.to_string());
        message.push('.');
        message.push_str(&b64url(serde_json::to_vec(claims).map_err(|e| KeyError::Material(e.to_string()))?));
        let signature = key.signer.sign(message.as_bytes())?;
        message.push('.');
        message.push_str(&b64url(signature));
        Ok(message)
    }

    /// Whether a key of `alg` signs now.
    pub fn can_sign(&self, alg: &str) -> bool {
        self.snapshot().signing_index(alg, self.clock.now()).is_some()
    }

    /// Verifies the signature with a published key and returns the header and claims.
    /// Time-based claims are the caller's to check (an expired `id_token_hint` is still usable).
    pub fn verify(&self, token: &str) -> Result<(JsonObject, JsonObject), InvalidJwt> {
        let set = self.snapshot();
        let now = self.clock.now();
        let published = self.published_indices(&set, now);
        let (payload, header) = josekit::jwt::decode_with_verifier_selector(token, |header| {
            let kid = header.key_id();
            let alg = header.algorithm();
            Ok(published
                .iter()
                .map(|&index| &set.keys[index])
                .find(|key| Some(key.kid.as_str()) == kid && Some(key.alg.as_str()) == alg)
                .map(|key| key.verifier.as_ref()))
        })
        .map_err(|error| InvalidJwt(error.to_string()))?;
        Ok((header.claims_set().clone(), payload.claims_set().clone()))
    }

    /// The public JWK set (upcoming, active and still-needed retired keys), serialised; reused
    /// until the key set or the published subset changes.
    pub fn jwks_json(&self) -> String {
        let set = self.snapshot();
        let published = self.published_indices(&set, self.clock.now());
        if let Some(cache) = self.jwks_cache.read().unwrap_or_else(|poisoned| poisoned.into_inner()).as_ref()
            && Arc::ptr_eq(&cache.set, &set)
            && cache.published == published
        {
            return cache.body.clone();
        }
        let keys: Vec<&Value> = published.iter().map(|&index| &set.keys[index].public_jwk).collect();
        let body = serde_json::json!({ "keys": keys }).to_string();
        *self.jwks_cache.write().unwrap_or_else(|poisoned| poisoned.into_inner()) =
            Some(JwksCache { set, published, body: body.clone() });
        body
    }

    pub fn has_active_key(&self) -> bool {
        self.can_sign(DEFAULT_ALG)
    }

    fn published_indices(&self, set: &KeySet, now: i64) -> Vec<usize> {
        (0..set.keys.len())
            .filter(|&index| match set.superseded_at(index, now) {
                Some(at) => at + self.max_token_ttl > now,
                None => true,
            })
            .collect()
    }

    fn snapshot(&self) -> Arc<KeySet> {
        self.set.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn generate_record(&self, alg: &str, now: i64, delay: i64) -> Result<SigningKeyRecord, KeyError> {
        match alg {
            "RS256" => self.record_from_pair(&RsaKeyPair::generate(self.rsa_bits)?, alg, now, now + delay, "generated"),
            "ES256" => self.record_from_pair(&EcKeyPair::generate(EcCurve::P256)?, alg, now, now + delay, "generated"),
            "EdDSA" => {
                self.record_from_pair(&EdKeyPair::generate(EdCurve::Ed25519)?, alg, now, now + delay, "generated")
            }
            other => Err(KeyError::Material(format!("unsupported algorithm {other}"))),
        }
    }

    fn record_from_pair(
        &self,
        pair: &dyn KeyPair,
        alg: &str,
        now: i64,
        activates_at: i64,
        source: &str,
    ) -> Result<SigningKeyRecord, KeyError> {
        let mut public = pair.to_jwk_public_key();
        let kid =
            thumbprint(&public).ok_or_else(|| KeyError::Material("cannot compute the key's thumbprint".into()))?;
        public.set_key_id(kid.clone());
        public.set_algorithm(alg);
        public.set_key_use("sig");
        Ok(SigningKeyRecord {
            kid,
            alg: alg.into(),
            private_key_enc: self.secret.encrypt(&pair.to_pem_private_key()),
            public_jwk: serde_json::to_string(public.as_ref()).map_err(|e| KeyError::Material(e.to_string()))?,
            source: source.into(),
            created_at: now,
            activates_at,
        })
    }

    fn load(&self, record: &SigningKeyRecord) -> Result<LoadedKey, KeyError> {
        let pem = self.secret.decrypt(&record.private_key_enc).map_err(|e| KeyError::Material(e.to_string()))?;
        let public = Jwk::from_bytes(record.public_jwk.as_bytes())?;
        let (signer, verifier): (Box<dyn JwsSigner>, Box<dyn JwsVerifier>) = match record.alg.as_str() {
            "RS256" => (Box::new(RS256.signer_from_pem(&pem)?), Box::new(RS256.verifier_from_jwk(&public)?)),
            "ES256" => (Box::new(ES256.signer_from_pem(&pem)?), Box::new(ES256.verifier_from_jwk(&public)?)),
            "EdDSA" => (Box::new(EdDSA.signer_from_pem(&pem)?), Box::new(EdDSA.verifier_from_jwk(&public)?)),
            other => return Err(KeyError::Material(format!("unsupported algorithm {other}"))),
        };
        Ok(LoadedKey {
            kid: record.kid.clone(),
            alg: record.alg.clone(),
            activates_at: record.activates_at,
            signer,
            verifier,
            public_jwk: serde_json::from_str(&record.public_jwk).map_err(|e| KeyError::Material(e.to_string()))?,
        })
    }
}
