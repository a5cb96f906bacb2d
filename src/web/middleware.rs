//! Around every request: a request ID (taken from `X-Request-Id` when sane), a tracing span,
//! an access log line, and the security headers of SPEC §8.

use std::sync::Arc;
use std::time::Instant;

use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

pub const REQUEST_ID: &str = "x-request-id";

/// Pages get a strict CSP: no scripts at all, styles from this origin.
const PAGE_CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";

#[derive(Clone)]
pub struct RequestId(pub String);

fn incoming_id(req: &Request) -> Option<String> {
    let value = req.headers().get(REQUEST_ID)?.to_str().ok()?;
    let sane = !value.is_empty()
        && value.len() <= 128
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    sane.then(|| value.to_string())
}

pub async fn request_context<E: Endpoint>(next: Arc<E>, mut req: Request) -> poem::Result<Response> {
    // A v4 UUID from the thread-local generator: no getrandom(2) syscall per request.
    let request_id =
        incoming_id(&req).unwrap_or_else(|| uuid::Builder::from_random_bytes(rand::random()).into_uuid().to_string());
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let route = crate::observability::route_label(req.uri().path());
    let method = req.method().to_string();
    // Only the path is logged: queries carry codes and tokens.
    let span =
        tracing::info_span!("request", request_id = %request_id, method = %req.method(), path = %req.uri().path());
    let started = Instant::now();
    let result = next.call(req).instrument(span.clone()).await;
    let mut response = match result {
        Ok(response) => response.into_response(),
        Err(error) => error.into_response(),
    };
    let elapsed = started.elapsed().as_secs_f64();
    let status = response.status().as_u16().to_string();
    ::metrics::counter!("http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    ::metrics::histogram!("http_request_duration_seconds", "route" => route).record(elapsed);
    span.in_scope(|| {
        tracing::info!(status = response.status().as_u16(), elapsed_ms = elapsed * 1000.0, "served");
    });
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID, value);
    }
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    if !headers.contains_key("content-security-policy") {
        headers.insert("content-security-policy", HeaderValue::from_static(PAGE_CSP));
    }
    Ok(response)
}

pub fn request_id(req: &Request) -> Option<String> {
    req.extensions().get::<RequestId>().map(|id| id.0.clone())
}
