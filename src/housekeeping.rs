//! A background task that purges what has expired, on every instance (deletes are idempotent).

use std::time::Duration;

use crate::state::SharedState;
use crate::store::StoreResult;
use crate::store::housekeeping::{HousekeepingStore, Purged};

/// One pass; returns what was removed.
pub async fn purge(state: &SharedState) -> StoreResult<Purged> {
    let purged = state.db.purge_expired(state.now(), state.config.session_idle_ttl).await?;
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
