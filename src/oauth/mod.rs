//! The OAuth 2.1 core: no HTTP types here. One file per grant under `grants/`, the
//! authorization endpoint as a pipeline of named checks under `authorize/`.

pub mod access_token;
pub mod authorize;
pub mod client_assertion;
pub mod client_auth;
pub mod clients;
pub mod device;
pub mod dpop;
mod error;
mod error_code;
pub mod first_party;
pub mod grant_types;
pub mod grants;
pub mod introspection;
pub mod params;
pub mod pkce;
pub mod redirect_uri;
pub mod refresh_token;
pub mod revocation;
pub mod revoked;
pub mod scope;
pub mod token;
pub mod token_response;
pub mod validated_token;

pub use error::OAuthError;
pub use error_code::ErrorCode;

/// Purposes for the keyed hashes of stored secrets.
pub const CODE_HASH_PURPOSE: &str = "authorization-code";
pub const REFRESH_HASH_PURPOSE: &str = "refresh-token";
