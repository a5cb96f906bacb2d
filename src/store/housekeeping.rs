use super::{Db, StoreResult, on_pool};

/// Rows removed by one purge, per table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub codes: u64,
    pub grants: u64,
    pub access_tokens: u64,
    pub sessions: u64,
    pub one_time_tokens: u64,
    /// Audit rows older than `OXIDP_AUDIT_RETENTION`.
    pub audit_rows: u64,
    /// Self-registered accounts never verified within `OXIDP_UNVERIFIED_ACCOUNT_TTL`.
    pub unverified_accounts: u64,
    /// Openly registered clients unused for `OXIDP_REGISTRATION_UNUSED_TTL`.
    pub unused_registrations: u64,
}

pub trait HousekeepingStore {
    /// Deletes what can no longer be used nor needs recognising. Codes stay until every token
    /// they could have issued has expired (replay detection needs them); refresh-token families
    /// until their absolute end. Sessions are purged by their own store (`SessionStore`).
    async fn purge_expired(&self, now: i64) -> StoreResult<Purged>;
    /// Deletes audit rows written before `before`.
    async fn purge_audit(&self, before: i64) -> StoreResult<u64>;
    /// Up to `limit` self-registered accounts made before `before` whose email was never
    /// verified (and that nobody made an administrator), oldest first.
    async fn unverified_self_registered(&self, before: i64, limit: i64) -> StoreResult<Vec<String>>;
    /// Deletes one such account, unless it was verified (or promoted) meanwhile; true when deleted.
    async fn delete_unverified_self_registered(&self, id: &str) -> StoreResult<bool>;
}

/// The accounts `OXIDP_UNVERIFIED_ACCOUNT_TTL` applies to. Only self-registration sets
/// `self_registered`: CLI, administrator, import and upstream accounts never match.
const UNVERIFIED_SELF_REGISTERED: &str =
    "self_registered AND email_verified_at IS NULL AND NOT email_verified AND role = 'user'";

impl HousekeepingStore for Db {
    async fn purge_expired(&self, now: i64) -> StoreResult<Purged> {
        let run = |sql: &'static str| async move {
            on_pool!(self, |pool| sqlx::query(sql).bind(now).execute(pool).await.map(|r| r.rows_affected()))
        };
        let codes = run("DELETE FROM auth_codes WHERE purge_after < $1").await?;
        // Refresh tokens go with their grant (ON DELETE CASCADE).
        let grants = run("DELETE FROM grants WHERE expires_at < $1").await?;
        let access_tokens = run("DELETE FROM access_tokens WHERE expires_at < $1").await?;
        let one_time_tokens = run("DELETE FROM one_time_tokens WHERE expires_at < $1").await?;
        // Device authorizations an hour after they expired (a poll meanwhile still hears `expired_token`).
        let device_codes = run("DELETE FROM device_codes WHERE expires_at < $1 - 3600").await?;
        let codes = codes + device_codes;
        Ok(Purged { codes, grants, access_tokens, one_time_tokens, ..Purged::default() })
    }

    async fn purge_audit(&self, before: i64) -> StoreResult<u64> {
        let sql = "DELETE FROM audit_log WHERE at < $1";
        Ok(on_pool!(self, |pool| sqlx::query(sql).bind(before).execute(pool).await.map(|r| r.rows_affected()))?)
    }

    async fn unverified_self_registered(&self, before: i64, limit: i64) -> StoreResult<Vec<String>> {
        let sql = format!(
            "SELECT id FROM users WHERE {UNVERIFIED_SELF_REGISTERED} AND created_at < $1 ORDER BY created_at LIMIT $2"
        );
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    async fn delete_unverified_self_registered(&self, id: &str) -> StoreResult<bool> {
        let sql = format!("DELETE FROM users WHERE id = $1 AND {UNVERIFIED_SELF_REGISTERED}");
        let deleted = on_pool!(self, |pool| sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(deleted == 1)
    }
}
