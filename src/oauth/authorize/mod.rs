//! The authorization endpoint, read top to bottom: `checks` validates the request (a list of
//! named checks), `decide` says what happens next as an [`Outcome`], `code` issues the code.

mod checks;
mod code;
mod consent;
mod limits;
pub use code::append_query;
pub use consent::decide as decide_consent;
mod pending;
mod pushed;
mod request_object;
pub use pushed::{PUSHED_TTL, Pushed, REQUEST_URI_PREFIX, push};

use serde::{Deserialize, Serialize};

use crate::oauth::ErrorCode;
use crate::oauth::params::Params;
use crate::session::ActiveSession;
use crate::state::AppState;
use crate::store::{Client, ConsentStore};

pub use pending::Pending;

/// A validated authorization request, kept while the user signs in or consents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    /// Whether the request named the redirect_uri (then /token must repeat it).
    pub redirect_uri_given: bool,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub resource: Option<String>,
    /// Set when the user signed in for this very request: it satisfies `prompt=login` and `max_age`.
    #[serde(default)]
    pub fresh_login_session: Option<String>,
    /// The user who approved the consent page for this request; it counts for nobody else.
    #[serde(default)]
    pub consent_given_by: Option<String>,
    /// Keyed hash of the authorization cookie of the browser that started the request.
    #[serde(default)]
    pub browser: String,
    /// RFC 9449 §10: the DPoP key the code is bound to (`dpop_jkt`, or a proof at `/par`).
    #[serde(default)]
    pub dpop_jkt: Option<String>,
}

impl AuthorizationRequest {
    fn prompts(&self, value: &str) -> bool {
        self.prompt.iter().any(|p| p == value)
    }
}

#[derive(Debug)]
pub enum AuthorizeError {
    /// The client or its redirect URI cannot be trusted: show an error page, never redirect.
    Page(String),
    /// The pending request belongs to another browser: an error page, never a redirect.
    OtherBrowser,
    /// Reported to the client at its (validated) redirect URI.
    Redirect {
        redirect_uri: String,
        error: ErrorCode,
        description: String,
        state: Option<String>,
    },
    /// Too many requests pending from one source address (`limits`): 429, never redirected.
    TooManyPending {
        retry_after: i64,
    },
    Unavailable,
    Internal(String),
}

crate::store::from_store_error!(AuthorizeError);

impl From<crate::kv::KvError> for AuthorizeError {
    fn from(_: crate::kv::KvError) -> Self {
        AuthorizeError::Unavailable
    }
}

impl AuthorizeError {
    /// The error redirect URL (RFC 6749 §4.1.2.1 plus RFC 9207 `iss`), when this error has one.
    pub fn redirect_url(&self, issuer: &str) -> Option<String> {
        match self {
            AuthorizeError::Redirect { redirect_uri, error, description, state } => Some(code::append_query(
                redirect_uri,
                &[
                    ("error", Some(error.as_str())),
                    ("error_description", Some(description)),
                    ("state", state.as_deref()),
                    ("iss", Some(issuer)),
                ],
            )),
            _ => None,
        }
    }
}

/// What the browser should see next.
#[derive(Debug)]
pub enum Outcome {
    Login {
        request_id: String,
    },
    Consent {
        request_id: String,
    },
    /// Back to the client, with a code or an error.
    Redirect(String),
}

/// Validates a fresh request from `source` (the client IP), its parameters in the query or in a
/// signed request object (`request`, see [`request_object`]), or takes the one the client pushed
/// (`request_uri`, see [`pushed`]), and decides its next step.
/// `browser_cookie` is the browser's authorization cookie: a request kept for the login or
/// consent page answers only to it.
pub async fn start(
    state: &AppState,
    params: &Params,
    session: Option<&ActiveSession>,
    source: &str,
    browser_cookie: &str,
) -> Result<Outcome, AuthorizeError> {
    // `request` beside `request_uri` goes to the checks, which refuse the pair.
    let (client, mut request) = if params.get("request_uri").is_some() && params.get("request").is_none() {
        pushed::take(state, params).await?
    } else {
        let (client, request) = checks::validate(state, params).await?;
        if pushed::required_for(state, &client) {
            return Err(AuthorizeError::Redirect {
                redirect_uri: request.redirect_uri,
                error: ErrorCode::InvalidRequest,
                description: "authorization requests of this client must be pushed to /par first (RFC 9126)".into(),
                state: request.state,
            });
        }
        (client, request)
    };
    request.browser = pending::browser_hash(state, browser_cookie);
    decide(state, &client, request, session, Some(source)).await
}

/// Picks up a pending request after the login or consent page. The request is consumed
/// whatever happens next: a further step gets a new id (see [`pending`]).
pub async fn resume(
    state: &AppState,
    pending: Pending,
    session: Option<&ActiveSession>,
) -> Result<Outcome, AuthorizeError> {
    pending::forget(state, &pending.id).await?;
    let client = crate::oauth::clients::find(state, &pending.request.client_id)
        .await?
        .ok_or_else(|| AuthorizeError::Page("The application is no longer registered.".into()))?;
    decide(state, &client, pending.request, session, None).await
}

pub use pending::{load as load_pending, mark_consent_given, mark_fresh_login};

async fn decide(
    state: &AppState,
    client: &Client,
    request: AuthorizationRequest,
    session: Option<&ActiveSession>,
    source: Option<&str>,
) -> Result<Outcome, AuthorizeError> {
    let (redirect_uri, client_state) = (request.redirect_uri.clone(), request.state.clone());
    let error = |error: ErrorCode, description: &str| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.clone(),
        error,
        description: description.to_string(),
        state: client_state.clone(),
    };
    let session = match session {
        Some(session) if !needs_login(state, &request, session) => session,
        _ if request.prompts("none") => return Err(error(ErrorCode::LoginRequired, "the user is not signed in")),
        _ => return Ok(Outcome::Login { request_id: limits::save_pending(state, source, &request).await? }),
    };
    let mut request = request;
    // `admin` reaches only administrators; others get the rest of what they asked for.
    if !session.user.is_admin() {
        request.scopes.retain(|scope| scope != crate::oauth::scope::ADMIN);
    }
    if needs_consent(state, client, &request, &session.user.id).await? {
        if request.prompts("none") {
            return Err(error(ErrorCode::ConsentRequired, "the user has not consented to this application"));
        }
        return Ok(Outcome::Consent { request_id: limits::save_pending(state, source, &request).await? });
    }
    if request.consent_given_by.as_deref() == Some(session.user.id.as_str()) {
        state.db.save_consent(&session.user.id, &client.id, &request.scopes.join(" "), state.now()).await?;
    }
    Ok(Outcome::Redirect(code::issue(state, &request, session).await?))
}

fn needs_login(state: &AppState, request: &AuthorizationRequest, session: &ActiveSession) -> bool {
    if request.fresh_login_session.as_deref() == Some(session.session.id.as_str()) {
        return false;
    }
    if request.prompts("login") {
        return true;
    }
    // OIDC Core §3.1.2.1: max_age=0 is equivalent to prompt=login (auth_time has one-second
    // resolution, so "elapsed > 0" would let a login from the same second through).
    request.max_age.is_some_and(|max_age| max_age == 0 || state.now() - session.session.auth_time > max_age)
}

async fn needs_consent(
    state: &AppState,
    client: &Client,
    request: &AuthorizationRequest,
    user_id: &str,
) -> Result<bool, AuthorizeError> {
    if client.first_party || request.consent_given_by.as_deref() == Some(user_id) {
        return Ok(false);
    }
    if request.prompts("consent") {
        return Ok(true);
    }
    let granted = state.db.consented_scope(user_id, &client.id).await?.unwrap_or_default();
    let granted: Vec<&str> = granted.split(' ').collect();
    Ok(!request.scopes.iter().all(|scope| granted.contains(&scope.as_str())))
}
