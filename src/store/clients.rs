use super::{Db, StoreError, StoreResult, decode_list, encode_list, on_pool};
use sqlx::AssertSqlSafe;

/// A registered OAuth client.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    pub resources: Vec<String>,
    pub is_public: bool,
    pub first_party: bool,
    pub resource_server: bool,
    pub pkce_exempt: bool,
    /// An admin allowed this client to request the `account`/`admin` scopes of oxidp's own API.
    pub api_access: bool,
    /// The JWS algorithm of this client's ID tokens; `None` is RS256.
    pub id_token_alg: Option<String>,
    /// RFC 9126 §6: authorization requests must be pushed to `/par` first.
    pub require_par: bool,
    /// RFC 9449 §5.2: every token request must carry a DPoP proof.
    pub dpop_bound_access_tokens: bool,
    pub created_at: i64,
    /// How a client that registered itself came (`dynamic_registration`,
    /// `client_id_metadata_document`); `None` for an administrator's client.
    pub registered_via: Option<String>,
    /// When an administrator disabled the client: it is then unknown to every protocol path.
    pub disabled_at: Option<i64>,
}

impl Client {
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }
}

const CLIENT_COLUMNS: &str = "id, name, secret_hash, redirect_uris, post_logout_redirect_uris, grant_types, scopes, \
     audiences, resources, is_public, first_party, resource_server, pkce_exempt, api_access, \
     id_token_signed_response_alg, require_par, created_at, registered_via, disabled_at, dpop_bound_access_tokens";

#[derive(sqlx::FromRow)]
struct ClientRow {
    id: String,
    name: String,
    secret_hash: Option<String>,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    grant_types: String,
    scopes: String,
    audiences: String,
    resources: String,
    is_public: bool,
    first_party: bool,
    resource_server: bool,
    pkce_exempt: bool,
    api_access: bool,
    id_token_signed_response_alg: Option<String>,
    require_par: bool,
    created_at: i64,
    registered_via: Option<String>,
    disabled_at: Option<i64>,
    dpop_bound_access_tokens: bool,
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;
    fn try_from(row: ClientRow) -> StoreResult<Client> {
        Ok(Client {
            id: row.id,
            name: row.name,
            secret_hash: row.secret_hash,
            redirect_uris: decode_list(&row.redirect_uris)?,
            post_logout_redirect_uris: decode_list(&row.post_logout_redirect_uris)?,
            grant_types: decode_list(&row.grant_types)?,
            scopes: decode_list(&row.scopes)?,
            audiences: decode_list(&row.audiences)?,
            resources: decode_list(&row.resources)?,
            is_public: row.is_public,
            first_party: row.first_party,
            resource_server: row.resource_server,
            pkce_exempt: row.pkce_exempt,
            api_access: row.api_access,
            id_token_alg: row.id_token_signed_response_alg,
            require_par: row.require_par,
            dpop_bound_access_tokens: row.dpop_bound_access_tokens,
            created_at: row.created_at,
            registered_via: row.registered_via,
            disabled_at: row.disabled_at,
        })
    }
}

pub struct NewClient {
    pub id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    pub resources: Vec<String>,
    pub is_public: bool,
    pub first_party: bool,
    pub resource_server: bool,
    pub pkce_exempt: bool,
    pub api_access: bool,
    pub id_token_alg: Option<String>,
    pub require_par: bool,
    pub dpop_bound_access_tokens: bool,
    /// Set once, at creation (see [`Client::registered_via`]).
    pub registered_via: Option<String>,
}

pub trait ClientStore {
    async fn create_client(&self, client: NewClient, now: i64) -> StoreResult<()>;
    async fn client_by_id(&self, id: &str) -> StoreResult<Option<Client>>;
    async fn count_clients(&self) -> StoreResult<i64>;
    /// A page of clients ordered by `(created_at, id)` after the cursor.
    async fn list_clients(&self, after: Option<(i64, String)>, limit: i64) -> StoreResult<Vec<Client>>;
    /// Replaces everything but the id and the secret; true when the client exists.
    async fn update_client(&self, client: &NewClient, now: i64) -> StoreResult<bool>;
    async fn set_client_secret_hash(&self, id: &str, hash: &str, now: i64) -> StoreResult<bool>;
    async fn delete_client(&self, id: &str) -> StoreResult<bool>;
    /// Disables (`Some(when)`) or enables (`None`) a client; true when the client exists.
    async fn set_client_disabled(&self, id: &str, disabled_at: Option<i64>, now: i64) -> StoreResult<bool>;
    /// Takes the resource-server right from every public client; returns their ids.
    async fn demote_public_resource_servers(&self, now: i64) -> StoreResult<Vec<String>>;
}

impl ClientStore for Db {
    async fn create_client(&self, c: NewClient, now: i64) -> StoreResult<()> {
        let sql = "INSERT INTO clients (id, name, secret_hash, redirect_uris, post_logout_redirect_uris, grant_types, scopes, \
                   audiences, resources, is_public, first_party, resource_server, pkce_exempt, api_access, id_token_signed_response_alg, \
                   created_at, updated_at, require_par, registered_via, dpop_bound_access_tokens) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16, $17, $18, $19)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(&c.id)
            .bind(&c.name)
            .bind(&c.secret_hash)
            .bind(encode_list(&c.redirect_uris))
            .bind(encode_list(&c.post_logout_redirect_uris))
            .bind(encode_list(&c.grant_types))
            .bind(encode_list(&c.scopes))
            .bind(encode_list(&c.audiences))
            .bind(encode_list(&c.resources))
            .bind(c.is_public)
            .bind(c.first_party)
            .bind(c.resource_server)
            .bind(c.pkce_exempt)
            .bind(c.api_access)
            .bind(&c.id_token_alg)
            .bind(now)
            .bind(c.require_par)
            .bind(&c.registered_via)
            .bind(c.dpop_bound_access_tokens)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn client_by_id(&self, id: &str) -> StoreResult<Option<Client>> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE id = $1");
        let row = on_pool!(self, |pool| sqlx::query_as::<_, ClientRow>(AssertSqlSafe(sql.as_str()))
            .bind(id)
            .fetch_optional(pool)
            .await)?;
        row.map(Client::try_from).transpose()
    }

    async fn list_clients(&self, after: Option<(i64, String)>, limit: i64) -> StoreResult<Vec<Client>> {
        let (after_at, after_id) = after.unwrap_or((i64::MIN, String::new()));
        let sql = format!(
            "SELECT {CLIENT_COLUMNS} FROM clients \
             WHERE created_at > $1 OR (created_at = $1 AND id > $2) ORDER BY created_at, id LIMIT $3"
        );
        let rows = on_pool!(self, |pool| sqlx::query_as::<_, ClientRow>(AssertSqlSafe(sql.as_str()))
            .bind(after_at)
            .bind(&after_id)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(Client::try_from).collect()
    }

    async fn update_client(&self, c: &NewClient, now: i64) -> StoreResult<bool> {
        let sql = "UPDATE clients SET name = $1, redirect_uris = $2, post_logout_redirect_uris = $3, grant_types = $4, \
                   scopes = $5, audiences = $6, resources = $7, first_party = $8, resource_server = $9, pkce_exempt = $10, \
                   api_access = $11, id_token_signed_response_alg = $12, updated_at = $13, require_par = $15, dpop_bound_access_tokens = $16 WHERE id = $14";
        let changed = on_pool!(self, |pool| sqlx::query(sql)
            .bind(&c.name)
            .bind(encode_list(&c.redirect_uris))
            .bind(encode_list(&c.post_logout_redirect_uris))
            .bind(encode_list(&c.grant_types))
            .bind(encode_list(&c.scopes))
            .bind(encode_list(&c.audiences))
            .bind(encode_list(&c.resources))
            .bind(c.first_party)
            .bind(c.resource_server)
            .bind(c.pkce_exempt)
            .bind(c.api_access)
            .bind(&c.id_token_alg)
            .bind(now)
            .bind(&c.id)
            .bind(c.require_par)
            .bind(c.dpop_bound_access_tokens)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(changed == 1)
    }

    async fn set_client_secret_hash(&self, id: &str, hash: &str, now: i64) -> StoreResult<bool> {
        let changed =
            on_pool!(self, |pool| sqlx::query("UPDATE clients SET secret_hash = $1, updated_at = $2 WHERE id = $3")
                .bind(hash)
                .bind(now)
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()))?;
        Ok(changed == 1)
    }

    async fn demote_public_resource_servers(&self, now: i64) -> StoreResult<Vec<String>> {
        let sql = "UPDATE clients SET resource_server = $1, updated_at = $2 \
                   WHERE is_public = $3 AND resource_server = $3 RETURNING id";
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, String>(sql)
            .bind(false)
            .bind(now)
            .bind(true)
            .fetch_all(pool)
            .await)?)
    }
    async fn set_client_disabled(&self, id: &str, disabled_at: Option<i64>, now: i64) -> StoreResult<bool> {
        let sql = "UPDATE clients SET disabled_at = $1, updated_at = $2 WHERE id = $3";
        let changed = on_pool!(self, |pool| sqlx::query(sql)
            .bind(disabled_at)
            .bind(now)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(changed == 1)
    }

    async fn delete_client(&self, id: &str) -> StoreResult<bool> {
        let deleted = on_pool!(self, |pool| sqlx::query("DELETE FROM clients WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(deleted == 1)
    }

    async fn count_clients(&self) -> StoreResult<i64> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM clients").fetch_one(pool).await)?)
    }
}
