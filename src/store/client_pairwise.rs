//! The sector of each client with pairwise subject identifiers.

use super::{Db, StoreResult, on_pool};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientPairwise {
    pub client_id: String,
    pub sector: String,
    pub sector_identifier_uri: Option<String>,
}

pub trait ClientPairwiseStore {
    async fn set_client_pairwise(&self, pairwise: &ClientPairwise) -> StoreResult<()>;
    async fn client_pairwise(&self, client_id: &str) -> StoreResult<Option<ClientPairwise>>;
}

impl ClientPairwiseStore for Db {
    async fn set_client_pairwise(&self, p: &ClientPairwise) -> StoreResult<()> {
        let sql = "INSERT INTO client_pairwise (client_id, sector, sector_identifier_uri) VALUES ($1, $2, $3) \
                   ON CONFLICT (client_id) DO UPDATE SET sector = excluded.sector, \
                   sector_identifier_uri = excluded.sector_identifier_uri";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(&p.client_id)
            .bind(&p.sector)
            .bind(&p.sector_identifier_uri)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn client_pairwise(&self, client_id: &str) -> StoreResult<Option<ClientPairwise>> {
        let sql = "SELECT client_id, sector, sector_identifier_uri FROM client_pairwise WHERE client_id = $1";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, ClientPairwise>(sql).bind(client_id).fetch_optional(pool).await)?)
    }
}
