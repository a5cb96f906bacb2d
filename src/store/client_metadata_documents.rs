//! When each client made from a client ID metadata document was fetched, and until when it holds.

use super::{Db, StoreResult, on_pool};

pub trait ClientMetadataDocumentStore {
    async fn set_document_expiry(&self, client_id: &str, fetched_at: i64, expires_at: i64) -> StoreResult<()>;
    /// `Some(expires_at)` for a client made from a metadata document.
    async fn document_expiry(&self, client_id: &str) -> StoreResult<Option<i64>>;
}

impl ClientMetadataDocumentStore for Db {
    async fn set_document_expiry(&self, client_id: &str, fetched_at: i64, expires_at: i64) -> StoreResult<()> {
        let sql = "INSERT INTO client_metadata_documents (client_id, fetched_at, expires_at) VALUES ($1, $2, $3) \
                   ON CONFLICT (client_id) DO UPDATE SET fetched_at = excluded.fetched_at, expires_at = excluded.expires_at";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(client_id)
            .bind(fetched_at)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn document_expiry(&self, client_id: &str) -> StoreResult<Option<i64>> {
        let sql = "SELECT expires_at FROM client_metadata_documents WHERE client_id = $1";
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, i64>(sql).bind(client_id).fetch_optional(pool).await)?)
    }
}
