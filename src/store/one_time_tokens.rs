use super::{Db, StoreResult, on_pool};

/// Single-use tokens mailed to users (email verification, password reset), stored as keyed hashes.
pub trait OneTimeTokenStore {
    async fn insert_one_time_token(
        &self,
        token_hash: &str,
        user_id: &str,
        purpose: &str,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()>;
    /// The user of a live token, without using it up.
    async fn one_time_token_owner(&self, token_hash: &str, purpose: &str, now: i64) -> StoreResult<Option<String>>;
    /// Marks the token used and returns its user, only when unused, unexpired and of this purpose.
    async fn use_one_time_token(&self, token_hash: &str, purpose: &str, now: i64) -> StoreResult<Option<String>>;
}

impl OneTimeTokenStore for Db {
    async fn insert_one_time_token(
        &self,
        token_hash: &str,
        user_id: &str,
        purpose: &str,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        let sql = "INSERT INTO one_time_tokens (token_hash, user_id, purpose, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(token_hash)
            .bind(user_id)
            .bind(purpose)
            .bind(now)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn one_time_token_owner(&self, token_hash: &str, purpose: &str, now: i64) -> StoreResult<Option<String>> {
        let sql = "SELECT user_id FROM one_time_tokens WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3";
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, String>(sql)
            .bind(token_hash)
            .bind(purpose)
            .bind(now)
            .fetch_optional(pool)
            .await)?)
    }

    async fn use_one_time_token(&self, token_hash: &str, purpose: &str, now: i64) -> StoreResult<Option<String>> {
        let sql = "UPDATE one_time_tokens SET used_at = $1 WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL \
                   AND expires_at > $1 RETURNING user_id";
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, String>(sql)
            .bind(now)
            .bind(token_hash)
            .bind(purpose)
            .fetch_optional(pool)
            .await)?)
    }
}
