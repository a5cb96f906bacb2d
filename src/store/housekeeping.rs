use super::{Db, StoreResult, on_pool};

/// Rows removed by one purge, per table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub codes: u64,
    pub grants: u64,
    pub access_tokens: u64,
    pub sessions: u64,
    pub one_time_tokens: u64,
}

pub trait HousekeepingStore {
    /// Deletes what can no longer be used nor needs recognising. Codes stay until every token
    /// they could have issued has expired (replay detection needs them); refresh-token families
    /// until their absolute end. Sessions are purged by their own store (`SessionStore`).
    async fn purge_expired(&self, now: i64) -> StoreResult<Purged>;
}

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
        Ok(Purged { codes, grants, access_tokens, sessions: 0, one_time_tokens })
    }
}
