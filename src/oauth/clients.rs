//! Registered clients as request paths read them: from an in-memory cache that every client
//! change invalidates (across instances through the key-value store, see `crate::cache`).
//! Without the key-value store the cache cannot tell a current entry from a stale one: the
//! request then fails as if the database were away (503), never with a stale client.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::state::AppState;
use crate::store::{Client, ClientStore, StoreResult};

/// A future of the lookup, boxed so the source can be a trait object.
pub type Lookup<'a> = Pin<Box<dyn Future<Output = StoreResult<Option<Arc<Client>>>> + Send + 'a>>;

/// The source installed at start ([`install_source`]); one per process, since it reads each
/// server's own configuration on every call.
static SOURCE: std::sync::OnceLock<Box<dyn ClientSource>> = std::sync::OnceLock::new();

/// Installs the source of clients made from their id (done by `startup`, so this core calls
/// the registration code without depending on it). Later calls keep the first source.
pub fn install_source(source: Box<dyn ClientSource>) {
    let _ = SOURCE.set(source);
}

/// Clients that exist because of their id (a client ID metadata document's URL): the source
/// decides which ids it answers for and makes or refreshes the client.
pub trait ClientSource: Send + Sync {
    fn answers_for(&self, state: &AppState, id: &str) -> bool;
    fn find<'a>(&'a self, state: &'a AppState, id: &'a str) -> Lookup<'a>;
}

/// The client with this id, when registered.
pub async fn find(state: &AppState, id: &str) -> StoreResult<Option<Client>> {
    Ok(find_shared(state, id).await?.map(|client| (*client).clone()))
}

/// As [`find`], without copying the client: for the paths every token request takes.
pub async fn find_shared(state: &AppState, id: &str) -> StoreResult<Option<Arc<Client>>> {
    if let Some(source) = SOURCE.get().filter(|source| source.answers_for(state, id)) {
        return source.find(state, id).await;
    }
    cached(state, id).await
}

/// A client as stored, through the cache (what a [`ClientSource`] returns once it is current).
/// A disabled client is not found: no request names it successfully, its tokens stop validating.
pub async fn cached(state: &AppState, id: &str) -> StoreResult<Option<Arc<Client>>> {
    let load =
        async { Ok(state.db.client_by_id(id).await?.filter(|client| client.disabled_at.is_none()).map(Arc::new)) };
    state.client_cache.get_or_load(&state.kv, id, load).await
}

/// Call after every committed change to a client (create, update, secret, delete).
pub async fn changed(state: &AppState) -> StoreResult<()> {
    Ok(state.client_cache.changed(&state.kv).await?)
}
