//! Every core error into problem JSON: the one place where the JSON API decides what a core
//! outcome looks like on the wire.

use super::ApiError;

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        match error {
            crate::store::StoreError::Unavailable(_) => ApiError::unavailable(),
            other => ApiError::internal(&other.to_string()),
        }
    }
}

impl From<crate::account::AccountError> for ApiError {
    fn from(error: crate::account::AccountError) -> Self {
        use crate::account::AccountError as E;
        match error {
            E::Invalid { field, message } => ApiError::bad_request("invalid_field", Some(field), message),
            E::EmailTaken => ApiError::conflict("email_taken", "an account with this email already exists"),
            E::Forbidden(message) => ApiError::forbidden("forbidden", message),
            E::BadToken => {
                ApiError::bad_request("invalid_token", Some("token"), "the token is invalid, expired or already used")
            }
            E::WrongPassword => {
                ApiError::bad_request("wrong_password", Some("current_password"), "the current password is wrong")
            }
            E::NotFound(message) => ApiError::not_found(message),
            E::LastLoginMethod => ApiError::conflict(
                "last_login_method",
                "this identity is the account's last way to sign in; set a password or link another provider first",
            ),
            E::RateLimited { retry_after } => ApiError::too_many(retry_after),
            E::Busy => ApiError::busy(),
            E::Unavailable => ApiError::unavailable(),
            E::Internal(message) => ApiError::internal(&message),
        }
    }
}

impl From<crate::oauth::OAuthError> for ApiError {
    fn from(error: crate::oauth::OAuthError) -> Self {
        use crate::oauth::OAuthError as E;
        match error {
            E::Protocol { error: error @ crate::oauth::ErrorCode::InvalidGrant, description } => {
                ApiError::unauthorized(error.as_str(), description)
            }
            E::Protocol { error, description } => ApiError::bad_request(error.as_str(), None, description),
            E::Dpop { error, description, .. } => ApiError::unauthorized(error.as_str(), description),
            E::RateLimited { retry_after } => ApiError::too_many(retry_after),
            E::Unavailable => ApiError::unavailable(),
            E::Internal(message) => ApiError::internal(&message),
        }
    }
}

impl From<crate::apikeys::ApiKeyError> for ApiError {
    fn from(error: crate::apikeys::ApiKeyError) -> Self {
        use crate::apikeys::ApiKeyError as E;
        match error {
            E::Invalid { field, message } => ApiError::bad_request("invalid_field", Some(field), message),
            E::Unauthenticated => {
                ApiError::unauthorized("invalid_api_key", "the API key is invalid, expired or revoked")
            }
            E::NotAllowed { code, message } => ApiError::forbidden(code, message),
            E::Unavailable => ApiError::unavailable(),
            E::Internal(message) => ApiError::internal(&message),
        }
    }
}

impl From<crate::permissions::PermissionError> for ApiError {
    fn from(error: crate::permissions::PermissionError) -> Self {
        use crate::permissions::PermissionError as E;
        match error {
            E::Invalid { field, message } => ApiError::bad_request("invalid_field", Some(field), message),
            E::NotFound(message) => ApiError::not_found(message),
            E::Conflict { code, message } => ApiError::conflict(code, message),
            E::Unavailable => ApiError::unavailable(),
            E::Internal(message) => ApiError::internal(&message),
        }
    }
}

impl From<crate::admin::users::AdminError> for ApiError {
    fn from(error: crate::admin::users::AdminError) -> Self {
        use crate::admin::users::AdminError as E;
        match error {
            E::Invalid { field, message } => ApiError::bad_request("invalid_field", Some(field), message),
            E::NotFound => ApiError::not_found("no such user"),
            E::Conflict(message) => ApiError::conflict("conflict", message),
            E::Guarded(guard) => ApiError::conflict(guard.code(), guard.detail()),
            E::Unavailable => ApiError::unavailable(),
            E::Internal(message) => ApiError::internal(&message),
        }
    }
}

impl From<crate::admin::clients::ClientError> for ApiError {
    fn from(error: crate::admin::clients::ClientError) -> Self {
        use crate::admin::clients::ClientError as E;
        match error {
            E::Invalid(e) => ApiError::bad_request("invalid_field", Some(e.field), e.message),
            E::NotFound => ApiError::not_found("no such client"),
            E::Builtin => ApiError::forbidden("builtin_client", "the built-in oxidp-api client cannot be changed"),
            E::Unavailable => ApiError::unavailable(),
            E::Internal(message) => ApiError::internal(&message),
        }
    }
}

impl From<crate::admin::keys::KeyAdminError> for ApiError {
    fn from(error: crate::admin::keys::KeyAdminError) -> Self {
        use crate::admin::keys::KeyAdminError as E;
        match error {
            E::UnknownAlg { offered, .. } => {
                ApiError::bad_request("invalid_field", Some("alg"), format!("one of {offered}"))
            }
            E::Material(message) => ApiError::bad_request("invalid_field", Some("pem"), message),
            E::Unavailable => ApiError::unavailable(),
            E::Internal(message) => ApiError::internal(&message),
        }
    }
}

impl From<crate::apiclients::ApiClientError> for ApiError {
    fn from(error: crate::apiclients::ApiClientError) -> Self {
        use crate::apiclients::ApiClientError as E;
        match error {
            E::Invalid { field, message } => ApiError::bad_request("invalid_field", Some(field), message),
            E::NotFound => ApiError::not_found("no such API client"),
            E::Unavailable => ApiError::unavailable(),
            other => ApiError::internal(&other.to_string()),
        }
    }
}

impl From<crate::login::LoginError> for ApiError {
    fn from(error: crate::login::LoginError) -> Self {
        use crate::login::LoginError as E;
        match error {
            E::InvalidCredentials => ApiError::unauthorized("invalid_credentials", "incorrect email or password"),
            E::Locked { retry_after, .. } => ApiError::too_many(retry_after),
            E::Busy => ApiError::busy(),
            E::Unavailable => ApiError::unavailable(),
            E::Internal(message) => ApiError::internal(&message),
        }
    }
}

impl From<crate::registration::RegistrationError> for ApiError {
    fn from(error: crate::registration::RegistrationError) -> Self {
        use crate::registration::RegistrationError as E;
        match error {
            E::InvalidMetadata(message) => {
                let field = if message.starts_with("uses") { "uses" } else { "expires_in" };
                ApiError::bad_request("invalid_field", Some(field), message)
            }
            E::Unavailable => ApiError::unavailable(),
            other => ApiError::internal(&other.to_string()),
        }
    }
}
