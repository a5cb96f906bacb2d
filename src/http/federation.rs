//! `/login/{provider}` and `/login/{provider}/callback`: the browser side of upstream login.
//! The protocol is in `crate::federation`; here requests become calls, and outcomes become
//! redirects, cookies and pages. [`failure`] is the one place where a failed upstream login
//! becomes a response: an OAuth error redirect to the client when the login belongs to one of
//! its authorization requests and the upstream is at fault, else an HTML page.

use askama::Template;
use poem::http::header::SET_COOKIE;
use poem::http::{HeaderValue, StatusCode};
use poem::web::{Data, Path};
use poem::{Body, Request, Response, handler};

use super::error::{LoginRefusal, authorize_error, found, login_refusal, see_other, with_retry_after};
use super::pages;
use crate::federation::linking::{self, LinkOffer};
use crate::federation::{self, FederationError, Resolution, UpstreamAnswer, UpstreamProfile};
use crate::login;
use crate::oauth::authorize::{self, AuthorizeError, Outcome};
use crate::session::ActiveSession;
use crate::state::SharedState;
use crate::store::User;
use crate::web::request::{form_params, origin, query_params};
use crate::web::request_id;
use crate::web::{cookies, csrf};

/// Binds a login at an upstream to the browser that started it (holds a hash of the state).
const BINDING_COOKIE: &str = "oxidp_federation";
/// Binds a sign-in-to-link offer to the browser it was made to.
const LINK_COOKIE: &str = "oxidp_federation_link";
const LINK_FORM: &str = "federation-link";

#[derive(Template)]
#[template(path = "federation_link.html")]
struct LinkPage<'a> {
    csrf: &'a str,
    provider: &'a str,
    label: &'a str,
    email: &'a str,
    link_id: &'a str,
    request_id: Option<&'a str>,
    error: Option<&'a str>,
}

fn with_cookie(mut response: Response, cookie: String) -> Response {
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

fn label_of(state: &SharedState, provider: &str) -> String {
    state.federation.get(provider).map(|p| p.label.clone()).unwrap_or_else(|| provider.to_string())
}

/// Sends the browser to the upstream, remembering the login (state, PKCE verifier, nonce).
#[handler]
pub async fn start(req: &Request, Path(provider): Path<String>, Data(state): Data<&SharedState>) -> Response {
    let params = query_params(req).unwrap_or_default();
    let pending_id = params.get("request").filter(|id| !id.is_empty());
    let browser = cookies::get(state, req, cookies::AUTHORIZE);
    match federation::start(state, &provider, pending_id, browser.as_deref()).await {
        Ok(started) => with_cookie(
            found(&started.location),
            cookies::set(state, BINDING_COOKIE, &started.binding, Some(federation::attempt::ATTEMPT_TTL)),
        ),
        Err(error) => failure(state, req, &provider, error, pending_id).await,
    }
}

/// The upstream's answer: redeem the attempt, validate the answer, find the user, sign in and
/// continue the authorization request.
#[handler]
pub async fn callback(req: &Request, Path(provider): Path<String>, Data(state): Data<&SharedState>) -> Response {
    let params = query_params(req).unwrap_or_default();
    let binding = cookies::get(state, req, BINDING_COOKIE);
    let attempt = match federation::attempt::redeem(
        &state.kv,
        &state.secret,
        state.now(),
        &provider,
        params.get("state"),
        binding.as_deref(),
    )
    .await
    {
        Ok(attempt) => attempt,
        // The cookie stays: it may belong to another login of this browser that is still under way.
        Err(error) => return failure(state, req, &provider, error, None).await,
    };
    let pending_id = attempt.request_id.as_deref();
    let answer = UpstreamAnswer { code: params.get("code"), error: params.get("error"), iss: params.get("iss") };
    let response = match federation::finish(state, &attempt, answer).await {
        Ok(profile) => signed_in_upstream(state, req, &provider, &profile, pending_id).await,
        Err(error) => failure(state, req, &provider, error, pending_id).await,
    };
    with_cookie(response, cookies::clear(state, BINDING_COOKIE))
}

async fn signed_in_upstream(
    state: &SharedState,
    req: &Request,
    provider: &str,
    profile: &UpstreamProfile,
    pending_id: Option<&str>,
) -> Response {
    let trust = state.federation.get(provider).map_or_else(linking::EmailTrust::default, |p| linking::EmailTrust {
        verified: p.trust_email,
        unverified: p.trust_unverified_email,
    });
    let resolution = match linking::resolve(state, &origin(state, req), provider, trust, profile).await {
        Ok(resolution) => resolution,
        Err(error) => return failure(state, req, provider, error, pending_id).await,
    };
    let how = resolution.how();
    let user = match resolution {
        Resolution::SignInToLink(owner) => return offer_link(state, req, provider, profile, owner, pending_id).await,
        Resolution::Known(user) | Resolution::Created(user) | Resolution::Linked(user) => user,
    };
    sign_in(state, req, provider, user, "fed", how, pending_id).await
}

/// The email belongs to an account that is not linked automatically: its owner may sign in
/// with the password to link (administrators never are; without a password there is nothing
/// to sign in with here).
async fn offer_link(
    state: &SharedState,
    req: &Request,
    provider: &str,
    profile: &UpstreamProfile,
    owner: User,
    pending_id: Option<&str>,
) -> Response {
    let label = label_of(state, provider);
    if owner.is_admin() || owner.password_hash.is_none() {
        let message = if owner.is_admin() {
            format!(
                "An account with this email already exists. It is not linked to {label} automatically: sign in with its password instead."
            )
        } else {
            format!(
                "An account with this email already exists. Sign in the way you did before; to link {label}, first set a password with the password reset."
            )
        };
        return pages::error(StatusCode::CONFLICT, "Account exists", &message, request_id(req));
    }
    let offer = LinkOffer {
        provider: provider.to_string(),
        subject: profile.subject.clone(),
        email: owner.email.clone().unwrap_or_default(),
        owner_id: owner.id.clone(),
        request_id: pending_id.map(str::to_string),
    };
    let saved = match linking::save_offer(state, &offer).await {
        Ok(saved) => saved,
        Err(error) => return failure(state, req, provider, error, pending_id).await,
    };
    let page = render_link_page(state, req, &offer, &saved.id, None, StatusCode::OK);
    with_cookie(page, cookies::set(state, LINK_COOKIE, &saved.binding, Some(linking::OFFER_TTL)))
}

fn render_link_page(
    state: &SharedState,
    req: &Request,
    offer: &LinkOffer,
    link_id: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = csrf::ensure(state, req);
    let token = csrf.token(state, LINK_FORM);
    let label = label_of(state, &offer.provider);
    let page = LinkPage {
        csrf: &token,
        provider: &offer.provider,
        label: &label,
        email: &offer.email,
        link_id,
        request_id: offer.request_id.as_deref(),
        error,
    };
    csrf.attach(state, pages::render(status, &page))
}

/// The sign-in-to-link form: the account's password, then the identity is linked and the
/// user signed in (with both methods in `amr`).
#[handler]
pub async fn link_submit(
    req: &Request,
    body: Body,
    Path(provider): Path<String>,
    Data(state): Data<&SharedState>,
) -> Response {
    let Ok(form) = form_params(state, req, body).await else {
        return pages::error(StatusCode::BAD_REQUEST, "Bad request", "Expected the link form.", request_id(req));
    };
    if !csrf::verify(state, req, LINK_FORM, form.get("csrf")) {
        return pages::error(
            StatusCode::FORBIDDEN,
            "Form expired",
            "The form expired or was not sent from this site. Start the sign-in again.",
            request_id(req),
        );
    }
    let link_id = form.get("link").unwrap_or("");
    let offer = match linking::load_offer(state, Some(link_id), cookies::get(state, req, LINK_COOKIE).as_deref()).await
    {
        Ok(offer) if offer.provider == provider => offer,
        Ok(_) => return failure(state, req, &provider, FederationError::StateMismatch, None).await,
        Err(error) => return failure(state, req, &provider, error, None).await,
    };
    let password = form.get("password").unwrap_or("");
    let retry = |message: &str, status| render_link_page(state, req, &offer, link_id, Some(message), status);
    if password.len() > 1024 {
        return retry("Incorrect password.", StatusCode::UNAUTHORIZED);
    }
    let user = match login::password_login(state, &offer.email, password, &origin(state, req)).await {
        Ok(user) => user,
        Err(error) => match login_refusal(error, "Incorrect password.") {
            LoginRefusal::Form { message, status, retry_after } => {
                return with_retry_after(retry(message, status), retry_after);
            }
            LoginRefusal::Outage(error) => return failure(state, req, &provider, error.into(), None).await,
        },
    };
    let pending_id = offer.request_id.as_deref();
    if let Err(error) = linking::accept_offer(state, &origin(state, req), link_id, &offer, &user).await {
        return failure(state, req, &provider, error, pending_id).await;
    }
    let response = sign_in(state, req, &provider, user, "pwd fed", "linked_after_sign_in", pending_id).await;
    with_cookie(response, cookies::clear(state, LINK_COOKIE))
}

/// Starts the session (a fresh id) and continues the authorization request, if any.
async fn sign_in(
    state: &SharedState,
    req: &Request,
    provider: &str,
    user: User,
    amr: &str,
    how: &str,
    pending_id: Option<&str>,
) -> Response {
    let previous = cookies::get(state, req, cookies::SESSION);
    let started =
        match federation::sign_in(state, &origin(state, req), &user, provider, amr, how, previous.as_deref()).await {
            Ok(started) => started,
            Err(error) => return failure(state, req, provider, error, pending_id).await,
        };
    let session_cookie = cookies::set(state, cookies::SESSION, &started.token, Some(state.config.session_ttl));
    let active = ActiveSession { session: started.session, user };
    let response = match pending_id {
        Some(id) => continue_request(state, req, id, &active).await,
        None => pages::message(
            "Signed in",
            &format!("You are signed in with {}. You can close this page.", label_of(state, provider)),
        ),
    };
    with_cookie(response, session_cookie)
}

async fn continue_request(state: &SharedState, req: &Request, id: &str, active: &ActiveSession) -> Response {
    if let Some(ticket) = crate::oauth::device::ticket_of_sign_in(id) {
        return see_other(&format!("/device/confirm?ticket={ticket}"));
    }
    let result = async {
        let browser = cookies::get(state, req, cookies::AUTHORIZE);
        let Some(mut pending) = authorize::load_pending(state, id, browser.as_deref()).await? else {
            return Err(AuthorizeError::Page(
                "You are signed in, but the application's request has expired. Go back to the application and start again."
                    .into(),
            ));
        };
        authorize::mark_fresh_login(state, &mut pending, &active.session.id).await?;
        authorize::resume(state, pending, Some(active)).await
    }
    .await;
    match result {
        Ok(Outcome::Login { request_id }) => see_other(&format!("/login?request={request_id}")),
        Ok(Outcome::Consent { request_id }) => see_other(&format!("/consent?request={request_id}")),
        Ok(Outcome::Redirect(url)) => see_other(&url),
        Err(error) => authorize_error(&state.config.issuer, error, request_id(req)),
    }
}

/// The one mapping of a failed upstream login to a response (see the module comment). Never a
/// 5xx for anything the upstream or the browser did; 503 and 500 only for oxidp's own outages.
async fn failure(
    state: &SharedState,
    req: &Request,
    provider: &str,
    error: FederationError,
    pending_id: Option<&str>,
) -> Response {
    match &error {
        FederationError::Internal(_) => tracing::error!(provider, %error, "upstream login failed"),
        _ => tracing::warn!(provider, reason = error.reason(), %error, "upstream login failed"),
    }
    federation::record_failure(state, &origin(state, req), provider, &error).await;
    if let (Some((code, description)), Some(id)) = (error.client_error(), pending_id)
        && let Ok(Some(pending)) =
            authorize::load_pending(state, id, cookies::get(state, req, cookies::AUTHORIZE).as_deref()).await
    {
        let redirect = AuthorizeError::Redirect {
            redirect_uri: pending.request.redirect_uri,
            error: code,
            description: description.into(),
            state: pending.request.state,
        };
        return authorize_error(&state.config.issuer, redirect, request_id(req));
    }
    let label = label_of(state, provider);
    let restart = "Go back to the application and start again.";
    let (status, title, message) = match &error {
        FederationError::UnknownProvider => {
            (StatusCode::NOT_FOUND, "Unknown sign-in provider", "There is no sign-in provider with this name.".into())
        }
        FederationError::RequestExpired => {
            (StatusCode::BAD_REQUEST, "Request expired", format!("This sign-in request has expired. {restart}"))
        }
        FederationError::StateMissing | FederationError::NotBound | FederationError::StateMismatch => (
            StatusCode::BAD_REQUEST,
            "Sign-in not completed",
            format!("This sign-in was not started in this browser, or cookies are blocked. {restart}"),
        ),
        FederationError::StateUnknown => (
            StatusCode::BAD_REQUEST,
            "Sign-in not completed",
            format!("This sign-in has expired or was already completed. {restart}"),
        ),
        FederationError::Denied => {
            (StatusCode::FORBIDDEN, "Sign-in cancelled", format!("The sign-in with {label} was cancelled."))
        }
        FederationError::UpstreamRefused(_) | FederationError::InvalidResponse(_) => (
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            format!("The sign-in with {label} could not be verified. {restart}"),
        ),
        FederationError::Unreachable(_) => (
            StatusCode::BAD_REQUEST,
            "Sign-in unavailable",
            format!("{label} cannot be reached right now. Try again later, or sign in another way."),
        ),
        FederationError::NoEmail => (
            StatusCode::BAD_REQUEST,
            "No email address",
            format!("{label} did not share an email address, which an account needs."),
        ),
        FederationError::AccountDisabled => {
            (StatusCode::FORBIDDEN, "Account disabled", "This account is disabled.".to_string())
        }
        FederationError::AlreadyLinked => (
            StatusCode::CONFLICT,
            "Already linked",
            format!("This account is already linked to another {label} account."),
        ),
        FederationError::AdminNotLinked => (
            StatusCode::CONFLICT,
            "Not linked",
            "Administrator accounts are never linked to an upstream sign-in.".to_string(),
        ),
        FederationError::WrongAccount => {
            (StatusCode::FORBIDDEN, "Wrong account", "That is not the account to link.".to_string())
        }
        FederationError::Unavailable => {
            return authorize_error(&state.config.issuer, AuthorizeError::Unavailable, request_id(req));
        }
        FederationError::Internal(message) => {
            return authorize_error(&state.config.issuer, AuthorizeError::Internal(message.clone()), request_id(req));
        }
    };
    pages::error(status, title, &message, request_id(req))
}
