//! `oxidp user create`.

use clap::Args;

use super::CliError;
use crate::admin::users::AdminError;
use crate::audit::Initiator;
use crate::state::AppState;
use crate::store::User;

#[derive(Args)]
pub struct CreateUserArgs {
    #[arg(long)]
    pub email: String,
    #[arg(long)]
    pub password: String,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub admin: bool,
}

/// Creates a user under the same email and password policy as the API (audited as the CLI).
pub async fn create_user(state: &AppState, args: CreateUserArgs) -> Result<User, CliError> {
    crate::admin::users::create(state, &Initiator::cli(), &args.email, &args.password, args.name, args.admin)
        .await
        .map_err(|error| match error {
            AdminError::Invalid { field, message } => CliError::Invalid(format!("--{field}: {message}")),
            other => CliError::Failed(other.to_string()),
        })
}
