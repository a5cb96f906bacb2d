//! RFC 8628 device authorizations: one row per `/device_authorization`, shared by every instance.
//! Both codes are stored only as keyed hashes. Every change of state is one conditional
//! statement, so two instances never both approve, both poll inside one interval unnoticed, or
//! both redeem one device code.

use super::{Db, StoreResult, on_pool};
use sqlx::AssertSqlSafe;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeviceAuthorization {
    pub id: String,
    pub device_code_hash: String,
    pub user_code_hash: String,
    pub client_id: String,
    pub scope: String,
    pub resource: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub poll_interval: i64,
    pub last_polled_at: Option<i64>,
    /// `pending`, `approved`, `denied` or `consumed`.
    pub status: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub auth_time: Option<i64>,
    pub amr: Option<String>,
    pub grant_id: Option<String>,
}

/// The person who approved a device authorization, from their browser session.
#[derive(Debug, Clone)]
pub struct DeviceApproval<'a> {
    pub user_id: &'a str,
    pub session_id: &'a str,
    pub auth_time: i64,
    pub amr: &'a str,
    /// The scopes as approved (`admin` dropped for non-administrators).
    pub scope: &'a str,
}

const COLUMNS: &str = "id, device_code_hash, user_code_hash, client_id, scope, resource, created_at, expires_at, \
     poll_interval, last_polled_at, status, user_id, session_id, auth_time, amr, grant_id";

pub trait DeviceCodeStore {
    async fn insert_device_authorization(&self, row: &DeviceAuthorization) -> StoreResult<()>;
    async fn device_authorization_by_device_code(&self, hash: &str) -> StoreResult<Option<DeviceAuthorization>>;
    async fn device_authorization_by_user_code(&self, hash: &str) -> StoreResult<Option<DeviceAuthorization>>;
    async fn device_authorization_by_id(&self, id: &str) -> StoreResult<Option<DeviceAuthorization>>;
    /// Records a poll at `now` with the interval it leaves, only if nobody polled since
    /// `last_polled_at` was read (false: a concurrent poll came first).
    async fn record_device_poll(&self, id: &str, seen: Option<i64>, now: i64, interval: i64) -> StoreResult<bool>;
    /// Approves a pending, unexpired authorization; false when it was no longer pending.
    async fn approve_device(&self, id: &str, approval: &DeviceApproval<'_>, now: i64) -> StoreResult<bool>;
    /// Denies a pending, unexpired authorization; false when it was no longer pending.
    async fn deny_device(&self, id: &str, now: i64) -> StoreResult<bool>;
    /// Marks an approved authorization consumed by `grant_id`, in the statement that checks it
    /// is approved: the device code is redeemed once.
    async fn consume_device(&self, id: &str, grant_id: &str) -> StoreResult<bool>;
    /// Deletes authorizations expired before `before`.
    async fn purge_device_authorizations(&self, before: i64) -> StoreResult<u64>;
}

impl DeviceCodeStore for Db {
    async fn insert_device_authorization(&self, r: &DeviceAuthorization) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO device_codes ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        );
        on_pool!(self, |pool| sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(&r.id)
            .bind(&r.device_code_hash)
            .bind(&r.user_code_hash)
            .bind(&r.client_id)
            .bind(&r.scope)
            .bind(&r.resource)
            .bind(r.created_at)
            .bind(r.expires_at)
            .bind(r.poll_interval)
            .bind(r.last_polled_at)
            .bind(&r.status)
            .bind(&r.user_id)
            .bind(&r.session_id)
            .bind(r.auth_time)
            .bind(&r.amr)
            .bind(&r.grant_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn device_authorization_by_device_code(&self, hash: &str) -> StoreResult<Option<DeviceAuthorization>> {
        let sql = format!("SELECT {COLUMNS} FROM device_codes WHERE device_code_hash = $1");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, DeviceAuthorization>(AssertSqlSafe(sql.as_str()))
            .bind(hash)
            .fetch_optional(pool)
            .await)?)
    }

    async fn device_authorization_by_user_code(&self, hash: &str) -> StoreResult<Option<DeviceAuthorization>> {
        let sql = format!("SELECT {COLUMNS} FROM device_codes WHERE user_code_hash = $1");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, DeviceAuthorization>(AssertSqlSafe(sql.as_str()))
            .bind(hash)
            .fetch_optional(pool)
            .await)?)
    }

    async fn device_authorization_by_id(&self, id: &str) -> StoreResult<Option<DeviceAuthorization>> {
        let sql = format!("SELECT {COLUMNS} FROM device_codes WHERE id = $1");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, DeviceAuthorization>(AssertSqlSafe(sql.as_str()))
            .bind(id)
            .fetch_optional(pool)
            .await)?)
    }

    async fn record_device_poll(&self, id: &str, seen: Option<i64>, now: i64, interval: i64) -> StoreResult<bool> {
        let sql = "UPDATE device_codes SET last_polled_at = $1, poll_interval = $2 \
                   WHERE id = $3 AND COALESCE(last_polled_at, -1) = $4";
        let affected = on_pool!(self, |pool| sqlx::query(sql)
            .bind(now)
            .bind(interval)
            .bind(id)
            .bind(seen.unwrap_or(-1))
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(affected == 1)
    }

    async fn approve_device(&self, id: &str, a: &DeviceApproval<'_>, now: i64) -> StoreResult<bool> {
        let sql = "UPDATE device_codes SET status = 'approved', user_id = $1, session_id = $2, auth_time = $3, \
                   amr = $4, scope = $5 WHERE id = $6 AND status = 'pending' AND expires_at > $7";
        let affected = on_pool!(self, |pool| sqlx::query(sql)
            .bind(a.user_id)
            .bind(a.session_id)
            .bind(a.auth_time)
            .bind(a.amr)
            .bind(a.scope)
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(affected == 1)
    }

    async fn deny_device(&self, id: &str, now: i64) -> StoreResult<bool> {
        let sql = "UPDATE device_codes SET status = 'denied' WHERE id = $1 AND status = 'pending' AND expires_at > $2";
        let affected =
            on_pool!(self, |pool| sqlx::query(sql).bind(id).bind(now).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(affected == 1)
    }

    async fn consume_device(&self, id: &str, grant_id: &str) -> StoreResult<bool> {
        let sql = "UPDATE device_codes SET status = 'consumed', grant_id = $1 WHERE id = $2 AND status = 'approved'";
        let affected = on_pool!(self, |pool| sqlx::query(sql)
            .bind(grant_id)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(affected == 1)
    }

    async fn purge_device_authorizations(&self, before: i64) -> StoreResult<u64> {
        Ok(on_pool!(self, |pool| sqlx::query("DELETE FROM device_codes WHERE expires_at < $1")
            .bind(before)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?)
    }
}
