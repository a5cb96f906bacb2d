//! Organizations and their memberships. Every write that changes what a user's permission
//! snapshot shows (a membership, a role in it, an organization's slug, the organization itself)
//! moves that user's `permissions_version` in the same transaction, and only when rows changed.
//!
//! Writes that depend on an organization first "lock" its row with a no-op `UPDATE`: on
//! PostgreSQL that is a row lock held until commit, on SQLite the transaction already holds the
//! database's write lock. So a membership change, an organization-scoped grant and the
//! organization's deletion never interleave, and none of them leaves a dangling row behind.

use serde::Serialize;

use super::{Db, StoreError, StoreResult, on_pool};

/// The `scope_type` of permissions scoped to an organization; their `scope_id` is its id.
pub const ORGANIZATION_SCOPE: &str = "organization";

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A member of one organization, with the user's public identifiers.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Member {
    pub user_id: String,
    pub sub: String,
    pub email: Option<String>,
    pub role: String,
    /// When the user joined.
    pub created_at: i64,
}

/// One of a user's organizations, as the permission snapshot shows it.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct UserMembership {
    pub organization_id: String,
    pub slug: String,
    pub role: String,
}

/// What a membership write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipWrite {
    /// `changed` is false when the membership already was (or already was not) as asked.
    Done {
        changed: bool,
    },
    OrganizationMissing,
    UserMissing,
}

pub trait OrganizationStore {
    /// Fails with [`StoreError::Conflict`] when the slug is taken.
    async fn create_organization(&self, name: &str, slug: &str, now: i64) -> StoreResult<Organization>;
    async fn organization_by_id(&self, id: &str) -> StoreResult<Option<Organization>>;
    /// A page of organizations, oldest first, after the `(created_at, id)` cursor.
    async fn list_organizations(&self, after: Option<(i64, String)>, limit: i64) -> StoreResult<Vec<Organization>>;
    /// Changes the given fields; `None` when there is no such organization, [`StoreError::Conflict`]
    /// when the new slug is taken. A changed slug moves every member's permissions version.
    async fn update_organization(
        &self,
        id: &str,
        name: Option<&str>,
        slug: Option<&str>,
        now: i64,
    ) -> StoreResult<Option<Organization>>;
    /// Deletes the organization, its memberships and the permissions scoped to it, moving the
    /// permissions version of every user who had either. False when there was none.
    async fn delete_organization(&self, id: &str) -> StoreResult<bool>;
    /// Adds the user to the organization or changes their role in it.
    async fn set_membership(
        &self,
        organization_id: &str,
        user_id: &str,
        role: &str,
        now: i64,
    ) -> StoreResult<MembershipWrite>;
    async fn remove_membership(&self, organization_id: &str, user_id: &str) -> StoreResult<MembershipWrite>;
    /// A page of the organization's members, in joining order, after the `(created_at, user_id)` cursor.
    async fn organization_members(
        &self,
        organization_id: &str,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> StoreResult<Vec<Member>>;
    /// Every organization the user belongs to, by slug.
    async fn memberships_of(&self, user_id: &str) -> StoreResult<Vec<UserMembership>>;
}

/// How this folder starts a transaction that will write: SQLite takes the write lock at once
/// (`BEGIN IMMEDIATE`), so a transaction never has to upgrade a read snapshot that another
/// writer made stale; PostgreSQL locks rows as the statements reach them.
pub(super) fn begin_write(db: &Db) -> &'static str {
    match db {
        Db::Postgres(_) => "BEGIN",
        Db::Sqlite(_) => "BEGIN IMMEDIATE",
    }
}

/// True when a write failed because a referenced row (a user, an organization) does not exist.
pub(super) fn is_missing_reference(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

const LOCK_ORGANIZATION: &str = "UPDATE organizations SET updated_at = updated_at WHERE id = $1";
const BUMP_USER: &str = "UPDATE users SET permissions_version = permissions_version + 1 WHERE id = $1";
const ORGANIZATION_COLUMNS: &str = "id, name, slug, created_at, updated_at";

impl OrganizationStore for Db {
    async fn create_organization(&self, name: &str, slug: &str, now: i64) -> StoreResult<Organization> {
        let organization = Organization {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            slug: slug.to_string(),
            created_at: now,
            updated_at: now,
        };
        let sql = "INSERT INTO organizations (id, name, slug, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(&organization.id)
            .bind(&organization.name)
            .bind(&organization.slug)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(organization)
    }

    async fn organization_by_id(&self, id: &str) -> StoreResult<Option<Organization>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {ORGANIZATION_COLUMNS} FROM organizations WHERE id = $1"));
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, Organization>(sql).bind(id).fetch_optional(pool).await)?)
    }

    async fn list_organizations(&self, after: Option<(i64, String)>, limit: i64) -> StoreResult<Vec<Organization>> {
        let (after_at, after_id) = after.unwrap_or((i64::MIN, String::new()));
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {ORGANIZATION_COLUMNS} FROM organizations WHERE created_at > $1 OR (created_at = $1 AND id > $2) \
             ORDER BY created_at, id LIMIT $3"
        ));
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, Organization>(sql)
            .bind(after_at)
            .bind(&after_id)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    async fn update_organization(
        &self,
        id: &str,
        name: Option<&str>,
        slug: Option<&str>,
        now: i64,
    ) -> StoreResult<Option<Organization>> {
        let begin = begin_write(self);
        let select = sqlx::AssertSqlSafe(format!("SELECT {ORGANIZATION_COLUMNS} FROM organizations WHERE id = $1"));
        // Members see the slug in their snapshots; the name is not part of them.
        let bump_members = "UPDATE users SET permissions_version = permissions_version + 1 \
                            WHERE id IN (SELECT user_id FROM memberships WHERE organization_id = $1) \
                            AND EXISTS (SELECT 1 FROM organizations WHERE id = $1 AND slug <> $2)";
        let update = "UPDATE organizations SET name = COALESCE($2, name), slug = COALESCE($3, slug), \
                      updated_at = CASE WHEN name <> COALESCE($2, name) OR slug <> COALESCE($3, slug) THEN $4 ELSE updated_at END \
                      WHERE id = $1";
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_with(begin).await?;
            if sqlx::query(LOCK_ORGANIZATION).bind(id).execute(&mut *tx).await?.rows_affected() == 0 {
                return Ok(None);
            }
            if let Some(slug) = slug {
                sqlx::query(bump_members).bind(id).bind(slug).execute(&mut *tx).await?;
            }
            sqlx::query(update).bind(id).bind(name).bind(slug).bind(now).execute(&mut *tx).await?;
            let organization = sqlx::query_as::<_, Organization>(select).bind(id).fetch_optional(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(organization)
        }
        .await)
    }

    async fn delete_organization(&self, id: &str) -> StoreResult<bool> {
        let begin = begin_write(self);
        let bump_affected = "UPDATE users SET permissions_version = permissions_version + 1 WHERE id IN \
                             (SELECT user_id FROM memberships WHERE organization_id = $1 \
                              UNION SELECT user_id FROM permissions WHERE scope_type = $2 AND scope_id = $1)";
        let delete_permissions = "DELETE FROM permissions WHERE scope_type = $2 AND scope_id = $1";
        // Memberships go with the organization (ON DELETE CASCADE).
        let delete = "DELETE FROM organizations WHERE id = $1";
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_with(begin).await?;
            if sqlx::query(LOCK_ORGANIZATION).bind(id).execute(&mut *tx).await?.rows_affected() == 0 {
                return Ok(false);
            }
            sqlx::query(bump_affected).bind(id).bind(ORGANIZATION_SCOPE).execute(&mut *tx).await?;
            sqlx::query(delete_permissions).bind(id).bind(ORGANIZATION_SCOPE).execute(&mut *tx).await?;
            sqlx::query(delete).bind(id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(true)
        }
        .await)
    }

    async fn set_membership(
        &self,
        organization_id: &str,
        user_id: &str,
        role: &str,
        now: i64,
    ) -> StoreResult<MembershipWrite> {
        let begin = begin_write(self);
        // One statement adds or changes the membership; an unchanged role touches no row.
        let upsert = "INSERT INTO memberships (organization_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
                      ON CONFLICT (organization_id, user_id) DO UPDATE SET role = excluded.role \
                      WHERE memberships.role <> excluded.role";
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_with(begin).await?;
            if sqlx::query(LOCK_ORGANIZATION).bind(organization_id).execute(&mut *tx).await?.rows_affected() == 0 {
                return Ok(MembershipWrite::OrganizationMissing);
            }
            let written =
                sqlx::query(upsert).bind(organization_id).bind(user_id).bind(role).bind(now).execute(&mut *tx).await;
            let changed = match written {
                Ok(result) => result.rows_affected() == 1,
                Err(error) if is_missing_reference(&error) => return Ok(MembershipWrite::UserMissing),
                Err(error) => return Err(error.into()),
            };
            if changed {
                sqlx::query(BUMP_USER).bind(user_id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>(MembershipWrite::Done { changed })
        }
        .await)
    }

    async fn remove_membership(&self, organization_id: &str, user_id: &str) -> StoreResult<MembershipWrite> {
        let begin = begin_write(self);
        let delete = "DELETE FROM memberships WHERE organization_id = $1 AND user_id = $2";
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_with(begin).await?;
            if sqlx::query(LOCK_ORGANIZATION).bind(organization_id).execute(&mut *tx).await?.rows_affected() == 0 {
                return Ok(MembershipWrite::OrganizationMissing);
            }
            let changed =
                sqlx::query(delete).bind(organization_id).bind(user_id).execute(&mut *tx).await?.rows_affected() == 1;
            if changed {
                sqlx::query(BUMP_USER).bind(user_id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>(MembershipWrite::Done { changed })
        }
        .await)
    }

    async fn organization_members(
        &self,
        organization_id: &str,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> StoreResult<Vec<Member>> {
        let (after_at, after_id) = after.unwrap_or((i64::MIN, String::new()));
        let sql = "SELECT m.user_id, u.sub, u.email, m.role, m.created_at FROM memberships m \
                   JOIN users u ON u.id = m.user_id WHERE m.organization_id = $1 \
                   AND (m.created_at > $2 OR (m.created_at = $2 AND m.user_id > $3)) \
                   ORDER BY m.created_at, m.user_id LIMIT $4";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, Member>(sql)
            .bind(organization_id)
            .bind(after_at)
            .bind(&after_id)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    async fn memberships_of(&self, user_id: &str) -> StoreResult<Vec<UserMembership>> {
        let sql = "SELECT m.organization_id, o.slug, m.role FROM memberships m \
                   JOIN organizations o ON o.id = m.organization_id WHERE m.user_id = $1 ORDER BY o.slug";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, UserMembership>(sql).bind(user_id).fetch_all(pool).await)?)
    }
}
