//! /logout (RP-initiated): with a valid `id_token_hint` the session ends at once; otherwise
//! a CSRF-protected confirmation page comes first.

use poem::http::header::SET_COOKIE;
use poem::http::{HeaderValue, Method, StatusCode};
use poem::web::Data;
use poem::{Body, Request, Response, handler};

use super::error::see_other;
use super::pages::{self, LogoutPage};
use crate::oidc::logout::{LogoutError, LogoutRequest, validate};
use crate::session;
use crate::state::SharedState;
use crate::web::request::{form_params, query_params};
use crate::web::request_id;
use crate::web::{cookies, csrf};

const LOGOUT_FORM: &str = "logout";
const FORWARDED: [&str; 4] = ["id_token_hint", "client_id", "post_logout_redirect_uri", "state"];

#[handler]
pub async fn end_session(req: &Request, body: Body, Data(state): Data<&SharedState>) -> Response {
    let params =
        if req.method() == Method::POST { form_params(state, req, body).await.ok() } else { query_params(req) };
    let Some(params) = params else {
        return pages::error(
            StatusCode::BAD_REQUEST,
            "Cannot sign out",
            "The logout request is malformed.",
            request_id(req),
        );
    };
    let request = match validate(state, &params).await {
        Ok(request) => request,
        Err(LogoutError::Invalid(message)) => {
            return pages::error(StatusCode::BAD_REQUEST, "Cannot sign out", &message, request_id(req));
        }
        Err(LogoutError::Unavailable) => {
            return pages::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Please try again in a moment.",
                request_id(req),
            );
        }
    };
    let session_token = cookies::get(state, req, cookies::SESSION);
    let current = session::current(state, session_token.as_deref()).await.ok().flatten();
    let confirmed = req.method() == Method::POST
        && params.get("confirm") == Some("yes")
        && csrf::verify(state, req, LOGOUT_FORM, params.get("csrf"));
    let hint_matches = request.hinted
        && match current.as_ref() {
            None => true,
            Some(active) => request.hint_names(state, &active.user).await,
        };
    if !(confirmed || hint_matches) {
        return confirmation_page(state, req, &request, &params);
    }
    if let Some(token) = &session_token
        && session::end(state, token).await.is_err()
    {
        return pages::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            "Please try again in a moment.",
            request_id(req),
        );
    }
    let mut response = match &request.redirect {
        Some(location) => see_other(location),
        None => pages::message("Signed out", "You are signed out."),
    };
    if let Ok(value) = HeaderValue::from_str(&cookies::clear(state, cookies::SESSION)) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

fn confirmation_page(
    state: &SharedState,
    req: &Request,
    request: &LogoutRequest,
    params: &crate::oauth::params::Params,
) -> Response {
    let csrf = csrf::ensure(state, req);
    let token = csrf.token(state, LOGOUT_FORM);
    let hidden = FORWARDED
        .iter()
        .filter_map(|name| params.get(name).map(|value| (name.to_string(), value.to_string())))
        .collect();
    let page = LogoutPage { csrf: &token, client_name: request.client_name.as_deref(), hidden };
    csrf.attach(state, pages::render(StatusCode::OK, &page))
}
