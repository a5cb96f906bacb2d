use serde::Serialize;

use super::{Db, StoreResult, on_pool};

/// One row of the audit log: who did what to what, from where.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct AuditEntry {
    pub id: String,
    pub at: i64,
    /// `user`, `client`, `api_client`, `system` or `anonymous`.
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// A JSON object.
    pub details: String,
}

#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub target_id: Option<String>,
    pub from: Option<i64>,
    pub until: Option<i64>,
    /// Entries strictly older than this `(at, id)` (the cursor).
    pub before: Option<(i64, String)>,
    pub limit: i64,
}

pub trait AuditStore {
    async fn insert_audit(&self, entry: &AuditEntry) -> StoreResult<()>;
    /// Newest first.
    async fn query_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>>;
    /// Replaces a user's id with a pseudonym in every row and drops the rows' IP and user agent.
    async fn pseudonymise_audit(&self, user_id: &str, pseudonym: &str) -> StoreResult<()>;
}

impl AuditStore for Db {
    async fn insert_audit(&self, e: &AuditEntry) -> StoreResult<()> {
        let sql = "INSERT INTO audit_log (id, at, actor_type, actor_id, action, target_type, target_id, ip, user_agent, request_id, details) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(&e.id)
            .bind(e.at)
            .bind(&e.actor_type)
            .bind(&e.actor_id)
            .bind(&e.action)
            .bind(&e.target_type)
            .bind(&e.target_id)
            .bind(&e.ip)
            .bind(&e.user_agent)
            .bind(&e.request_id)
            .bind(&e.details)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn pseudonymise_audit(&self, user_id: &str, pseudonym: &str) -> StoreResult<()> {
        let sql = "UPDATE audit_log SET actor_id = CASE WHEN actor_id = $1 THEN $2 ELSE actor_id END, \
                   target_id = CASE WHEN target_id = $1 THEN $2 ELSE target_id END, ip = NULL, user_agent = NULL \
                   WHERE actor_id = $1 OR target_id = $1";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(user_id)
            .bind(pseudonym)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn query_audit(&self, f: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        // Absent filters compare a column with itself (or an open bound), keeping one SQL text.
        let (before_at, before_id) = f.before.clone().unwrap_or((i64::MAX, "\u{10FFFF}".into()));
        let sql = "SELECT id, at, actor_type, actor_id, action, target_type, target_id, ip, user_agent, request_id, details \
                   FROM audit_log WHERE ($1 IS NULL OR actor_id = $1) AND ($2 IS NULL OR action = $2) \
                   AND ($3 IS NULL OR target_id = $3) AND at >= $4 AND at <= $5 AND (at < $6 OR (at = $6 AND id < $7)) \
                   ORDER BY at DESC, id DESC LIMIT $8";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, AuditEntry>(sql)
            .bind(&f.actor_id)
            .bind(&f.action)
            .bind(&f.target_id)
            .bind(f.from.unwrap_or(i64::MIN))
            .bind(f.until.unwrap_or(i64::MAX))
            .bind(before_at)
            .bind(before_id)
            .bind(f.limit)
            .fetch_all(pool)
            .await)?)
    }
}
