//! Registered clients as request paths read them: from an in-memory cache that every client
//! change invalidates (across instances through the key-value store, see `crate::cache`).

use crate::kv::KvError;
use crate::state::AppState;
use crate::store::{Client, ClientStore, StoreError, StoreResult};

/// The stamp every client change renews.
pub const STAMP_KEY: &str = "stamp:clients";

/// Without the key-value store the cache cannot tell a current entry from a stale one:
/// the request fails as if the database were away (503), never with a stale client.
struct Unavailable(StoreError);

impl From<KvError> for Unavailable {
    fn from(error: KvError) -> Self {
        Unavailable(kv_unavailable(error))
    }
}

/// The client with this id, when registered.
pub async fn find(state: &AppState, id: &str) -> StoreResult<Option<Client>> {
    let load = async { state.db.client_by_id(id).await.map_err(Unavailable) };
    state.client_cache.get_or_load(&state.kv, id, load).await.map_err(|Unavailable(error)| error)
}

/// Call after every committed change to a client (create, update, secret, delete).
pub async fn changed(state: &AppState) -> StoreResult<()> {
    state.client_cache.changed(&state.kv).await.map_err(kv_unavailable)
}

/// The store's "try again later" error, so every caller's 503 mapping covers it.
fn kv_unavailable(error: KvError) -> StoreError {
    StoreError::Unavailable(sqlx::Error::Io(std::io::Error::other(error.to_string())))
}
