//! Pushed authorization requests (RFC 9126). A client posts its authorization parameters to
//! `/par` over the back channel, authenticated exactly as at `/token`; they pass the checks of
//! `/authorize` there, and the validated request is kept for 60 seconds under a one-time
//! `request_uri`. The browser then carries only `client_id` and that `request_uri`: nothing in
//! the front channel can change the request, and any other parameter there is ignored (§4).
//! The pushed parameters may come in a signed request object (`request`, RFC 9101), whose claims
//! are then the request.

use super::{AuthorizationRequest, AuthorizeError, checks, limits, request_object};
use crate::oauth::client_auth::{self, ClientCredentials};
use crate::oauth::params::Params;
use crate::oauth::{OAuthError, dpop};
use crate::state::AppState;
use crate::store::Client;

/// RFC 9126 §2.2: the `request_uri` is this URN followed by a random reference.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// Seconds a pushed request may wait for the browser (`expires_in`).
pub const PUSHED_TTL: i64 = 60;

/// The answer to a push (RFC 9126 §2.2).
#[derive(Debug)]
pub struct Pushed {
    pub request_uri: String,
    pub expires_in: i64,
}

fn key(request_uri: &str) -> String {
    format!("par:{request_uri}")
}

/// Whether `client` may only start an authorization with a pushed request (RFC 9126 §6).
pub fn required_for(state: &AppState, client: &Client) -> bool {
    state.config.require_par || client.require_par
}

/// `POST /par`: authenticates the client, validates its authorization request and stores it.
/// Errors are the token endpoint's JSON errors (§2.3), never redirects.
pub async fn push(state: &AppState, params: &Params, credentials: &ClientCredentials) -> Result<Pushed, OAuthError> {
    crate::oauth::params::reject_malformed(params)?;
    let client = client_auth::authenticate(state, params, credentials).await?;
    if params.get("request_uri").is_some() {
        return Err(OAuthError::invalid_request("request_uri must not be pushed (RFC 9126 §2.1)"));
    }
    let resolved = request_object::effective_params(state, &client, params)
        .await
        .map_err(request_object::Refused::into_oauth_error)?;
    let mut request =
        checks::validate_for(state, &client, resolved.as_ref().unwrap_or(params)).map_err(as_oauth_error)?;
    bind_to_proof(state, &mut request, credentials).await?;
    // A public client is named by its client_id alone, which anyone can send: its pushes are
    // counted against the source address like requests left pending at /authorize.
    if client.is_public {
        limits::count(state, &credentials.source).await.map_err(as_oauth_error)?;
    }
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", crate::crypto::random_token(24));
    let bytes = serde_json::to_vec(&request).map_err(|e| OAuthError::Internal(e.to_string()))?;
    state.kv.put(&key(&request_uri), bytes, PUSHED_TTL).await?;
    Ok(Pushed { request_uri, expires_in: PUSHED_TTL })
}

/// RFC 9449 §10.1: a DPoP proof sent to `/par` binds the code to its key; with `dpop_jkt`
/// as well, both must name the same key.
async fn bind_to_proof(
    state: &AppState,
    request: &mut AuthorizationRequest,
    credentials: &ClientCredentials,
) -> Result<(), OAuthError> {
    let Some(proof) = dpop::single(&credentials.dpop)? else { return Ok(()) };
    let context = dpop::ProofContext { method: "POST", url: &credentials.endpoint, access_token: None };
    let jkt = dpop::verify_proof(state, proof, &context).await?;
    if request.dpop_jkt.as_deref().is_some_and(|named| named != jkt) {
        return Err(OAuthError::invalid_dpop_proof("dpop_jkt does not name the DPoP proof's key"));
    }
    request.dpop_jkt = Some(jkt);
    Ok(())
}

/// A failed check of the pushed parameters, as the JSON error of §2.3: what `/authorize` would
/// show as an error page (unknown redirect URI) is `invalid_request`, what it would redirect
/// keeps its code.
fn as_oauth_error(error: AuthorizeError) -> OAuthError {
    match error {
        AuthorizeError::Page(message) => OAuthError::invalid_request(message),
        AuthorizeError::OtherBrowser => OAuthError::invalid_request("the request belongs to another browser"),
        AuthorizeError::Redirect { error, description, .. } => {
            OAuthError::Protocol { error, description: description.into() }
        }
        AuthorizeError::TooManyPending { retry_after } => OAuthError::RateLimited { retry_after },
        AuthorizeError::Unavailable => OAuthError::Unavailable,
        AuthorizeError::Internal(message) => OAuthError::Internal(message),
    }
}

/// `/authorize?client_id=…&request_uri=…`: takes the pushed request (it works once) and checks
/// that it was pushed by this client. Every failure is an error page: without the request, the
/// redirect URI cannot be trusted.
pub(super) async fn take(state: &AppState, params: &Params) -> Result<(Client, AuthorizationRequest), AuthorizeError> {
    let page = |message: &str| AuthorizeError::Page(message.to_string());
    if params.is_repeated("client_id") || params.is_repeated("request_uri") {
        return Err(page("The request names more than one client_id or request_uri."));
    }
    let client_id = params.get("client_id").ok_or_else(|| page("The request has no client_id."))?;
    let request_uri = params.get("request_uri").unwrap_or_default();
    let reference = request_uri.strip_prefix(REQUEST_URI_PREFIX).unwrap_or_default();
    if reference.is_empty() || reference.len() > 64 {
        return Err(page(
            "The request_uri was not issued by this server: only request_uri values from its pushed \
             authorization request endpoint (/par) are accepted, and no URL is ever fetched.",
        ));
    }
    let Some(bytes) = state.kv.take(&key(request_uri)).await? else {
        return Err(page(
            "This authorization request has expired or was already used. Go back to the application and start again.",
        ));
    };
    let request: AuthorizationRequest =
        serde_json::from_slice(&bytes).map_err(|e| AuthorizeError::Internal(e.to_string()))?;
    if request.client_id != client_id {
        return Err(page("The request_uri was not issued to the application named by client_id."));
    }
    let client = crate::oauth::clients::find(state, client_id)
        .await?
        .ok_or_else(|| page("The application that sent you here is not registered."))?;
    Ok((client, request))
}
