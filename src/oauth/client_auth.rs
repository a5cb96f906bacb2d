//! Client authentication at /token, /revoke and /introspect: client_secret_basic,
//! client_secret_post, or none for public clients.

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
}

pub async fn authenticate(
    state: &AppState,
    params: &Params,
    credentials: &ClientCredentials,
) -> Result<Arc<Client>, OAuthError> {
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
