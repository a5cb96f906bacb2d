//! Upstream login (SPEC §2): OpenID Connect issuers (Google, Authentik, any other) in `oidc.rs`,
//! GitHub in `github.rs`. Each kind has a start (the authorization URL, with state, PKCE and
//! for OIDC a nonce) and a finish (code → verified [`UpstreamProfile`]); `attempt.rs` keeps the
//! login attempt in between, single-use and bound to the browser; `linking.rs` decides which
//! oxidp user the profile signs in as. No HTTP framework types here: `http/federation.rs`
//! translates requests and outcomes.

pub mod attempt;
mod error;
pub mod github;
pub mod linking;
pub mod oidc;
pub mod outbound;
mod profile;
pub mod registry;

use oauth2::PkceCodeChallenge;

use crate::audit::{Actor, Initiator, Origin};
use crate::oauth::authorize::{self, AuthorizeError, Pending};
use crate::state::AppState;
use crate::store::User;

pub use attempt::LoginAttempt;
pub use error::FederationError;
pub use linking::Resolution;
pub use profile::UpstreamProfile;
use registry::Upstream;
pub use registry::{Provider, Registry, RegistryError, callback_url};

impl From<AuthorizeError> for FederationError {
    fn from(error: AuthorizeError) -> Self {
        match error {
            AuthorizeError::Unavailable | AuthorizeError::TooManyPending { .. } => FederationError::Unavailable,
            AuthorizeError::OtherBrowser => FederationError::NotBound,
            other => FederationError::Internal(format!("{other:?}")),
        }
    }
}

/// Where to send the browser, and the binding cookie's value.
pub struct Started {
    pub location: String,
    pub binding: String,
}

/// Starts a login at `provider`, for the pending authorization request `request_id` (or for a
/// plain sign-in without one).
pub async fn start(
    state: &AppState,
    provider: &str,
    request_id: Option<&str>,
    browser_cookie: Option<&str>,
) -> Result<Started, FederationError> {
    let provider = state.federation.get(provider).ok_or(FederationError::UnknownProvider)?;
    // A sign-in for a device authorization goes on to its confirmation page, which checks the
    // ticket (and this browser) again.
    let device_ticket = request_id.filter(|id| crate::oauth::device::ticket_of_sign_in(id).is_some());
    let pending = match request_id.filter(|id| !id.is_empty() && device_ticket.is_none()) {
        Some(id) => {
            Some(authorize::load_pending(state, id, browser_cookie).await?.ok_or(FederationError::RequestExpired)?)
        }
        None => None,
    };
    let raw_state = crate::crypto::random_token(32);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (location, nonce) = match &provider.upstream {
        Upstream::Oidc(oidc) => {
            let started =
                oidc.authorization_url(&state.clock, &raw_state, challenge, prompt_for(pending.as_ref())).await?;
            (started.location, Some(started.nonce))
        }
        Upstream::Github(github) => (github.authorization_url(&raw_state, challenge), None),
    };
    let attempt = LoginAttempt {
        provider: provider.name.clone(),
        request_id: pending.map(|pending| pending.id).or_else(|| device_ticket.map(str::to_string)),
        pkce_verifier: verifier.secret().clone(),
        nonce,
        created_at: state.now(),
    };
    attempt::save(&state.kv, &state.secret, &raw_state, &attempt).await?;
    Ok(Started { location, binding: attempt::binding(&state.secret, &raw_state) })
}

/// A fresh login asked of oxidp is asked of the upstream too.
fn prompt_for(pending: Option<&Pending>) -> oidc::Prompt {
    let Some(request) = pending.map(|pending| &pending.request) else { return oidc::Prompt::Default };
    match request.max_age {
        _ if request.prompt.iter().any(|prompt| prompt == "login") => oidc::Prompt::Login,
        Some(0) => oidc::Prompt::Login,
        Some(seconds) => oidc::Prompt::MaxAge(seconds),
        None => oidc::Prompt::Default,
    }
}

/// The callback's answer from the upstream: a code, or an error code.
pub struct UpstreamAnswer<'a> {
    pub code: Option<&'a str>,
    pub error: Option<&'a str>,
    /// RFC 9207: the issuer of the answer, when the upstream sends it (mix-up defence).
    pub iss: Option<&'a str>,
}

/// Turns the upstream's answer to a redeemed attempt into a validated profile.
pub async fn finish(
    state: &AppState,
    attempt: &LoginAttempt,
    answer: UpstreamAnswer<'_>,
) -> Result<UpstreamProfile, FederationError> {
    let provider = state.federation.get(&attempt.provider).ok_or(FederationError::UnknownProvider)?;
    if let (Upstream::Oidc(oidc), Some(iss)) = (&provider.upstream, answer.iss)
        && iss != oidc.issuer()
    {
        return Err(FederationError::InvalidResponse("the answer's iss is another issuer".into()));
    }
    if let Some(error) = answer.error {
        return Err(match error {
            "access_denied" => FederationError::Denied,
            other => FederationError::UpstreamRefused(other.chars().take(64).collect()),
        });
    }
    let code = answer
        .code
        .filter(|code| !code.is_empty() && code.len() <= 2048)
        .ok_or_else(|| FederationError::InvalidResponse("the callback has no code".into()))?;
    match &provider.upstream {
        Upstream::Oidc(oidc) => oidc.finish(&state.clock, attempt, code).await,
        Upstream::Github(github) => github.finish(attempt, code).await,
    }
}

/// Starts a browser session for a user who signed in at an upstream (a fresh id; `amr` as the
/// sign-in went), and audits the sign-in.
pub async fn sign_in(
    state: &AppState,
    origin: &Origin,
    user: &User,
    provider: &str,
    amr: &str,
    how: &str,
    previous_session: Option<&str>,
) -> Result<crate::session::NewSession, FederationError> {
    if !user.is_active() {
        return Err(FederationError::AccountDisabled);
    }
    let started =
        crate::session::start(state, user, amr, previous_session, origin.ip.clone(), origin.user_agent.clone()).await?;
    let by = Initiator::new(Actor::User(user.id.clone()), origin.clone());
    let details = serde_json::json!({ "provider": provider, "how": how });
    if let Err(error) = by.record(state, "login.federated", ("user", &user.id), details).await {
        tracing::error!(%error, "could not audit a federated login");
    }
    Ok(started)
}

/// Audits a failed upstream sign-in (not for an unknown provider or oxidp's own outage).
pub async fn record_failure(state: &AppState, origin: &Origin, provider: &str, error: &FederationError) {
    if matches!(error, FederationError::UnknownProvider | FederationError::Unavailable) {
        return;
    }
    let event = crate::audit::Event {
        actor: Actor::Anonymous,
        action: "login.federated_failed",
        target: None,
        details: serde_json::json!({ "provider": provider, "reason": error.reason() }),
    };
    if let Err(audit_error) = crate::audit::record(state, origin, event).await {
        tracing::error!(error = %audit_error, "could not audit a failed federated login");
    }
}
