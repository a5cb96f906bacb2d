//! API clients (SPEC §5): services calling the admin API with `X-Client-Key` + `X-API-Key`.
//! Every credential failure is the same answer; the reason goes to the audit log only.

use std::net::IpAddr;

use ipnet::IpNet;

use serde_json::json;

use crate::audit::Initiator;
use crate::crypto::random_token;
use crate::passwords;
use crate::state::AppState;
use crate::store::{ApiClient, ApiClientStore};

const HASH_PURPOSE: &str = "api-client-secret";
/// The prefix of secrets hashed with oxidp's fast keyed hash.
const KEYED_PREFIX: &str = "keyed:";

#[derive(Debug, thiserror::Error)]
pub enum ApiClientError {
    /// Unknown, inactive, expired or wrong secret: one answer for all (reason for the audit log).
    #[error("invalid API client credentials")]
    Unauthenticated { reason: &'static str, client_id: Option<String> },
    #[error("{0}")]
    NotAllowed(&'static str),
    #[error("rate limited")]
    RateLimited { retry_after: i64 },
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("no such API client")]
    NotFound,
    #[error("service unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

crate::store::from_store_error!(ApiClientError);

impl From<crate::kv::KvError> for ApiClientError {
    fn from(_: crate::kv::KvError) -> Self {
        ApiClientError::Unavailable
    }
}

pub struct NewApiClient {
    pub name: String,
    pub expires_at: Option<i64>,
    pub allowed_ips: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_paths: Vec<String>,
    pub rate_limit_per_minute: i64,
}

pub fn keyed_hash(state: &AppState, secret: &str) -> String {
    format!("{KEYED_PREFIX}{}", state.secret.keyed_hash(HASH_PURPOSE, secret))
}

/// The settings an admin chooses, checked the same way at creation and update.
fn validate(new: &NewApiClient, now: i64) -> Result<(), ApiClientError> {
    let invalid = |field, message: String| ApiClientError::Invalid { field, message };
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("name", "1 to 100 characters".into()));
    }
    for cidr in &new.allowed_ips {
        parse_network(cidr).ok_or_else(|| invalid("allow_ip", format!("'{cidr}' is not an IP address or CIDR")))?;
    }
    if new.allowed_paths.iter().any(|p| !p.starts_with('/')) {
        return Err(invalid("allowed_paths", "path prefixes start with /".into()));
    }
    if new.rate_limit_per_minute < 1 {
        return Err(invalid("rate_limit_per_minute", "must be at least 1".into()));
    }
    if new.expires_at.is_some_and(|at| at <= now) {
        return Err(invalid("expires_at", "must be in the future".into()));
    }
    Ok(())
}

/// Fields to change; `None` leaves a field as it is (`expires_at: Some(None)` removes the expiry).
#[derive(Debug, Default)]
pub struct ApiClientChange {
    pub name: Option<String>,
    /// `active` or `disabled`.
    pub status: Option<String>,
    pub expires_at: Option<Option<i64>>,
    pub allowed_ips: Option<Vec<String>>,
    pub allowed_origins: Option<Vec<String>>,
    pub allowed_paths: Option<Vec<String>>,
    pub rate_limit_per_minute: Option<i64>,
}

pub async fn existing(state: &AppState, id: &str) -> Result<ApiClient, ApiClientError> {
    state.db.api_client_by_id(id).await?.ok_or(ApiClientError::NotFound)
}

/// Applies new settings (and status `active` or `disabled`) to an existing API client.
pub async fn update(
    state: &AppState,
    by: &Initiator,
    id: &str,
    change: ApiClientChange,
) -> Result<ApiClient, ApiClientError> {
    let mut client = existing(state, id).await?;
    let new = NewApiClient {
        name: change.name.unwrap_or_else(|| client.name.clone()),
        expires_at: change.expires_at.unwrap_or(client.expires_at),
        allowed_ips: change.allowed_ips.unwrap_or_else(|| client.allowed_ips.clone()),
        allowed_origins: change.allowed_origins.unwrap_or_else(|| client.allowed_origins.clone()),
        allowed_paths: change.allowed_paths.unwrap_or_else(|| client.allowed_paths.clone()),
        rate_limit_per_minute: change.rate_limit_per_minute.unwrap_or(client.rate_limit_per_minute),
    };
    validate(&new, state.now())?;
    if let Some(status) = change.status {
        if status != "active" && status != "disabled" {
            return Err(ApiClientError::Invalid { field: "status", message: "active or disabled".into() });
        }
        client.status = status;
    }
    client.name = new.name.trim().to_string();
    client.expires_at = new.expires_at;
    client.allowed_ips = new.allowed_ips;
    client.allowed_origins = new.allowed_origins;
    client.allowed_paths = new.allowed_paths;
    client.rate_limit_per_minute = new.rate_limit_per_minute;
    state.db.update_api_client(&client, state.now()).await?;
    by.record(state, "api_client.update", ("api_client", &client.id), json!({ "status": client.status })).await?;
    Ok(client)
}

/// Disables an API client: its credentials stop working at once.
pub async fn disable(state: &AppState, by: &Initiator, id: &str) -> Result<(), ApiClientError> {
    if !state.db.set_api_client_status(id, "disabled", state.now()).await? {
        return Err(ApiClientError::NotFound);
    }
    by.record(state, "api_client.disable", ("api_client", id), json!({})).await?;
    Ok(())
}

/// Creates an API client; the secret is returned once.
pub async fn create(
    state: &AppState,
    by: &Initiator,
    new: NewApiClient,
) -> Result<(ApiClient, String), ApiClientError> {
    let now = state.now();
    validate(&new, now)?;
    let name = new.name.trim();
    let secret = format!("oxs_{}", random_token(32));
    let client = ApiClient {
        id: format!("apc_{}", random_token(12)),
        name: name.to_string(),
        secret_hash: keyed_hash(state, &secret),
        status: "active".into(),
        expires_at: new.expires_at,
        allowed_origins: new.allowed_origins,
        allowed_ips: new.allowed_ips,
        allowed_paths: new.allowed_paths,
        rate_limit_per_minute: new.rate_limit_per_minute,
        created_at: now,
        updated_at: now,
        last_used_at: None,
    };
    state.db.insert_api_client(&client).await?;
    by.record(state, "api_client.create", ("api_client", &client.id), json!({ "name": client.name })).await?;
    Ok((client, secret))
}

fn parse_network(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>().ok().or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

/// Checks a secret against a fast stored form: oxidp's keyed hash, or `sha256:<hex>`.
/// Returns (matches, should be re-hashed to the keyed form).
fn verify_fast(state: &AppState, secret: &str, stored: &str) -> (bool, bool) {
    if let Some(keyed) = stored.strip_prefix(KEYED_PREFIX) {
        return (state.secret.verify_keyed_hash(HASH_PURPOSE, secret, keyed), false);
    }
    if let Some(hex) = stored.strip_prefix("sha256:") {
        let digest: String = crate::crypto::sha256(secret).iter().map(|b| format!("{b:02x}")).collect();
        return (crate::crypto::constant_time_eq(digest.as_bytes(), hex.to_ascii_lowercase().as_bytes()), true);
    }
    (false, false)
}

/// argon2id or bcrypt (migrated from other systems): CPU-heavy, run through the password gate.
fn verify_slow(secret: &str, stored: &str) -> bool {
    if stored.starts_with("$argon2") {
        passwords::verify_password(secret, Some(stored))
    } else if stored.starts_with("$2") {
        bcrypt::verify(secret, stored).unwrap_or(false)
    } else {
        false
    }
}

/// A request's facts that allowlists check.
pub struct RequestFacts<'a> {
    pub ip: &'a str,
    /// The `Origin` header.
    pub origin: Option<&'a str>,
    pub path: &'a str,
    /// Where the request came from, for the audit entry of a failure.
    pub from: &'a crate::audit::Origin,
}

/// Authenticates an API client, then applies its allowlists and its per-minute rate limit.
/// A credential failure is audited with its reason (the caller answers one uniform 401).
pub async fn authenticate(
    state: &AppState,
    id: &str,
    secret: &str,
    facts: &RequestFacts<'_>,
) -> Result<ApiClient, ApiClientError> {
    let result = check(state, id, secret, facts).await;
    if let Err(ApiClientError::Unauthenticated { reason, client_id }) = &result {
        let event = crate::audit::Event {
            actor: crate::audit::Actor::Anonymous,
            action: "api_client.auth_failed",
            target: client_id.as_deref().map(|id| ("api_client", id)),
            details: json!({ "reason": reason }),
        };
        if let Err(error) = crate::audit::record(state, facts.from, event).await {
            tracing::warn!(%error, "could not write the audit log");
        }
    }
    result
}

async fn check(
    state: &AppState,
    id: &str,
    secret: &str,
    facts: &RequestFacts<'_>,
) -> Result<ApiClient, ApiClientError> {
    let unauthenticated = |reason, client_id: Option<&str>| ApiClientError::Unauthenticated {
        reason,
        client_id: client_id.map(str::to_string),
    };
    if id.is_empty() || id.len() > 64 || secret.is_empty() || secret.len() > 512 {
        return Err(unauthenticated("malformed credentials", None));
    }
    let Some(client) = state.db.api_client_by_id(id).await? else {
        return Err(unauthenticated("unknown API client", None));
    };
    let now = state.now();
    let (matches, rehash) = if client.secret_hash.starts_with('$') {
        let (presented, stored) = (secret.to_string(), client.secret_hash.clone());
        // Through the one password-hash gate; a full gate is 503 (`Unavailable`).
        let matches = state.password_gate.run(move || verify_slow(&presented, &stored)).await.map_err(|e| match e {
            passwords::GateError::Busy => ApiClientError::Unavailable,
            passwords::GateError::Internal(message) => ApiClientError::Internal(message),
        })?;
        (matches, true)
    } else {
        verify_fast(state, secret, &client.secret_hash)
    };
    if !matches {
        return Err(unauthenticated("wrong secret", Some(&client.id)));
    }
    if client.status != "active" {
        return Err(unauthenticated("inactive API client", Some(&client.id)));
    }
    if client.expires_at.is_some_and(|at| at <= now) {
        return Err(unauthenticated("expired API client", Some(&client.id)));
    }
    // A successful slow check is re-hashed to the keyed form, so the next check is fast.
    let upgraded = rehash.then(|| keyed_hash(state, secret));
    state.db.record_api_client_use(&client.id, upgraded.as_deref(), now).await?;

    if !client.allowed_ips.is_empty() {
        let ip: Option<IpAddr> = facts.ip.parse().ok();
        let allowed = ip
            .is_some_and(|ip| client.allowed_ips.iter().filter_map(|c| parse_network(c)).any(|net| net.contains(&ip)));
        if !allowed {
            return Err(ApiClientError::NotAllowed("the client IP is not on this API client's allowlist"));
        }
    }
    if !client.allowed_origins.is_empty()
        && !facts.origin.is_some_and(|origin| client.allowed_origins.iter().any(|o| o == origin))
    {
        return Err(ApiClientError::NotAllowed("the Origin is not on this API client's allowlist"));
    }
    if !client.allowed_paths.is_empty()
        && !client.allowed_paths.iter().any(|prefix| facts.path.starts_with(prefix.as_str()))
    {
        return Err(ApiClientError::NotAllowed("the path is not on this API client's allowlist"));
    }
    let minute = now / 60;
    let used = state.kv.increment(&format!("api-client-rate:{}:{minute}", client.id), 60).await?;
    if used > client.rate_limit_per_minute {
        return Err(ApiClientError::RateLimited { retry_after: 60 - now % 60 });
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_with_or_without_prefix() {
        assert!(parse_network("10.0.0.0/8").is_some_and(|n| n.contains(&"10.1.2.3".parse::<IpAddr>().expect("ip"))));
        assert!(parse_network("127.0.0.1").is_some_and(|n| n.contains(&"127.0.0.1".parse::<IpAddr>().expect("ip"))));
        assert!(parse_network("nonsense").is_none());
    }
}
