//! What can go wrong in an upstream login; `reason` is for the audit log, `client_error`
//! for the client whose request the login belonged to.

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

use crate::oauth::ErrorCode;

crate::store::from_store_error!(FederationError);

impl From<crate::kv::KvError> for FederationError {
    fn from(_: crate::kv::KvError) -> Self {
        FederationError::Unavailable
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
