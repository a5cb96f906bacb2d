//! The durable delivery queue's rows: outgoing POSTs that any instance may claim when due.

use super::{Db, StoreResult, on_pool};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Delivery {
    pub id: String,
    /// What the payload is, e.g. `backchannel_logout`; it decides how the request is built.
    pub kind: String,
    pub target_url: String,
    /// JSON, interpreted by the kind's handler.
    pub payload: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    pub failed_at: Option<i64>,
}

const COLUMNS: &str =
    "id, kind, target_url, payload, attempts, next_attempt_at, last_error, created_at, delivered_at, failed_at";

pub trait DeliveryStore {
    async fn insert_delivery(&self, delivery: &Delivery) -> StoreResult<()>;
    /// Locks up to `limit` due deliveries until `lock_until` and returns them; a delivery is
    /// claimed by one instance at a time.
    async fn claim_due_deliveries(&self, now: i64, lock_until: i64, limit: i64) -> StoreResult<Vec<Delivery>>;
    async fn mark_delivered(&self, id: &str, attempts: i64, now: i64) -> StoreResult<()>;
    /// Records a failed attempt; `failed_at` set means no more attempts.
    async fn reschedule_delivery(
        &self,
        id: &str,
        attempts: i64,
        next_attempt_at: i64,
        error: &str,
        failed_at: Option<i64>,
    ) -> StoreResult<()>;
    /// Deliveries of one kind, newest first (for operators and tests).
    async fn deliveries_of_kind(&self, kind: &str, limit: i64) -> StoreResult<Vec<Delivery>>;
    /// Deletes finished deliveries (delivered or given up) that finished before `before`.
    async fn purge_finished_deliveries(&self, before: i64) -> StoreResult<u64>;
}

impl DeliveryStore for Db {
    async fn insert_delivery(&self, d: &Delivery) -> StoreResult<()> {
        let sql = format!("INSERT INTO deliveries ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
        on_pool!(self, |pool| sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(&d.id)
            .bind(&d.kind)
            .bind(&d.target_url)
            .bind(&d.payload)
            .bind(d.attempts)
            .bind(d.next_attempt_at)
            .bind(&d.last_error)
            .bind(d.created_at)
            .bind(d.delivered_at)
            .bind(d.failed_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn claim_due_deliveries(&self, now: i64, lock_until: i64, limit: i64) -> StoreResult<Vec<Delivery>> {
        // The outer condition is checked again on the row actually updated, so two instances
        // that pick the same row in the subquery cannot both claim it; PostgreSQL also skips
        // rows another transaction is claiming.
        let due = "delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1 \
                   AND (locked_until IS NULL OR locked_until < $1)";
        let skip_locked = match self {
            Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            Db::Sqlite(_) => "",
        };
        let sql = format!(
            "UPDATE deliveries SET locked_until = $2 WHERE {due} AND id IN \
             (SELECT id FROM deliveries WHERE {due} ORDER BY next_attempt_at LIMIT $3{skip_locked}) RETURNING {COLUMNS}"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, Delivery>(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(now)
            .bind(lock_until)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    async fn mark_delivered(&self, id: &str, attempts: i64, now: i64) -> StoreResult<()> {
        let sql = "UPDATE deliveries SET delivered_at = $1, attempts = $2, locked_until = NULL, last_error = NULL WHERE id = $3";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(now)
            .bind(attempts)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn reschedule_delivery(
        &self,
        id: &str,
        attempts: i64,
        next_attempt_at: i64,
        error: &str,
        failed_at: Option<i64>,
    ) -> StoreResult<()> {
        let sql = "UPDATE deliveries SET attempts = $1, next_attempt_at = $2, last_error = $3, failed_at = $4, \
                   locked_until = NULL WHERE id = $5";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(attempts)
            .bind(next_attempt_at)
            .bind(error)
            .bind(failed_at)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn deliveries_of_kind(&self, kind: &str, limit: i64) -> StoreResult<Vec<Delivery>> {
        let sql = format!("SELECT {COLUMNS} FROM deliveries WHERE kind = $1 ORDER BY created_at DESC, id LIMIT $2");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, Delivery>(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(kind)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    async fn purge_finished_deliveries(&self, before: i64) -> StoreResult<u64> {
        let sql = "DELETE FROM deliveries WHERE delivered_at < $1 OR failed_at < $1";
        Ok(on_pool!(self, |pool| sqlx::query(sql).bind(before).execute(pool).await.map(|r| r.rows_affected()))?)
    }
}
