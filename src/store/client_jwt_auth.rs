//! How a client that authenticates with a signed JWT is checked: its method, its public keys
//! or its encrypted secret, and the one algorithm it registered (if any).

use super::{Db, StoreResult, on_pool};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientJwtAuth {
    pub client_id: String,
    /// `private_key_jwt` or `client_secret_jwt`.
    pub method: String,
    /// A JSON JWK set (`private_key_jwt`).
    pub jwks: Option<String>,
    /// Where the client publishes its JWK set (`private_key_jwt`).
    pub jwks_uri: Option<String>,
    /// The client secret, encrypted with the server secret (`client_secret_jwt`).
    pub secret_encrypted: Option<String>,
    /// `token_endpoint_auth_signing_alg`, when registered: no other algorithm is accepted.
    pub signing_alg: Option<String>,
    /// `request_object_signing_alg`, when registered: request objects must use it.
    pub request_object_alg: Option<String>,
}

pub trait ClientJwtAuthStore {
    async fn set_client_jwt_auth(&self, auth: &ClientJwtAuth) -> StoreResult<()>;
    async fn client_jwt_auth(&self, client_id: &str) -> StoreResult<Option<ClientJwtAuth>>;
}

impl ClientJwtAuthStore for Db {
    async fn set_client_jwt_auth(&self, a: &ClientJwtAuth) -> StoreResult<()> {
        let sql = "INSERT INTO client_jwt_auth (client_id, method, jwks, jwks_uri, secret_encrypted, signing_alg, request_object_alg) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (client_id) DO UPDATE SET method = excluded.method, \
                   jwks = excluded.jwks, jwks_uri = excluded.jwks_uri, secret_encrypted = excluded.secret_encrypted, \
                   signing_alg = excluded.signing_alg, request_object_alg = excluded.request_object_alg";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(&a.client_id)
            .bind(&a.method)
            .bind(&a.jwks)
            .bind(&a.jwks_uri)
            .bind(&a.secret_encrypted)
            .bind(&a.signing_alg)
            .bind(&a.request_object_alg)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn client_jwt_auth(&self, client_id: &str) -> StoreResult<Option<ClientJwtAuth>> {
        let sql = "SELECT client_id, method, jwks, jwks_uri, secret_encrypted, signing_alg, request_object_alg \
                   FROM client_jwt_auth WHERE client_id = $1";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, ClientJwtAuth>(sql).bind(client_id).fetch_optional(pool).await)?)
    }
}
