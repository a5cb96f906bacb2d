use super::{Db, StoreError, StoreResult, decode_list, encode_list, on_pool};

/// A service that calls the admin API with `X-Client-Key` (its id) and `X-API-Key` (its secret).
#[derive(Debug, Clone)]
pub struct ApiClient {
    pub id: String,
    pub name: String,
    pub secret_hash: String,
    pub status: String,
    pub expires_at: Option<i64>,
    pub allowed_origins: Vec<String>,
    pub allowed_ips: Vec<String>,
    pub allowed_paths: Vec<String>,
    pub rate_limit_per_minute: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    name: String,
    secret_hash: String,
    status: String,
    expires_at: Option<i64>,
    allowed_origins: String,
    allowed_ips: String,
    allowed_paths: String,
    rate_limit_per_minute: i64,
    created_at: i64,
    updated_at: i64,
    last_used_at: Option<i64>,
}

impl TryFrom<Row> for ApiClient {
    type Error = StoreError;
    fn try_from(r: Row) -> StoreResult<ApiClient> {
        Ok(ApiClient {
            id: r.id,
            name: r.name,
            secret_hash: r.secret_hash,
            status: r.status,
            expires_at: r.expires_at,
            allowed_origins: decode_list(&r.allowed_origins)?,
            allowed_ips: decode_list(&r.allowed_ips)?,
            allowed_paths: decode_list(&r.allowed_paths)?,
            rate_limit_per_minute: r.rate_limit_per_minute,
            created_at: r.created_at,
            updated_at: r.updated_at,
            last_used_at: r.last_used_at,
        })
    }
}

const COLUMNS: &str = "id, name, secret_hash, status, expires_at, allowed_origins, allowed_ips, allowed_paths, \
                       rate_limit_per_minute, created_at, updated_at, last_used_at";

pub trait ApiClientStore {
    async fn insert_api_client(&self, client: &ApiClient) -> StoreResult<()>;
    async fn api_client_by_id(&self, id: &str) -> StoreResult<Option<ApiClient>>;
    /// Replaces the stored hash (a slow legacy hash upgraded to the keyed form) and records the use.
    async fn record_api_client_use(&self, id: &str, new_hash: Option<&str>, now: i64) -> StoreResult<()>;
    /// True when the client exists.
    async fn set_api_client_status(&self, id: &str, status: &str, now: i64) -> StoreResult<bool>;
    /// Replaces name, status, expiry, allowlists and rate limit (not the secret); true when it exists.
    async fn update_api_client(&self, client: &ApiClient, now: i64) -> StoreResult<bool>;
    /// A page ordered by `(created_at, id)` after the cursor.
    async fn list_api_clients(&self, after: Option<(i64, String)>, limit: i64) -> StoreResult<Vec<ApiClient>>;
}

impl ApiClientStore for Db {
    async fn insert_api_client(&self, c: &ApiClient) -> StoreResult<()> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO api_clients ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ));
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(&c.id)
            .bind(&c.name)
            .bind(&c.secret_hash)
            .bind(&c.status)
            .bind(c.expires_at)
            .bind(encode_list(&c.allowed_origins))
            .bind(encode_list(&c.allowed_ips))
            .bind(encode_list(&c.allowed_paths))
            .bind(c.rate_limit_per_minute)
            .bind(c.created_at)
            .bind(c.updated_at)
            .bind(c.last_used_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn api_client_by_id(&self, id: &str) -> StoreResult<Option<ApiClient>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM api_clients WHERE id = $1"));
        let row = on_pool!(self, |pool| sqlx::query_as::<_, Row>(sql).bind(id).fetch_optional(pool).await)?;
        row.map(ApiClient::try_from).transpose()
    }

    async fn update_api_client(&self, c: &ApiClient, now: i64) -> StoreResult<bool> {
        let sql = "UPDATE api_clients SET name = $1, status = $2, expires_at = $3, allowed_origins = $4, allowed_ips = $5, \
                   allowed_paths = $6, rate_limit_per_minute = $7, updated_at = $8 WHERE id = $9";
        let changed = on_pool!(self, |pool| sqlx::query(sql)
            .bind(&c.name)
            .bind(&c.status)
            .bind(c.expires_at)
            .bind(encode_list(&c.allowed_origins))
            .bind(encode_list(&c.allowed_ips))
            .bind(encode_list(&c.allowed_paths))
            .bind(c.rate_limit_per_minute)
            .bind(now)
            .bind(&c.id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(changed == 1)
    }

    async fn list_api_clients(&self, after: Option<(i64, String)>, limit: i64) -> StoreResult<Vec<ApiClient>> {
        let (after_at, after_id) = after.unwrap_or((i64::MIN, String::new()));
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_clients WHERE created_at > $1 OR (created_at = $1 AND id > $2) ORDER BY created_at, id LIMIT $3"
        ));
        let rows = on_pool!(self, |pool| sqlx::query_as::<_, Row>(sql)
            .bind(after_at)
            .bind(&after_id)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(ApiClient::try_from).collect()
    }

    async fn set_api_client_status(&self, id: &str, status: &str, now: i64) -> StoreResult<bool> {
        let changed =
            on_pool!(self, |pool| sqlx::query("UPDATE api_clients SET status = $1, updated_at = $2 WHERE id = $3")
                .bind(status)
                .bind(now)
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()))?;
        Ok(changed == 1)
    }

    async fn record_api_client_use(&self, id: &str, new_hash: Option<&str>, now: i64) -> StoreResult<()> {
        let sql = "UPDATE api_clients SET last_used_at = $1, secret_hash = COALESCE($2, secret_hash) WHERE id = $3";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(now)
            .bind(new_hash)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }
}
