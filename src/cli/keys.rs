//! `oxidp keys rotate|list|import`.

use clap::Subcommand;
use serde_json::{Value, json};

use super::CliError;
use crate::admin::keys::{self, KeyAdminError};
use crate::audit::Initiator;
use crate::state::AppState;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key that starts signing after the JWKS cache lifetime.
    Rotate {
        /// The algorithm's timeline to rotate: RS256 (default), ES256 or EdDSA.
        #[arg(long, default_value = crate::keys::DEFAULT_ALG)]
        alg: String,
    },
    /// List keys and their state (pending, active, retired, expired).
    List,
    /// Import an RSA private key (PEM) with the same delayed activation.
    Import {
        #[arg(long)]
        pem: std::path::PathBuf,
    },
}

pub async fn run(state: &AppState, command: KeysCommand) -> Result<Value, CliError> {
    let by = Initiator::cli();
    match command {
        KeysCommand::Rotate { alg } => {
            let key = keys::rotate(state, &by, &alg).await.map_err(|error| match error {
                KeyAdminError::UnknownAlg { .. } => CliError::Invalid(format!("--alg {alg}: {error}")),
                other => CliError::Failed(other.to_string()),
            })?;
            Ok(json!(key))
        }
        KeysCommand::List => {
            let keys = state.keys.list().await.map_err(|e| CliError::Failed(e.to_string()))?;
            Ok(json!({ "keys": keys }))
        }
        KeysCommand::Import { pem } => {
            let bytes = std::fs::read(&pem).map_err(|e| CliError::Invalid(format!("--pem {}: {e}", pem.display())))?;
            let key = keys::import(state, &by, &bytes).await.map_err(|error| match error {
                KeyAdminError::Material(message) => CliError::Invalid(format!("--pem {}: {message}", pem.display())),
                other => CliError::Failed(other.to_string()),
            })?;
            Ok(json!(key))
        }
    }
}
