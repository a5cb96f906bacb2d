//! The error codes oxidp sends to clients, typed so a misspelt code cannot compile.
//! [`ErrorCode::as_str`] is the registered wire string; nothing else spells them.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    // RFC 6749 §4.1.2.1 and §5.2.
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    /// RFC 8707 §2: a `resource` the client may not ask for.
    InvalidTarget,
    // RFC 6750 §3.1 (Bearer tokens at /userinfo and the JSON API).
    InvalidToken,
    InsufficientScope,
    // OIDC Core §3.1.2.6 (`prompt=none` and request objects).
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    /// RFC 9101 §6.2: a request object that does not verify or breaks a rule.
    InvalidRequestObject,
    // RFC 7591 §3.2.2 (dynamic client registration).
    InvalidRedirectUri,
    InvalidClientMetadata,
    // RFC 8628 §3.5 (polling with a device code).
    AuthorizationPending,
    SlowDown,
    ExpiredToken,
    // RFC 9449 §5, §7.1, §8 (DPoP).
    InvalidDpopProof,
    UseDpopNonce,
}

impl ErrorCode {
    /// The registered string, exactly as it goes on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::InteractionRequired => "interaction_required",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::InvalidRequestObject => "invalid_request_object",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// JSON bodies carry the wire string (`{"error": "invalid_grant"}`).
impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode::{self, *};

    /// Every code and its string, spelt out once more by hand: clients match on these bytes.
    const WIRE: [(ErrorCode, &str); 26] = [
        (InvalidRequest, "invalid_request"),
        (InvalidClient, "invalid_client"),
        (InvalidGrant, "invalid_grant"),
        (UnauthorizedClient, "unauthorized_client"),
        (UnsupportedGrantType, "unsupported_grant_type"),
        (UnsupportedResponseType, "unsupported_response_type"),
        (InvalidScope, "invalid_scope"),
        (AccessDenied, "access_denied"),
        (ServerError, "server_error"),
        (TemporarilyUnavailable, "temporarily_unavailable"),
        (InvalidTarget, "invalid_target"),
        (InvalidToken, "invalid_token"),
        (InsufficientScope, "insufficient_scope"),
        (LoginRequired, "login_required"),
        (ConsentRequired, "consent_required"),
        (InteractionRequired, "interaction_required"),
        (RequestNotSupported, "request_not_supported"),
        (RequestUriNotSupported, "request_uri_not_supported"),
        (InvalidRequestObject, "invalid_request_object"),
        (InvalidRedirectUri, "invalid_redirect_uri"),
        (InvalidClientMetadata, "invalid_client_metadata"),
        (AuthorizationPending, "authorization_pending"),
        (SlowDown, "slow_down"),
        (ExpiredToken, "expired_token"),
        (InvalidDpopProof, "invalid_dpop_proof"),
        (UseDpopNonce, "use_dpop_nonce"),
    ];

    #[test]
    fn wire_strings_are_the_registered_ones() {
        for (code, wire) in WIRE {
            assert_eq!(code.as_str(), wire);
            assert_eq!(code.to_string(), wire);
            assert_eq!(serde_json::to_value(code).ok(), Some(serde_json::Value::String(wire.into())));
        }
    }
}
