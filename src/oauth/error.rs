use std::borrow::Cow;

use super::ErrorCode;
use crate::kv::KvError;

/// An outcome of the OAuth endpoints that is not a success. The HTTP layer maps each
/// variant to its wire form in one place (`http::error`).
#[derive(Debug)]
pub enum OAuthError {
    /// An error code the client acts on, with a human-readable description.
    Protocol {
        error: ErrorCode,
        description: Cow<'static, str>,
    },
    /// RFC 9449: a refused DPoP proof, or a DPoP-bound token presented without its proof.
    /// Resources answer with a `DPoP` challenge; a `nonce` goes out in the `DPoP-Nonce` header.
    Dpop {
        error: ErrorCode,
        description: Cow<'static, str>,
        nonce: Option<String>,
    },
    RateLimited {
        retry_after: i64,
    },
    /// A backing service is down; the client should retry.
    Unavailable,
    Internal(String),
}

macro_rules! constructors {
    ($($name:ident => $code:ident),* $(,)?) => {
        impl OAuthError {
            $(pub fn $name(description: impl Into<Cow<'static, str>>) -> Self {
                OAuthError::Protocol { error: ErrorCode::$code, description: description.into() }
            })*
        }
    };
}

constructors! {
    invalid_request => InvalidRequest,
    invalid_client => InvalidClient,
    invalid_grant => InvalidGrant,
    unauthorized_client => UnauthorizedClient,
    unsupported_grant_type => UnsupportedGrantType,
    unsupported_response_type => UnsupportedResponseType,
    invalid_scope => InvalidScope,
    invalid_target => InvalidTarget,
    invalid_token => InvalidToken,
    insufficient_scope => InsufficientScope,
    request_not_supported => RequestNotSupported,
    request_uri_not_supported => RequestUriNotSupported,
    access_denied => AccessDenied,
    authorization_pending => AuthorizationPending,
    slow_down => SlowDown,
    expired_token => ExpiredToken,
}

impl OAuthError {
    /// RFC 9449 `invalid_dpop_proof`.
    pub fn invalid_dpop_proof(description: impl Into<Cow<'static, str>>) -> Self {
        OAuthError::Dpop { error: ErrorCode::InvalidDpopProof, description: description.into(), nonce: None }
    }

    /// The code on the wire; the variants without one of their own map to the RFC's.
    pub fn code(&self) -> ErrorCode {
        match self {
            OAuthError::Protocol { error, .. } | OAuthError::Dpop { error, .. } => *error,
            OAuthError::RateLimited { .. } | OAuthError::Unavailable => ErrorCode::TemporarilyUnavailable,
            OAuthError::Internal(_) => ErrorCode::ServerError,
        }
    }
}

crate::store::from_store_error!(OAuthError);

impl From<KvError> for OAuthError {
    fn from(_: KvError) -> Self {
        OAuthError::Unavailable
    }
}

impl From<crate::keys::KeyError> for OAuthError {
    fn from(error: crate::keys::KeyError) -> Self {
        match error {
            crate::keys::KeyError::Store(store) => store.into(),
            other => OAuthError::Internal(other.to_string()),
        }
    }
}
