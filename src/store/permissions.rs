//! Direct permissions: (user, scope_type, scope_id, module, action), unique. A grant or revoke
//! is one write statement plus, only when that statement changed a row, the move of the user's
//! `permissions_version`, both in one transaction. Two concurrent calls on the same permission
//! therefore end with one row or none, and the version moves once per real change.

use serde::Serialize;

use super::organizations::{ORGANIZATION_SCOPE, begin_write, is_missing_reference};
use super::{Db, StoreError, StoreResult, on_pool};

/// What a permission is about, without its holder.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct PermissionKey {
    pub scope_type: String,
    pub scope_id: String,
    pub module: String,
    pub action: String,
}

/// What a grant or revoke did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionWrite {
    /// `version` is the user's permissions version after the write.
    Done {
        changed: bool,
        version: i64,
    },
    UserMissing,
    /// A grant scoped to an organization that does not exist.
    OrganizationMissing,
}

pub trait PermissionStore {
    /// Adds the permission unless the user already holds it. A permission scoped to an
    /// organization is written only while the organization exists: its row is locked for the
    /// transaction, so a concurrent deletion cannot leave the permission dangling.
    async fn grant_permission(&self, user_id: &str, key: &PermissionKey, now: i64) -> StoreResult<PermissionWrite>;
    /// Removes the permission if the user holds it.
    async fn revoke_permission(&self, user_id: &str, key: &PermissionKey) -> StoreResult<PermissionWrite>;
    /// The user's direct permissions, sorted.
    async fn permissions_of(&self, user_id: &str) -> StoreResult<Vec<PermissionKey>>;
    /// The user's current permissions version, `None` when there is no such user.
    async fn permissions_version(&self, user_id: &str) -> StoreResult<Option<i64>>;
}

const BUMP_USER: &str = "UPDATE users SET permissions_version = permissions_version + 1 WHERE id = $1";
const VERSION: &str = "SELECT permissions_version FROM users WHERE id = $1";

impl PermissionStore for Db {
    async fn grant_permission(&self, user_id: &str, key: &PermissionKey, now: i64) -> StoreResult<PermissionWrite> {
        let begin = begin_write(self);
        let lock_organization = "UPDATE organizations SET updated_at = updated_at WHERE id = $1";
        let insert = "INSERT INTO permissions (id, user_id, scope_type, scope_id, module, action, created_at) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7) \
                      ON CONFLICT (user_id, scope_type, scope_id, module, action) DO NOTHING";
        let id = uuid::Uuid::new_v4().to_string();
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_with(begin).await?;
            if key.scope_type == ORGANIZATION_SCOPE
                && sqlx::query(lock_organization).bind(&key.scope_id).execute(&mut *tx).await?.rows_affected() == 0
            {
                return Ok(PermissionWrite::OrganizationMissing);
            }
            let inserted = sqlx::query(insert)
                .bind(&id)
                .bind(user_id)
                .bind(&key.scope_type)
                .bind(&key.scope_id)
                .bind(&key.module)
                .bind(&key.action)
                .bind(now)
                .execute(&mut *tx)
                .await;
            let changed = match inserted {
                Ok(result) => result.rows_affected() == 1,
                Err(error) if is_missing_reference(&error) => return Ok(PermissionWrite::UserMissing),
                Err(error) => return Err(error.into()),
            };
            if changed {
                sqlx::query(BUMP_USER).bind(user_id).execute(&mut *tx).await?;
            }
            let version: Option<i64> = sqlx::query_scalar(VERSION).bind(user_id).fetch_optional(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(match version {
                Some(version) => PermissionWrite::Done { changed, version },
                None => PermissionWrite::UserMissing,
            })
        }
        .await)
    }

    async fn revoke_permission(&self, user_id: &str, key: &PermissionKey) -> StoreResult<PermissionWrite> {
        let begin = begin_write(self);
        let delete = "DELETE FROM permissions WHERE user_id = $1 AND scope_type = $2 AND scope_id = $3 \
                      AND module = $4 AND action = $5";
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_with(begin).await?;
            let changed = sqlx::query(delete)
                .bind(user_id)
                .bind(&key.scope_type)
                .bind(&key.scope_id)
                .bind(&key.module)
                .bind(&key.action)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if changed {
                sqlx::query(BUMP_USER).bind(user_id).execute(&mut *tx).await?;
            }
            let version: Option<i64> = sqlx::query_scalar(VERSION).bind(user_id).fetch_optional(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(match version {
                Some(version) => PermissionWrite::Done { changed, version },
                None => PermissionWrite::UserMissing,
            })
        }
        .await)
    }

    async fn permissions_of(&self, user_id: &str) -> StoreResult<Vec<PermissionKey>> {
        let sql = "SELECT scope_type, scope_id, module, action FROM permissions WHERE user_id = $1 \
                   ORDER BY scope_type, scope_id, module, action";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, PermissionKey>(sql).bind(user_id).fetch_all(pool).await)?)
    }

    async fn permissions_version(&self, user_id: &str) -> StoreResult<Option<i64>> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, i64>(VERSION).bind(user_id).fetch_optional(pool).await)?)
    }
}
