//! Administrative operations, one implementation behind the CLI, the admin API and the
//! console: each validates, changes, invalidates caches and writes its audit entry.

pub mod client_exchange;
pub mod client_jwt;
pub mod client_pairwise;
pub mod clients;
pub mod field;
pub mod keys;
pub mod users;
