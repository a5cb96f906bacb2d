//! The one place where the JSON API (`api/`) and the pages and protocol endpoints (`http/`)
//! meet: one application with the middleware every request passes through.

use std::sync::Arc;

use poem::{Endpoint, EndpointExt, Route};

use crate::api::Docs;
use crate::state::SharedState;

pub fn app(state: SharedState, docs: Arc<Docs>) -> impl Endpoint {
    let max_body = state.config.max_body_bytes;
    let challenge = crate::api::problem::bearer_challenge(&state.config);
    let api = Route::new()
        .nest(
            crate::api::API_PREFIX,
            crate::api::endpoint(&state.config)
                .around(move |next, req| crate::api::problem::problems(next, req, max_body, challenge.clone())),
        )
        .nest("/", Docs::endpoint(docs));
    crate::http::routes(api)
        .catch_all_error(crate::http::fallback)
        .with_if(!state.config.cors_origins.is_empty(), cors(&state.config.cors_origins))
        .around(crate::web::middleware::request_context)
        .data(state)
}

/// Browsers on the configured origins may call the JSON API and the token, userinfo,
/// revocation and metadata endpoints (what single-page apps need). No cookies cross origins.
fn cors(origins: &[String]) -> poem::middleware::Cors {
    poem::middleware::Cors::new()
        .allow_origins(origins.iter().map(String::as_str))
        .allow_methods(["GET", "POST", "PATCH", "PUT", "DELETE"])
        .allow_headers([
            "authorization",
            "content-type",
            "dpop",
            "x-api-key",
            "x-client-key",
            "x-request-id",
            "if-none-match",
        ])
        .expose_headers(["x-request-id", "etag", "retry-after", "www-authenticate", "dpop-nonce"])
        .allow_credentials(false)
        .max_age(600)
}
