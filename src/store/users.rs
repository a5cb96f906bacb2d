use serde::Serialize;
use sqlx::AssertSqlSafe;

use super::{Db, StoreResult, on_pool};

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct User {
    pub id: String,
    pub sub: String,
    /// None for an account made from an upstream that did not assert a trusted, verified email
    /// (issue 12): such an address is never used for mail, reset or linking.
    pub email: Option<String>,
    pub email_verified: bool,
    /// When the mailbox was proven; upstream identities linked before it are removed by a
    /// password reset.
    pub email_verified_at: Option<i64>,
    #[serde(skip)]
    pub password_hash: Option<String>,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub picture: Option<String>,
    pub phone_number: Option<String>,
    pub phone_number_verified: bool,
    pub locale: Option<String>,
    pub zoneinfo: Option<String>,
    pub role: String,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Moves whenever the user's permission snapshot changes.
    pub permissions_version: i64,
}

impl User {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }

    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }
}

pub struct NewUser {
    pub email: Option<String>,
    pub email_verified: bool,
    pub password_hash: Option<String>,
    pub name: Option<String>,
    pub role: String,
}

pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

const USER_COLUMNS: &str = "id, sub, email, email_verified, email_verified_at, password_hash, name, given_name, family_name, picture, \
     phone_number, phone_number_verified, locale, zoneinfo, role, status, created_at, updated_at, permissions_version";

pub trait UserStore {
    async fn create_user(&self, user: NewUser, now: i64) -> StoreResult<User>;
    /// The same, marked as self-registered: deleted by housekeeping when its email is never
    /// verified (`OXIDP_UNVERIFIED_ACCOUNT_TTL`).
    async fn create_self_registered_user(&self, user: NewUser, now: i64) -> StoreResult<User>;
    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>>;
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    async fn user_by_sub(&self, sub: &str) -> StoreResult<Option<User>>;
    async fn count_users(&self) -> StoreResult<i64>;
    async fn update_profile(&self, id: &str, profile: &Profile, now: i64) -> StoreResult<()>;
    async fn set_password_hash(&self, id: &str, hash: &str, now: i64) -> StoreResult<()>;
    async fn set_email_verified(&self, id: &str, now: i64) -> StoreResult<()>;
    /// A page of users matching the filter, oldest first, after the `(created_at, id)` cursor.
    async fn list_users(&self, filter: &UserFilter) -> StoreResult<Vec<User>>;
    /// Sets role and/or status (the permissions version moves when something changed), unless
    /// that would leave no active administrator: the check and the write are one transaction,
    /// serialised with every other such change, so two administrators demoting each other at
    /// once cannot both succeed.
    async fn set_role_and_status(
        &self,
        id: &str,
        role: Option<&str>,
        status: Option<&str>,
        now: i64,
    ) -> StoreResult<RoleChange>;
    /// Removes the user row (cascading to sessions, consents, keys, permissions, memberships).
    async fn delete_user_row(&self, id: &str) -> StoreResult<bool>;
    async fn bump_permissions_version(&self, id: &str) -> StoreResult<()>;
}

/// What `set_role_and_status` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    Changed,
    /// The user already had that role and status, or does not exist.
    Unchanged,
    /// Refused: the user is the last active administrator and would stop being one.
    LastActiveAdmin,
}

#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    /// Substring of the email, case-insensitive.
    pub email: Option<String>,
    pub status: Option<String>,
    pub role: Option<String>,
    pub after: Option<(i64, String)>,
    pub limit: i64,
}

/// The OIDC standard claims a user edits about themselves.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub picture: Option<String>,
    pub phone_number: Option<String>,
    pub locale: Option<String>,
    pub zoneinfo: Option<String>,
}

impl UserStore for Db {
    async fn create_user(&self, user: NewUser, now: i64) -> StoreResult<User> {
        insert_user(self, user, now, false).await
    }

    async fn create_self_registered_user(&self, user: NewUser, now: i64) -> StoreResult<User> {
        insert_user(self, user, now, true).await
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, User>(AssertSqlSafe(sql.as_str()))
            .bind(id)
            .fetch_optional(pool)
            .await)?)
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email_normalized = $1");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, User>(AssertSqlSafe(sql.as_str()))
            .bind(normalize_email(email))
            .fetch_optional(pool)
            .await)?)
    }

    async fn user_by_sub(&self, sub: &str) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE sub = $1");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, User>(AssertSqlSafe(sql.as_str()))
            .bind(sub)
            .fetch_optional(pool)
            .await)?)
    }

    async fn update_profile(&self, id: &str, p: &Profile, now: i64) -> StoreResult<()> {
        // A changed phone number is no longer verified.
        let sql = "UPDATE users SET name = $1, given_name = $2, family_name = $3, picture = $4, \
                   phone_number_verified = CASE WHEN phone_number IS NOT DISTINCT FROM $5 THEN phone_number_verified ELSE FALSE END, \
                   phone_number = $5, locale = $6, zoneinfo = $7, updated_at = $8 WHERE id = $9";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(&p.name)
            .bind(&p.given_name)
            .bind(&p.family_name)
            .bind(&p.picture)
            .bind(&p.phone_number)
            .bind(&p.locale)
            .bind(&p.zoneinfo)
            .bind(now)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn set_password_hash(&self, id: &str, hash: &str, now: i64) -> StoreResult<()> {
        on_pool!(self, |pool| sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(hash)
            .bind(now)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn set_email_verified(&self, id: &str, now: i64) -> StoreResult<()> {
        let sql = "UPDATE users SET email_verified = TRUE, email_verified_at = COALESCE(email_verified_at, $1), \
                   updated_at = $1 WHERE id = $2 AND email IS NOT NULL";
        on_pool!(self, |pool| sqlx::query(sql).bind(now).bind(id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn list_users(&self, f: &UserFilter) -> StoreResult<Vec<User>> {
        let (after_at, after_id) = f.after.clone().unwrap_or((i64::MIN, String::new()));
        let pattern = f.email.as_ref().map(|e| format!("%{}%", normalize_email(e).replace(['%', '_'], "")));
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE ($1 IS NULL OR email_normalized LIKE $1) AND ($2 IS NULL OR status = $2) \
             AND ($3 IS NULL OR role = $3) AND (created_at > $4 OR (created_at = $4 AND id > $5)) ORDER BY created_at, id LIMIT $6"
        ));
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, User>(sql)
            .bind(&pattern)
            .bind(&f.status)
            .bind(&f.role)
            .bind(after_at)
            .bind(&after_id)
            .bind(f.limit)
            .fetch_all(pool)
            .await)?)
    }

    async fn set_role_and_status(
        &self,
        id: &str,
        role: Option<&str>,
        status: Option<&str>,
        now: i64,
    ) -> StoreResult<RoleChange> {
        // Locks every active administrator's row (PostgreSQL; SQLite's BEGIN IMMEDIATE locks the
        // database): a concurrent change waits here, then sees this one's result.
        let lock_admins = "UPDATE users SET updated_at = updated_at WHERE role = 'admin' AND status = 'active'";
        // Would the user stop being an active administrator, with nobody else left?
        let last_admin = "SELECT COUNT(*) FROM users WHERE id = $1 AND role = 'admin' AND status = 'active' \
                          AND NOT (COALESCE($2, role) = 'admin' AND COALESCE($3, status) = 'active') \
                          AND NOT EXISTS (SELECT 1 FROM users WHERE id <> $1 AND role = 'admin' AND status = 'active')";
        let update = "UPDATE users SET role = COALESCE($1, role), status = COALESCE($2, status), updated_at = $3, \
                      permissions_version = permissions_version + 1 \
                      WHERE id = $4 AND (role <> COALESCE($1, role) OR status <> COALESCE($2, status))";
        let begin = super::organizations::begin_write(self);
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_with(begin).await?;
            sqlx::query(lock_admins).execute(&mut *tx).await?;
            let refused: i64 =
                sqlx::query_scalar(last_admin).bind(id).bind(role).bind(status).fetch_one(&mut *tx).await?;
            if refused > 0 {
                return Ok(RoleChange::LastActiveAdmin);
            }
            let changed =
                sqlx::query(update).bind(role).bind(status).bind(now).bind(id).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            Ok::<_, super::StoreError>(if changed == 1 { RoleChange::Changed } else { RoleChange::Unchanged })
        }
        .await)
    }

    async fn delete_user_row(&self, id: &str) -> StoreResult<bool> {
        let deleted = on_pool!(self, |pool| sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(deleted == 1)
    }

    async fn bump_permissions_version(&self, id: &str) -> StoreResult<()> {
        on_pool!(self, |pool| sqlx::query(
            "UPDATE users SET permissions_version = permissions_version + 1 WHERE id = $1"
        )
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn count_users(&self) -> StoreResult<i64> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users").fetch_one(pool).await)?)
    }
}

async fn insert_user(db: &Db, user: NewUser, now: i64, self_registered: bool) -> StoreResult<User> {
    let id = uuid::Uuid::new_v4().to_string();
    let sub = uuid::Uuid::new_v4().to_string();
    let email = user.email.as_deref().map(str::trim);
    let verified = user.email_verified && email.is_some();
    let sql = "INSERT INTO users (id, sub, email, email_normalized, email_verified, email_verified_at, password_hash, name, role, status, created_at, updated_at, self_registered) \
               VALUES ($1, $2, $3, $4, $5, CASE WHEN $5 THEN $9 END, $6, $7, $8, 'active', $9, $9, $10)";
    on_pool!(db, |pool| sqlx::query(sql)
        .bind(&id)
        .bind(&sub)
        .bind(email)
        .bind(email.map(normalize_email))
        .bind(verified)
        .bind(&user.password_hash)
        .bind(&user.name)
        .bind(&user.role)
        .bind(now)
        .bind(self_registered)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    db.user_by_id(&id).await?.ok_or_else(|| super::StoreError::Corrupt("user vanished after insert".into()))
}
