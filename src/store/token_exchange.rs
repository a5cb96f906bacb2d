//! Each client's token-exchange policy (RFC 8693): which targets it may ask for.

use super::{Db, StoreResult, decode_list, encode_list, on_pool};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExchangePolicy {
    /// Registered client ids it may name as `audience`.
    pub audiences: Vec<String>,
    /// RFC 8707 resource indicators it may name as `resource`.
    pub resources: Vec<String>,
    /// It may present actor tokens (delegation) even when the subject token has no `may_act`.
    pub delegation: bool,
}

#[derive(sqlx::FromRow)]
struct PolicyRow {
    audiences: String,
    resources: String,
    delegation: bool,
}

pub trait TokenExchangeStore {
    async fn set_exchange_policy(&self, client_id: &str, policy: &ExchangePolicy) -> StoreResult<()>;
    async fn exchange_policy(&self, client_id: &str) -> StoreResult<Option<ExchangePolicy>>;
}

impl TokenExchangeStore for Db {
    async fn set_exchange_policy(&self, client_id: &str, p: &ExchangePolicy) -> StoreResult<()> {
        let sql = "INSERT INTO client_token_exchange (client_id, audiences, resources, delegation) \
                   VALUES ($1, $2, $3, $4) ON CONFLICT (client_id) DO UPDATE SET audiences = excluded.audiences, \
                   resources = excluded.resources, delegation = excluded.delegation";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(client_id)
            .bind(encode_list(&p.audiences))
            .bind(encode_list(&p.resources))
            .bind(p.delegation)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn exchange_policy(&self, client_id: &str) -> StoreResult<Option<ExchangePolicy>> {
        let sql = "SELECT audiences, resources, delegation FROM client_token_exchange WHERE client_id = $1";
        let row =
            on_pool!(self, |pool| sqlx::query_as::<_, PolicyRow>(sql).bind(client_id).fetch_optional(pool).await)?;
        row.map(|row| {
            Ok(ExchangePolicy {
                audiences: decode_list(&row.audiences)?,
                resources: decode_list(&row.resources)?,
                delegation: row.delegation,
            })
        })
        .transpose()
    }
}
