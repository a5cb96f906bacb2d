//! POST /token: checks common to every grant, then the grant's own file.

use super::client_auth::{self, ClientCredentials};
use super::params::{Params, reject_malformed};
pub use super::token_response::TokenResponse;
use super::{OAuthError, dpop, grants};
use crate::state::AppState;
use crate::store::Client;

pub async fn handle(
    state: &AppState,
    params: &Params,
    credentials: &ClientCredentials,
) -> Result<TokenResponse, OAuthError> {
    reject_malformed(params)?;
    let grant_type = params.get("grant_type").ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    let client = client_auth::authenticate(state, params, credentials).await?;
    check_rate_limit(state, &client.id).await?;
    let jkt = proof_at_token_endpoint(state, &client, credentials).await?;
    let jkt = jkt.as_deref();
    let (kind, result) = match grant_type {
        "authorization_code" => {
            ("authorization_code", grants::authorization_code::exchange(state, &client, params, jkt).await)
        }
        "refresh_token" => ("refresh_token", grants::refresh_token::refresh(state, &client, params, jkt).await),
        "client_credentials" => {
            ("client_credentials", grants::client_credentials::issue(state, &client, params, jkt).await)
        }
        grants::token_exchange::GRANT_TYPE => {
            ("token_exchange", grants::token_exchange::exchange(state, &client, params, jkt).await)
        }
        super::device::GRANT_TYPE => ("device_code", grants::device_code::exchange(state, &client, params, jkt).await),
        "password" => {
            return Err(OAuthError::unsupported_grant_type("the password grant is not supported (OAuth 2.1)"));
        }
        _ => return Err(OAuthError::unsupported_grant_type("grant_type is not supported")),
    };
    if result.is_ok() {
        crate::observability::token_issued(kind);
    }
    result
}

/// RFC 9449 §5: the key of the request's DPoP proof, when it has one (required for a client
/// registered with `dpop_bound_access_tokens`).
async fn proof_at_token_endpoint(
    state: &AppState,
    client: &Client,
    credentials: &ClientCredentials,
) -> Result<Option<String>, OAuthError> {
    let Some(proof) = dpop::single(&credentials.dpop)? else {
        if client.dpop_bound_access_tokens {
            return Err(OAuthError::invalid_dpop_proof("this client must send a DPoP proof"));
        }
        return Ok(None);
    };
    let context = dpop::ProofContext { method: "POST", url: &credentials.endpoint, access_token: None };
    Ok(Some(dpop::verify_proof(state, proof, &context).await?))
}

async fn check_rate_limit(state: &AppState, client_id: &str) -> Result<(), OAuthError> {
    let limit = state.config.token_rate_limit;
    if limit == 0 {
        return Ok(());
    }
    let minute = state.now() / 60;
    let key = format!("token-rate:{client_id}:{minute}");
    if state.kv.increment(&key, 60).await? > limit {
        return Err(OAuthError::RateLimited { retry_after: 60 - state.now() % 60 });
    }
    Ok(())
}
