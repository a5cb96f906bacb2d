//! /device and /device/confirm: the browser side of the device authorization grant (RFC 8628).
//! The person types the user code (no Deny here: nothing is decided yet), signs in through the
//! ordinary login if needed, then confirms on a page that names the client and repeats the
//! code, with Allow and Deny. The protocol is in `crate::oauth::device`.

use poem::http::header::SET_COOKIE;
use poem::http::{HeaderValue, StatusCode};
use poem::web::Data;
use poem::{Body, Request, Response, handler};

use super::error::{DeviceRefusal, authorize_error, device_refusal, see_other, with_retry_after};
use super::pages::{self, DeviceConfirmPage, DeviceEntryPage};
use crate::crypto::random_token;
use crate::oauth::device::{self, Confirmation, DeviceError, SIGN_IN_PREFIX};
use crate::session::{self, ActiveSession};
use crate::state::SharedState;
use crate::web::request::{client_ip, form_params, query_params};
use crate::web::{cookies, csrf, request_id};

const ENTRY_FORM: &str = "device";
const CONFIRM_FORM: &str = "device-confirm";
/// Longer input is not a code; it is neither echoed nor looked up.
const MAX_INPUT: usize = 32;

fn render_entry(
    state: &SharedState,
    req: &Request,
    user_code: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = csrf::ensure(state, req);
    let token = csrf.token(state, ENTRY_FORM);
    let user_code = if user_code.len() > MAX_INPUT { "" } else { user_code };
    csrf.attach(state, pages::render(status, &DeviceEntryPage { csrf: &token, user_code, error }))
}

/// The refusal as the entry page (with its message) or, for oxidp's own outages, an error page.
fn refused(state: &SharedState, req: &Request, user_code: &str, error: DeviceError) -> Response {
    match device_refusal(error) {
        DeviceRefusal::Form { message, status, retry_after } => {
            with_retry_after(render_entry(state, req, user_code, Some(message), status), retry_after)
        }
        DeviceRefusal::Outage(error) => authorize_error(&state.config.issuer, error, request_id(req)),
    }
}

fn form_expired(req: &Request) -> Response {
    pages::error(
        StatusCode::FORBIDDEN,
        "Form expired",
        "The form expired or was not sent from this site. Reload the page and try again.",
        request_id(req),
    )
}

fn bad_form(req: &Request) -> Response {
    pages::error(StatusCode::BAD_REQUEST, "Something is wrong with this request", "Expected the form.", request_id(req))
}

async fn current_session(state: &SharedState, req: &Request) -> Result<Option<ActiveSession>, DeviceError> {
    session::current(state, cookies::get(state, req, cookies::SESSION).as_deref()).await.map_err(DeviceError::from)
}

fn confirm_location(ticket: &str) -> String {
    format!("/device/confirm?ticket={ticket}")
}

fn sign_in_location(ticket: &str) -> String {
    format!("/login?request={SIGN_IN_PREFIX}{ticket}")
}

/// GET /device, prefilled from `verification_uri_complete` (`?user_code=`).
#[handler]
pub async fn entry_page(req: &Request, Data(state): Data<&SharedState>) -> Response {
    let params = query_params(req).unwrap_or_default();
    render_entry(state, req, params.get("user_code").unwrap_or(""), None, StatusCode::OK)
}

/// POST /device: the typed code, throttled, then sign-in (if needed) and the confirmation page.
#[handler]
pub async fn entry_submit(req: &Request, body: Body, Data(state): Data<&SharedState>) -> Response {
    let Ok(form) = form_params(state, req, body).await else { return bad_form(req) };
    if !csrf::verify(state, req, ENTRY_FORM, form.get("csrf")) {
        return form_expired(req);
    }
    let typed = form.get("user_code").unwrap_or("");
    // The confirmation answers only to this browser: its authorization cookie, made if missing.
    let existing = cookies::get(state, req, cookies::AUTHORIZE);
    let browser = existing.clone().unwrap_or_else(|| random_token(32));
    let input = if typed.len() > MAX_INPUT { "" } else { typed };
    let result = async {
        let ticket = device::enter(state, input, &client_ip(state, req), &browser).await?;
        let session = current_session(state, req).await?;
        Ok::<_, DeviceError>((ticket, session))
    }
    .await;
    let response = match result {
        Ok((ticket, Some(_))) => see_other(&confirm_location(&ticket.id)),
        Ok((ticket, None)) => see_other(&sign_in_location(&ticket.id)),
        Err(error) => return refused(state, req, typed, error),
    };
    match existing {
        Some(_) => response,
        None => with_cookie(response, &cookies::set(state, cookies::AUTHORIZE, &browser, None)),
    }
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

/// The ticket's confirmation and the signed-in person, or the response to give instead.
async fn confirmation_and_session(
    state: &SharedState,
    req: &Request,
    ticket: Option<&str>,
) -> Result<(Confirmation, ActiveSession), Response> {
    let ticket = ticket.unwrap_or("");
    let browser = cookies::get(state, req, cookies::AUTHORIZE);
    let result = async {
        let confirmation = device::confirmation(state, ticket, browser.as_deref()).await?;
        let session = current_session(state, req).await?;
        Ok::<_, DeviceError>((confirmation, session))
    }
    .await;
    match result {
        Ok((confirmation, Some(session))) => Ok((confirmation, session)),
        Ok((_, None)) => Err(see_other(&sign_in_location(ticket))),
        Err(error) => Err(refused(state, req, "", error)),
    }
}

/// GET /device/confirm: the client's name and the user code, with Allow and Deny.
#[handler]
pub async fn confirm_page(req: &Request, Data(state): Data<&SharedState>) -> Response {
    let params = query_params(req).unwrap_or_default();
    let (confirmation, session) = match confirmation_and_session(state, req, params.get("ticket")).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let csrf = csrf::ensure(state, req);
    let token = csrf.token(state, CONFIRM_FORM);
    let scopes = confirmation
        .authorization
        .scope
        .split(' ')
        .filter(|scope| !scope.is_empty())
        .filter(|scope| session.user.is_admin() || *scope != crate::oauth::scope::ADMIN)
        .map(|scope| (scope.to_string(), pages::describe_scope(scope)))
        .collect();
    let page = DeviceConfirmPage {
        csrf: &token,
        ticket: &confirmation.ticket.id,
        user_code: &device::display(&confirmation.ticket.user_code),
        client_name: &confirmation.client.name,
        user_email: session.user.email.as_deref().unwrap_or_default(),
        scopes,
    };
    csrf.attach(state, pages::render(StatusCode::OK, &page))
}

/// POST /device/confirm: the person's decision.
#[handler]
pub async fn confirm_submit(req: &Request, body: Body, Data(state): Data<&SharedState>) -> Response {
    let Ok(form) = form_params(state, req, body).await else { return bad_form(req) };
    if !csrf::verify(state, req, CONFIRM_FORM, form.get("csrf")) {
        return form_expired(req);
    }
    let approve = match form.get("decision") {
        Some("approve") => true,
        Some("deny") => false,
        _ => return pages::error(StatusCode::BAD_REQUEST, "Choose", "Choose Allow or Deny.", request_id(req)),
    };
    let (confirmation, session) = match confirmation_and_session(state, req, form.get("ticket")).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let origin = crate::web::origin(state, req);
    match device::decide(state, &origin, confirmation, &session, approve).await {
        Ok(()) if approve => pages::message("Device connected", "You may return to your device."),
        Ok(()) => pages::message("Request denied", "The device was not connected. You may close this page."),
        Err(error) => refused(state, req, "", error),
    }
}
