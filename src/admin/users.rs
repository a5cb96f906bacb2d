use crate::cli::CliError;
use crate::passwords;
use crate::state::AppState;
use crate::store::{NewUser, StoreError, User, UserStore};

/// The password policy of SPEC §3 that the CLI applies too: 10–256 characters, not the
/// email's local part.
pub fn check_password(email: &str, password: &str) -> Result<(), String> {
    let length = password.chars().count();
    if !(10..=256).contains(&length) {
        return Err("--password must be 10 to 256 characters long".into());
    }
    let local = email.split('@').next().unwrap_or("").to_lowercase();
    if local.len() >= 3 && password.to_lowercase().contains(&local) {
        return Err("--password must not contain the email's local part".into());
    }
    Ok(())
}

pub fn check_email(email: &str) -> Result<(), String> {
    let email = email.trim();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid { Ok(()) } else { Err(format!("--email '{email}' is not a valid email address")) }
}

pub async fn create(
    state: &AppState,
    email: &str,
    password: &str,
    name: Option<String>,
    admin: bool,
) -> Result<User, CliError> {
    check_email(email).map_err(CliError::Invalid)?;
    check_password(email, password).map_err(CliError::Invalid)?;
    let hash = passwords::hash_password(password).map_err(CliError::Failed)?;
    let user = NewUser {
        email: email.trim().to_string(),
        email_verified: true,
        password_hash: Some(hash),
        name,
        role: if admin { "admin" } else { "user" }.to_string(),
    };
    state.db.create_user(user, state.now()).await.map_err(|error| match error {
        StoreError::Conflict => {
            CliError::Invalid(format!("--email: a user with email '{}' already exists", email.trim()))
        }
        other => CliError::Failed(other.to_string()),
    })
}
