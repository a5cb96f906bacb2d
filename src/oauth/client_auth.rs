//! Client authentication at /token, /revoke, /introspect and /par: client_secret_basic,
//! client_secret_post, private_key_jwt and client_secret_jwt (see [`super::client_assertion`]),
//! or none for public clients.

use std::sync::Arc;

use super::OAuthError;
use super::params::Params;
use crate::state::AppState;
use crate::store::Client;

pub const SECRET_HASH_PURPOSE: &str = "client-secret";

/// Credentials as presented; the HTTP layer decodes the Basic header.
pub struct ClientCredentials {
    pub basic: Option<(String, String)>,
    /// The caller's address: failures are counted per client and address.
    pub source: String,
    /// The full URL the credentials were sent to (an assertion's `aud` may name it).
    pub endpoint: String,
    /// The request's `DPoP` headers (RFC 9449), checked by the endpoints that take proofs.
    pub dpop: Vec<String>,
}

pub async fn authenticate(
    state: &AppState,
    params: &Params,
    credentials: &ClientCredentials,
) -> Result<Arc<Client>, OAuthError> {
    if params.get("client_assertion").is_some() || params.get("client_assertion_type").is_some() {
        return by_assertion(state, params, credentials).await;
    }
    let post_secret = params.get("client_secret");
    let (client_id, secret) = match (&credentials.basic, params.get("client_id")) {
        (Some(_), _) if post_secret.is_some() => {
            return Err(OAuthError::invalid_request("use one client authentication method, not two"));
        }
        (Some((id, _)), Some(form_id)) if id != form_id => {
            return Err(OAuthError::invalid_request("client_id differs from the authenticated client"));
        }
        (Some((id, secret)), _) => (id.as_str(), Some(secret.as_str())),
        (None, Some(id)) => (id, post_secret),
        (None, None) => return Err(OAuthError::invalid_client("client authentication is required")),
    };
    // The (cheap, keyed-hash) check comes first and a correct credential is never refused: a
    // client_id is public (it is in every authorization URL), so counting failures before the
    // check, or per client alone, would let anyone lock a client out.
    let client = super::clients::find_shared(state, client_id).await?;
    let authenticated = match (&client, secret) {
        (Some(client), Some(secret)) => client
            .secret_hash
            .as_deref()
            .is_some_and(|stored| state.secret.verify_keyed_hash(SECRET_HASH_PURPOSE, secret, stored)),
        (Some(client), None) => client.is_public,
        (None, _) => false,
    };
    match client {
        Some(client) if authenticated => Ok(client),
        _ => Err(failed(state, client_id, &credentials.source).await),
    }
}

/// `client_assertion` + `client_assertion_type` (RFC 7523 §2.2); the client comes from
/// `client_id` or, when that is absent, from the assertion's `sub`.
async fn by_assertion(
    state: &AppState,
    params: &Params,
    credentials: &ClientCredentials,
) -> Result<Arc<Client>, OAuthError> {
    use super::client_assertion::{ASSERTION_TYPE, verify};
    if credentials.basic.is_some() || params.get("client_secret").is_some() {
        return Err(OAuthError::invalid_request("use one client authentication method, not two"));
    }
    let (Some(assertion), Some(kind)) = (params.get("client_assertion"), params.get("client_assertion_type")) else {
        return Err(OAuthError::invalid_request("client_assertion and client_assertion_type go together"));
    };
    if kind != ASSERTION_TYPE {
        return Err(OAuthError::invalid_client(format!("client_assertion_type must be {ASSERTION_TYPE}")));
    }
    let subject = crate::crypto::jws::unverified_claims(assertion)
        .and_then(|claims| claims.get("sub").and_then(serde_json::Value::as_str).map(str::to_string));
    let Some(client_id) = params.get("client_id").map(str::to_string).or(subject) else {
        return Err(OAuthError::invalid_client("the assertion names no client"));
    };
    let client = super::clients::find_shared(state, &client_id).await?;
    let refusal = match &client {
        Some(client) => verify(state, client, assertion, &credentials.endpoint).await?.err(),
        None => Some("unknown client".into()),
    };
    match (client, refusal) {
        (Some(client), None) => Ok(client),
        (_, refusal) => {
            tracing::debug!(client_id = %client_id, reason = refusal.unwrap_or_default(), "client assertion refused");
            Err(failed(state, &client_id, &credentials.source).await)
        }
    }
}

/// Counts a failure of this client from this address; past the limit the answer is 429.
async fn failed(state: &AppState, client_id: &str, source: &str) -> OAuthError {
    let who = format!("{client_id}\n{source}");
    let key = format!("client-auth-fail:{}", crate::crypto::b64url(crate::crypto::sha256(&who)));
    let counted = async {
        let (failures, retry_after) = state.kv.counter(&key).await?;
        if failures >= state.config.client_auth_failure_limit {
            return Ok(OAuthError::RateLimited { retry_after: retry_after.max(1) });
        }
        state.kv.increment(&key, 60).await?;
        Ok::<_, crate::kv::KvError>(OAuthError::invalid_client("client authentication failed"))
    };
    counted.await.unwrap_or(OAuthError::Unavailable)
}
