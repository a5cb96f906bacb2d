use std::borrow::Cow;

use crate::kv::KvError;
use crate::store::StoreError;

/// An outcome of the OAuth endpoints that is not a success. The HTTP layer maps each
/// variant to its wire form in one place (`http::error`).
#[derive(Debug)]
pub enum OAuthError {
    /// An RFC 6749 error code with a human-readable description.
    Protocol {
        error: &'static str,
        description: Cow<'static, str>,
    },
    RateLimited {
        retry_after: i64,
    },
    /// A backing service is down; the client should retry.
    Unavailable,
    Internal(String),
}

macro_rules! constructors {
    ($($name:ident => $code:literal),* $(,)?) => {
        impl OAuthError {
            $(pub fn $name(description: impl Into<Cow<'static, str>>) -> Self {
                OAuthError::Protocol { error: $code, description: description.into() }
            })*
        }
    };
}

constructors! {
    invalid_request => "invalid_request",
    invalid_client => "invalid_client",
    invalid_grant => "invalid_grant",
    unauthorized_client => "unauthorized_client",
    unsupported_grant_type => "unsupported_grant_type",
    invalid_scope => "invalid_scope",
    invalid_target => "invalid_target",
    invalid_token => "invalid_token",
    insufficient_scope => "insufficient_scope",
}

impl OAuthError {
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::Protocol { error, .. } => error,
            OAuthError::RateLimited { .. } => "temporarily_unavailable",
            OAuthError::Unavailable => "temporarily_unavailable",
            OAuthError::Internal(_) => "server_error",
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => OAuthError::Unavailable,
            other => OAuthError::Internal(other.to_string()),
        }
    }
}

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
