//! Back-channel logout: each client's settings, and which clients took part in which session.

use super::{Db, StoreResult, on_pool};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BackchannelLogout {
    pub client_id: String,
    /// `backchannel_logout_uri`.
    pub uri: String,
    /// `backchannel_logout_session_required`: the logout token must carry `sid`.
    pub session_required: bool,
}

/// A client to tell that one of its sessions ended.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionParticipant {
    pub session_id: String,
    pub user_id: String,
    pub client_id: String,
    pub uri: String,
    pub session_required: bool,
}

pub trait BackchannelStore {
    /// Sets (or with `None` removes) a client's back-channel logout settings.
    async fn set_backchannel_logout(&self, client_id: &str, settings: Option<(&str, bool)>) -> StoreResult<()>;
    async fn backchannel_logout(&self, client_id: &str) -> StoreResult<Option<BackchannelLogout>>;
    /// Remembers that `client_id` took part in the session (idempotent).
    async fn record_session_client(
        &self,
        session_id: &str,
        user_id: &str,
        client_id: &str,
        now: i64,
    ) -> StoreResult<()>;
    /// Forgets the session's participants and returns those with a back-channel logout URI.
    async fn take_session_participants(&self, session_id: &str) -> StoreResult<Vec<SessionParticipant>>;
    /// As [`Self::take_session_participants`] for every session of the user but `keep`.
    async fn take_user_participants(&self, user_id: &str, keep: Option<&str>) -> StoreResult<Vec<SessionParticipant>>;
}

const PARTICIPANTS: &str = "SELECT s.session_id, s.user_id, s.client_id, b.uri, b.session_required \
     FROM session_clients s JOIN client_backchannel_logout b ON b.client_id = s.client_id";

impl BackchannelStore for Db {
    async fn set_backchannel_logout(&self, client_id: &str, settings: Option<(&str, bool)>) -> StoreResult<()> {
        match settings {
            Some((uri, session_required)) => {
                let sql = "INSERT INTO client_backchannel_logout (client_id, uri, session_required) VALUES ($1, $2, $3) \
                           ON CONFLICT (client_id) DO UPDATE SET uri = excluded.uri, session_required = excluded.session_required";
                on_pool!(self, |pool| sqlx::query(sql)
                    .bind(client_id)
                    .bind(uri)
                    .bind(session_required)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected()))?;
            }
            None => {
                let sql = "DELETE FROM client_backchannel_logout WHERE client_id = $1";
                on_pool!(self, |pool| sqlx::query(sql).bind(client_id).execute(pool).await.map(|r| r.rows_affected()))?;
            }
        }
        Ok(())
    }

    async fn backchannel_logout(&self, client_id: &str) -> StoreResult<Option<BackchannelLogout>> {
        let sql = "SELECT client_id, uri, session_required FROM client_backchannel_logout WHERE client_id = $1";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, BackchannelLogout>(sql)
            .bind(client_id)
            .fetch_optional(pool)
            .await)?)
    }

    async fn record_session_client(
        &self,
        session_id: &str,
        user_id: &str,
        client_id: &str,
        now: i64,
    ) -> StoreResult<()> {
        let sql = "INSERT INTO session_clients (session_id, client_id, user_id, created_at) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (session_id, client_id) DO NOTHING";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(session_id)
            .bind(client_id)
            .bind(user_id)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn take_session_participants(&self, session_id: &str) -> StoreResult<Vec<SessionParticipant>> {
        let select = format!("{PARTICIPANTS} WHERE s.session_id = $1");
        let found =
            on_pool!(self, |pool| sqlx::query_as::<_, SessionParticipant>(sqlx::AssertSqlSafe(select.as_str()))
                .bind(session_id)
                .fetch_all(pool)
                .await)?;
        let delete = "DELETE FROM session_clients WHERE session_id = $1";
        on_pool!(self, |pool| sqlx::query(delete).bind(session_id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(found)
    }

    async fn take_user_participants(&self, user_id: &str, keep: Option<&str>) -> StoreResult<Vec<SessionParticipant>> {
        let keep = keep.unwrap_or("");
        let select = format!("{PARTICIPANTS} WHERE s.user_id = $1 AND s.session_id <> $2");
        let found =
            on_pool!(self, |pool| sqlx::query_as::<_, SessionParticipant>(sqlx::AssertSqlSafe(select.as_str()))
                .bind(user_id)
                .bind(keep)
                .fetch_all(pool)
                .await)?;
        let delete = "DELETE FROM session_clients WHERE user_id = $1 AND session_id <> $2";
        on_pool!(self, |pool| sqlx::query(delete)
            .bind(user_id)
            .bind(keep)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(found)
    }
}
