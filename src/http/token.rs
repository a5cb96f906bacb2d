//! /token, /revoke, /introspect and /par: form parsing and client credentials from the wire.

use base64::Engine;
use poem::http::StatusCode;
use poem::http::header::{AUTHORIZATION, CONTENT_TYPE};
use poem::web::Data;
use poem::{Body, Request, Response, handler};

use super::error::{no_store, oauth_json};
use crate::oauth::client_auth::ClientCredentials;
use crate::oauth::params::Params;
use crate::oauth::{OAuthError, authorize, introspection, revocation, token as token_endpoint};
use crate::state::{AppState, SharedState};
use crate::web::request::{BodyError, form_params};

async fn read_request(state: &AppState, req: &Request, body: Body) -> Result<(Params, ClientCredentials), OAuthError> {
    let params = form_params(state, req, body).await.map_err(|error| {
        OAuthError::invalid_request(match error {
            BodyError::TooLarge => "the request body is too large",
            BodyError::NotForm => "the body must be application/x-www-form-urlencoded",
            BodyError::Unreadable => "the request body could not be read",
            BodyError::BadEncoding => "the form is not valid UTF-8",
        })
    })?;
    let source = crate::web::client_ip(state, req);
    let endpoint = format!("{}{}", state.config.issuer, req.uri().path());
    let dpop = dpop_headers(req);
    Ok((params, ClientCredentials { basic: basic_credentials(req)?, source, endpoint, dpop }))
}

/// Every `DPoP` header as sent (the core refuses more than one); unreadable ones as empty.
pub fn dpop_headers(req: &Request) -> Vec<String> {
    req.headers().get_all("dpop").iter().map(|value| value.to_str().unwrap_or_default().to_string()).collect()
}

/// `Authorization: Basic` with form-urlencoded id and secret (RFC 6749 §2.3.1).
fn basic_credentials(req: &Request) -> Result<Option<(String, String)>, OAuthError> {
    let Some(header) = req.headers().get(AUTHORIZATION) else { return Ok(None) };
    let malformed = || OAuthError::invalid_client("malformed Basic authorization header");
    let header = header.to_str().map_err(|_| malformed())?;
    let Some((scheme, encoded)) = header.split_once(' ') else { return Err(malformed()) };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client("only Basic client authentication is supported in the header"));
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let decode = |text: &str| {
        form_urlencoded::parse(format!("v={text}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
            .ok_or_else(malformed)
    };
    Ok(Some((decode(id)?, decode(secret)?)))
}

fn json_ok(body: String) -> Response {
    no_store(Response::builder().status(StatusCode::OK).header(CONTENT_TYPE, "application/json")).body(body)
}

#[handler]
pub async fn token(req: &Request, body: Body, Data(state): Data<&SharedState>) -> Response {
    let result = async {
        let (params, credentials) = read_request(state, req, body).await?;
        token_endpoint::handle(state, &params, &credentials).await
    }
    .await;
    match result.and_then(|response| serde_json::to_string(&response).map_err(|e| OAuthError::Internal(e.to_string())))
    {
        Ok(body) => with_dpop_nonce(state, json_ok(body)),
        Err(error) => oauth_json(error),
    }
}

/// With nonces on, every successful answer hands out the current nonce (RFC 9449 §8.2), so a
/// client seldom meets `use_dpop_nonce`.
fn with_dpop_nonce(state: &AppState, mut response: Response) -> Response {
    if state.config.dpop_nonces == crate::config::Switch::On
        && let Ok(value) = crate::oauth::dpop::fresh_nonce(state).parse()
    {
        response.headers_mut().insert("dpop-nonce", value);
    }
    response
}

#[handler]
pub async fn revoke(req: &Request, body: Body, Data(state): Data<&SharedState>) -> Response {
    let result = async {
        let (params, credentials) = read_request(state, req, body).await?;
        revocation::revoke(state, &params, &credentials).await
    }
    .await;
    match result {
        Ok(()) => no_store(Response::builder().status(StatusCode::OK)).finish(),
        Err(error) => oauth_json(error),
    }
}

#[handler]
pub async fn introspect(req: &Request, body: Body, Data(state): Data<&SharedState>) -> Response {
    let result = async {
        let (params, credentials) = read_request(state, req, body).await?;
        introspection::introspect(state, &params, &credentials).await
    }
    .await;
    match result {
        Ok(answer) => json_ok(answer.to_string()),
        Err(error) => oauth_json(error),
    }
}

/// RFC 9126: 201 with the `request_uri` for `/authorize`, or the token endpoint's JSON errors.
#[handler]
pub async fn par(req: &Request, body: Body, Data(state): Data<&SharedState>) -> Response {
    let result = async {
        let (params, credentials) = read_request(state, req, body).await?;
        authorize::push(state, &params, &credentials).await
    }
    .await;
    match result {
        Ok(pushed) => {
            let body = serde_json::json!({ "request_uri": pushed.request_uri, "expires_in": pushed.expires_in });
            let response =
                no_store(Response::builder().status(StatusCode::CREATED).header(CONTENT_TYPE, "application/json"))
                    .body(body.to_string());
            with_dpop_nonce(state, response)
        }
        Err(error) => oauth_json(error),
    }
}

/// RFC 8628 §3.1–3.2: 200 with the device and user codes, or the token endpoint's JSON errors.
#[handler]
pub async fn device_authorization(req: &Request, body: Body, Data(state): Data<&SharedState>) -> Response {
    let result = async {
        let (params, credentials) = read_request(state, req, body).await?;
        crate::oauth::device::authorize(state, &params, &credentials).await
    }
    .await;
    match result.and_then(|response| serde_json::to_string(&response).map_err(|e| OAuthError::Internal(e.to_string())))
    {
        Ok(body) => json_ok(body),
        Err(error) => oauth_json(error),
    }
}
