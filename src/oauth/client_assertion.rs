//! JWT client authentication (RFC 7523 §2.2, OIDC Core §9): `private_key_jwt` with the client's
//! registered keys (`jwks`, or `jwks_uri` fetched under the outgoing-request rule and cached),
//! and `client_secret_jwt` with its secret, which is stored encrypted and read back for the HMAC.
//!
//! An assertion is accepted when its signature verifies with the algorithm the client may use,
//! `iss` = `sub` = the client, `aud` names this server (the issuer, the token endpoint or the
//! endpoint it was sent to), `exp` lies ahead by at most an hour, and its `jti` was not seen
//! before (kept until `exp` in the shared key-value store, so a replay fails on every instance).

use josekit::jwk::{Jwk, JwkSet};
use josekit::jws::JwsVerifier;
use serde_json::{Map, Value};

pub use crate::crypto::jws::HMAC;
use crate::crypto::jws::{ASYMMETRIC, find_key, verifier_for};
use crate::crypto::{b64url, sha256};
use crate::oauth::OAuthError;
use crate::outbound::Limits;
use crate::state::AppState;
use crate::store::{Client, ClientJwtAuth, ClientJwtAuthStore};

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
pub const PRIVATE_KEY_JWT: &str = "private_key_jwt";
pub const CLIENT_SECRET_JWT: &str = "client_secret_jwt";
/// An assertion may be valid for at most this long (authlib's default lifetime).
const MAX_LIFETIME: i64 = 3600;
/// Clock difference tolerated between client and server.
const LEEWAY: i64 = 60;
/// How long keys fetched from a `jwks_uri` are used before they are fetched again.
const JWKS_CACHE_TTL: i64 = 300;

/// Why an assertion was refused (for logs; the client hears only `invalid_client`).
pub type Refusal = String;

/// Checks `assertion` for `client`, sent to `endpoint` (its full URL). The outer error is an
/// outage (503); the inner one a refusal to count as a failed authentication.
pub async fn verify(
    state: &AppState,
    client: &Client,
    assertion: &str,
    endpoint: &str,
) -> Result<Result<(), Refusal>, OAuthError> {
    let Some(auth) = state.db.client_jwt_auth(&client.id).await? else {
        return Ok(Err("the client does not authenticate with a JWT".into()));
    };
    let header = match josekit::jwt::decode_header(assertion) {
        Ok(header) => header,
        Err(error) => return Ok(Err(format!("header: {error}"))),
    };
    let alg = header.claim("alg").and_then(Value::as_str).unwrap_or_default().to_string();
    if auth.signing_alg.as_deref().is_some_and(|registered| registered != alg) {
        return Ok(Err(format!("algorithm {alg} is not the registered one")));
    }
    let kid = header.claim("kid").and_then(Value::as_str).map(str::to_string);
    let verifier = match verifier(state, &auth, &alg, kid.as_deref()).await? {
        Ok(verifier) => verifier,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let claims = match josekit::jwt::decode_with_verifier(assertion, verifier.as_ref()) {
        Ok((payload, _)) => payload.claims_set().clone(),
        Err(error) => return Ok(Err(format!("signature: {error}"))),
    };
    let jti = match check_claims(state, &client.id, &claims, endpoint) {
        Ok(jti) => jti,
        Err(refusal) => return Ok(Err(refusal)),
    };
    // Single use until it expires, on every instance: the first presenter counts 1.
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or_default();
    let key = format!("client-assertion:{}", b64url(sha256(format!("{}\n{jti}", client.id))));
    let ttl = (exp - state.now() + LEEWAY).max(1);
    if state.kv.increment(&key, ttl).await? > 1 {
        return Ok(Err("the assertion's jti was already used".into()));
    }
    Ok(Ok(()))
}

/// The claims rules; returns the `jti`.
fn check_claims(
    state: &AppState,
    client_id: &str,
    claims: &Map<String, Value>,
    endpoint: &str,
) -> Result<String, Refusal> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(client_id) || text("sub") != Some(client_id) {
        return Err("iss and sub must both be the client_id".into());
    }
    let issuer = state.config.issuer.as_str();
    let token_endpoint = format!("{issuer}/token");
    let ours = |aud: &str| aud == issuer || aud == token_endpoint || aud == endpoint;
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => ours(aud),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(ours),
        _ => false,
    };
    if !audience_ok {
        return Err("aud must be the issuer or the token endpoint".into());
    }
    let now = state.now();
    let Some(exp) = claims.get("exp").and_then(Value::as_i64) else { return Err("exp is required".into()) };
    if exp <= now - LEEWAY {
        return Err("the assertion has expired".into());
    }
    if exp > now + MAX_LIFETIME + LEEWAY {
        return Err(format!("exp may be at most {MAX_LIFETIME} seconds ahead"));
    }
    if claims.get("nbf").and_then(Value::as_i64).is_some_and(|nbf| nbf > now + LEEWAY) {
        return Err("the assertion is not valid yet".into());
    }
    match text("jti") {
        Some(jti) if !jti.is_empty() && jti.len() <= 256 => Ok(jti.to_string()),
        _ => Err("jti is required (at most 256 characters)".into()),
    }
}

/// josekit's verifier for a JWT `client` signed with `alg` (and `kid`): its registered keys for
/// `private_key_jwt` (asymmetric algorithms only), its secret for `client_secret_jwt` (HMAC only).
/// Also verifies request objects (RFC 9101). The outer error is an outage.
pub(crate) async fn verifier(
    state: &AppState,
    auth: &ClientJwtAuth,
    alg: &str,
    kid: Option<&str>,
) -> Result<Result<Box<dyn JwsVerifier>, Refusal>, OAuthError> {
    if auth.method == CLIENT_SECRET_JWT {
        if !HMAC.contains(&alg) {
            return Ok(Err(format!("client_secret_jwt takes HS256, HS384 or HS512, not {alg}")));
        }
        let Some(encrypted) = auth.secret_encrypted.as_deref() else { return Ok(Err("no secret".into())) };
        let secret = state.secret.decrypt(encrypted).map_err(|e| OAuthError::Internal(e.to_string()))?;
        use josekit::jws::{HS256, HS384, HS512};
        let verifier = match alg {
            "HS256" => HS256.verifier_from_bytes(&secret).map(|v| Box::new(v) as Box<dyn JwsVerifier>),
            "HS384" => HS384.verifier_from_bytes(&secret).map(|v| Box::new(v) as Box<dyn JwsVerifier>),
            _ => HS512.verifier_from_bytes(&secret).map(|v| Box::new(v) as Box<dyn JwsVerifier>),
        };
        return Ok(verifier.map_err(|e| e.to_string()));
    }
    if !ASYMMETRIC.contains(&alg) {
        return Ok(Err(format!("private_key_jwt does not take {alg}")));
    }
    let keys = match client_keys(state, auth, false).await {
        Ok(keys) if find_key(&keys, kid, alg).is_some() => keys,
        // An unknown kid may be a new key: the published set is fetched again.
        Ok(_) if auth.jwks_uri.is_some() => match client_keys(state, auth, true).await {
            Ok(keys) => keys,
            Err(refusal) => return Ok(Err(refusal)),
        },
        Ok(keys) => keys,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let Some(jwk) = find_key(&keys, kid, alg) else { return Ok(Err("no registered key fits the assertion".into())) };
    Ok(verifier_for(alg, jwk))
}

/// The client's public keys: registered inline, or fetched from its `jwks_uri` (kept in the
/// key-value store for five minutes, shared by the instances).
async fn client_keys(state: &AppState, auth: &ClientJwtAuth, refresh: bool) -> Result<Vec<Jwk>, Refusal> {
    if let Some(inline) = &auth.jwks {
        return parse_keys(inline.as_bytes());
    }
    let Some(uri) = &auth.jwks_uri else { return Err("the client has no keys".into()) };
    let cache_key = format!("client-jwks:{}", b64url(sha256(uri)));
    if !refresh && let Ok(Some(cached)) = state.kv.get(&cache_key).await {
        return parse_keys(&cached);
    }
    let fetched = state.outbound.get(uri, Limits::default()).await.map_err(|e| format!("jwks_uri: {e}"))?;
    let keys = parse_keys(&fetched.body)?;
    // A failing cache only costs a fetch next time.
    let _ = state.kv.put(&cache_key, fetched.body, JWKS_CACHE_TTL).await;
    Ok(keys)
}

/// A JWK set of public keys; a set holding private key material is refused.
pub fn parse_keys(bytes: &[u8]) -> Result<Vec<Jwk>, Refusal> {
    let set = JwkSet::from_bytes(bytes).map_err(|e| format!("not a JWK set: {e}"))?;
    let keys: Vec<Jwk> = set.keys().into_iter().cloned().collect();
    if keys.is_empty() {
        return Err("the JWK set is empty".into());
    }
    if keys.iter().any(|key| key.parameter("d").is_some() || key.parameter("k").is_some()) {
        return Err("the JWK set holds private or symmetric key material".into());
    }
    Ok(keys)
}
