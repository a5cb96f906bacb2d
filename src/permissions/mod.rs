//! Permissions and organizations (SPEC §6) and the upstream-subject lookups the internal
//! service routes need (SPEC §7). No HTTP types: the API layer translates requests into these
//! calls and [`PermissionError`] into responses.
//!
//! - [`grants`]: grant and revoke a direct permission, idempotently.
//! - [`organizations`]: organizations and memberships.
//! - [`snapshot`]: a user's effective permissions with their version and `ETag`.
//! - [`upstream`]: upsert a user by upstream subject; resolve an upstream subject.
//!
//! The rule every write here keeps: a user's `permissions_version` moves in the same
//! transaction as any change to what that user's snapshot shows, and only then (see `store`).

pub mod grants;
pub mod organizations;
pub mod snapshot;
pub mod upstream;

pub use grants::{PermissionChange, PermissionRequest};
pub use snapshot::Snapshot;

/// The longest scope type, scope id, module, action, role or provider name.
pub const MAX_TOKEN_CHARS: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum PermissionError {
    /// A request field is invalid.
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    /// The user, organization or identity addressed does not exist.
    #[error("{0}")]
    NotFound(&'static str),
    /// The request contradicts the stored state (a taken slug, an administrator's email).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("service unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

crate::store::from_store_error!(PermissionError);

pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> PermissionError {
    PermissionError::Invalid { field, message: message.into() }
}

/// A name in a permission (scope type, scope id, module, action), a member's role or a
/// provider: 1 to 128 of `A-Z a-z 0-9 _ . : * -`. Narrow on purpose, so that services can
/// match these values without escaping and nothing in them reads as markup or SQL.
pub fn check_token(field: &'static str, value: &str) -> Result<(), PermissionError> {
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.chars().count() > MAX_TOKEN_CHARS {
        return Err(invalid(field, format!("must be at most {MAX_TOKEN_CHARS} characters")));
    }
    if !value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '*' | '-')) {
        return Err(invalid(field, "may contain only letters, digits and _ . : * -"));
    }
    Ok(())
}

/// A subject (oxidp's or an upstream's): 1 to 255 characters without control characters.
pub fn check_subject(field: &'static str, value: &str) -> Result<(), PermissionError> {
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.chars().count() > 255 {
        return Err(invalid(field, "must be at most 255 characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_narrow() {
        for good in ["global", "organization", "billing.invoices", "read:all", "*", "a-b_c"] {
            assert!(check_token("f", good).is_ok(), "{good}");
        }
        let long = "a".repeat(MAX_TOKEN_CHARS + 1);
        for bad in ["", " global", "a b", "x/y", "é", "<script>", "a'b", long.as_str()] {
            assert!(matches!(check_token("f", bad), Err(PermissionError::Invalid { field: "f", .. })), "{bad:?}");
        }
        assert!(check_token("f", &"a".repeat(MAX_TOKEN_CHARS)).is_ok());
    }

    #[test]
    fn subjects_allow_upstream_shapes() {
        assert!(check_subject("sub", "github|12345").is_ok());
        assert!(check_subject("sub", "a@b c").is_ok());
        assert!(check_subject("sub", "").is_err());
        assert!(check_subject("sub", "a\nb").is_err());
        assert!(check_subject("sub", &"x".repeat(256)).is_err());
    }
}
