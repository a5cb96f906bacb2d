//! `oxidp serve`: bind, print where things are, reload keys in the background, stop on signal.
//! The outermost layer: it assembles `http/` and `api/` into one application.

mod listener;
mod routes;

pub use listener::{Bound, bind, serve};
pub use routes::app;

use std::time::Duration;

use crate::state::SharedState;
use crate::store::{ClientStore, UserStore};

pub async fn run(state: SharedState) -> Result<(), String> {
    let bound = bind(state.config.bind).map_err(|e| format!("OXIDP_BIND {}: {e}", state.config.bind))?;
    let issuer = &state.config.issuer;
    println!("oxidp listening on http://{}", bound.local_addr);
    println!("issuer:    {issuer}");
    println!("discovery: {issuer}/.well-known/openid-configuration");
    println!("docs:      {issuer}/docs");
    // The built-in `oxidp-api` client, registered at start, does not make the database non-empty.
    let builtin = state.db.client_by_id(crate::oauth::first_party::BUILTIN_CLIENT_ID).await.ok().flatten().is_some();
    let empty = state.db.count_clients().await.unwrap_or(i64::MAX) <= i64::from(builtin)
        && state.db.count_users().await.unwrap_or(1) == 0;
    if empty {
        println!();
        println!("The database is empty. Create a first user and client:");
        println!("  oxidp user create --email you@example.com --password '<10+ characters>' --admin");
        println!("  oxidp client create --name 'My app' --redirect-uri http://127.0.0.1:3000/callback --public");
    }
    spawn_key_reload(state.clone());
    crate::observability::spawn_upkeep(Duration::from_secs(5));
    crate::housekeeping::spawn(state.clone(), Duration::from_secs(300));
    serve(state.clone(), bound, shutdown_signal()).await.map_err(|e| e.to_string())?;
    // Requests are done (or cut off after the grace period); a background task may still hold a
    // connection for a moment, which close() waits for, briefly.
    let _ = tokio::time::timeout(Duration::from_secs(5), state.db.close()).await;
    tracing::info!("stopped");
    Ok(())
}

/// Picks up keys rotated or imported by other instances or the CLI.
pub fn spawn_key_reload(state: SharedState) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(state.config.key_refresh_interval.max(1) as u64));
        loop {
            interval.tick().await;
            if let Err(error) = state.keys.reload().await {
                tracing::warn!(%error, "could not reload signing keys");
            }
        }
    });
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
