use poem::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use poem::web::Data;
use poem::{Response, handler};

use crate::state::SharedState;

fn json(body: String, max_age: i64) -> Response {
    Response::builder()
        .header(CONTENT_TYPE, "application/json")
        .header(CACHE_CONTROL, format!("public, max-age={max_age}"))
        .body(body)
}

#[handler]
pub fn openid_configuration(Data(state): Data<&SharedState>) -> Response {
    json(state.openid_configuration.clone(), 3600)
}

#[handler]
pub fn oauth_metadata(Data(state): Data<&SharedState>) -> Response {
    json(state.oauth_metadata.clone(), 3600)
}

/// RFC 9728 metadata of the resource `{issuer}/api`.
#[handler]
pub fn protected_resource_metadata(Data(state): Data<&SharedState>) -> Response {
    json(state.protected_resource_metadata.clone(), 3600)
}

#[handler]
pub fn jwks(Data(state): Data<&SharedState>) -> Response {
    json(state.keys.jwks_json(), state.config.jwks_max_age)
}
