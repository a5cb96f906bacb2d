//! `POST /register` and `GET|PUT|DELETE /register/{client_id}` (RFC 7591, RFC 7592): JSON in,
//! JSON out; every decision is in `registration`.

use poem::http::StatusCode;
use poem::http::header::CONTENT_TYPE;
use poem::web::{Data, Path};
use poem::{Body, Request, Response, handler};
use serde_json::Value;

use super::error::{no_store, registration_json};
use super::userinfo::bearer_token;
use crate::registration::{self, ClientMetadata, RegistrationError};
use crate::state::SharedState;
use crate::web::origin;

fn json_answer(status: StatusCode, body: &Value) -> Response {
    no_store(Response::builder().status(status).header(CONTENT_TYPE, "application/json")).body(body.to_string())
}

/// The metadata in the body: JSON within the body limit, or `invalid_client_metadata`.
async fn metadata(state: &SharedState, req: &Request, body: Body) -> Result<ClientMetadata, RegistrationError> {
    let invalid = |message: &str| RegistrationError::InvalidMetadata(message.into());
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(invalid("the metadata must be sent as application/json"));
    }
    let bytes = body
        .into_bytes_limit(state.config.max_body_bytes)
        .await
        .map_err(|_| invalid("the metadata is too large or could not be read"))?;
    serde_json::from_slice(&bytes).map_err(|e| invalid(&format!("the metadata is not a valid JSON object: {e}")))
}

#[handler]
pub async fn register(req: &Request, body: Body, Data(state): Data<&SharedState>) -> Response {
    let result = async {
        let metadata = metadata(state, req, body).await?;
        registration::register(state, &origin(state, req), bearer_token(req), metadata).await
    }
    .await;
    match result {
        Ok(body) => json_answer(StatusCode::CREATED, &body),
        Err(error) => registration_json(error),
    }
}

#[handler]
pub async fn read(req: &Request, Path(client_id): Path<String>, Data(state): Data<&SharedState>) -> Response {
    match registration::read(state, &client_id, bearer_token(req)).await {
        Ok(body) => json_answer(StatusCode::OK, &body),
        Err(error) => registration_json(error),
    }
}

#[handler]
pub async fn update(
    req: &Request,
    Path(client_id): Path<String>,
    body: Body,
    Data(state): Data<&SharedState>,
) -> Response {
    let result = async {
        // The token is checked before the body is read: nobody else gets its errors.
        registration::read(state, &client_id, bearer_token(req)).await?;
        let metadata = metadata(state, req, body).await?;
        registration::update(state, &origin(state, req), &client_id, bearer_token(req), metadata).await
    }
    .await;
    match result {
        Ok(body) => json_answer(StatusCode::OK, &body),
        Err(error) => registration_json(error),
    }
}

#[handler]
pub async fn delete(req: &Request, Path(client_id): Path<String>, Data(state): Data<&SharedState>) -> Response {
    match registration::delete(state, &origin(state, req), &client_id, bearer_token(req)).await {
        Ok(()) => no_store(Response::builder().status(StatusCode::NO_CONTENT)).finish(),
        Err(error) => registration_json(error),
    }
}
