use super::{Db, StoreResult, on_pool};
use sqlx::AssertSqlSafe;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub alg: String,
    /// AES-GCM sealed PKCS#8 PEM, see `crypto::ServerSecret::encrypt`.
    pub private_key_enc: String,
    pub public_jwk: String,
    pub source: String,
    pub created_at: i64,
    pub activates_at: i64,
}

pub trait SigningKeyStore {
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;
    /// Inserts `key` only when no key of its algorithm exists, holding a database-wide lock
    /// meanwhile, so instances starting together create exactly one. True when it was inserted.
    async fn insert_first_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<bool>;
}

const KEY_COLUMNS: &str = "kid, alg, private_key_enc, public_jwk, source, created_at, activates_at";
const INSERT_KEY: &str = "INSERT INTO signing_keys (kid, alg, private_key_enc, public_jwk, source, created_at, activates_at) \
                          VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// "First" is per algorithm: each has its own rotation timeline.
const FIRST_OF_ALG: &str = "SELECT COUNT(*) FROM signing_keys WHERE alg = $1";

macro_rules! bind_key {
    ($query:expr, $k:expr) => {
        $query
            .bind(&$k.kid)
            .bind(&$k.alg)
            .bind(&$k.private_key_enc)
            .bind(&$k.public_jwk)
            .bind(&$k.source)
            .bind($k.created_at)
            .bind($k.activates_at)
    };
}

impl SigningKeyStore for Db {
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY activates_at, created_at");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, SigningKeyRecord>(AssertSqlSafe(sql.as_str()))
            .fetch_all(pool)
            .await)?)
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        on_pool!(self, |pool| bind_key!(sqlx::query(INSERT_KEY), key).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn insert_first_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<bool> {
        // The lock differs per database: an advisory transaction lock on PostgreSQL,
        // an immediate (write-locking) transaction on SQLite.
        match self {
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock(7291501)").execute(&mut *tx).await?;
                let count: i64 = sqlx::query_scalar(FIRST_OF_ALG).bind(&key.alg).fetch_one(&mut *tx).await?;
                if count > 0 {
                    return Ok(false);
                }
                bind_key!(sqlx::query(INSERT_KEY), key).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(true)
            }
            Db::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let count: i64 = sqlx::query_scalar(FIRST_OF_ALG).bind(&key.alg).fetch_one(&mut *tx).await?;
                if count > 0 {
                    return Ok(false);
                }
                bind_key!(sqlx::query(INSERT_KEY), key).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    }
}
