//! A background task that purges what has expired, on every instance (deletes are idempotent).

use std::time::Duration;

use crate::session::Sessions;
use crate::state::SharedState;
use crate::store::housekeeping::{HousekeepingStore, Purged};
use crate::store::{DatabaseSessions, SessionStore, StoreResult};

/// One pass; returns what was removed.
pub async fn purge(state: &SharedState) -> StoreResult<Purged> {
    let now = state.now();
    let mut purged = state.db.purge_expired(now).await?;
    purged.sessions = state.sessions.purge_expired_sessions(now).await?;
    if let Sessions::Redis(_) = state.sessions {
        // Rows left in the table from before Redis was configured still go when they end.
        let table = DatabaseSessions::new(state.db.clone(), state.config.session_idle_ttl);
        purged.sessions += table.purge_expired_sessions(now).await?;
    }
    if purged != Purged::default() {
        tracing::info!(?purged, "purged expired rows");
    }
    Ok(purged)
}

pub fn spawn(state: SharedState, every: Duration) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        loop {
            interval.tick().await;
            if let Err(error) = purge(&state).await {
                tracing::warn!(%error, "housekeeping failed; will retry");
            }
        }
    });
}
