//! `oxidp registration-token create`: an initial access token for dynamic client registration
//! (`OXIDP_DYNAMIC_REGISTRATION=token`).

use clap::Args;
use serde_json::{Value, json};

use super::CliError;
use crate::audit::Initiator;
use crate::registration::{RegistrationError, create_initial_token};
use crate::state::AppState;

#[derive(Args)]
pub struct CreateRegistrationTokenArgs {
    /// Seconds the token stays valid.
    #[arg(long, default_value_t = 86_400)]
    pub expires_in: i64,
    /// Registrations the token allows; unlimited when absent.
    #[arg(long)]
    pub uses: Option<i64>,
}

/// Prints `{"token", "expires_at", "uses"}`; the token is shown this once.
pub async fn create(state: &AppState, args: CreateRegistrationTokenArgs) -> Result<Value, CliError> {
    let issued =
        create_initial_token(state, &Initiator::cli(), args.expires_in, args.uses).await.map_err(|e| match e {
            RegistrationError::InvalidMetadata(message) => {
                let flag = if message.starts_with("uses") { "--uses" } else { "--expires-in" };
                CliError::Invalid(format!("{flag}: {message}"))
            }
            other => CliError::Failed(other.to_string()),
        })?;
    Ok(json!({ "token": issued.token, "id": issued.id, "expires_at": issued.expires_at, "uses": issued.uses }))
}
