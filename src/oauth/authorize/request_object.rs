//! JWT-secured authorization requests (RFC 9101): a signed `request` object passed by value at
//! `/authorize` and `/par`. Its signature is verified with the client's registered keys
//! (`private_key_jwt`: the asymmetric algorithms; `client_secret_jwt`: HS256/384/512 with its
//! secret) through the key loading of JWT client authentication, never `none`. Then `iss` must be
//! the `client_id` sent beside it, `aud` the issuer, `exp` ahead by at most an hour, `nbf` (if any)
//! reached, and `typ` (if any) `oauth-authz-req+jwt` or `JWT`.
//!
//! The object's claims are then the whole request (§6.3): parameters outside it other than
//! `client_id` are ignored, and the claims go through the usual checks. A `jti` is not required
//! to be single-use (RFC 9101 does not ask for it): replaying an object only starts the same
//! request again, which still needs the browser's login and the code's PKCE verifier.

use serde_json::{Map, Value};

use crate::oauth::client_assertion;
use crate::oauth::params::{MAX_PARAM_LEN, Params};
use crate::oauth::{ErrorCode, OAuthError};
use crate::state::AppState;
use crate::store::{Client, ClientJwtAuthStore};

/// A request object may be valid for at most this long.
const MAX_LIFETIME: i64 = 3600;
/// Clock difference tolerated between client and server.
const LEEWAY: i64 = 60;
/// The media type of RFC 9101 §10.2, as `typ` (without `application/`).
pub const TYP: &str = "oauth-authz-req+jwt";
/// Claims that describe the object itself rather than the authorization request.
const JWT_CLAIMS: [&str; 6] = ["iss", "aud", "exp", "nbf", "iat", "jti"];

/// Why a request object was refused.
#[derive(Debug)]
pub(super) enum Refused {
    /// The object is not shown to come from the client: nothing inside it can be trusted.
    Unverified(String),
    /// The object is the client's (its signature verifies) but breaks a rule; `claims` holds its
    /// parameters, so the error may go to the redirect URI it names once that is validated.
    Invalid { claims: Params, reason: String },
    /// A backing service failed.
    Outage(OAuthError),
}

impl Refused {
    pub(super) fn description(&self) -> String {
        match self {
            Refused::Unverified(reason) | Refused::Invalid { reason, .. } => format!("request object: {reason}"),
            Refused::Outage(_) => "request object: the keys could not be loaded".into(),
        }
    }

    /// The JSON error of `/par` (§2.3 of RFC 9126).
    pub(super) fn into_oauth_error(self) -> OAuthError {
        match self {
            Refused::Outage(error) => error,
            other => {
                OAuthError::Protocol { error: ErrorCode::InvalidRequestObject, description: other.description().into() }
            }
        }
    }
}

/// The parameters of the request: the verified object's claims when `params` carries a
/// `request`, else `params` itself. `client` is the client named by `client_id`.
pub(super) async fn effective_params(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> Result<Option<Params>, Refused> {
    if params.get("request").is_none() || params.get("request_uri").is_some() {
        // Without an object there is nothing to resolve; with both, the checks refuse the pair.
        return Ok(None);
    }
    if params.is_repeated("request") {
        return Err(Refused::Unverified("the request parameter is repeated".into()));
    }
    let object = params.get("request").unwrap_or_default();
    if object.len() > MAX_PARAM_LEN {
        return Err(Refused::Unverified(format!("longer than {MAX_PARAM_LEN} bytes")));
    }
    let claims = verify(state, client, object).await?;
    let as_params = to_params(&client.id, &claims).map_err(Refused::Unverified)?;
    match check_claims(state, &client.id, &claims) {
        Ok(()) => Ok(Some(as_params)),
        Err(reason) => Err(Refused::Invalid { claims: as_params, reason }),
    }
}

/// Checks the header and the signature; returns the claims.
async fn verify(state: &AppState, client: &Client, object: &str) -> Result<Map<String, Value>, Refused> {
    let refuse = |reason: String| Refused::Unverified(reason);
    let Some(auth) = state.db.client_jwt_auth(&client.id).await.map_err(|e| Refused::Outage(e.into()))? else {
        return Err(refuse(
            "the client has no registered keys (private_key_jwt) or secret (client_secret_jwt) to verify it with"
                .into(),
        ));
    };
    let header = josekit::jwt::decode_header(object).map_err(|e| refuse(format!("not a signed JWT: {e}")))?;
    let alg = header.claim("alg").and_then(Value::as_str).unwrap_or_default().to_string();
    if let Some(registered) = auth.request_object_alg.as_deref().filter(|registered| *registered != alg) {
        return Err(refuse(format!("the client registered request_object_signing_alg {registered}, not {alg}")));
    }
    match header.claim("typ").map(|typ| typ.as_str()) {
        None => {}
        Some(Some(typ)) if typ.eq_ignore_ascii_case(TYP) || typ.eq_ignore_ascii_case("JWT") => {}
        Some(_) => return Err(refuse(format!("typ must be {TYP}"))),
    }
    let kid = header.claim("kid").and_then(Value::as_str).map(str::to_string);
    let verifier = client_assertion::verifier(state, &auth, &alg, kid.as_deref())
        .await
        .map_err(Refused::Outage)?
        .map_err(|reason| refuse(format!("no key of the client verifies it ({reason})")))?;
    let (payload, _) = josekit::jwt::decode_with_verifier(object, verifier.as_ref())
        .map_err(|e| refuse(format!("the signature does not verify: {e}")))?;
    Ok(payload.claims_set().clone())
}

/// The rules on the object's own claims (RFC 9101 §4, §5, §6.3; OIDC Core §6.1).
fn check_claims(state: &AppState, client_id: &str, claims: &Map<String, Value>) -> Result<(), String> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(client_id) {
        return Err("iss must be the client_id".into());
    }
    if claims.get("client_id").is_some() && text("client_id") != Some(client_id) {
        return Err("its client_id differs from the client_id of the request".into());
    }
    let issuer = state.config.issuer.as_str();
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == issuer,
        Some(Value::Array(list)) => list.iter().any(|aud| aud.as_str() == Some(issuer)),
        _ => false,
    };
    if !audience_ok {
        return Err("aud must be the issuer".into());
    }
    let now = state.now();
    let Some(exp) = claims.get("exp").and_then(Value::as_i64) else { return Err("exp is required".into()) };
    if exp <= now - LEEWAY {
        return Err("it has expired".into());
    }
    if exp > now + MAX_LIFETIME + LEEWAY {
        return Err(format!("exp may be at most {MAX_LIFETIME} seconds ahead"));
    }
    if claims.get("nbf").and_then(Value::as_i64).is_some_and(|nbf| nbf > now + LEEWAY) {
        return Err("it is not valid yet (nbf)".into());
    }
    if claims.contains_key("request") || claims.contains_key("request_uri") {
        return Err("it must not contain request or request_uri".into());
    }
    Ok(())
}

/// The authorization parameters among the claims, as request parameters: strings as they are,
/// numbers and booleans in their JSON form (`max_age`), a one-element array as its element,
/// objects (`claims`) as JSON text; `client_id` is the one sent beside the object.
fn to_params(client_id: &str, claims: &Map<String, Value>) -> Result<Params, String> {
    let mut pairs: Vec<(String, String)> = vec![("client_id".into(), client_id.into())];
    for (name, value) in claims {
        if JWT_CLAIMS.contains(&name.as_str()) || name == "client_id" {
            continue;
        }
        let value = match value {
            Value::Null => continue,
            Value::String(text) => text.clone(),
            Value::Array(list) => match list.as_slice() {
                [Value::String(only)] => only.clone(),
                _ => return Err(format!("the claim {name} must be a single value")),
            },
            other => other.to_string(),
        };
        pairs.push((name.clone(), value));
    }
    Ok(Params::from_pairs(pairs.iter().map(|(name, value)| (name.as_str(), value.as_str()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_become_parameters() {
        let claims = json!({
            "iss": "c1", "aud": "https://idp", "exp": 1, "client_id": "c1", "max_age": 0,
            "scope": "openid", "resource": ["https://api"], "claims": {"userinfo": {}}, "state": null,
        });
        let Value::Object(claims) = claims else { panic!("an object") };
        let params = to_params("c1", &claims).expect("parameters");
        assert_eq!(params.get("client_id"), Some("c1"));
        assert_eq!(params.get("max_age"), Some("0"));
        assert_eq!(params.get("scope"), Some("openid"));
        assert_eq!(params.get("resource"), Some("https://api"));
        assert_eq!(params.get("claims"), Some(r#"{"userinfo":{}}"#));
        assert_eq!(params.get("iss"), None);
        assert_eq!(params.get("state"), None);
        let Value::Object(two) = json!({"resource": ["a", "b"]}) else { panic!("an object") };
        assert!(to_params("c1", &two).is_err());
    }
}
