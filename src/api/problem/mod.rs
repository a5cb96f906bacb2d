//! RFC 9457 problem details: the one error type of the JSON API, and the middleware that turns
//! every other error (parse errors, unknown routes, oversized bodies) into one, with the request ID.

mod from_core;

use std::sync::Arc;

use poem::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use poem::http::{HeaderValue, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};
use serde_json::Value;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Object, Debug, Clone)]
pub struct Problem {
    /// A URI naming the problem type; `about:blank` when the status says it all.
    #[oai(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// A machine-readable code, e.g. `weak_password`, `invalid_credentials`.
    pub code: String,
    #[oai(skip_serializing_if_is_none)]
    pub detail: Option<String>,
    /// The request field the problem is about.
    #[oai(skip_serializing_if_is_none)]
    pub field: Option<String>,
    /// The `X-Request-Id` of the request, for support.
    #[oai(skip_serializing_if_is_none)]
    pub request_id: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            code: code.into(),
            detail: Some(detail.into()),
            field: None,
            request_id: None,
        }
    }

    pub fn with_field(mut self, field: &str) -> Problem {
        self.field = Some(field.into());
        self
    }
}

/// Every error an operation can answer, each as problem JSON. Declared on every operation.
#[derive(ApiResponse, Debug)]
pub enum ApiError {
    /// The request is malformed or a field is invalid.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// Missing, invalid, expired or revoked credentials.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// The credentials do not allow this operation.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The request conflicts with the current state, e.g. an email already taken, or a change
    /// that would remove the caller's own administrator rights (`own_account`) or the last
    /// active administrator (`last_admin`).
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// The request body is larger than the server accepts.
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The request body is not `application/json` (or has no `Content-Type`).
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Problem>, #[oai(header = "Retry-After")] i64),
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] i64),
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
}

impl ApiError {
    pub fn bad_request(code: &str, field: Option<&str>, detail: impl Into<String>) -> ApiError {
        let problem = Problem::new(StatusCode::BAD_REQUEST, code, detail);
        ApiError::BadRequest(Json(match field {
            Some(field) => problem.with_field(field),
            None => problem,
        }))
    }

    pub fn unauthorized(code: &str, detail: impl Into<String>) -> ApiError {
        ApiError::Unauthorized(Json(Problem::new(StatusCode::UNAUTHORIZED, code, detail)))
    }

    pub fn forbidden(code: &str, detail: impl Into<String>) -> ApiError {
        ApiError::Forbidden(Json(Problem::new(StatusCode::FORBIDDEN, code, detail)))
    }

    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::NotFound(Json(Problem::new(StatusCode::NOT_FOUND, "not_found", detail)))
    }

    pub fn conflict(code: &str, detail: impl Into<String>) -> ApiError {
        ApiError::Conflict(Json(Problem::new(StatusCode::CONFLICT, code, detail)))
    }

    pub fn too_many(retry_after: i64) -> ApiError {
        let problem = Problem::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many attempts; retry later");
        ApiError::TooManyRequests(Json(problem), retry_after.max(1))
    }

    pub fn unavailable() -> ApiError {
        let problem =
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the service is temporarily unavailable");
        ApiError::Unavailable(Json(problem), 5)
    }

    /// The password-hash gate is full: retry shortly.
    pub fn busy() -> ApiError {
        let problem =
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "too many password checks at once; retry shortly");
        ApiError::Unavailable(Json(problem), crate::passwords::BUSY_RETRY_AFTER)
    }

    pub fn internal(message: &str) -> ApiError {
        tracing::error!(%message, "internal error in the JSON API");
        ApiError::Internal(Json(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred",
        )))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The `WWW-Authenticate` challenge of the API's 401 answers: a Bearer challenge naming the
/// API's RFC 9728 metadata, so a client (or an agent's tooling) finds how to get a token.
pub fn bearer_challenge(config: &crate::config::Config) -> HeaderValue {
    let url = crate::oidc::discovery::protected_resource_metadata_url(config);
    HeaderValue::from_str(&format!("Bearer resource_metadata=\"{url}\"")).unwrap_or(HeaderValue::from_static("Bearer"))
}

/// Around the JSON API: bodies over `max_body` bytes are refused with 413, every error
/// response becomes problem JSON carrying the request ID, and every 401 carries `challenge`.
pub async fn problems<E: Endpoint>(
    next: Arc<E>,
    mut req: Request,
    max_body: usize,
    challenge: HeaderValue,
) -> poem::Result<Response> {
    let request_id = crate::web::request_id(&req);
    let body = req.take_body();
    let too_large = || {
        let problem = Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body exceeds {max_body} bytes"),
        );
        ApiError::PayloadTooLarge(Json(problem)).into_response()
    };
    match body.into_bytes_limit(max_body).await {
        Ok(bytes) => req.set_body(bytes),
        Err(poem::error::ReadBodyError::PayloadTooLarge) => return Ok(with_request_id(too_large(), request_id).await),
        Err(_) => req.set_body(Vec::new()),
    }
    crate::api::dpop_scheme::accept_dpop_scheme(&mut req);
    let mut response = match next.call(req).await {
        Ok(response) => response.into_response(),
        Err(error) => error.into_response(),
    };
    if response.status() == StatusCode::UNAUTHORIZED {
        add_challenge(response.headers_mut(), challenge);
    }
    Ok(with_request_id(response, request_id).await)
}

/// A refused DPoP presentation (RFC 9449 §7.1): 401 problem JSON with the `DPoP` challenge,
/// and a fresh nonce in `DPoP-Nonce` when one is required.
pub fn dpop_refusal(error: crate::oauth::OAuthError) -> poem::Error {
    let crate::oauth::OAuthError::Dpop { error, description, nonce } = error else {
        return poem::Error::from_response(ApiError::from(error).into_response());
    };
    let mut response = ApiError::unauthorized(error.as_str(), description.to_string()).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&crate::oauth::dpop::challenge(error, &description)) {
        headers.insert(WWW_AUTHENTICATE, value);
    }
    if let Some(value) = nonce.and_then(|nonce| HeaderValue::from_str(&nonce).ok()) {
        headers.insert("dpop-nonce", value);
    }
    poem::Error::from_response(response)
}

/// Sets the Bearer challenge; a Bearer challenge already there (with `error` parameters) keeps
/// them and gains `resource_metadata`.
fn add_challenge(headers: &mut poem::http::HeaderMap, challenge: HeaderValue) {
    let existing = headers.get(WWW_AUTHENTICATE).and_then(|value| value.to_str().ok()).map(str::to_string);
    let value = match existing {
        None => challenge,
        Some(existing) if existing.trim() == "Bearer" => challenge,
        Some(existing) if existing.starts_with("Bearer ") && !existing.contains("resource_metadata=") => {
            let extra = challenge.to_str().unwrap_or_default().trim_start_matches("Bearer ");
            HeaderValue::from_str(&format!("{existing}, {extra}")).unwrap_or(challenge)
        }
        Some(_) => return,
    };
    headers.insert(WWW_AUTHENTICATE, value);
}

async fn with_request_id(mut response: Response, request_id: Option<String>) -> Response {
    // Errors built from an `ApiError` carry its problem response; poem's own errors become one here.
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem =
        response.headers().get(CONTENT_TYPE).is_some_and(|value| value.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    let body = response.take_body().into_bytes().await.unwrap_or_default();
    let mut problem: Value = if is_problem {
        serde_json::from_slice(&body).unwrap_or_else(|_| serde_json::json!({}))
    } else {
        let detail = String::from_utf8_lossy(&body).trim().to_string();
        let detail = if detail.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { detail };
        serde_json::to_value(Problem::new(status, code_for(status), detail).to_json_map()).unwrap_or_default()
    };
    if let Some(map) = problem.as_object_mut() {
        map.insert("request_id".into(), request_id.map(Value::String).unwrap_or(Value::Null));
    }
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response.set_body(problem.to_string());
    response
}

/// The `code` of problems that poem itself produced (routing, extraction).
fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        _ => "invalid_request",
    }
}

impl Problem {
    fn to_json_map(&self) -> serde_json::Map<String, Value> {
        let mut map = serde_json::Map::new();
        map.insert("type".into(), Value::String(self.kind.clone()));
        map.insert("title".into(), Value::String(self.title.clone()));
        map.insert("status".into(), Value::from(self.status));
        map.insert("code".into(), Value::String(self.code.clone()));
        if let Some(detail) = &self.detail {
            map.insert("detail".into(), Value::String(detail.clone()));
        }
        if let Some(field) = &self.field {
            map.insert("field".into(), Value::String(field.clone()));
        }
        map
    }
}
