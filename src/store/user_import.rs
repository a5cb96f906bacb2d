//! What `oxidp user import` and `export` read and write beyond the usual user operations.

use super::{Db, StoreResult, on_pool};

/// The person an imported line is about, when they exist already.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImportMatch {
    pub id: String,
    pub email_normalized: Option<String>,
    pub password_hash: Option<String>,
    pub imported_hash_digest: Option<String>,
}

/// One person as exported.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExportRow {
    pub id: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub role: String,
    pub status: String,
    pub external_id: Option<String>,
    pub password_hash: Option<String>,
}

pub trait UserImportStore {
    async fn import_match(&self, external_id: Option<&str>, email_normalized: &str)
    -> StoreResult<Option<ImportMatch>>;
    /// Sets what the import carries; `None` leaves a field as it is.
    async fn import_update(&self, id: &str, fields: &ImportFields<'_>, now: i64) -> StoreResult<()>;
    async fn insert_identity_if_absent(
        &self,
        user_id: &str,
        provider: &str,
        subject: &str,
        now: i64,
    ) -> StoreResult<()>;
    async fn export_page(&self, after: &str, limit: i64) -> StoreResult<Vec<ExportRow>>;
    async fn identities_of(&self, user_id: &str) -> StoreResult<Vec<(String, String)>>;
}

#[derive(Debug, Default)]
pub struct ImportFields<'a> {
    pub name: Option<&'a str>,
    pub email_verified: Option<bool>,
    pub role: Option<&'a str>,
    pub external_id: Option<&'a str>,
    /// The new password hash and the digest to remember it by.
    pub password: Option<(&'a str, &'a str)>,
}

impl UserImportStore for Db {
    async fn import_match(
        &self,
        external_id: Option<&str>,
        email_normalized: &str,
    ) -> StoreResult<Option<ImportMatch>> {
        let sql = "SELECT id, email_normalized, password_hash, imported_hash_digest FROM users \
                   WHERE (external_id = $1 OR email_normalized = $2) AND deleted_at IS NULL \
                   ORDER BY CASE WHEN external_id = $1 THEN 0 ELSE 1 END LIMIT 1";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, ImportMatch>(sql)
            .bind(external_id.unwrap_or(""))
            .bind(email_normalized)
            .fetch_optional(pool)
            .await)?)
    }

    async fn import_update(&self, id: &str, f: &ImportFields<'_>, now: i64) -> StoreResult<()> {
        let sql = "UPDATE users SET name = COALESCE($1, name), email_verified = COALESCE($2, email_verified), \
                   role = COALESCE($3, role), external_id = COALESCE($4, external_id), \
                   password_hash = COALESCE($5, password_hash), imported_hash_digest = COALESCE($6, imported_hash_digest), \
                   updated_at = $7 WHERE id = $8";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(f.name)
            .bind(f.email_verified)
            .bind(f.role)
            .bind(f.external_id)
            .bind(f.password.map(|(hash, _)| hash))
            .bind(f.password.map(|(_, digest)| digest))
            .bind(now)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn insert_identity_if_absent(
        &self,
        user_id: &str,
        provider: &str,
        subject: &str,
        now: i64,
    ) -> StoreResult<()> {
        let sql = "INSERT INTO identities (id, provider, subject, user_id, created_at) VALUES ($1, $2, $3, $4, $5) \
                   ON CONFLICT (provider, subject) DO NOTHING";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(provider)
            .bind(subject)
            .bind(user_id)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn export_page(&self, after: &str, limit: i64) -> StoreResult<Vec<ExportRow>> {
        let sql = "SELECT id, email, email_verified, name, role, status, external_id, password_hash FROM users \
                   WHERE id > $1 AND deleted_at IS NULL ORDER BY id LIMIT $2";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, ExportRow>(sql).bind(after).bind(limit).fetch_all(pool).await)?)
    }

    async fn identities_of(&self, user_id: &str) -> StoreResult<Vec<(String, String)>> {
        let sql = "SELECT provider, subject FROM identities WHERE user_id = $1 ORDER BY provider, subject";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, (String, String)>(sql).bind(user_id).fetch_all(pool).await)?)
    }
}
