//! /userinfo (GET or POST) with a Bearer token in the Authorization header (RFC 6750 §2.1)
//! or, for POST, the form body (§2.2).

use poem::http::StatusCode;
use poem::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use poem::web::Data;
use poem::{Body, Request, Response, handler};

use super::error::{no_store, resource_json};
use crate::oauth::dpop::Presentation;
use crate::oidc;
use crate::state::SharedState;
use crate::web::request::{form_params, is_form};

pub fn bearer_token(req: &Request) -> Option<&str> {
    scheme_token(req, "bearer")
}

/// The token of `Authorization: DPoP …` (RFC 9449 §7.1).
pub fn dpop_token(req: &Request) -> Option<&str> {
    scheme_token(req, "dpop")
}

fn scheme_token<'a>(req: &'a Request, wanted: &str) -> Option<&'a str> {
    let header = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = header.split_once(' ')?;
    scheme.eq_ignore_ascii_case(wanted).then(|| token.trim()).filter(|t| !t.is_empty())
}

#[handler]
pub async fn userinfo(req: &Request, body: Body, Data(state): Data<&SharedState>) -> Response {
    let proofs = super::token::dpop_headers(req);
    let url = format!("{}{}", state.config.issuer, req.uri().path());
    let dpop = dpop_token(req).map(str::to_string);
    let presentation = match dpop {
        Some(_) => Presentation::Dpop { proofs: &proofs, method: req.method().as_str(), url: &url },
        None => Presentation::Bearer,
    };
    let mut token = dpop.clone().or_else(|| bearer_token(req).map(str::to_string));
    if token.is_none() && req.method() == poem::http::Method::POST && is_form(req) {
        token =
            form_params(state, req, body).await.ok().and_then(|params| params.get("access_token").map(str::to_string));
    }
    let Some(token) = token else {
        // No credentials at all: a challenge without an error code (RFC 6750 §3.1).
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(WWW_AUTHENTICATE, "Bearer realm=\"oxidp\"")
            .header(CONTENT_TYPE, "application/json")
            .body(r#"{"error":"invalid_request","error_description":"a Bearer access token is required"}"#);
    };
    match oidc::userinfo::userinfo(state, &token, &presentation).await {
        Ok(claims) => no_store(Response::builder().header(CONTENT_TYPE, "application/json"))
            .body(serde_json::Value::Object(claims).to_string()),
        Err(error) => resource_json(error, dpop.is_some()),
    }
}
