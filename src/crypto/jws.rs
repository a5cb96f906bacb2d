//! Verifying compact JWS with keys someone else holds (a trusted issuer's, a client's): which
//! key of a set fits a token, and josekit's verifier for it. Nothing is implemented here; the
//! algorithms are josekit's.

use josekit::jwk::Jwk;
use josekit::jws::JwsVerifier;
use serde_json::{Map, Value};

use super::b64url_decode;

/// The asymmetric algorithms accepted from others (never `none`, never HMAC with a public key).
pub const ASYMMETRIC: [&str; 9] = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

/// The algorithms of DPoP proofs (RFC 9449), as discovery lists them.
pub const DPOP: [&str; 4] = ["ES256", "EdDSA", "RS256", "PS256"];

/// The HMAC algorithms accepted with a shared secret (`client_secret_jwt`).
pub const HMAC: [&str; 3] = ["HS256", "HS384", "HS512"];

/// The claims of a compact JWS, unverified: only to see whose key to look for.
pub fn unverified_claims(token: &str) -> Option<Map<String, Value>> {
    let mut parts = token.split('.');
    let (_, payload, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else { return None };
    serde_json::from_slice(&b64url_decode(payload)?).ok()
}

/// The key for `kid` (or, for a token without one, the only key that fits the algorithm).
pub fn find_key<'a>(keys: &'a [Jwk], kid: Option<&str>, alg: &str) -> Option<&'a Jwk> {
    let fits = |jwk: &&Jwk| {
        jwk.algorithm().is_none_or(|a| a == alg)
            && jwk.key_use().is_none_or(|u| u == "sig")
            && match alg {
                "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => jwk.key_type() == "RSA",
                "ES256" | "ES384" => jwk.key_type() == "EC",
                _ => jwk.key_type() == "OKP",
            }
    };
    match kid {
        Some(kid) => keys.iter().filter(fits).find(|jwk| jwk.key_id() == Some(kid)),
        None => {
            let mut candidates = keys.iter().filter(fits);
            match (candidates.next(), candidates.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        }
    }
}

/// josekit's verifier for `jwk`. The key was already chosen by [`find_key`], so its `kid` is
/// dropped: josekit would otherwise refuse a token without a `kid` header for a key with one.
pub fn verifier_for(alg: &str, jwk: &Jwk) -> Result<Box<dyn JwsVerifier>, String> {
    use josekit::jws::*;
    let mut map = jwk.as_ref().clone();
    map.remove("kid");
    let jwk = &Jwk::from_map(map).map_err(|e| format!("key: {e}"))?;
    let verifier: Result<Box<dyn JwsVerifier>, josekit::JoseError> = match alg {
        "RS256" => RS256.verifier_from_jwk(jwk).map(|v| Box::new(v) as Box<dyn JwsVerifier>),
        "RS384" => RS384.verifier_from_jwk(jwk).map(|v| Box::new(v) as Box<dyn JwsVerifier>),
        "RS512" => RS512.verifier_from_jwk(jwk).map(|v| Box::new(v) as Box<dyn JwsVerifier>),
        "PS256" => PS256.verifier_from_jwk(jwk).map(|v| Box::new(v) as Box<dyn JwsVerifier>),
        "PS384" => PS384.verifier_from_jwk(jwk).map(|v| Box::new(v) as Box<dyn JwsVerifier>),
        "PS512" => PS512.verifier_from_jwk(jwk).map(|v| Box::new(v) as Box<dyn JwsVerifier>),
        "ES256" => ES256.verifier_from_jwk(jwk).map(|v| Box::new(v) as Box<dyn JwsVerifier>),
        "ES384" => ES384.verifier_from_jwk(jwk).map(|v| Box::new(v) as Box<dyn JwsVerifier>),
        "EdDSA" => EdDSA.verifier_from_jwk(jwk).map(|v| Box::new(v) as Box<dyn JwsVerifier>),
        other => return Err(format!("algorithm {other} is not accepted")),
    };
    verifier.map_err(|e| format!("key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unverified_claims_need_three_parts() {
        assert!(unverified_claims("a.b").is_none());
        assert!(unverified_claims("a.b.c.d").is_none());
        let payload = crate::crypto::b64url(br#"{"iss":"https://idp.example.com"}"#);
        let claims = unverified_claims(&format!("e30.{payload}.sig")).expect("claims");
        assert_eq!(claims["iss"], "https://idp.example.com");
    }
}
