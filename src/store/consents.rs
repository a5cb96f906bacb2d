use super::{Db, StoreResult, on_pool};

pub trait ConsentStore {
    /// The scopes the user has already granted to the client (space separated), if any.
    async fn consented_scope(&self, user_id: &str, client_id: &str) -> StoreResult<Option<String>>;
    async fn save_consent(&self, user_id: &str, client_id: &str, scope: &str, now: i64) -> StoreResult<()>;
    /// Forgets every consent of the user (a password reset: someone else may have given them).
    async fn delete_user_consents(&self, user_id: &str) -> StoreResult<u64>;
}

impl ConsentStore for Db {
    async fn consented_scope(&self, user_id: &str, client_id: &str) -> StoreResult<Option<String>> {
        let sql = "SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2";
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, String>(sql)
            .bind(user_id)
            .bind(client_id)
            .fetch_optional(pool)
            .await)?)
    }

    async fn save_consent(&self, user_id: &str, client_id: &str, scope: &str, now: i64) -> StoreResult<()> {
        let sql = "INSERT INTO consents (user_id, client_id, scope, created_at) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, created_at = excluded.created_at";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(user_id)
            .bind(client_id)
            .bind(scope)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn delete_user_consents(&self, user_id: &str) -> StoreResult<u64> {
        Ok(on_pool!(self, |pool| sqlx::query("DELETE FROM consents WHERE user_id = $1")
            .bind(user_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?)
    }
}
