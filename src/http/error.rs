//! Every error's wire form, in one place: OAuth JSON for the protocol endpoints, HTML pages
//! for the browser flow.

use poem::Response;
use poem::http::StatusCode;
use poem::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE};
use serde_json::json;

use super::pages;
use crate::oauth::authorize::AuthorizeError;
use crate::oauth::{ErrorCode, OAuthError};
use crate::registration::RegistrationError;

/// RFC 6749 §5.2 JSON, with the status and headers each error calls for.
pub fn oauth_json(error: OAuthError) -> Response {
    let code = error.code();
    let (status, description) = match &error {
        OAuthError::Protocol { error, description } => (
            match *error {
                ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
                ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
                _ => StatusCode::BAD_REQUEST,
            },
            description.to_string(),
        ),
        OAuthError::Dpop { error, description, .. } => (
            if *error == ErrorCode::InvalidToken { StatusCode::UNAUTHORIZED } else { StatusCode::BAD_REQUEST },
            description.to_string(),
        ),
        OAuthError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "too many requests; retry later".into()),
        OAuthError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "the service is temporarily unavailable".into()),
        OAuthError::Internal(message) => {
            tracing::error!(%message, "internal error");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
        }
    };
    let body = json!({ "error": code, "error_description": description });
    let mut response =
        no_store(Response::builder().status(status).header(CONTENT_TYPE, "application/json")).body(body.to_string());
    let headers = response.headers_mut();
    match &error {
        OAuthError::Protocol { error: ErrorCode::InvalidClient, .. } => {
            headers.insert(WWW_AUTHENTICATE, static_header("Basic realm=\"oxidp\""));
        }
        OAuthError::Protocol {
            error: bearer @ (ErrorCode::InvalidToken | ErrorCode::InsufficientScope),
            description,
        } => {
            let value = format!(
                "Bearer realm=\"oxidp\", error=\"{bearer}\", error_description=\"{}\"",
                description.replace('"', "'")
            );
            if let Ok(value) = value.parse() {
                headers.insert(WWW_AUTHENTICATE, value);
            }
        }
        OAuthError::Dpop { error, description, nonce } => {
            if *error == ErrorCode::InvalidToken {
                headers.insert(WWW_AUTHENTICATE, dpop_challenge(*error, description));
            }
            if let Some(value) = nonce.as_deref().and_then(|nonce| nonce.parse().ok()) {
                headers.insert(DPOP_NONCE, value);
            }
        }
        OAuthError::RateLimited { retry_after } => {
            if let Ok(value) = retry_after.to_string().parse() {
                headers.insert(RETRY_AFTER, value);
            }
        }
        OAuthError::Unavailable => {
            headers.insert(RETRY_AFTER, static_header("5"));
        }
        _ => {}
    }
    response
}

const DPOP_NONCE: &str = "dpop-nonce";

/// RFC 9449 §7.1: the `DPoP` challenge, naming the algorithms proofs may use.
fn dpop_challenge(error: ErrorCode, description: &str) -> poem::http::HeaderValue {
    crate::oauth::dpop::challenge(error, description).parse().unwrap_or_else(|_| static_header("DPoP"))
}

/// Errors of resources (`/userinfo`): as [`oauth_json`], but a DPoP failure is 401 with a
/// `DPoP` challenge (RFC 9449 §7.1), and so is any token error of a request that used the
/// DPoP scheme.
pub fn resource_json(error: OAuthError, used_dpop: bool) -> Response {
    let error = match error {
        OAuthError::Protocol { error: ErrorCode::InvalidToken, description } if used_dpop => {
            OAuthError::Dpop { error: ErrorCode::InvalidToken, description, nonce: None }
        }
        other => other,
    };
    let challenge = match &error {
        OAuthError::Dpop { error, description, .. } => Some(dpop_challenge(*error, description)),
        _ => None,
    };
    let mut response = oauth_json(error);
    if let Some(challenge) = challenge {
        response.set_status(StatusCode::UNAUTHORIZED);
        response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
    }
    response
}

/// RFC 7591 §3.2.2 and RFC 7592 errors: OAuth JSON; a refused registration is 403.
pub fn registration_json(error: RegistrationError) -> Response {
    let protocol = |error, description: String| OAuthError::Protocol { error, description: description.into() };
    let forbidden = matches!(error, RegistrationError::Disabled | RegistrationError::Full);
    let description = error.to_string();
    let oauth = match error {
        RegistrationError::InvalidRedirectUri(_) => protocol(ErrorCode::InvalidRedirectUri, description),
        RegistrationError::InvalidMetadata(_) => protocol(ErrorCode::InvalidClientMetadata, description),
        RegistrationError::Disabled | RegistrationError::Full => protocol(ErrorCode::AccessDenied, description),
        RegistrationError::InvalidToken => protocol(ErrorCode::InvalidToken, description),
        RegistrationError::RateLimited { retry_after } => OAuthError::RateLimited { retry_after },
        RegistrationError::Unavailable => OAuthError::Unavailable,
        RegistrationError::Internal(message) => OAuthError::Internal(message),
    };
    let mut response = oauth_json(oauth);
    if forbidden {
        response.set_status(StatusCode::FORBIDDEN);
    }
    response
}

fn static_header(value: &'static str) -> poem::http::HeaderValue {
    poem::http::HeaderValue::from_static(value)
}

/// Token responses must not be cached (RFC 6749 §5.1).
pub fn no_store(builder: poem::ResponseBuilder) -> poem::ResponseBuilder {
    builder.header(CACHE_CONTROL, "no-store").header(PRAGMA, "no-cache")
}

/// The browser flow: an error page when the redirect target is untrusted, else a redirect.
pub fn authorize_error(issuer: &str, error: AuthorizeError, request_id: Option<String>) -> Response {
    if let Some(location) = error.redirect_url(issuer) {
        return see_other(&location);
    }
    match error {
        AuthorizeError::Page(message) => {
            pages::error(StatusCode::BAD_REQUEST, "Something is wrong with this request", &message, request_id)
        }
        AuthorizeError::OtherBrowser => pages::error(
            StatusCode::BAD_REQUEST,
            "Request started elsewhere",
            "This sign-in request was started in another browser, or this browser's cookies were cleared. \
             Go back to the application and start again from here.",
            request_id,
        ),
        AuthorizeError::TooManyPending { retry_after } => with_retry_after(
            pages::error(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-in requests",
                "Too many sign-in requests were started from your network. Please try again later.",
                request_id,
            ),
            Some(retry_after),
        ),
        AuthorizeError::Unavailable => {
            let mut response = pages::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "The sign-in service cannot be reached right now. Please try again in a moment.",
                request_id,
            );
            response.headers_mut().insert(RETRY_AFTER, static_header("5"));
            response
        }
        AuthorizeError::Internal(message) => {
            tracing::error!(%message, "internal error in the browser flow");
            pages::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "An internal error occurred.",
                request_id,
            )
        }
        AuthorizeError::Redirect { .. } => {
            pages::error(StatusCode::BAD_REQUEST, "Error", "The request failed.", request_id)
        }
    }
}

pub fn see_other(location: &str) -> Response {
    redirect(StatusCode::SEE_OTHER, location)
}

pub fn found(location: &str) -> Response {
    redirect(StatusCode::FOUND, location)
}

fn redirect(status: StatusCode, location: &str) -> Response {
    match poem::http::HeaderValue::from_str(location) {
        Ok(value) => {
            let mut response = no_store(Response::builder().status(status)).finish();
            response.headers_mut().insert(LOCATION, value);
            response
        }
        Err(_) => {
            pages::error(StatusCode::BAD_REQUEST, "Invalid redirect", "The redirect target is not a valid URL.", None)
        }
    }
}

/// Poem's own errors (unknown route, wrong method, ...) as JSON rather than plain text.
pub async fn fallback(error: poem::Error) -> Response {
    let status = error.status();
    let body = json!({
        "error": if status == StatusCode::NOT_FOUND { "not_found" } else { "invalid_request" },
        "error_description": status.canonical_reason().unwrap_or("request failed"),
    });
    Response::builder().status(status).header(CONTENT_TYPE, "application/json").body(body.to_string())
}

/// A refused password sign-in as the pages show it: the form again with a message (and a
/// wait when the account is throttled), or an error page when oxidp itself cannot answer.
pub enum LoginRefusal {
    /// Shown on the form with 401 (wrong credentials) or 429 and `Retry-After` (throttled).
    Form {
        message: &'static str,
        status: StatusCode,
        retry_after: Option<i64>,
    },
    Outage(AuthorizeError),
}

/// The one mapping of `LoginError` for pages; `wrong` is the page's wording for bad credentials.
pub fn login_refusal(error: crate::login::LoginError, wrong: &'static str) -> LoginRefusal {
    use crate::login::LoginError;
    match error {
        LoginError::InvalidCredentials => {
            LoginRefusal::Form { message: wrong, status: StatusCode::UNAUTHORIZED, retry_after: None }
        }
        LoginError::Locked { retry_after, .. } => LoginRefusal::Form {
            message: "Too many failed attempts. Please wait a while and try again.",
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some(retry_after),
        },
        LoginError::Unavailable | LoginError::Busy => LoginRefusal::Outage(AuthorizeError::Unavailable),
        LoginError::Internal(message) => LoginRefusal::Outage(AuthorizeError::Internal(message)),
    }
}

/// Adds `Retry-After` when there is a wait.
pub fn with_retry_after(mut response: Response, retry_after: Option<i64>) -> Response {
    if let Some(value) = retry_after.and_then(|seconds| seconds.to_string().parse().ok()) {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}

/// A refused step of the device pages: the code-entry form again with a message (429 and
/// `Retry-After` when throttled), or an error page when oxidp itself cannot answer.
pub enum DeviceRefusal {
    Form { message: &'static str, status: StatusCode, retry_after: Option<i64> },
    Outage(AuthorizeError),
}

/// The one mapping of `DeviceError` for pages.
pub fn device_refusal(error: crate::oauth::device::DeviceError) -> DeviceRefusal {
    use crate::oauth::device::DeviceError;
    match error {
        DeviceError::UnknownCode => DeviceRefusal::Form {
            message: "That code is not valid, has expired or was already used. Check the code shown on your device.",
            status: StatusCode::BAD_REQUEST,
            retry_after: None,
        },
        DeviceError::Throttled { retry_after } => DeviceRefusal::Form {
            message: "Too many codes were tried. Please wait a while and try again.",
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some(retry_after),
        },
        DeviceError::TicketExpired => DeviceRefusal::Form {
            message: "This confirmation has expired or was started in another browser. Enter the code again.",
            status: StatusCode::BAD_REQUEST,
            retry_after: None,
        },
        DeviceError::Unavailable => DeviceRefusal::Outage(AuthorizeError::Unavailable),
        DeviceError::Internal(message) => DeviceRefusal::Outage(AuthorizeError::Internal(message)),
    }
}
