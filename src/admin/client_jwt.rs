//! The JWT client authentication an administrator or a registering client chooses for a
//! confidential client (issue #14 item 4): `private_key_jwt` with inline `jwks` or a `jwks_uri`,
//! or `client_secret_jwt`, whose secret is stored encrypted (it must be read back for the HMAC)
//! and never as a keyed hash, so it cannot be sent as a plain secret either.

use super::field::{FieldError, field};
use crate::crypto::jws::ASYMMETRIC;
use crate::oauth::client_assertion::{CLIENT_SECRET_JWT, HMAC, PRIVATE_KEY_JWT, parse_keys};
use crate::state::AppState;
use crate::store::{ClientJwtAuth, ClientJwtAuthStore, StoreResult};

#[derive(Debug, Clone)]
pub struct JwtAuthSpec {
    /// `private_key_jwt` or `client_secret_jwt`.
    pub method: String,
    /// A JSON JWK set of public keys.
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    /// `token_endpoint_auth_signing_alg`: when set, the only algorithm accepted.
    pub signing_alg: Option<String>,
    /// `request_object_signing_alg`: when set, the only algorithm of its request objects.
    pub request_object_alg: Option<String>,
}

impl JwtAuthSpec {
    pub fn validate(&self, public: bool) -> Result<(), FieldError> {
        let method = "token_endpoint_auth_method";
        if public {
            return Err(field(method, "a public client has no credentials to sign with"));
        }
        let algs: &[&str] = match self.method.as_str() {
            PRIVATE_KEY_JWT => &ASYMMETRIC,
            CLIENT_SECRET_JWT => &HMAC,
            other => return Err(field(method, format!("'{other}' is not a JWT authentication method"))),
        };
        for (name, alg) in [
            ("token_endpoint_auth_signing_alg", &self.signing_alg),
            ("request_object_signing_alg", &self.request_object_alg),
        ] {
            if let Some(alg) = alg
                && !algs.contains(&alg.as_str())
            {
                let allowed = algs.join(", ");
                return Err(field(name, format!("'{alg}' does not go with {}: {allowed}", self.method)));
            }
        }
        match (self.method.as_str(), &self.jwks, &self.jwks_uri) {
            (PRIVATE_KEY_JWT, Some(jwks), None) => {
                parse_keys(jwks.as_bytes()).map(|_| ()).map_err(|e| field("jwks", e))
            }
            (PRIVATE_KEY_JWT, None, Some(uri)) => {
                let parsed = url::Url::parse(uri).map_err(|_| field("jwks_uri", "not a URL"))?;
                if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
                    return Err(field("jwks_uri", "must be an https URL"));
                }
                Ok(())
            }
            (PRIVATE_KEY_JWT, _, _) => Err(field("jwks", "private_key_jwt needs exactly one of jwks and jwks_uri")),
            (_, None, None) => Ok(()),
            _ => Err(field("jwks", "client_secret_jwt takes no keys")),
        }
    }

    /// Stores the choice for a new client; returns the secret the client gets (none for keys).
    pub async fn store(
        &self,
        state: &AppState,
        client_id: &str,
        secret: Option<String>,
    ) -> StoreResult<Option<String>> {
        let secret = secret.filter(|_| self.method == CLIENT_SECRET_JWT);
        let auth = ClientJwtAuth {
            client_id: client_id.into(),
            method: self.method.clone(),
            jwks: self.jwks.clone(),
            jwks_uri: self.jwks_uri.clone(),
            secret_encrypted: secret.as_ref().map(|s| state.secret.encrypt(s.as_bytes())),
            signing_alg: self.signing_alg.clone(),
            request_object_alg: self.request_object_alg.clone(),
        };
        state.db.set_client_jwt_auth(&auth).await?;
        Ok(secret)
    }

    /// Replaces the choice of an existing client of the same method (an RFC 7592 update): keys
    /// and algorithms change, a `client_secret_jwt` secret stays (it changes only by rotation).
    pub async fn replace(&self, state: &AppState, client_id: &str) -> StoreResult<()> {
        let kept = match state.db.client_jwt_auth(client_id).await? {
            Some(current) if current.method == CLIENT_SECRET_JWT => current.secret_encrypted,
            _ => None,
        };
        let auth = ClientJwtAuth {
            client_id: client_id.into(),
            method: self.method.clone(),
            jwks: self.jwks.clone(),
            jwks_uri: self.jwks_uri.clone(),
            secret_encrypted: kept,
            signing_alg: self.signing_alg.clone(),
            request_object_alg: self.request_object_alg.clone(),
        };
        state.db.set_client_jwt_auth(&auth).await
    }
}

/// A new `client_secret_jwt` secret is stored encrypted; a `private_key_jwt` client has none.
/// `Ok(false)`: the client does not use JWT authentication (its secret is a keyed hash).
pub async fn rotate_secret(state: &AppState, client_id: &str, secret: &str) -> Result<bool, FieldError> {
    let current = state.db.client_jwt_auth(client_id).await.map_err(|e| field("public", e.to_string()))?;
    let Some(mut auth) = current else { return Ok(false) };
    if auth.method == PRIVATE_KEY_JWT {
        return Err(field("public", "this client authenticates with its keys; it has no secret"));
    }
    auth.secret_encrypted = Some(state.secret.encrypt(secret.as_bytes()));
    state.db.set_client_jwt_auth(&auth).await.map_err(|e| field("public", e.to_string()))?;
    Ok(true)
}
