//! /admin/*: users, OAuth clients, API clients, signing keys and the audit log (SPEC §5),
//! one file per resource. Each handler checks the caller and calls the core operation, which
//! validates, changes and audits.

mod api_clients;
mod audit_log;
mod clients;
mod keys;
mod registration_tokens;
mod token_exchange;
mod users;

pub use api_clients::AdminApiClientsApi;
pub use audit_log::AdminAuditApi;
pub use clients::AdminClientsApi;
pub use keys::AdminKeysApi;
pub use registration_tokens::AdminRegistrationTokensApi;
pub use token_exchange::AdminTokenExchangeApi;
pub use users::AdminUsersApi;
