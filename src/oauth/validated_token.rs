//! What validating one of oxidp's access tokens yields; kept apart from the validation so the
//! verified-token cache in the core's context can name it.

use serde_json::{Map, Value};

/// An access token oxidp issued, validated: signature, `typ`, `iss`, `exp`, and not revoked.
#[derive(Debug, Clone)]
pub struct ValidatedAccessToken {
    pub claims: Map<String, Value>,
    pub subject: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub audience: Vec<String>,
    pub jti: String,
    pub expires_at: i64,
    /// The grant a user-bound token belongs to (none for client_credentials).
    pub grant_id: Option<String>,
    /// RFC 9449: the thumbprint of the DPoP key the token is bound to (`cnf.jkt`).
    pub jkt: Option<String>,
}

impl ValidatedAccessToken {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// `DPoP` for a bound token, else `Bearer` (RFC 9449 §5, RFC 7662 `token_type`).
    pub fn token_type(&self) -> &'static str {
        if self.jkt.is_some() { "DPoP" } else { "Bearer" }
    }

    /// client_credentials tokens have the client as subject.
    pub fn is_client_token(&self) -> bool {
        self.subject == self.client_id
    }
}
