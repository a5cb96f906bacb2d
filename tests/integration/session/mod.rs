//! Browser sessions (`src/session/`, `src/kv/sessions.rs`): their lifetimes and the fresh id at
//! every login on both backends, and how they live in Redis. Listing and ending sessions
//! through the account API: account_api/me.rs; the session-store contract: storage.rs.

mod in_redis;
mod lifetime;
