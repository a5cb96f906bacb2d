//! `oxidp api-client create`.

use clap::Args;
use serde_json::{Value, json};

use super::CliError;
use crate::audit::Initiator;
use crate::state::AppState;

#[derive(Args)]
pub struct CreateApiClientArgs {
    #[arg(long)]
    pub name: String,
    /// RFC 3339 time (2027-01-31T00:00:00Z) or unix seconds.
    #[arg(long)]
    pub expires_at: Option<String>,
    /// IP address or CIDR the client may call from (repeatable).
    #[arg(long = "allow-ip")]
    pub allow_ips: Vec<String>,
}

fn parse_time(flag: &str, text: &str) -> Result<i64, CliError> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .map_err(|e| CliError::Invalid(format!("{flag} '{text}': not RFC 3339 or unix seconds ({e})")))
}

/// Creates an API client; prints its key and secret (once).
pub async fn create(state: &AppState, args: CreateApiClientArgs) -> Result<Value, CliError> {
    let expires_at = args.expires_at.as_deref().map(|t| parse_time("--expires-at", t)).transpose()?;
    let new = crate::apiclients::NewApiClient {
        name: args.name,
        expires_at,
        allowed_ips: args.allow_ips,
        allowed_origins: Vec::new(),
        allowed_paths: Vec::new(),
        rate_limit_per_minute: 600,
    };
    let (client, secret) = crate::apiclients::create(state, &Initiator::cli(), new).await.map_err(|e| match e {
        crate::apiclients::ApiClientError::Invalid { field, message } => {
            let flag = match field {
                "allow_ip" => "--allow-ip",
                "expires_at" => "--expires-at",
                _ => "--name",
            };
            CliError::Invalid(format!("{flag}: {message}"))
        }
        other => CliError::Failed(other.to_string()),
    })?;
    Ok(json!({ "client_key": client.id, "api_key": secret, "name": client.name, "expires_at": client.expires_at }))
}
