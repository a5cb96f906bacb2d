//! Upstream identities, keyed by (provider, upstream subject), each belonging to one user.
//! The unique constraints (`identities (provider, subject)`, `users.email_normalized`) decide
//! races: a writer that loses gets [`StoreError::Conflict`] or a [`LinkOutcome`] saying why, and
//! re-reads the winner.

use serde::Serialize;

use super::organizations::begin_write;
use super::users::{NewUser, normalize_email};
use super::{Db, StoreError, StoreResult, on_pool};

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Identity {
    pub id: String,
    pub provider: String,
    /// The upstream's subject for the user.
    pub subject: String,
    pub user_id: String,
    pub email: Option<String>,
    pub created_at: i64,
}

/// What linking an upstream identity to an existing user did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkOutcome {
    Linked,
    /// Another user (or this one, concurrently) already holds this (provider, subject).
    SubjectTaken,
    /// The user is an administrator (or no longer exists): never linked automatically.
    UserIsAdmin,
    /// The user already has an identity at this provider, with another subject.
    ProviderAlreadyLinked,
}

pub trait IdentityStore {
    async fn identity(&self, provider: &str, subject: &str) -> StoreResult<Option<Identity>>;
    /// Creates the user and its identity together; returns the new user's id. Fails with
    /// [`StoreError::Conflict`] (and creates nothing) when the email or the identity is taken.
    async fn create_user_with_identity(
        &self,
        user: NewUser,
        provider: &str,
        subject: &str,
        now: i64,
    ) -> StoreResult<String>;
    /// Links (provider, subject) to an existing user that is not an administrator and has no
    /// identity at that provider yet. The user's row is locked first, so two links to the same
    /// user, or a promotion to admin, cannot interleave with this one.
    async fn link_identity_unless_admin(
        &self,
        user_id: &str,
        provider: &str,
        subject: &str,
        email: &str,
        now: i64,
    ) -> StoreResult<LinkOutcome>;
    /// Removes the user's identities linked before `before` (all of them with `None`); returns
    /// the providers of the removed ones.
    async fn remove_identities_linked_before(&self, user_id: &str, before: Option<i64>) -> StoreResult<Vec<String>>;
}

const INSERT_IDENTITY: &str =
    "INSERT INTO identities (id, provider, subject, user_id, email, created_at) VALUES ($1, $2, $3, $4, $5, $6)";

impl IdentityStore for Db {
    async fn identity(&self, provider: &str, subject: &str) -> StoreResult<Option<Identity>> {
        let sql = "SELECT id, provider, subject, user_id, email, created_at FROM identities \
                   WHERE provider = $1 AND subject = $2";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, Identity>(sql)
            .bind(provider)
            .bind(subject)
            .fetch_optional(pool)
            .await)?)
    }

    async fn create_user_with_identity(
        &self,
        user: NewUser,
        provider: &str,
        subject: &str,
        now: i64,
    ) -> StoreResult<String> {
        let begin = begin_write(self);
        let user_id = uuid::Uuid::new_v4().to_string();
        let sub = uuid::Uuid::new_v4().to_string();
        let identity_id = uuid::Uuid::new_v4().to_string();
        let email = user.email.as_deref().map(str::trim);
        let verified = user.email_verified && email.is_some();
        let insert_user = "INSERT INTO users (id, sub, email, email_normalized, email_verified, email_verified_at, password_hash, name, role, status, created_at, updated_at) \
                           VALUES ($1, $2, $3, $4, $5, CASE WHEN $5 THEN $9 END, $6, $7, $8, 'active', $9, $9)";
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_with(begin).await?;
            sqlx::query(insert_user)
                .bind(&user_id)
                .bind(&sub)
                .bind(email)
                .bind(email.map(normalize_email))
                .bind(verified)
                .bind(&user.password_hash)
                .bind(&user.name)
                .bind(&user.role)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(INSERT_IDENTITY)
                .bind(&identity_id)
                .bind(provider)
                .bind(subject)
                .bind(&user_id)
                .bind(email)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        }
        .await)?;
        Ok(user_id)
    }

    async fn link_identity_unless_admin(
        &self,
        user_id: &str,
        provider: &str,
        subject: &str,
        email: &str,
        now: i64,
    ) -> StoreResult<LinkOutcome> {
        let begin = begin_write(self);
        let lock_user = "UPDATE users SET updated_at = updated_at WHERE id = $1 AND role <> 'admin'";
        let existing = "SELECT subject FROM identities WHERE provider = $1 AND (subject = $2 OR user_id = $3)";
        let insert = "INSERT INTO identities (id, provider, subject, user_id, email, created_at) \
                      VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (provider, subject) DO NOTHING";
        let identity_id = uuid::Uuid::new_v4().to_string();
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_with(begin).await?;
            if sqlx::query(lock_user).bind(user_id).execute(&mut *tx).await?.rows_affected() == 0 {
                return Ok(LinkOutcome::UserIsAdmin);
            }
            let subjects: Vec<String> =
                sqlx::query_scalar(existing).bind(provider).bind(subject).bind(user_id).fetch_all(&mut *tx).await?;
            if subjects.iter().any(|s| s == subject) {
                return Ok(LinkOutcome::SubjectTaken);
            }
            if !subjects.is_empty() {
                return Ok(LinkOutcome::ProviderAlreadyLinked);
            }
            let inserted = sqlx::query(insert)
                .bind(&identity_id)
                .bind(provider)
                .bind(subject)
                .bind(user_id)
                .bind(email)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if inserted == 0 {
                return Ok(LinkOutcome::SubjectTaken);
            }
            tx.commit().await?;
            Ok::<_, StoreError>(LinkOutcome::Linked)
        }
        .await)
    }

    async fn remove_identities_linked_before(&self, user_id: &str, before: Option<i64>) -> StoreResult<Vec<String>> {
        let sql = "DELETE FROM identities WHERE user_id = $1 AND ($2 IS NULL OR created_at < $2) RETURNING provider";
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, String>(sql)
            .bind(user_id)
            .bind(before)
            .fetch_all(pool)
            .await)?)
    }
}
