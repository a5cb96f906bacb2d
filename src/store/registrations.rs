//! Dynamic client registration (RFC 7591/7592): initial access tokens and the registration of
//! each self-registered client. Tokens are stored as keyed hashes only.

use super::{Db, StoreResult, on_pool};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Registration {
    pub client_id: String,
    /// `token` (made with an initial access token) or `open`.
    pub mode: String,
    pub access_token_hash: String,
    /// The registered metadata oxidp only echoes, as a JSON object.
    pub metadata: String,
    pub created_at: i64,
}

pub trait RegistrationStore {
    async fn create_registration_token(
        &self,
        id: &str,
        token_hash: &str,
        expires_at: i64,
        uses: Option<i64>,
        now: i64,
    ) -> StoreResult<()>;
    /// Whether an initial access token is live (unexpired, with uses left), without spending it.
    async fn registration_token_is_live(&self, token_hash: &str, now: i64) -> StoreResult<bool>;
    /// Spends one use of a live initial access token; its id when it was live.
    async fn spend_registration_token(&self, token_hash: &str, now: i64) -> StoreResult<Option<String>>;
    async fn create_registration(&self, registration: &Registration) -> StoreResult<()>;
    async fn registration(&self, client_id: &str) -> StoreResult<Option<Registration>>;
    /// Replaces the metadata and the access token of a registration.
    async fn update_registration(&self, client_id: &str, access_token_hash: &str, metadata: &str) -> StoreResult<()>;
    async fn count_registrations(&self, mode: &str) -> StoreResult<i64>;
    /// Deletes the clients registered openly before `before` that never got a grant or a
    /// consent; returns their ids.
    async fn delete_unused_open_registrations(&self, before: i64) -> StoreResult<Vec<String>>;
}

impl RegistrationStore for Db {
    async fn create_registration_token(
        &self,
        id: &str,
        token_hash: &str,
        expires_at: i64,
        uses: Option<i64>,
        now: i64,
    ) -> StoreResult<()> {
        let sql = "INSERT INTO registration_tokens (id, token_hash, expires_at, uses_left, created_at) \
                   VALUES ($1, $2, $3, $4, $5)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(token_hash)
            .bind(expires_at)
            .bind(uses)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn registration_token_is_live(&self, token_hash: &str, now: i64) -> StoreResult<bool> {
        let sql = "SELECT COUNT(*) FROM registration_tokens \
                   WHERE token_hash = $1 AND expires_at > $2 AND (uses_left IS NULL OR uses_left > 0)";
        let found =
            on_pool!(self, |pool| sqlx::query_scalar::<_, i64>(sql).bind(token_hash).bind(now).fetch_one(pool).await)?;
        Ok(found > 0)
    }

    async fn spend_registration_token(&self, token_hash: &str, now: i64) -> StoreResult<Option<String>> {
        // One statement: two registrations racing for the last use cannot both win.
        let sql = "UPDATE registration_tokens SET uses_left = uses_left - 1 \
                   WHERE token_hash = $1 AND expires_at > $2 AND (uses_left IS NULL OR uses_left > 0) RETURNING id";
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, String>(sql)
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await)?)
    }

    async fn create_registration(&self, r: &Registration) -> StoreResult<()> {
        let sql = "INSERT INTO client_registrations (client_id, mode, access_token_hash, metadata, created_at) \
                   VALUES ($1, $2, $3, $4, $5)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(&r.client_id)
            .bind(&r.mode)
            .bind(&r.access_token_hash)
            .bind(&r.metadata)
            .bind(r.created_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn registration(&self, client_id: &str) -> StoreResult<Option<Registration>> {
        let sql = "SELECT client_id, mode, access_token_hash, metadata, created_at FROM client_registrations \
                   WHERE client_id = $1";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, Registration>(sql).bind(client_id).fetch_optional(pool).await)?)
    }

    async fn update_registration(&self, client_id: &str, access_token_hash: &str, metadata: &str) -> StoreResult<()> {
        let sql = "UPDATE client_registrations SET access_token_hash = $1, metadata = $2 WHERE client_id = $3";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(access_token_hash)
            .bind(metadata)
            .bind(client_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn count_registrations(&self, mode: &str) -> StoreResult<i64> {
        let sql = "SELECT COUNT(*) FROM client_registrations WHERE mode = $1";
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, i64>(sql).bind(mode).fetch_one(pool).await)?)
    }

    async fn delete_unused_open_registrations(&self, before: i64) -> StoreResult<Vec<String>> {
        let sql = "DELETE FROM clients WHERE id IN (SELECT r.client_id FROM client_registrations r \
                   WHERE r.mode = 'open' AND r.created_at < $1 \
                   AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.client_id = r.client_id) \
                   AND NOT EXISTS (SELECT 1 FROM consents c WHERE c.client_id = r.client_id)) RETURNING id";
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, String>(sql).bind(before).fetch_all(pool).await)?)
    }
}
