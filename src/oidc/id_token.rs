//! ID tokens (OIDC Core §2) and the `at_hash` that binds them to their access token.

use serde_json::{Map, Value, json};

use sha2::{Digest, Sha512};

use crate::crypto::{b64url, sha256};
use crate::oauth::OAuthError;
use crate::state::AppState;
use crate::store::User;

pub struct IdTokenSpec<'a> {
    pub client_id: &'a str,
    /// The client's `id_token_signed_response_alg`.
    pub alg: &'a str,
    pub user: &'a User,
    /// The `sub` this client sees ([`super::subject::for_client`]).
    pub subject: &'a str,
    pub scopes: &'a [String],
    pub nonce: Option<&'a str>,
    pub auth_time: i64,
    pub amr: &'a str,
    pub access_token: Option<&'a str>,
    /// The browser session's `sid` (Back-Channel Logout 1.0 §2.1), when the token comes from one.
    pub sid: Option<&'a str>,
}

pub fn mint(state: &AppState, spec: IdTokenSpec<'_>) -> Result<String, OAuthError> {
    let now = state.now();
    let mut claims = Map::new();
    claims.insert("iss".into(), Value::String(state.config.issuer.clone()));
    claims.insert("sub".into(), Value::String(spec.subject.to_string()));
    claims.insert("aud".into(), Value::String(spec.client_id.to_string()));
    claims.insert("azp".into(), Value::String(spec.client_id.to_string()));
    claims.insert("exp".into(), json!(now + state.config.id_token_ttl));
    claims.insert("iat".into(), json!(now));
    claims.insert("auth_time".into(), json!(spec.auth_time));
    let amr: Vec<&str> = spec.amr.split(' ').filter(|s| !s.is_empty()).collect();
    claims.insert("amr".into(), json!(amr));
    if let Some(nonce) = spec.nonce {
        claims.insert("nonce".into(), Value::String(nonce.to_string()));
    }
    if let Some(sid) = spec.sid {
        claims.insert("sid".into(), Value::String(sid.to_string()));
    }
    if let Some(access_token) = spec.access_token {
        claims.insert("at_hash".into(), Value::String(at_hash(spec.alg, access_token)));
    }
    for (name, value) in super::claims::for_scopes(spec.user, spec.scopes) {
        claims.insert(name, value);
    }
    Ok(state.keys.sign_with(spec.alg, "JWT", &claims)?)
}

/// Left half of the hash of the access token, base64url, with the hash of the ID token's
/// algorithm: SHA-256 for RS256 and ES256, SHA-512 for EdDSA with Ed25519 (the OpenID
/// Foundation's reading of OIDC Core §3.1.3.6 for Ed25519).
pub fn at_hash(alg: &str, access_token: &str) -> String {
    if alg == "EdDSA" {
        let digest = Sha512::digest(access_token.as_bytes());
        b64url(&digest[..32])
    } else {
        let digest = sha256(access_token);
        b64url(&digest[..16])
    }
}
