//! Scope strings: parsing (RFC 6749 §3.3) and which scopes a client may receive.

use super::OAuthError;
use crate::store::Client;

pub const OPENID: &str = "openid";
pub const OFFLINE_ACCESS: &str = "offline_access";
/// Self-service access to oxidp's own account API.
pub const ACCOUNT: &str = "account";
/// Administrative access to oxidp's own API.
pub const ADMIN: &str = "admin";

pub const STANDARD_SCOPES: [&str; 7] = [OPENID, "profile", "email", "phone", OFFLINE_ACCESS, ACCOUNT, ADMIN];
/// Scopes that describe a user; meaningless for client_credentials.
pub const USER_SCOPES: [&str; 5] = [OPENID, "profile", "email", "phone", OFFLINE_ACCESS];

/// Splits a scope parameter into distinct tokens, keeping their order.
pub fn parse(text: &str) -> Result<Vec<String>, OAuthError> {
    let mut scopes: Vec<String> = Vec::new();
    for token in text.split(' ').filter(|token| !token.is_empty()) {
        // scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
        if !token.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)) {
            return Err(OAuthError::invalid_scope("scope contains characters RFC 6749 does not allow"));
        }
        if !scopes.iter().any(|existing| existing == token) {
            scopes.push(token.to_string());
        }
    }
    Ok(scopes)
}

pub fn join(scopes: &[String]) -> String {
    scopes.join(" ")
}

pub fn contains(scopes: &[String], scope: &str) -> bool {
    scopes.iter().any(|s| s == scope)
}

/// Scopes that reach oxidp's own API: only first-party clients or clients an admin allowed.
pub fn is_api_scope(scope: &str) -> bool {
    scope == ACCOUNT || scope == ADMIN
}

/// Checks requested scopes against the client's registration; without a request,
/// the client's registered scopes minus the ones that must be asked for explicitly.
pub fn resolve_for_client(client: &Client, requested: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let requested = match requested {
        Some(text) => parse(text)?,
        None => Vec::new(),
    };
    if requested.is_empty() {
        return Ok(client.scopes.iter().filter(|s| *s != OFFLINE_ACCESS && !is_api_scope(s)).cloned().collect());
    }
    for scope in &requested {
        if !contains(&client.scopes, scope) {
            return Err(OAuthError::invalid_scope(format!("scope '{scope}' is not allowed for this client")));
        }
        if is_api_scope(scope) && !(client.first_party || client.api_access) {
            return Err(OAuthError::invalid_scope(format!("scope '{scope}' is only for first-party clients")));
        }
    }
    Ok(requested)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_dedupes_and_validates() {
        assert_eq!(parse("openid  email openid").expect("valid"), vec!["openid", "email"]);
        assert!(parse("openid \"quoted\"").is_err());
        assert!(parse("back\\slash").is_err());
        assert!(parse("").expect("empty is fine").is_empty());
    }
}
