//! Upstream login (SPEC §2): OpenID Connect issuers (Google, Authentik, any other) in `oidc.rs`,
//! GitHub in `github.rs`. Each kind has a start (the authorization URL, with state, PKCE and
//! for OIDC a nonce) and a finish (code → verified [`UpstreamProfile`]); `state.rs` keeps the
//! login attempt in between, single-use and bound to the browser; `linking.rs` decides which
//! oxidp user the profile signs in as. No HTTP framework types here: `http/federation.rs`
//! translates requests and outcomes.

pub mod github;
pub mod linking;
pub mod oidc;
pub mod outbound;
pub mod state;

use oauth2::PkceCodeChallenge;

use crate::config::{Config, UpstreamKind};
use crate::oauth::ErrorCode;
use crate::oauth::authorize::{self, AuthorizeError, Pending};
use crate::state::AppState;
use crate::store::StoreError;

pub use linking::Resolution;
pub use state::LoginAttempt;

/// What an upstream told us about the user, after validation.
#[derive(Debug, Clone)]
pub struct UpstreamProfile {
    /// The upstream's subject: `sub` of the ID token, GitHub's numeric user id.
    pub subject: String,
    pub email: Option<String>,
    /// The upstream asserts the email verified (whether that is believed is `trust_email`).
    pub email_verified: bool,
    pub name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    #[error("no such upstream provider")]
    UnknownProvider,
    /// The authorization request the login was for is gone.
    #[error("the authorization request has expired")]
    RequestExpired,
    #[error("the callback has no state")]
    StateMissing,
    /// No binding cookie: the callback is not in the browser that started the login.
    #[error("the callback arrived without the browser binding")]
    NotBound,
    /// The binding cookie is for another login than this state.
    #[error("the state does not match this browser's login")]
    StateMismatch,
    /// Expired, or already used.
    #[error("the login attempt has expired or was already used")]
    StateUnknown,
    /// The upstream answered `error=access_denied`.
    #[error("the user declined at the upstream")]
    Denied,
    /// The upstream answered another error code.
    #[error("the upstream answered error {0}")]
    UpstreamRefused(String),
    #[error("the upstream cannot be reached: {0}")]
    Unreachable(String),
    /// The code exchange or the ID token failed validation (the reason is for logs only).
    #[error("the upstream response is invalid: {0}")]
    InvalidResponse(String),
    #[error("the upstream shared no usable email address")]
    NoEmail,
    #[error("the account is disabled")]
    AccountDisabled,
    /// The account already has another identity at this provider.
    #[error("the account is linked to another identity at this provider")]
    AlreadyLinked,
    #[error("administrator accounts are not linked to upstream identities")]
    AdminNotLinked,
    /// Someone signed in as another account than the one the identity was offered to.
    #[error("signed in as another account")]
    WrongAccount,
    #[error("storage unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for FederationError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => FederationError::Unavailable,
            other => FederationError::Internal(other.to_string()),
        }
    }
}

impl From<crate::kv::KvError> for FederationError {
    fn from(_: crate::kv::KvError) -> Self {
        FederationError::Unavailable
    }
}

impl From<AuthorizeError> for FederationError {
    fn from(error: AuthorizeError) -> Self {
        match error {
            AuthorizeError::Unavailable => FederationError::Unavailable,
            other => FederationError::Internal(format!("{other:?}")),
        }
    }
}

impl FederationError {
    /// The OAuth error (RFC 6749 §4.1.2.1) the client receives when the login belonged to one
    /// of its authorization requests; `None` where only an error page fits (the callback cannot
    /// be tied to a request, or the user can still sign in another way).
    pub fn client_error(&self) -> Option<(ErrorCode, &'static str)> {
        Some(match self {
            FederationError::Denied => {
                (ErrorCode::AccessDenied, "the user declined the sign-in at the upstream provider")
            }
            FederationError::UpstreamRefused(_) => {
                (ErrorCode::AccessDenied, "the upstream provider refused the sign-in")
            }
            FederationError::Unreachable(_) => {
                (ErrorCode::TemporarilyUnavailable, "the upstream provider cannot be reached; try again later")
            }
            FederationError::InvalidResponse(_) => {
                (ErrorCode::AccessDenied, "the upstream sign-in could not be verified")
            }
            FederationError::NoEmail => (ErrorCode::AccessDenied, "the upstream provider shared no email address"),
            _ => return None,
        })
    }

    /// A short reason for the audit log (never a token or code).
    pub fn reason(&self) -> &'static str {
        match self {
            FederationError::UnknownProvider => "unknown_provider",
            FederationError::RequestExpired => "request_expired",
            FederationError::StateMissing => "state_missing",
            FederationError::NotBound => "not_bound",
            FederationError::StateMismatch => "state_mismatch",
            FederationError::StateUnknown => "state_unknown",
            FederationError::Denied => "denied",
            FederationError::UpstreamRefused(_) => "upstream_error",
            FederationError::Unreachable(_) => "unreachable",
            FederationError::InvalidResponse(_) => "invalid_response",
            FederationError::NoEmail => "no_email",
            FederationError::AccountDisabled => "account_disabled",
            FederationError::AlreadyLinked => "already_linked",
            FederationError::AdminNotLinked => "admin_not_linked",
            FederationError::WrongAccount => "wrong_account",
            FederationError::Unavailable => "unavailable",
            FederationError::Internal(_) => "internal",
        }
    }
}

// Built once at start and never moved: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
enum Upstream {
    Oidc(oidc::OidcUpstream),
    Github(github::GithubUpstream),
}

pub struct Provider {
    pub name: String,
    pub label: String,
    pub trust_email: bool,
    upstream: Upstream,
}

/// The configured upstream providers, built once at start.
#[derive(Default)]
pub struct Registry {
    /// In the configuration's (alphabetical) order: the login page's buttons follow it.
    providers: Vec<Provider>,
}

#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct RegistryError {
    pub variable: String,
    pub message: String,
}

impl Registry {
    pub fn build(config: &Config) -> Result<Registry, RegistryError> {
        let mut providers = Vec::new();
        for (name, upstream) in &config.upstream {
            let error = |message: String| RegistryError {
                variable: format!("OXIDP_UPSTREAM__{}", name.to_ascii_uppercase()),
                message,
            };
            let http = outbound::client(upstream.timeout_seconds()).map_err(|e| error(e.to_string()))?;
            let redirect_uri = callback_url(config, name);
            let (built, default_label) = match upstream.kind {
                UpstreamKind::Oidc | UpstreamKind::Google => {
                    let google = upstream.kind == UpstreamKind::Google;
                    let oidc = oidc::OidcUpstream::new(name, upstream, &redirect_uri, http, google).map_err(error)?;
                    (Upstream::Oidc(oidc), if google { "Google".to_string() } else { title_case(name) })
                }
                UpstreamKind::Github => {
                    let github = github::GithubUpstream::new(name, upstream, &redirect_uri, http).map_err(error)?;
                    (Upstream::Github(github), "GitHub".to_string())
                }
            };
            providers.push(Provider {
                name: name.clone(),
                label: upstream.label.clone().unwrap_or(default_label),
                trust_email: upstream.trusts_email(),
                upstream: built,
            });
        }
        Ok(Registry { providers })
    }

    pub fn get(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|provider| provider.name == name)
    }

    pub fn providers(&self) -> impl Iterator<Item = &Provider> {
        self.providers.iter()
    }

    /// The provider names a browser can sign in with.
    pub fn names(&self) -> Vec<String> {
        self.providers.iter().map(|provider| provider.name.clone()).collect()
    }
}

fn title_case(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The redirect URI to register at the upstream.
pub fn callback_url(config: &Config, provider: &str) -> String {
    format!("{}/login/{provider}/callback", config.issuer)
}

/// Where to send the browser, and the binding cookie's value.
pub struct Started {
    pub location: String,
    pub binding: String,
}

/// Starts a login at `provider`, for the pending authorization request `request_id` (or for a
/// plain sign-in without one).
pub async fn start(state: &AppState, provider: &str, request_id: Option<&str>) -> Result<Started, FederationError> {
    let provider = state.federation.get(provider).ok_or(FederationError::UnknownProvider)?;
    let pending = match request_id.filter(|id| !id.is_empty()) {
        Some(id) => Some(authorize::load_pending(state, id).await?.ok_or(FederationError::RequestExpired)?),
        None => None,
    };
    let raw_state = crate::crypto::random_token(32);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (location, nonce) = match &provider.upstream {
        Upstream::Oidc(oidc) => {
            let started = oidc.authorization_url(state, &raw_state, challenge, prompt_for(pending.as_ref())).await?;
            (started.location, Some(started.nonce))
        }
        Upstream::Github(github) => (github.authorization_url(&raw_state, challenge), None),
    };
    let attempt = LoginAttempt {
        provider: provider.name.clone(),
        request_id: pending.map(|pending| pending.id),
        pkce_verifier: verifier.secret().clone(),
        nonce,
        created_at: state.now(),
    };
    state::save(state, &raw_state, &attempt).await?;
    Ok(Started { location, binding: state::binding(state, &raw_state) })
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
        Upstream::Oidc(oidc) => oidc.finish(state, attempt, code).await,
        Upstream::Github(github) => github.finish(attempt, code).await,
    }
}
