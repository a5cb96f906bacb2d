//! RFC 9068 JWT access tokens: minting, the audience rule, and validation for oxidp's own endpoints.

use serde_json::{Map, Value, json};

pub use super::validated_token::ValidatedAccessToken;
use super::{OAuthError, scope};
use crate::state::AppState;
use crate::store::{Client, GrantStore};

pub const TYP: &str = "at+jwt";

/// The audience of a token: the requested (registered) resource, else the client's configured
/// audiences, else its client_id. Tokens carrying `account`/`admin` also name oxidp's API.
pub fn audience(state: &AppState, client: &Client, resource: Option<&str>, scopes: &[String]) -> Vec<String> {
    let mut audience = match resource {
        Some(resource) => vec![resource.to_string()],
        None if !client.audiences.is_empty() => client.audiences.clone(),
        None => vec![client.id.clone()],
    };
    let api = state.config.api_audience();
    if resource.is_none() && scopes.iter().any(|s| scope::is_api_scope(s)) && !audience.contains(&api) {
        audience.push(api);
    }
    audience
}

/// Checks an RFC 8707 `resource` against what the client registered (oxidp's API counts as
/// registered for clients allowed its scopes).
pub fn check_resource(state: &AppState, client: &Client, resource: Option<&str>) -> Result<(), OAuthError> {
    let Some(resource) = resource else { return Ok(()) };
    let api_allowed = (client.first_party || client.api_access) && resource == state.config.api_audience();
    if api_allowed || client.resources.iter().any(|r| r == resource) {
        Ok(())
    } else {
        Err(OAuthError::invalid_target("resource is not registered for this client"))
    }
}

pub struct MintedAccessToken {
    pub token: String,
    pub jti: String,
    pub expires_at: i64,
}

pub struct AccessTokenSpec<'a> {
    pub client: &'a Client,
    pub subject: &'a str,
    pub scopes: &'a [String],
    pub audience: Vec<String>,
    pub auth_time: Option<i64>,
    /// RFC 8693 §4.1: the actor of a delegated token.
    pub act: Option<Value>,
    /// An end earlier than the usual lifetime (a token exchanged from a shorter-lived one).
    pub expires_at: Option<i64>,
    /// RFC 9449 §6: the thumbprint of the DPoP key the token is bound to (`cnf.jkt`).
    pub jkt: Option<&'a str>,
}

pub fn mint(state: &AppState, spec: AccessTokenSpec<'_>) -> Result<MintedAccessToken, OAuthError> {
    let now = state.now();
    let usual = now + state.config.access_token_ttl;
    let expires_at = spec.expires_at.map_or(usual, |end| end.min(usual));
    let jti = crate::crypto::random_token(16);
    let mut claims = Map::new();
    claims.insert("iss".into(), Value::String(state.config.issuer.clone()));
    claims.insert("sub".into(), Value::String(spec.subject.to_string()));
    claims.insert("aud".into(), audience_value(spec.audience));
    claims.insert("exp".into(), json!(expires_at));
    claims.insert("iat".into(), json!(now));
    claims.insert("jti".into(), Value::String(jti.clone()));
    claims.insert("client_id".into(), Value::String(spec.client.id.clone()));
    claims.insert("scope".into(), Value::String(scope::join(spec.scopes)));
    if let Some(auth_time) = spec.auth_time {
        claims.insert("auth_time".into(), json!(auth_time));
    }
    if let Some(act) = spec.act {
        claims.insert("act".into(), act);
    }
    if let Some(jkt) = spec.jkt {
        claims.insert("cnf".into(), json!({ "jkt": jkt }));
    }
    let token = state.keys.sign(TYP, &claims)?;
    Ok(MintedAccessToken { token, jti, expires_at })
}

/// A single audience is written as a string, several as an array.
pub fn audience_value(mut audience: Vec<String>) -> Value {
    if audience.len() == 1 { Value::String(audience.remove(0)) } else { json!(audience) }
}

/// Why validation failed, for logs only; every case is `invalid_token` on the wire.
pub async fn validate(state: &AppState, token: &str) -> Result<ValidatedAccessToken, OAuthError> {
    let mut parsed = verified_signature(state, token).map_err(OAuthError::invalid_token)?;
    if parsed.expires_at <= state.now() {
        return Err(OAuthError::invalid_token("the access token has expired"));
    }
    // A token of a client that has since been deleted is worthless.
    if super::clients::find_shared(state, &parsed.client_id).await?.is_none() {
        return Err(OAuthError::invalid_token("the client is no longer registered"));
    }
    if parsed.is_client_token()
        && let Some(revoked) = &state.revoked_client_tokens
    {
        if revoked.contains(&parsed.jti) {
            return Err(OAuthError::invalid_token("the access token has been revoked"));
        }
    } else if let Some(server_state) = state.db.access_token_state(&parsed.jti).await? {
        if server_state.is_revoked() {
            return Err(OAuthError::invalid_token("the access token has been revoked"));
        }
        parsed.grant_id = server_state.grant_id;
    } else if !parsed.is_client_token() {
        // Every user-bound token is recorded at issuance; an unknown one was not issued here.
        return Err(OAuthError::invalid_token("unknown access token"));
    }
    Ok(parsed)
}

/// [`parse_signed`] through the verified-token cache, so a token is verified once however many
/// checks read it (the API's DPoP binding check, then its validation). Expired tokens are
/// returned (the caller decides) but never cached.
pub fn verified_signature(state: &AppState, token: &str) -> Result<ValidatedAccessToken, &'static str> {
    let now = state.now();
    let key = crate::cache::VerifiedTokens::<ValidatedAccessToken>::key(token);
    if let Some(verified) = state.verified_tokens.get(&key, now) {
        return Ok(verified);
    }
    let parsed = parse_signed(state, token)?;
    if parsed.expires_at > now {
        state.verified_tokens.insert(key, parsed.expires_at, parsed.clone(), now);
    }
    Ok(parsed)
}

/// Signature and claim shape only, no time or revocation checks.
pub fn parse_signed(state: &AppState, token: &str) -> Result<ValidatedAccessToken, &'static str> {
    let (header, claims) = state.keys.verify(token).map_err(|_| "signature or format is invalid")?;
    if header.get("typ").and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() != Some(TYP) {
        return Err("not an access token");
    }
    if claims.get("iss").and_then(Value::as_str) != Some(state.config.issuer.as_str()) {
        return Err("issuer mismatch");
    }
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_string);
    let (Some(subject), Some(client_id), Some(jti)) = (text("sub"), text("client_id"), text("jti")) else {
        return Err("required claims missing");
    };
    let expires_at = claims.get("exp").and_then(Value::as_i64).ok_or("exp missing")?;
    let scopes =
        text("scope").map(|s| s.split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect()).unwrap_or_default();
    let audience = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    let jkt = claims.get("cnf").and_then(|cnf| cnf.get("jkt")).and_then(Value::as_str).map(str::to_string);
    Ok(ValidatedAccessToken { claims, subject, client_id, scopes, audience, jti, expires_at, grant_id: None, jkt })
}
