use super::{Db, StoreResult, on_pool};
use sqlx::AssertSqlSafe;

/// An authorization code as stored: only the keyed hash of the code itself.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuthCode {
    pub code_hash: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: String,
    pub redirect_uri: String,
    pub redirect_uri_given: bool,
    pub scope: String,
    pub resource: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub amr: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
    pub grant_id: Option<String>,
    pub purge_after: i64,
    /// RFC 9449 §10: the thumbprint of the DPoP key the code is bound to.
    pub dpop_jkt: Option<String>,
}

/// What presenting a code found.
#[derive(Debug)]
pub enum CodeConsumption {
    /// First use: the code is now consumed and bound to `grant_id`.
    Consumed(Box<AuthCode>),
    /// The code had been used before; `grant_id` names what the first use issued.
    Replayed {
        grant_id: Option<String>,
        client_id: String,
    },
    Unknown,
}

const CODE_COLUMNS: &str = "code_hash, client_id, user_id, session_id, redirect_uri, redirect_uri_given, scope, resource, nonce, \
     code_challenge, auth_time, amr, created_at, expires_at, consumed_at, grant_id, purge_after, dpop_jkt";

pub trait CodeStore {
    async fn insert_code(&self, code: &AuthCode) -> StoreResult<()>;
    /// Marks the code consumed and binds it to `grant_id` in the same statement that reads it.
    async fn consume_code(&self, code_hash: &str, grant_id: &str, now: i64) -> StoreResult<CodeConsumption>;
}

impl CodeStore for Db {
    async fn insert_code(&self, c: &AuthCode) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO auth_codes ({CODE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        );
        on_pool!(self, |pool| sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(&c.code_hash)
            .bind(&c.client_id)
            .bind(&c.user_id)
            .bind(&c.session_id)
            .bind(&c.redirect_uri)
            .bind(c.redirect_uri_given)
            .bind(&c.scope)
            .bind(&c.resource)
            .bind(&c.nonce)
            .bind(&c.code_challenge)
            .bind(c.auth_time)
            .bind(&c.amr)
            .bind(c.created_at)
            .bind(c.expires_at)
            .bind(c.consumed_at)
            .bind(&c.grant_id)
            .bind(c.purge_after)
            .bind(&c.dpop_jkt)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn consume_code(&self, code_hash: &str, grant_id: &str, now: i64) -> StoreResult<CodeConsumption> {
        let consume = format!(
            "UPDATE auth_codes SET consumed_at = $1, grant_id = $2 WHERE code_hash = $3 AND consumed_at IS NULL RETURNING {CODE_COLUMNS}"
        );
        let consumed = on_pool!(self, |pool| sqlx::query_as::<_, AuthCode>(AssertSqlSafe(consume.as_str()))
            .bind(now)
            .bind(grant_id)
            .bind(code_hash)
            .fetch_optional(pool)
            .await)?;
        if let Some(code) = consumed {
            return Ok(CodeConsumption::Consumed(Box::new(code)));
        }
        let previous = on_pool!(self, |pool| sqlx::query_as::<_, (Option<String>, String)>(
            "SELECT grant_id, client_id FROM auth_codes WHERE code_hash = $1"
        )
        .bind(code_hash)
        .fetch_optional(pool)
        .await)?;
        Ok(match previous {
            Some((grant_id, client_id)) => CodeConsumption::Replayed { grant_id, client_id },
            None => CodeConsumption::Unknown,
        })
    }
}
