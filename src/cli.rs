//! The `oxidp` command line (SPEC §9): exit 0 on success, 2 on invalid arguments or values
//! (with a message naming them), 1 on other failures; machine-readable output is one JSON
//! object on stdout.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use crate::admin;
use crate::clock::SystemClock;
use crate::config::{Config, ConfigError, LogFormat};
use crate::state::{AppState, SharedState};

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
        command: KeysCommand,
    },
    /// Print the OpenAPI document of the JSON API.
    Openapi,
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
    Create(CreateApiClientArgs),
}

#[derive(Args)]
struct CreateApiClientArgs {
    #[arg(long)]
    name: String,
    /// RFC 3339 time (2027-01-31T00:00:00Z) or unix seconds.
    #[arg(long)]
    expires_at: Option<String>,
    /// IP address or CIDR the client may call from (repeatable).
    #[arg(long = "allow-ip")]
    allow_ips: Vec<String>,
}

fn parse_time(flag: &str, text: &str) -> Result<i64, CliError> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .map_err(|e| CliError::Invalid(format!("{flag} '{text}': not RFC 3339 or unix seconds ({e})")))
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register an OAuth client; prints its id and, for confidential clients, its secret (once).
    Create(admin::clients::CreateClientArgs),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user with a password.
    Create(CreateUserArgs),
}

#[derive(Args)]
struct CreateUserArgs {
    #[arg(long)]
    email: String,
    #[arg(long)]
    password: String,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    admin: bool,
}

#[derive(Subcommand)]
enum KeysCommand {
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
    let _log_flush = init_logging(&config, matches!(cli.command, Command::Serve));
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

/// Log lines are formatted on the request's thread and written to stderr by a thread of their
/// own, so a request never waits for the write. When the queue is full, callers wait (no line
/// is dropped).
fn init_logging(config: &Config, serving: bool) -> tracing_appender::non_blocking::WorkerGuard {
    let default = if serving { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("OXIDP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{default},sqlx=warn")));
    use std::io::IsTerminal;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(16_384)
        .thread_name("oxidp-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    guard
}

async fn state(config: Config) -> Result<SharedState, CliError> {
    AppState::build(config, Arc::new(SystemClock)).await.map_err(|error| match error {
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
            let expires_at = args.expires_at.as_deref().map(|t| parse_time("--expires-at", t)).transpose()?;
            let state = state(config).await?;
            let new = crate::apiclients::NewApiClient {
                name: args.name,
                expires_at,
                allowed_ips: args.allow_ips,
                allowed_origins: Vec::new(),
                allowed_paths: Vec::new(),
                rate_limit_per_minute: 600,
            };
            let (client, secret) = crate::apiclients::create(&state, new).await.map_err(|e| match e {
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
            Ok(Some(
                json!({ "client_key": client.id, "api_key": secret, "name": client.name, "expires_at": client.expires_at }),
            ))
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
            Ok(Some(admin::clients::create(&state, args).await?))
        }
        Command::User { command: UserCommand::Create(args) } => {
            let state = state(config).await?;
            let user = admin::users::create(&state, &args.email, &args.password, args.name, args.admin).await?;
            Ok(Some(json!({ "id": user.id, "sub": user.sub, "email": user.email })))
        }
        Command::Keys { command } => {
            let state = state(config).await?;
            let failed = |e: crate::keys::KeyError| CliError::Failed(e.to_string());
            let audited = |action: &'static str, kid: String| {
                let state = state.clone();
                async move {
                    let event = crate::audit::Event {
                        actor: crate::audit::Actor::System,
                        action,
                        target: Some(("signing_key", &kid)),
                        details: json!({ "via": "cli" }),
                    };
                    crate::audit::record(&state, &crate::audit::Origin::default(), event)
                        .await
                        .map_err(|e| CliError::Failed(e.to_string()))
                }
            };
            match command {
                KeysCommand::Rotate { alg } => {
                    if !state.config.signing_algs.contains(&alg) {
                        return Err(CliError::Invalid(format!(
                            "--alg {alg}: not one of OXIDP_SIGNING_ALGS ({})",
                            state.config.signing_algs.join(", ")
                        )));
                    }
                    let key = state.keys.rotate_alg(&alg).await.map_err(failed)?;
                    audited("key.rotate", key.kid.clone()).await?;
                    Ok(Some(json!(key)))
                }
                KeysCommand::List => Ok(Some(json!({ "keys": state.keys.list().await.map_err(failed)? }))),
                KeysCommand::Import { pem } => {
                    let bytes =
                        std::fs::read(&pem).map_err(|e| CliError::Invalid(format!("--pem {}: {e}", pem.display())))?;
                    let key = state.keys.import_pem(&bytes).await.map_err(|e| match e {
                        crate::keys::KeyError::Material(message) => {
                            CliError::Invalid(format!("--pem {}: {message}", pem.display()))
                        }
                        other => failed(other),
                    })?;
                    audited("key.import", key.kid.clone()).await?;
                    Ok(Some(json!(key)))
                }
            }
        }
    }
}
