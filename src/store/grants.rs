use super::{Db, StoreResult, on_pool};
use sqlx::AssertSqlSafe;

/// What one code exchange issued: its access tokens and its refresh-token family.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub resource: Option<String>,
    pub auth_time: i64,
    pub amr: String,
    pub created_at: i64,
    /// The family's absolute end: no refresh token of it is valid after this.
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// The browser session the grant came from (none for first-party logins).
    pub session_id: Option<String>,
    /// RFC 9449 §5: the DPoP key a public client's refresh tokens are bound to.
    pub dpop_jkt: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshToken {
    pub token_hash: String,
    pub grant_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub rotated_at: Option<i64>,
}

/// The server-side state of an access token, for introspection and userinfo.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccessTokenState {
    pub revoked_at: Option<i64>,
    pub grant_revoked_at: Option<i64>,
    pub grant_id: Option<String>,
    pub user_status: Option<String>,
}

impl AccessTokenState {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
            || self.grant_revoked_at.is_some()
            || self.user_status.as_deref().is_some_and(|status| status != "active")
    }
}

const GRANT_COLUMNS: &str =
    "id, client_id, user_id, scope, resource, auth_time, amr, created_at, expires_at, revoked_at, session_id, dpop_jkt";

pub trait GrantStore {
    /// Fails with `Conflict` when the grant was revoked (a code replay) before it was written.
    async fn insert_grant(&self, grant: &Grant) -> StoreResult<()>;
    async fn grant_by_id(&self, id: &str) -> StoreResult<Option<Grant>>;
    /// Revokes the grant, its refresh-token family and the access tokens it issued.
    /// Leaves a revoked placeholder when the grant is not written yet, so a racing issuance fails.
    async fn revoke_grant(&self, id: &str, now: i64) -> StoreResult<()>;
    /// Revokes every live grant of a client (it was deleted): a client later made again under the
    /// same id (a metadata document's URL) never revives them.
    async fn revoke_client_grants(&self, client_id: &str, now: i64) -> StoreResult<u64>;
    /// Revokes every live grant of the user except `keep` (its refresh tokens and access tokens).
    async fn revoke_user_grants(&self, user_id: &str, keep: Option<&str>, now: i64) -> StoreResult<u64>;
    async fn insert_refresh_token(&self, token: &RefreshToken) -> StoreResult<()>;
    async fn refresh_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<(RefreshToken, Grant)>>;
    /// Returns true when this call rotated the token (false: someone else did first).
    async fn mark_refresh_rotated(&self, token_hash: &str, now: i64) -> StoreResult<bool>;
    async fn record_access_token(
        &self,
        jti: &str,
        client_id: &str,
        grant_id: Option<&str>,
        user_id: Option<&str>,
        expires_at: i64,
    ) -> StoreResult<()>;
    async fn access_token_state(&self, jti: &str) -> StoreResult<Option<AccessTokenState>>;
    async fn revoke_access_token(&self, jti: &str, client_id: &str, expires_at: i64, now: i64) -> StoreResult<()>;
    /// Revoked, unexpired tokens that belong to no grant (client_credentials): `(jti, expires_at)`.
    async fn revoked_client_tokens(&self, now: i64) -> StoreResult<Vec<(String, i64)>>;
}

impl GrantStore for Db {
    async fn insert_grant(&self, g: &Grant) -> StoreResult<()> {
        let sql =
            format!("INSERT INTO grants ({GRANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)");
        on_pool!(self, |pool| sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(&g.id)
            .bind(&g.client_id)
            .bind(&g.user_id)
            .bind(&g.scope)
            .bind(&g.resource)
            .bind(g.auth_time)
            .bind(&g.amr)
            .bind(g.created_at)
            .bind(g.expires_at)
            .bind(g.revoked_at)
            .bind(&g.session_id)
            .bind(&g.dpop_jkt)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn grant_by_id(&self, id: &str) -> StoreResult<Option<Grant>> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, Grant>(AssertSqlSafe(sql.as_str()))
            .bind(id)
            .fetch_optional(pool)
            .await)?)
    }

    async fn revoke_grant(&self, id: &str, now: i64) -> StoreResult<()> {
        // The placeholder expires with the longest-lived code, which is all it must outlive.
        let sql = "INSERT INTO grants (id, revoked_at, created_at, expires_at) VALUES ($1, $2, $2, $2 + 86400) \
                   ON CONFLICT (id) DO UPDATE SET revoked_at = COALESCE(grants.revoked_at, excluded.revoked_at)";
        on_pool!(self, |pool| sqlx::query(sql).bind(id).bind(now).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn revoke_client_grants(&self, client_id: &str, now: i64) -> StoreResult<u64> {
        let sql = "UPDATE grants SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL";
        Ok(on_pool!(self, |pool| sqlx::query(sql)
            .bind(now)
            .bind(client_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?)
    }

    async fn revoke_user_grants(&self, user_id: &str, keep: Option<&str>, now: i64) -> StoreResult<u64> {
        let sql = "UPDATE grants SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL AND id <> $3";
        Ok(on_pool!(self, |pool| sqlx::query(sql)
            .bind(now)
            .bind(user_id)
            .bind(keep.unwrap_or(""))
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?)
    }

    async fn insert_refresh_token(&self, t: &RefreshToken) -> StoreResult<()> {
        // A concurrent refresh inside the grace window derives the same successor: one row suffices.
        let sql = "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at, rotated_at) VALUES ($1, $2, $3, $4, $5) \
                   ON CONFLICT (token_hash) DO NOTHING";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(&t.token_hash)
            .bind(&t.grant_id)
            .bind(t.created_at)
            .bind(t.expires_at)
            .bind(t.rotated_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn refresh_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<(RefreshToken, Grant)>> {
        let token = on_pool!(self, |pool| {
            sqlx::query_as::<_, RefreshToken>(
            "SELECT token_hash, grant_id, created_at, expires_at, rotated_at FROM refresh_tokens WHERE token_hash = $1"
        )
        .bind(token_hash)
        .fetch_optional(pool)
        .await
        })?;
        let Some(token) = token else { return Ok(None) };
        Ok(self.grant_by_id(&token.grant_id).await?.map(|grant| (token, grant)))
    }

    async fn mark_refresh_rotated(&self, token_hash: &str, now: i64) -> StoreResult<bool> {
        let sql = "UPDATE refresh_tokens SET rotated_at = $1 WHERE token_hash = $2 AND rotated_at IS NULL";
        let result = on_pool!(self, |pool| sqlx::query(sql)
            .bind(now)
            .bind(token_hash)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(result == 1)
    }

    async fn record_access_token(
        &self,
        jti: &str,
        client_id: &str,
        grant_id: Option<&str>,
        user_id: Option<&str>,
        expires_at: i64,
    ) -> StoreResult<()> {
        let sql =
            "INSERT INTO access_tokens (jti, client_id, grant_id, user_id, expires_at) VALUES ($1, $2, $3, $4, $5)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(jti)
            .bind(client_id)
            .bind(grant_id)
            .bind(user_id)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn access_token_state(&self, jti: &str) -> StoreResult<Option<AccessTokenState>> {
        let sql = "SELECT a.revoked_at, g.revoked_at AS grant_revoked_at, a.grant_id, u.status AS user_status FROM access_tokens a \
                   LEFT JOIN grants g ON g.id = a.grant_id LEFT JOIN users u ON u.id = a.user_id WHERE a.jti = $1";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, AccessTokenState>(sql).bind(jti).fetch_optional(pool).await)?)
    }

    async fn revoke_access_token(&self, jti: &str, client_id: &str, expires_at: i64, now: i64) -> StoreResult<()> {
        let sql = "INSERT INTO access_tokens (jti, client_id, expires_at, revoked_at) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (jti) DO UPDATE SET revoked_at = COALESCE(access_tokens.revoked_at, excluded.revoked_at)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(jti)
            .bind(client_id)
            .bind(expires_at)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn revoked_client_tokens(&self, now: i64) -> StoreResult<Vec<(String, i64)>> {
        let sql = "SELECT jti, expires_at FROM access_tokens \
                   WHERE revoked_at IS NOT NULL AND grant_id IS NULL AND user_id IS NULL AND expires_at > $1";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, (String, i64)>(sql).bind(now).fetch_all(pool).await)?)
    }
}
