//! The password policy of SPEC §3: 10–256 characters, not a common password, not the email's
//! local part.

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

pub fn check(email: &str, password: &str) -> Result<(), PasswordProblem> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert_eq!(check("a@x.io", "short"), Err(PasswordProblem::Length));
        assert_eq!(check("a@x.io", &"x".repeat(257)), Err(PasswordProblem::Length));
        assert_eq!(check("a@x.io", "Password123"), Err(PasswordProblem::Common));
        assert_eq!(check("alice@x.io", "alice-is-great-99"), Err(PasswordProblem::ContainsEmail));
        assert_eq!(check("alice@x.io", "correct horse battery"), Ok(()));
    }
}
