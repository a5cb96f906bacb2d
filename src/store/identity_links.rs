//! A user's own view of their upstream identities: listing them, and unlinking one unless it
//! is the last way the user can sign in. (Creating and linking lives in `identities.rs`.)

use super::identities::Identity;
use super::organizations::begin_write;
use super::{Db, StoreError, StoreResult, on_pool};

/// What unlinking did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlinkOutcome {
    Unlinked,
    /// The user has no identity with this id.
    NotFound,
    /// Without it the user could no longer sign in (no password, no other sign-in provider).
    LastLoginMethod,
}

pub trait IdentityLinkStore {
    /// A page of the user's identities, oldest first, after the `(created_at, id)` cursor.
    async fn identities_of_user(
        &self,
        user_id: &str,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> StoreResult<Vec<Identity>>;
    /// Removes one of the user's identities unless it is the user's last way to sign in.
    /// `login_providers` are the providers a browser can sign in with now. The user's row is
    /// locked first, so two concurrent unlinks cannot both remove "the other" way.
    async fn unlink_identity(&self, user_id: &str, id: &str, login_providers: &[String]) -> StoreResult<UnlinkOutcome>;
}

const IDENTITY_COLUMNS: &str = "id, provider, subject, user_id, email, created_at";

impl IdentityLinkStore for Db {
    async fn identities_of_user(
        &self,
        user_id: &str,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> StoreResult<Vec<Identity>> {
        let (after_at, after_id) = after.unwrap_or((i64::MIN, String::new()));
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {IDENTITY_COLUMNS} FROM identities WHERE user_id = $1 \
             AND (created_at > $2 OR (created_at = $2 AND id > $3)) ORDER BY created_at, id LIMIT $4"
        ));
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, Identity>(sql)
            .bind(user_id)
            .bind(after_at)
            .bind(&after_id)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    async fn unlink_identity(&self, user_id: &str, id: &str, login_providers: &[String]) -> StoreResult<UnlinkOutcome> {
        let begin = begin_write(self);
        let lock_user = "UPDATE users SET updated_at = updated_at WHERE id = $1";
        let has_password = "SELECT password_hash IS NOT NULL FROM users WHERE id = $1";
        let identities = "SELECT id, provider FROM identities WHERE user_id = $1";
        let delete = "DELETE FROM identities WHERE id = $1 AND user_id = $2";
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_with(begin).await?;
            if sqlx::query(lock_user).bind(user_id).execute(&mut *tx).await?.rows_affected() == 0 {
                return Ok(UnlinkOutcome::NotFound);
            }
            let password: bool = sqlx::query_scalar(has_password).bind(user_id).fetch_one(&mut *tx).await?;
            let rows: Vec<(String, String)> = sqlx::query_as(identities).bind(user_id).fetch_all(&mut *tx).await?;
            if !rows.iter().any(|(identity_id, _)| identity_id == id) {
                return Ok(UnlinkOutcome::NotFound);
            }
            let signs_in = |(_, provider): &&(String, String)| login_providers.iter().any(|p| p == provider);
            let could_before = password || rows.iter().any(|row| signs_in(&row));
            let can_after =
                password || rows.iter().filter(|(identity_id, _)| identity_id != id).any(|row| signs_in(&row));
            if could_before && !can_after {
                return Ok(UnlinkOutcome::LastLoginMethod);
            }
            sqlx::query(delete).bind(id).bind(user_id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(UnlinkOutcome::Unlinked)
        }
        .await)
    }
}
