//! `oxidp client token-exchange`: sets a client's token-exchange policy (RFC 8693).

use clap::Args;
use serde_json::{Value, json};

use super::CliError;
use crate::admin::client_exchange;
use crate::admin::clients::ClientError;
use crate::audit::Initiator;
use crate::state::AppState;
use crate::store::ExchangePolicy;

#[derive(Args, Debug)]
pub struct TokenExchangePolicyArgs {
    /// The client allowed the token-exchange grant.
    #[arg(long)]
    pub client_id: String,
    /// A registered client id it may name as `audience` (repeatable).
    #[arg(long = "audience")]
    pub audiences: Vec<String>,
    /// An RFC 8707 resource indicator it may name as `resource` (repeatable).
    #[arg(long = "resource")]
    pub resources: Vec<String>,
    /// It may present actor tokens even when the subject token's `may_act` does not name the actor.
    #[arg(long)]
    pub delegation: bool,
}

/// Replaces the policy (audited as the CLI); prints it.
pub async fn set(state: &AppState, args: TokenExchangePolicyArgs) -> Result<Value, CliError> {
    let policy = ExchangePolicy { audiences: args.audiences, resources: args.resources, delegation: args.delegation };
    let set =
        client_exchange::set_policy(state, &Initiator::cli(), &args.client_id, policy).await.map_err(|error| {
            match error {
                ClientError::Invalid(e) => {
                    let flag = match e.field {
                        "audiences" => "--audience",
                        "resources" => "--resource",
                        _ => "--client-id",
                    };
                    CliError::Invalid(format!("{flag}: {}", e.message))
                }
                ClientError::NotFound => CliError::Invalid("--client-id: no such client".into()),
                other => CliError::Failed(other.to_string()),
            }
        })?;
    Ok(json!({
        "client_id": args.client_id,
        "audiences": set.audiences,
        "resources": set.resources,
        "delegation": set.delegation,
    }))
}
