//! DPoP (RFC 9449): proofs of possession of a client's key, at `/token`, `/par`, `/userinfo`
//! and oxidp's own API.
//!
//! A proof is accepted when it is a JWS of type `dpop+jwt` signed with an asymmetric algorithm
//! ([`ALGS`]) by the public key in its own `jwk` header (private members refused), names the
//! request's method (`htm`) and `{issuer}{path}` (`htu`; never the Host or forwarded headers),
//! was made within the configured leeway of now (`iat`), hashes the access token at a resource
//! (`ath`), carries a valid server nonce when nonces are on, and its `jti` was not seen before
//! for that key (kept in the shared key-value store until the proof could no longer pass the
//! `iat` check, so a replay fails on every instance).
//!
//! Nonces need no shared state: a nonce is a time window and a keyed hash of it under the
//! server secret, so every instance of a deployment makes and accepts the same ones. The
//! current and the previous window are accepted.

use std::collections::BTreeMap;

use josekit::jwk::Jwk;
use serde_json::{Map, Value};

use super::{ErrorCode, OAuthError};
use crate::config::Switch;
use crate::crypto::jws::verifier_for;
use crate::crypto::{b64url, constant_time_eq, sha256};
use crate::state::AppState;

/// The algorithms a proof may use (discovery's `dpop_signing_alg_values_supported`).
pub use crate::crypto::jws::DPOP as ALGS;
pub const TYP: &str = "dpop+jwt";
/// The authorization scheme of DPoP-bound tokens at resources.
pub const SCHEME: &str = "DPoP";
/// Seconds one nonce window lasts; a nonce is good in its window and the next.
const NONCE_WINDOW: i64 = 300;
const NONCE_PURPOSE: &str = "dpop-nonce";
/// A proof carries a public key and a few claims; anything longer is not one.
const MAX_PROOF_LEN: usize = 8 * 1024;
/// Members of a JWK that only a private or symmetric key has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The request a proof must describe.
pub struct ProofContext<'a> {
    /// The HTTP method (`htm`).
    pub method: &'a str,
    /// `{issuer}{path}` of the request (`htu`).
    pub url: &'a str,
    /// At a resource: the access token the proof must hash in `ath`.
    pub access_token: Option<&'a str>,
}

/// The one `DPoP` header of a request: none, or exactly one (RFC 9449 §4.3 item 1).
pub fn single(headers: &[String]) -> Result<Option<&str>, OAuthError> {
    match headers {
        [] => Ok(None),
        [one] => Ok(Some(one.as_str())),
        _ => Err(OAuthError::invalid_dpop_proof("exactly one DPoP header is allowed")),
    }
}

/// Checks `proof` for the request `context`; returns the thumbprint (RFC 7638) of its key.
pub async fn verify_proof(state: &AppState, proof: &str, context: &ProofContext<'_>) -> Result<String, OAuthError> {
    let refuse = |text: String| OAuthError::invalid_dpop_proof(text);
    if proof.len() > MAX_PROOF_LEN {
        return Err(refuse("the DPoP proof is too long".into()));
    }
    let header = josekit::jwt::decode_header(proof).map_err(|_| refuse("the DPoP proof is not a JWS".into()))?;
    let typ = header.claim("typ").and_then(Value::as_str).unwrap_or_default();
    if !typ.eq_ignore_ascii_case(TYP) {
        return Err(refuse("the DPoP proof's typ must be dpop+jwt".into()));
    }
    let alg = header.claim("alg").and_then(Value::as_str).unwrap_or_default();
    if !ALGS.contains(&alg) {
        return Err(refuse(format!("the DPoP proof's alg must be one of {}", ALGS.join(", "))));
    }
    let Some(Value::Object(jwk)) = header.claim("jwk") else {
        return Err(refuse("the DPoP proof has no jwk header".into()));
    };
    if PRIVATE_MEMBERS.iter().any(|member| jwk.contains_key(*member)) {
        return Err(refuse("the DPoP proof's jwk holds private key material".into()));
    }
    let jwk = Jwk::from_map(jwk.clone()).map_err(|_| refuse("the DPoP proof's jwk is not a key".into()))?;
    let verifier = verifier_for(alg, &jwk).map_err(|_| refuse("the DPoP proof's jwk does not fit its alg".into()))?;
    let claims = match josekit::jwt::decode_with_verifier(proof, verifier.as_ref()) {
        Ok((payload, _)) => payload.claims_set().clone(),
        Err(_) => return Err(refuse("the DPoP proof's signature does not verify".into())),
    };
    let (jti, iat) = check_claims(state, &claims, context)?;
    check_nonce(state, &claims)?;
    let jkt = thumbprint(&jwk)?;
    // Single use for as long as the proof could pass the iat check, on every instance.
    let leeway = state.config.dpop_iat_leeway;
    let key = format!("dpop-jti:{}", b64url(sha256(format!("{jkt}\n{jti}"))));
    if state.kv.increment(&key, (iat + leeway - state.now() + 1).max(1)).await? > 1 {
        return Err(refuse("the DPoP proof was already used".into()));
    }
    Ok(jkt)
}

/// `jti`, `htm`, `htu`, `iat` and `ath`; returns the `jti` and the `iat`.
fn check_claims(
    state: &AppState,
    claims: &Map<String, Value>,
    context: &ProofContext<'_>,
) -> Result<(String, i64), OAuthError> {
    let refuse = |text: String| OAuthError::invalid_dpop_proof(text);
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let jti = match text("jti") {
        Some(jti) if !jti.is_empty() && jti.len() <= 256 => jti.to_string(),
        _ => return Err(refuse("the DPoP proof needs a jti (at most 256 characters)".into())),
    };
    if text("htm") != Some(context.method) {
        return Err(refuse(format!("the DPoP proof's htm must be {}", context.method)));
    }
    if !same_uri(text("htu").unwrap_or_default(), context.url) {
        return Err(refuse(format!("the DPoP proof's htu must be {}", context.url)));
    }
    let Some(iat) = claims.get("iat").and_then(Value::as_i64) else {
        return Err(refuse("the DPoP proof needs an iat".into()));
    };
    let leeway = state.config.dpop_iat_leeway;
    if (state.now() - iat).abs() > leeway {
        return Err(refuse(format!("the DPoP proof's iat must be within {leeway} seconds of now")));
    }
    if let Some(token) = context.access_token {
        let expected = b64url(sha256(token));
        match text("ath") {
            Some(ath) if constant_time_eq(ath.as_bytes(), expected.as_bytes()) => {}
            Some(_) => return Err(refuse("the DPoP proof's ath is not the access token's hash".into())),
            None => return Err(refuse("the DPoP proof needs ath at a resource".into())),
        }
    }
    Ok((jti, iat))
}

/// RFC 9449 §4.3 item 9: the URIs compared without query and fragment (normalised by the
/// URL parser: scheme and host case, default ports).
fn same_uri(htu: &str, expected: &str) -> bool {
    let strip = |text: &str| {
        url::Url::parse(text).ok().map(|mut url| {
            url.set_query(None);
            url.set_fragment(None);
            url
        })
    };
    matches!((strip(htu), strip(expected)), (Some(a), Some(b)) if a == b)
}

/// With `OXIDP_DPOP_NONCES=on`, a proof must carry a nonce of the current or previous window.
fn check_nonce(state: &AppState, claims: &Map<String, Value>) -> Result<(), OAuthError> {
    if state.config.dpop_nonces != Switch::On {
        return Ok(());
    }
    let (description, given) = match claims.get("nonce").and_then(Value::as_str) {
        None => ("the authorization server requires a DPoP nonce", None),
        Some(nonce) => ("the DPoP nonce is stale or not this server's", Some(nonce)),
    };
    if given.is_some_and(|nonce| nonce_is_valid(state, nonce)) {
        return Ok(());
    }
    Err(OAuthError::Dpop {
        error: ErrorCode::UseDpopNonce,
        description: description.into(),
        nonce: Some(fresh_nonce(state)),
    })
}

/// The nonce of the current window (sent in `DPoP-Nonce`).
pub fn fresh_nonce(state: &AppState) -> String {
    nonce_for(state, state.now().div_euclid(NONCE_WINDOW))
}

fn nonce_for(state: &AppState, window: i64) -> String {
    format!("{window}.{}", state.secret.keyed_hash(NONCE_PURPOSE, &window.to_string()))
}

fn nonce_is_valid(state: &AppState, nonce: &str) -> bool {
    let Some(window) = nonce.split_once('.').and_then(|(window, _)| window.parse::<i64>().ok()) else {
        return false;
    };
    let current = state.now().div_euclid(NONCE_WINDOW);
    (window == current || window == current - 1)
        && constant_time_eq(nonce_for(state, window).as_bytes(), nonce.as_bytes())
}

/// RFC 7638: SHA-256 over the key's required members, in lexicographic order, no whitespace.
pub fn thumbprint(jwk: &Jwk) -> Result<String, OAuthError> {
    let members: &[&str] = match jwk.key_type() {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return Err(OAuthError::invalid_dpop_proof("the DPoP proof's key type is not supported")),
    };
    let mut canonical = BTreeMap::new();
    for member in members {
        let value = jwk
            .parameter(member)
            .and_then(Value::as_str)
            .ok_or_else(|| OAuthError::invalid_dpop_proof(format!("the DPoP proof's jwk lacks {member}")))?;
        canonical.insert(*member, value);
    }
    let json = serde_json::to_string(&canonical).map_err(|e| OAuthError::Internal(e.to_string()))?;
    Ok(b64url(sha256(json)))
}

/// A `dpop_jkt` parameter (RFC 9449 §10): a base64url SHA-256 thumbprint.
pub fn is_thumbprint(text: &str) -> bool {
    text.len() == 43 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 9449 §7.1: the `WWW-Authenticate` challenge of a refused resource request, naming
/// the algorithms proofs may use.
pub fn challenge(error: ErrorCode, description: &str) -> String {
    format!(
        "{SCHEME} algs=\"{}\", error=\"{error}\", error_description=\"{}\"",
        ALGS.join(" "),
        description.replace(['"', '\\'], "'")
    )
}

/// How a resource request presented its access token.
pub enum Presentation<'a> {
    /// `Authorization: Bearer` (or the form body at /userinfo).
    Bearer,
    /// `Authorization: DPoP` with the request's `DPoP` headers.
    Dpop { proofs: &'a [String], method: &'a str, url: &'a str },
}

/// At a resource: a bound token (`cnf.jkt`) only with the DPoP scheme and a proof of its key
/// hashing it (`ath`); the DPoP scheme only with a bound token.
pub async fn check_presentation(
    state: &AppState,
    bound_to: Option<&str>,
    token: &str,
    presentation: &Presentation<'_>,
) -> Result<(), OAuthError> {
    let invalid_token = |description: &'static str| OAuthError::Dpop {
        error: ErrorCode::InvalidToken,
        description: description.into(),
        nonce: None,
    };
    match (presentation, bound_to) {
        (Presentation::Bearer, None) => Ok(()),
        (Presentation::Bearer, Some(_)) => {
            Err(invalid_token("the access token is DPoP-bound: send it with the DPoP scheme and a proof"))
        }
        (Presentation::Dpop { .. }, None) => Err(invalid_token("the access token is not DPoP-bound")),
        (Presentation::Dpop { proofs, method, url }, Some(jkt)) => {
            let Some(proof) = single(proofs)? else {
                return Err(OAuthError::invalid_dpop_proof("a DPoP proof is required with the DPoP scheme"));
            };
            let context = ProofContext { method, url, access_token: Some(token) };
            let proven = verify_proof(state, proof, &context).await?;
            if proven != jkt {
                return Err(OAuthError::invalid_dpop_proof("the DPoP proof's key is not the access token's"));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = Jwk::from_bytes(
            br#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        )
        .expect("jwk");
        assert_eq!(thumbprint(&jwk).ok().as_deref(), Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"));
    }

    #[test]
    fn htu_ignores_query_and_fragment_but_not_path() {
        assert!(same_uri("https://idp.example.com/token?x=1#f", "https://idp.example.com/token"));
        assert!(same_uri("HTTPS://IDP.example.com:443/token", "https://idp.example.com/token"));
        assert!(!same_uri("https://idp.example.com/token2", "https://idp.example.com/token"));
        assert!(!same_uri("https://evil.example.com/token", "https://idp.example.com/token"));
        assert!(!same_uri("", "https://idp.example.com/token"));
    }

    #[test]
    fn thumbprint_parameter_shape() {
        assert!(is_thumbprint("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"));
        assert!(!is_thumbprint("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9X"));
        assert!(!is_thumbprint("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9X="));
    }
}
