//! The account policy of SPEC §3, the one place for it (API, pages, CLI, upstream sign-ins
//! and imports call it): a password is 10–256 characters, not a common password, not the
//! email's local part; an email address is one plausible `local@domain.tld`.

/// Common passwords long enough to pass the length rule (shorter ones fail it anyway).
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

#[derive(Debug, PartialEq, Eq)]
pub enum PasswordProblem {
    Length,
    Common,
    ContainsEmail,
}

impl PasswordProblem {
    pub fn message(&self) -> &'static str {
        match self {
            PasswordProblem::Length => "the password must be 10 to 256 characters long",
            PasswordProblem::Common => "the password is too common; choose another",
            PasswordProblem::ContainsEmail => "the password must not contain your email address",
        }
    }
}

pub fn check_password(email: &str, password: &str) -> Result<(), PasswordProblem> {
    let length = password.chars().count();
    if !(10..=256).contains(&length) {
        return Err(PasswordProblem::Length);
    }
    let lowered = password.to_lowercase();
    if COMMON_PASSWORDS.lines().map(str::trim).any(|common| !common.is_empty() && common == lowered) {
        return Err(PasswordProblem::Common);
    }
    let local = email.split('@').next().unwrap_or("").trim().to_lowercase();
    if local.len() >= 3 && lowered.contains(&local) {
        return Err(PasswordProblem::ContainsEmail);
    }
    Ok(())
}

/// The trimmed address, or why it is not one.
pub fn check_email(email: &str) -> Result<String, &'static str> {
    let email = email.trim();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid { Ok(email.to_string()) } else { Err("not a valid email address") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert_eq!(check_password("a@x.io", "short"), Err(PasswordProblem::Length));
        assert_eq!(check_password("a@x.io", &"x".repeat(257)), Err(PasswordProblem::Length));
        assert_eq!(check_password("a@x.io", "Password123"), Err(PasswordProblem::Common));
        assert_eq!(check_password("alice@x.io", "alice-is-great-99"), Err(PasswordProblem::ContainsEmail));
        assert_eq!(check_password("alice@x.io", "correct horse battery"), Ok(()));
    }

    #[test]
    fn emails() {
        assert_eq!(check_email(" a@x.io "), Ok("a@x.io".to_string()));
        for bad in ["", "a", "@x.io", "a@x", "a@.io", "a@x.", "a b@x.io", "a@b@x.io"] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }
}
