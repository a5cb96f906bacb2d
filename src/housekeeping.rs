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
    let mut ended = state.sessions.purge_expired_sessions(now).await?;
    if let Sessions::Redis(_) = state.sessions {
        // Rows left in the table from before Redis was configured still go when they end.
        let table = DatabaseSessions::new(state.db.clone(), state.config.session_idle_ttl);
        ended.extend(table.purge_expired_sessions(now).await?);
    }
    purged.sessions = ended.len() as u64;
    for session_id in &ended {
        crate::oidc::backchannel::session_ended(state, session_id).await?;
    }
    purged.audit_rows = state.db.purge_audit(now.saturating_sub(state.config.audit_retention)).await?;
    purged.unverified_accounts = purge_unverified_accounts(state, now).await?;
    purged.unused_registrations = crate::registration::purge_unused(state, now).await?;
    {
        use crate::store::DeliveryStore;
        state.db.purge_finished_deliveries(now.saturating_sub(crate::delivery::KEEP_FINISHED)).await?;
    }
    if purged != Purged::default() {
        tracing::info!(?purged, "purged expired rows");
    }
    Ok(purged)
}

/// Accounts deleted per pass at most; the next pass takes the rest.
const UNVERIFIED_BATCH: i64 = 500;

/// Deletes self-registered accounts whose email was never verified within
/// `OXIDP_UNVERIFIED_ACCOUNT_TTL` (issue 12 item 6): their sessions end (in Redis too) and their
/// audit rows keep a pseudonym, as when an administrator erases an account.
async fn purge_unverified_accounts(state: &SharedState, now: i64) -> StoreResult<u64> {
    use crate::store::AuditStore;
    let before = now.saturating_sub(state.config.unverified_account_ttl);
    let mut deleted = 0;
    for id in state.db.unverified_self_registered(before, UNVERIFIED_BATCH).await? {
        if !state.db.delete_unverified_self_registered(&id).await? {
            continue;
        }
        deleted += 1;
        state.sessions.delete_user_sessions(&id, None).await?;
        crate::oidc::backchannel::user_sessions_ended(state, &id, None).await?;
        let pseudonym = format!("purged:{}", &state.secret.keyed_hash("erased-user", &id)[..16]);
        state.db.pseudonymise_audit(&id, &pseudonym).await?;
    }
    Ok(deleted)
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
