//! What the stateful fuzz targets share: one oxidp server state (SQLite in a temporary file,
//! a fixed server secret, one signing key, one user, one API key) and its HTTP endpoint, built
//! once per fuzzing process and driven without a socket.
//!
//! Why a file and not `sqlite::memory:`: oxidp's pool opens several connections and each
//! in-memory SQLite connection would be its own empty database (no migrations, no keys).
//! A temporary file costs the same after the first page cache hit.

use std::sync::{Arc, OnceLock};

use oxidp::config::Config;
use oxidp::state::SharedState;
use poem::endpoint::BoxEndpoint;
use poem::{Endpoint, EndpointExt, Request, Response};

pub const ISSUER: &str = "http://127.0.0.1:8080";
pub const USER_EMAIL: &str = "harness@example.com";
pub const USER_PASSWORD: &str = "fuzzing passphrase 1234";

pub struct Harness {
    pub runtime: tokio::runtime::Runtime,
    pub state: SharedState,
    pub app: BoxEndpoint<'static, Response>,
    /// A real API key of the one user, so the key checks see a known prefix too.
    pub api_key: String,
    /// A confidential client registered for the token and authorize targets.
    pub client_id: String,
    pub client_secret: String,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// Sends one request through the whole HTTP stack (middleware, routing, handlers).
    pub fn call(&self, request: Request) -> Response {
        self.runtime.block_on(async {
            match self.app.call(request).await {
                Ok(response) => response,
                Err(error) => error.into_response(),
            }
        })
    }

    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

/// The process's harness, built on first use.
pub fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(build)
}

fn build() -> Harness {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        issuer: ISSUER.into(),
        database_url: format!("sqlite://{}?mode=rwc", dir.path().join("fuzz.db").display()),
        keys_dir: dir.path().join("keys").display().to_string(),
        mail_dir: dir.path().join("mail").display().to_string(),
        secret_key: Some("ZnV6emluZyBvbmx5OiBub3QgYSByZWFsIHNlY3JldCBmb3IgYW55b25l".into()),
        internal_secret: Some("fuzz-internal-secret".into()),
        // The limits would otherwise turn every later input into the same 429.
        login_account_limit: i64::MAX,
        login_ip_limit: i64::MAX,
        login_delay: 0,
        client_auth_failure_limit: i64::MAX,
        ..Config::default()
    };
    let (state, api_key, client_id, client_secret) = runtime.block_on(async {
        let state = oxidp::startup::start(config, Arc::new(oxidp::clock::SystemClock)).await.expect("state");
        let user = oxidp::admin::users::create(&state, &oxidp::audit::Initiator::cli(), USER_EMAIL, USER_PASSWORD, None, true)
            .await
            .unwrap_or_else(|_| panic!("user"));
        // As if the administrator had just signed in with an admin token.
        let minter = oxidp::apikeys::Minter {
            scopes: vec!["account".into(), "admin".into()],
            auth_time: Some(oxidp::clock::Clock::now(&oxidp::clock::SystemClock)),
            external: false,
        };
        let by = oxidp::audit::Initiator::cli();
        let key = oxidp::apikeys::create(&state, &by, &minter, &user, "fuzz", vec!["read:users".into()], None)
            .await
            .unwrap_or_else(|e| panic!("api key: {e}"));
        let client = oxidp::cli::create_client(&state, client_args()).await.unwrap_or_else(|_| panic!("client"));
        let id = client["client_id"].as_str().expect("client_id").to_string();
        let secret = client["client_secret"].as_str().expect("client_secret").to_string();
        (state, key.secret, id, secret)
    });
    let docs = runtime.block_on(oxidp::api::Docs::build(&state.config));
    let app = oxidp::server::app(state.clone(), Arc::new(docs)).map_to_response().boxed();
    Harness { runtime, state, app, api_key, client_id, client_secret, _dir: dir }
}

fn client_args() -> oxidp::cli::CreateClientArgs {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: oxidp::cli::CreateClientArgs,
    }
    Wrapper::try_parse_from([
        "client",
        "--name",
        "Fuzz RP",
        "--redirect-uri",
        "http://127.0.0.1:9999/callback",
        "--grant-types",
        "authorization_code,refresh_token,client_credentials",
    ])
    .expect("client flags")
    .args
}

/// A 5xx from any input is a bug (the outage answers need a dead database, which this is not).
pub fn assert_not_server_error(response: &Response, what: &str) {
    assert!(!response.status().is_server_error(), "{what}: {}", response.status());
}
