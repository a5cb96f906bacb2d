//! /authorize, /login and /consent: the browser side of the code flow.

use poem::http::header::SET_COOKIE;
use poem::http::{HeaderValue, StatusCode};
use poem::web::Data;
use poem::{Body, Request, Response, handler};

use super::error::{LoginRefusal, authorize_error, found, login_refusal, see_other, with_retry_after};
use super::pages::{self, ConsentPage, LoginPage};
use crate::crypto::random_token;
use crate::login;
use crate::oauth::authorize::{self, AuthorizeError, Outcome, Pending};
use crate::session::{self, ActiveSession};
use crate::state::SharedState;
use crate::web::request::{BodyError, client_ip, form_params, query_params, user_agent};
use crate::web::request_id;
use crate::web::{cookies, csrf};

const LOGIN_FORM: &str = "login";
const CONSENT_FORM: &str = "consent";

fn bad_request_page(req: &Request, message: &str) -> Response {
    pages::error(StatusCode::BAD_REQUEST, "Something is wrong with this request", message, request_id(req))
}

fn outcome_response(outcome: Outcome, after_form: bool) -> Response {
    let location = match outcome {
        Outcome::Login { request_id } => format!("/login?request={request_id}"),
        Outcome::Consent { request_id } => format!("/consent?request={request_id}"),
        Outcome::Redirect(url) => url,
    };
    if after_form { see_other(&location) } else { found(&location) }
}

async fn current_session(state: &SharedState, req: &Request) -> Result<Option<ActiveSession>, AuthorizeError> {
    Ok(session::current(state, cookies::get(state, req, cookies::SESSION).as_deref()).await?)
}

#[handler]
pub async fn authorize_get(req: &Request, Data(state): Data<&SharedState>) -> Response {
    let Some(params) = query_params(req) else {
        return bad_request_page(req, "The request parameters are not valid UTF-8.");
    };
    // The browser's authorization cookie, created on its first request: pending requests
    // answer only to it.
    let existing = cookies::get(state, req, cookies::AUTHORIZE);
    let browser = existing.clone().unwrap_or_else(|| random_token(32));
    let result = async {
        let session = current_session(state, req).await?;
        authorize::start(state, &params, session.as_ref(), &client_ip(state, req), &browser).await
    }
    .await;
    match result {
        Ok(outcome) => {
            let pending = !matches!(outcome, Outcome::Redirect(_));
            let response = outcome_response(outcome, false);
            if pending && existing.is_none() {
                with_cookie(response, cookies::set(state, cookies::AUTHORIZE, &browser, None))
            } else {
                response
            }
        }
        Err(error) => authorize_error(&state.config.issuer, error, request_id(req)),
    }
}

fn with_cookie(mut response: Response, cookie: String) -> Response {
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

/// A POSTed authorization request is answered with a 303 to the same request as a GET, so
/// that `SameSite=Lax` session cookies are sent with it.
#[handler]
pub async fn authorize_post(req: &Request, body: Body, Data(state): Data<&SharedState>) -> Response {
    match form_params(state, req, body).await {
        Ok(params) => {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (key, value) in params.iter() {
                query.append_pair(key, value);
            }
            // A repeated parameter stays repeated, so the GET refuses it exactly as if it had
            // been sent in the query (issue #12 item 7).
            for key in params.repeated() {
                query.append_pair(key, params.get(key).unwrap_or_default());
            }
            see_other(&format!("/authorize?{}", query.finish()))
        }
        Err(error) => bad_request_page(req, body_error_message(error)),
    }
}

fn body_error_message(error: BodyError) -> &'static str {
    match error {
        BodyError::TooLarge => "The form is too large.",
        BodyError::NotForm => "Expected a form submission (application/x-www-form-urlencoded).",
        BodyError::Unreadable => "The request body could not be read.",
        BodyError::BadEncoding => "The form is not valid UTF-8.",
    }
}

async fn pending_or_page(state: &SharedState, req: &Request, id: Option<&str>) -> Result<Option<Pending>, Response> {
    let Some(id) = id else { return Ok(None) };
    // A sign-in for a device authorization: its ticket is checked on the confirmation page.
    if crate::oauth::device::ticket_of_sign_in(id).is_some() {
        return Ok(None);
    }
    match authorize::load_pending(state, id, cookies::get(state, req, cookies::AUTHORIZE).as_deref()).await {
        Ok(Some(pending)) => Ok(Some(pending)),
        Ok(None) => {
            Err(bad_request_page(req, "This sign-in request has expired. Go back to the application and start again."))
        }
        Err(error) => Err(authorize_error(&state.config.issuer, error, request_id(req))),
    }
}

/// For a client made from a metadata document (its id is a URL): its host, and whether the
/// request's redirect URI is a loopback address.
fn document_client(pending: Option<&Pending>) -> pages::DocumentClient {
    let Some(request) = pending.map(|p| &p.request) else { return pages::DocumentClient::default() };
    let Ok(url) = url::Url::parse(&request.client_id) else { return pages::DocumentClient::default() };
    let loopback = url::Url::parse(&request.redirect_uri)
        .ok()
        .is_some_and(|uri| uri.host().is_some_and(|host| crate::outbound::is_loopback_host(&host)));
    pages::DocumentClient { host: url.host_str().map(str::to_string), loopback_redirect: loopback }
}

async fn client_name(state: &SharedState, pending: Option<&Pending>) -> Option<String> {
    let pending = pending?;
    crate::oauth::clients::find(state, &pending.request.client_id).await.ok().flatten().map(|client| client.name)
}

/// The client of a device authorization the sign-in continues, for the login page's heading.
async fn device_client_name(state: &SharedState, req: &Request, request_id: &str) -> Option<String> {
    let ticket = crate::oauth::device::ticket_of_sign_in(request_id)?;
    let browser = cookies::get(state, req, cookies::AUTHORIZE);
    crate::oauth::device::confirmation(state, ticket, browser.as_deref()).await.ok().map(|found| found.client.name)
}

struct LoginForm<'a> {
    request_id: &'a str,
    email: &'a str,
    error: Option<&'a str>,
}

async fn render_login(
    state: &SharedState,
    req: &Request,
    pending: Option<&Pending>,
    form: LoginForm<'_>,
    status: StatusCode,
) -> Response {
    let csrf = csrf::ensure(state, req);
    let token = csrf.token(state, LOGIN_FORM);
    let client = match client_name(state, pending).await {
        Some(name) => Some(name),
        None => device_client_name(state, req, form.request_id).await,
    };
    let page = LoginPage {
        csrf: &token,
        request_id: form.request_id,
        email: form.email,
        client_name: client.as_deref(),
        document: document_client(pending),
        error: form.error,
        providers: state
            .federation
            .providers()
            .map(|provider| pages::ProviderButton { name: provider.name.clone(), label: provider.label.clone() })
            .collect(),
    };
    csrf.attach(state, pages::render(status, &page))
}

#[handler]
pub async fn login_page(req: &Request, Data(state): Data<&SharedState>) -> Response {
    let params = query_params(req).unwrap_or_default();
    let pending = match pending_or_page(state, req, params.get("request")).await {
        Ok(pending) => pending,
        Err(response) => return response,
    };
    let hint = pending.as_ref().and_then(|p| p.request.login_hint.clone()).unwrap_or_default();
    let form = LoginForm { request_id: params.get("request").unwrap_or(""), email: &hint, error: None };
    render_login(state, req, pending.as_ref(), form, StatusCode::OK).await
}

#[handler]
pub async fn login_submit(req: &Request, body: Body, Data(state): Data<&SharedState>) -> Response {
    let form = match form_params(state, req, body).await {
        Ok(form) => form,
        Err(error) => return bad_request_page(req, body_error_message(error)),
    };
    if !csrf::verify(state, req, LOGIN_FORM, form.get("csrf")) {
        return pages::error(
            StatusCode::FORBIDDEN,
            "Form expired",
            "The sign-in form expired or was not sent from this site. Reload the page and try again.",
            request_id(req),
        );
    }
    let mut pending = match pending_or_page(state, req, form.get("request")).await {
        Ok(pending) => pending,
        Err(response) => return response,
    };
    let email = form.get("email").unwrap_or("");
    let password = form.get("password").unwrap_or("");
    let request_field = form.get("request").unwrap_or("");
    let retry = |error: &'static str| LoginForm { request_id: request_field, email, error: Some(error) };
    if email.len() > 320 || password.len() > 1024 {
        return render_login(
            state,
            req,
            pending.as_ref(),
            retry("Incorrect email or password."),
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    let origin = crate::web::origin(state, req);
    let ip = client_ip(state, req);
    let user = match login::password_login(state, email, password, &origin).await {
        Ok(user) => user,
        Err(error) => match login_refusal(error, "Incorrect email or password.") {
            LoginRefusal::Form { message, status, retry_after } => {
                let page = render_login(state, req, pending.as_ref(), retry(message), status).await;
                return with_retry_after(page, retry_after);
            }
            LoginRefusal::Outage(error) => return authorize_error(&state.config.issuer, error, request_id(req)),
        },
    };
    let started = match session::start(
        state,
        &user,
        "pwd",
        cookies::get(state, req, cookies::SESSION).as_deref(),
        Some(ip),
        user_agent(req),
    )
    .await
    {
        Ok(started) => started,
        Err(error) => return authorize_error(&state.config.issuer, error.into(), request_id(req)),
    };
    let session_cookie = cookies::set(state, cookies::SESSION, &started.token, Some(state.config.session_ttl));
    let active = ActiveSession { session: started.session, user };
    let response = match pending.as_mut() {
        Some(pending) => {
            let result = async {
                authorize::mark_fresh_login(state, pending, &active.session.id).await?;
                authorize::resume(state, pending.clone(), Some(&active)).await
            }
            .await;
            match result {
                Ok(outcome) => outcome_response(outcome, true),
                Err(error) => authorize_error(&state.config.issuer, error, request_id(req)),
            }
        }
        None => match crate::oauth::device::ticket_of_sign_in(request_field) {
            Some(ticket) => see_other(&format!("/device/confirm?ticket={ticket}")),
            None => pages::message("Signed in", "You are signed in. You can close this page."),
        },
    };
    with_cookie(response, session_cookie)
}

#[handler]
pub async fn consent_page(req: &Request, Data(state): Data<&SharedState>) -> Response {
    let params = query_params(req).unwrap_or_default();
    let Some(request_param) = params.get("request") else {
        return bad_request_page(req, "There is no request to consent to.");
    };
    let pending = match pending_or_page(state, req, Some(request_param)).await {
        Ok(Some(pending)) => pending,
        Ok(None) => return bad_request_page(req, "There is no request to consent to."),
        Err(response) => return response,
    };
    let session = match current_session(state, req).await {
        Ok(Some(session)) => session,
        Ok(None) => return see_other(&format!("/login?request={}", pending.id)),
        Err(error) => return authorize_error(&state.config.issuer, error, request_id(req)),
    };
    let csrf = csrf::ensure(state, req);
    let token = csrf.token(state, CONSENT_FORM);
    let client = client_name(state, Some(&pending)).await.unwrap_or_else(|| pending.request.client_id.clone());
    let scopes = pending.request.scopes.iter().map(|scope| (scope.clone(), pages::describe_scope(scope))).collect();
    let page = ConsentPage {
        csrf: &token,
        request_id: &pending.id,
        client_name: &client,
        document: document_client(Some(&pending)),
        user_email: session.user.email.as_deref().unwrap_or_default(),
        scopes,
    };
    csrf.attach(state, pages::render(StatusCode::OK, &page))
}

#[handler]
pub async fn consent_submit(req: &Request, body: Body, Data(state): Data<&SharedState>) -> Response {
    let form = match form_params(state, req, body).await {
        Ok(form) => form,
        Err(error) => return bad_request_page(req, body_error_message(error)),
    };
    if !csrf::verify(state, req, CONSENT_FORM, form.get("csrf")) {
        return pages::error(
            StatusCode::FORBIDDEN,
            "Form expired",
            "The consent form expired or was not sent from this site. Reload the page and try again.",
            request_id(req),
        );
    }
    let pending = match pending_or_page(state, req, form.get("request")).await {
        Ok(Some(pending)) => pending,
        Ok(None) => return bad_request_page(req, "There is no request to consent to."),
        Err(response) => return response,
    };
    let session = match current_session(state, req).await {
        Ok(Some(session)) => session,
        Ok(None) => return see_other(&format!("/login?request={}", pending.id)),
        Err(error) => return authorize_error(&state.config.issuer, error, request_id(req)),
    };
    let decision = match form.get("decision") {
        Some(decision @ ("approve" | "deny")) => decision,
        _ => return bad_request_page(req, "Choose Allow or Deny."),
    };
    let origin = crate::web::origin(state, req);
    let result = authorize::decide_consent(state, &origin, pending, &session, decision == "approve").await;
    match result {
        Ok(outcome) => outcome_response(outcome, true),
        Err(error) => authorize_error(&state.config.issuer, error, request_id(req)),
    }
}
