//! The validated answer of an upstream.

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
