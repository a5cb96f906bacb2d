use super::{Db, StoreError, StoreResult, decode_list, encode_list, on_pool};

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// The first characters of the key, for lookup; not secret enough to authenticate.
    pub prefix: String,
    pub key_hash: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: String,
    user_id: String,
    name: String,
    prefix: String,
    key_hash: String,
    scopes: String,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = StoreError;
    fn try_from(row: ApiKeyRow) -> StoreResult<ApiKey> {
        Ok(ApiKey {
            id: row.id,
            user_id: row.user_id,
            name: row.name,
            prefix: row.prefix,
            key_hash: row.key_hash,
            scopes: decode_list(&row.scopes)?,
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        })
    }
}

const COLUMNS: &str = "id, user_id, name, prefix, key_hash, scopes, created_at, expires_at, last_used_at, revoked_at";

pub trait ApiKeyStore {
    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    async fn api_keys_by_prefix(&self, prefix: &str) -> StoreResult<Vec<ApiKey>>;
    /// A page of the user's keys, newest first, after the `(created_at, id)` cursor.
    async fn api_keys_for_user(
        &self,
        user_id: &str,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> StoreResult<Vec<ApiKey>>;
    /// True when a live key of this user was revoked.
    async fn revoke_api_key(&self, user_id: &str, id: &str, now: i64) -> StoreResult<bool>;
    async fn touch_api_key(&self, id: &str, now: i64) -> StoreResult<()>;
    async fn revoke_user_api_keys(&self, user_id: &str, now: i64) -> StoreResult<u64>;
}

impl ApiKeyStore for Db {
    async fn insert_api_key(&self, k: &ApiKey) -> StoreResult<()> {
        let sql = "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, scopes, created_at, expires_at, last_used_at, revoked_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(&k.id)
            .bind(&k.user_id)
            .bind(&k.name)
            .bind(&k.prefix)
            .bind(&k.key_hash)
            .bind(encode_list(&k.scopes))
            .bind(k.created_at)
            .bind(k.expires_at)
            .bind(k.last_used_at)
            .bind(k.revoked_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn api_keys_by_prefix(&self, prefix: &str) -> StoreResult<Vec<ApiKey>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM api_keys WHERE prefix = $1"));
        let rows = on_pool!(self, |pool| sqlx::query_as::<_, ApiKeyRow>(sql).bind(prefix).fetch_all(pool).await)?;
        rows.into_iter().map(ApiKey::try_from).collect()
    }

    async fn api_keys_for_user(
        &self,
        user_id: &str,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> StoreResult<Vec<ApiKey>> {
        let (created, id) = after.unwrap_or((i64::MAX, String::new()));
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_keys WHERE user_id = $1 AND (created_at < $2 OR (created_at = $2 AND id < $3)) \
             ORDER BY created_at DESC, id DESC LIMIT $4"
        ));
        let rows = on_pool!(self, |pool| sqlx::query_as::<_, ApiKeyRow>(sql)
            .bind(user_id)
            .bind(created)
            .bind(if id.is_empty() { "\u{10FFFF}".to_string() } else { id })
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(ApiKey::try_from).collect()
    }

    async fn revoke_api_key(&self, user_id: &str, id: &str, now: i64) -> StoreResult<bool> {
        let sql = "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL";
        let changed = on_pool!(self, |pool| sqlx::query(sql)
            .bind(now)
            .bind(id)
            .bind(user_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(changed == 1)
    }

    async fn revoke_user_api_keys(&self, user_id: &str, now: i64) -> StoreResult<u64> {
        Ok(on_pool!(self, |pool| sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL"
        )
        .bind(now)
        .bind(user_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?)
    }

    async fn touch_api_key(&self, id: &str, now: i64) -> StoreResult<()> {
        on_pool!(self, |pool| sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }
}
