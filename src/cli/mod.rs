//! The `oxidp` command line (SPEC §9): exit 0 on success, 2 on invalid arguments or values
//! (with a message naming them), 1 on other failures; machine-readable output is one JSON
//! object on stdout.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use serde_json::{Value, json};

mod api_clients;
mod client_exchange;
mod clients;
mod keys;
mod logging;
mod registration_tokens;
mod user_transfer;
mod users;

pub use clients::{CreateClientArgs, create_client};
pub use users::create_user;

use crate::clock::SystemClock;
use crate::config::{Config, ConfigError};
use crate::state::SharedState;

#[derive(Parser)]
#[command(name = "oxidp", version, about = "OAuth 2.1 / OpenID Connect authorization server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage OAuth clients.
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Print the OpenAPI document of the JSON API.
    Openapi,
    /// Manage initial access tokens for dynamic client registration.
    #[command(name = "registration-token")]
    RegistrationToken {
        #[command(subcommand)]
        command: RegistrationTokenCommand,
    },
    /// Manage API clients of the admin API.
    #[command(name = "api-client")]
    ApiClient {
        #[command(subcommand)]
        command: ApiClientCommand,
    },
}

#[derive(Subcommand)]
enum ApiClientCommand {
    /// Create an API client; prints its key and secret (once).
    Create(api_clients::CreateApiClientArgs),
}

#[derive(Subcommand)]
enum RegistrationTokenCommand {
    /// Create an initial access token for `POST /register`; prints it (once).
    Create(registration_tokens::CreateRegistrationTokenArgs),
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register an OAuth client; prints its id and, for confidential clients, its secret (once).
    Create(Box<CreateClientArgs>),
    /// Set which targets a client may exchange tokens for (RFC 8693); prints the policy.
    #[command(name = "token-exchange")]
    TokenExchange(client_exchange::TokenExchangePolicyArgs),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user with a password.
    Create(users::CreateUserArgs),
    /// Import people (JSON Lines or CSV), with password hashes from the replaced system.
    Import(user_transfer::ImportArgs),
    /// Write every person as JSON Lines (or CSV) to standard output.
    Export(user_transfer::ExportArgs),
}

/// A failure with its exit code: 2 for invalid input, 1 for everything else.
pub enum CliError {
    Invalid(String),
    Failed(String),
}

impl From<ConfigError> for CliError {
    fn from(error: ConfigError) -> Self {
        CliError::Invalid(error.to_string())
    }
}

pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    let config = match Config::load() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    // Held until the end of `run`: dropping it flushes the log lines still queued.
    let _log_flush = logging::init_logging(&config, matches!(cli.command, Command::Serve));
    for name in crate::config::service_links_in_environment() {
        tracing::debug!(%name, "ignored a Kubernetes service-link variable");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(execute(cli.command, config)) {
        Ok(Some(output)) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(CliError::Invalid(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(CliError::Failed(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

async fn state(config: Config) -> Result<SharedState, CliError> {
    crate::startup::start(config, Arc::new(SystemClock)).await.map_err(|error| match error {
        crate::state::StartError::Secret(crate::crypto::SecretError::Invalid(message)) => {
            CliError::Invalid(format!("OXIDP_SECRET_KEY: {message}"))
        }
        other => CliError::Failed(other.to_string()),
    })
}

async fn execute(command: Command, config: Config) -> Result<Option<Value>, CliError> {
    match command {
        Command::Serve => {
            crate::server::run(state(config).await?).await.map_err(CliError::Failed)?;
            Ok(None)
        }
        Command::ApiClient { command: ApiClientCommand::Create(args) } => {
            let state = state(config).await?;
            Ok(Some(api_clients::create(&state, args).await?))
        }
        Command::RegistrationToken { command: RegistrationTokenCommand::Create(args) } => {
            let state = state(config).await?;
            Ok(Some(registration_tokens::create(&state, args).await?))
        }
        Command::Openapi => {
            println!("{}", crate::api::document(&config));
            Ok(None)
        }
        Command::Migrate => {
            let db =
                crate::store::Db::connect(&config.database_url).await.map_err(|e| CliError::Failed(e.to_string()))?;
            db.migrate().await.map_err(|e| CliError::Failed(e.to_string()))?;
            Ok(None)
        }
        Command::Client { command: ClientCommand::Create(args) } => {
            let state = state(config).await?;
            Ok(Some(create_client(&state, *args).await?))
        }
        Command::Client { command: ClientCommand::TokenExchange(args) } => {
            let state = state(config).await?;
            Ok(Some(client_exchange::set(&state, args).await?))
        }
        Command::User { command: UserCommand::Import(args) } => {
            let state = state(config).await?;
            Ok(Some(user_transfer::run_import(&state, args).await?))
        }
        Command::User { command: UserCommand::Export(args) } => {
            let state = state(config).await?;
            user_transfer::run_export(&state, args).await?;
            Ok(None)
        }
        Command::User { command: UserCommand::Create(args) } => {
            let state = state(config).await?;
            let user = create_user(&state, args).await?;
            Ok(Some(json!({ "id": user.id, "sub": user.sub, "email": user.email })))
        }
        Command::Keys { command } => {
            let state = state(config).await?;
            keys::run(&state, command).await.map(Some)
        }
    }
}
