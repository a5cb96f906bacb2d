//! Standard claims released per scope (OIDC Core §5.4).

use serde_json::{Map, Value, json};

use crate::store::User;

pub fn for_scopes(user: &User, scopes: &[String]) -> Map<String, Value> {
    let mut claims = Map::new();
    let mut put = |name: &str, value: &Option<String>| {
        if let Some(value) = value {
            claims.insert(name.to_string(), Value::String(value.clone()));
        }
    };
    let has = |scope: &str| scopes.iter().any(|s| s == scope);
    if has("profile") {
        put("name", &user.name);
        put("given_name", &user.given_name);
        put("family_name", &user.family_name);
        put("picture", &user.picture);
        put("locale", &user.locale);
        put("zoneinfo", &user.zoneinfo);
    }
    if has("phone") {
        put("phone_number", &user.phone_number);
    }
    // An account without an email (made from an upstream that did not prove one) has no claims.
    if has("email")
        && let Some(email) = &user.email
    {
        claims.insert("email".into(), Value::String(email.clone()));
        claims.insert("email_verified".into(), Value::Bool(user.email_verified));
    }
    if has("profile") {
        claims.insert("updated_at".into(), json!(user.updated_at));
    }
    if has("phone") && user.phone_number.is_some() {
        claims.insert("phone_number_verified".into(), Value::Bool(user.phone_number_verified));
    }
    claims
}

pub const SUPPORTED: [&str; 17] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "amr",
    "azp",
    "at_hash",
    "name",
    "given_name",
    "family_name",
    "picture",
    "locale",
    "zoneinfo",
    "updated_at",
];
pub const SUPPORTED_MORE: [&str; 4] = ["email", "email_verified", "phone_number", "phone_number_verified"];
