//! The real `oxidp` binary: exit codes (0, 2 for invalid input), the one JSON object on stdout,
//! and `serve` as a child process that accepts clients created by the CLI while it runs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    client_create_prints_the_client_and_refuses_bad_flags,
    user_create_applies_the_password_policy_and_unique_emails,
    keys_list_rotate_and_import,
    changes_made_at_the_command_line_are_audited,
    bad_configuration_and_migrate,
    serve_accepts_clients_created_while_it_runs,
    registration_tokens_from_the_command_line_register_clients,
);

const BINARY: &str = env!("CARGO_BIN_EXE_oxidp");

/// One temporary directory and one database for all the commands of a test.
pub(crate) struct Cli {
    pub(crate) dir: tempfile::TempDir,
    database_url: String,
}

pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Cli {
    pub(crate) async fn new(backend: Backend) -> Cli {
        let dir = tempfile::tempdir().expect("tempdir");
        let database_url = match backend {
            Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("oxidp.db").display()),
            Backend::Postgres => fresh_postgres_database().await,
        };
        Cli { dir, database_url }
    }

    /// The binary with this test's database and keys directory, and no other `OXIDP_*`
    /// variable from the environment the tests run in.
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(BINARY);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("OXIDP_") {
                command.env_remove(name);
            }
        }
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("OXIDP_DATABASE_URL", &self.database_url)
            .env("OXIDP_KEYS_DIR", self.dir.path().join("keys"))
            .env("OXIDP_MAIL_DIR", self.dir.path().join("mail"))
            .envs(env.iter().copied())
            .stdin(Stdio::null());
        command
    }

    pub(crate) fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = self.command(args, env);
        let Output { status, stdout, stderr } = tokio::task::block_in_place(|| command.output()).expect("run oxidp");
        Run {
            code: status.code(),
            stdout: String::from_utf8(stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    /// Exit code, stdout and stderr of a run.
    pub(crate) fn output(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let run = self.run(args);
        (run.code, run.stdout, run.stderr)
    }

    pub(crate) fn database_url(&self) -> &str {
        &self.database_url
    }

    /// Exit 0 and exactly one JSON object on stdout.
    pub(crate) fn json(&self, args: &[&str]) -> serde_json::Map<String, Value> {
        let run = self.run(args);
        assert_eq!(run.code, Some(0), "oxidp {args:?} failed: {}", run.stderr);
        match serde_json::from_str::<Value>(&run.stdout) {
            Ok(Value::Object(object)) => object,
            _ => panic!("oxidp {args:?}: stdout is not one JSON object: {:?}", run.stdout),
        }
    }

    /// Exit 2, nothing on stdout, and a message on stderr naming `names`.
    pub(crate) fn invalid_with(&self, args: &[&str], env: &[(&str, &str)], names: &[&str]) -> String {
        let run = self.run_with(args, env);
        assert_eq!(
            run.code,
            Some(2),
            "oxidp {args:?} {env:?}: expected exit 2; stdout {:?} stderr {:?}",
            run.stdout,
            run.stderr
        );
        assert!(run.stdout.trim().is_empty(), "oxidp {args:?}: nothing on stdout on failure: {:?}", run.stdout);
        for name in names {
            assert!(run.stderr.contains(name), "oxidp {args:?} {env:?}: stderr should name {name}: {}", run.stderr);
        }
        run.stderr
    }

    pub(crate) fn invalid(&self, args: &[&str], names: &[&str]) -> String {
        self.invalid_with(args, &[], names)
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs() as i64
}

async fn client_create_prints_the_client_and_refuses_bad_flags(backend: Backend) {
    let cli = Cli::new(backend).await;

    let confidential =
        cli.json(&["client", "create", "--name", "My app", "--redirect-uri", "https://app.example.com/callback"]);
    let client_id = confidential["client_id"].as_str().expect("client_id");
    let secret = confidential["client_secret"].as_str().expect("a confidential client gets a secret");
    assert!(client_id.len() >= 16 && secret.len() >= 32, "{confidential:?}");
    assert_eq!(confidential["grant_types"], json!(["authorization_code", "refresh_token"]), "default grant types");
    assert_eq!(confidential["scopes"], "openid profile email offline_access", "default scopes");
    assert_eq!(confidential["redirect_uris"], json!(["https://app.example.com/callback"]));
    assert_eq!(confidential["public"], false);

    let public = cli.json(&[
        "client",
        "create",
        "--name",
        "Native",
        "--public",
        "--redirect-uri",
        "http://127.0.0.1/callback",
        "--redirect-uri",
        "com.example.app:/oauth",
    ]);
    assert!(public.get("client_secret").is_none_or(Value::is_null), "a public client has no secret: {public:?}");
    assert_eq!(public["public"], true);
    assert_ne!(public["client_id"], confidential["client_id"]);
    assert_eq!(public["redirect_uris"], json!(["http://127.0.0.1/callback", "com.example.app:/oauth"]));

    let service = cli.json(&[
        "client",
        "create",
        "--name",
        "Service",
        "--grant-types",
        "client_credentials",
        "--scopes",
        "api:read api:write",
    ]);
    assert_eq!(service["grant_types"], json!(["client_credentials"]));
    assert_eq!(service["scopes"], "api:read api:write");
    assert!(service["client_secret"].is_string());

    // client_credentials is refused for a public client, naming the flag.
    let message = cli.invalid(
        &["client", "create", "--name", "Bad", "--public", "--grant-types", "client_credentials"],
        &["client_credentials"],
    );
    assert!(message.contains("--grant-types") || message.contains("--public"), "{message}");
    cli.invalid(
        &[
            "client",
            "create",
            "--name",
            "Bad",
            "--public",
            "--redirect-uri",
            "http://127.0.0.1/cb",
            "--grant-types",
            "authorization_code,client_credentials",
        ],
        &["client_credentials"],
    );
    // Redirect URIs: absolute, and plain http only on loopback IPs.
    for uri in [
        "callback",
        "/relative/callback",
        "http://app.example.com/callback",
        "http://localhost:3000/callback",
        "https://app.example.com/cb#fragment",
    ] {
        cli.invalid(&["client", "create", "--name", "Bad", "--redirect-uri", uri], &["--redirect-uri"]);
    }
    cli.invalid(
        &[
            "client",
            "create",
            "--name",
            "Bad",
            "--redirect-uri",
            "https://app.example.com/cb",
            "--grant-types",
            "implicit",
        ],
        &["--grant-types"],
    );
    // Unknown and missing flags.
    cli.invalid(
        &["client", "create", "--name", "Bad", "--redirect-uri", "https://app.example.com/cb", "--bogus"],
        &["--bogus"],
    );
    cli.invalid(&["client", "create", "--redirect-uri", "https://app.example.com/cb"], &["--name"]);
    cli.invalid(&["client", "frobnicate"], &["frobnicate"]);
}

async fn user_create_applies_the_password_policy_and_unique_emails(backend: Backend) {
    let cli = Cli::new(backend).await;

    let user = cli.json(&["user", "create", "--email", "Alice@Example.com", "--password", PASSWORD, "--name", "Alice"]);
    let mut keys: Vec<&str> = user.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["email", "id", "sub"], "{user:?}");
    assert_eq!(user["email"], "Alice@Example.com");
    let (id, sub) = (user["id"].as_str().expect("id"), user["sub"].as_str().expect("sub"));
    assert!(!id.is_empty() && !sub.is_empty());

    let admin = cli.json(&["user", "create", "--email", "root@example.com", "--password", PASSWORD, "--admin"]);
    assert_ne!(admin["sub"], user["sub"]);
    assert_ne!(admin["id"], user["id"]);

    cli.invalid(&["user", "create", "--email", "bob@example.com", "--password", "short"], &["--password"]);
    cli.invalid(&["user", "create", "--email", "bob@example.com", "--password", "123456789"], &["--password"]);
    cli.invalid(&["user", "create", "--email", "bob@example.com", "--password", &"x".repeat(257)], &["--password"]);
    // The same policy as the API and the sign-up page: common passwords and the email's local
    // part are refused here too.
    for common in ["Password123", "qwertyuiop", "1234567890"] {
        let message =
            cli.invalid(&["user", "create", "--email", "bob@example.com", "--password", common], &["--password"]);
        assert!(message.contains("common"), "{common}: {message}");
    }
    cli.invalid(&["user", "create", "--email", "bobby@example.com", "--password", "bobby-rocks-2026"], &["--password"]);
    cli.invalid(&["user", "create", "--email", "not-an-email", "--password", PASSWORD], &["--email"]);
    // The same email in another case is a duplicate.
    for email in ["alice@example.com", "ALICE@EXAMPLE.COM", " alice@example.com "] {
        cli.invalid(&["user", "create", "--email", email, "--password", PASSWORD], &["--email"]);
    }
    cli.invalid(&["user", "create", "--email", "bob@example.com"], &["--password"]);
    // Exactly 10 characters is long enough.
    let bob = cli.json(&["user", "create", "--email", "bob@example.com", "--password", "q7v-Lm2x9T"]);
    assert_eq!(bob["email"], "bob@example.com");
}

/// `oxidp client create`, `user create`, `api-client create` and `keys rotate` leave the same
/// audit entries as the admin API, marked as coming from the command line.
async fn changes_made_at_the_command_line_are_audited(backend: Backend) {
    use oxidp::store::{AuditFilter, AuditStore, Db};
    let cli = Cli::new(backend).await;
    let user = cli.json(&["user", "create", "--email", "audited@example.com", "--password", PASSWORD, "--admin"]);
    let client = cli.json(&["client", "create", "--name", "Audited", "--redirect-uri", "https://rp.example.com/cb"]);
    let api_client = cli.json(&["api-client", "create", "--name", "Audited service"]);
    let key = cli.json(&["keys", "rotate"]);
    let refused =
        cli.invalid(&["user", "create", "--email", "x@example.com", "--password", "Password123"], &["--password"]);
    assert!(!refused.is_empty());

    let db = Db::connect(&cli.database_url).await.expect("database");
    let filter = AuditFilter { limit: 100, ..AuditFilter::default() };
    let entries = db.query_audit(&filter).await.expect("audit log");
    let find = |action: &str, target: &Value| {
        entries
            .iter()
            .find(|entry| entry.action == action && Some(target.as_str().expect("id")) == entry.target_id.as_deref())
            .unwrap_or_else(|| panic!("no {action} entry for {target}: {entries:?}"))
    };
    for (action, target) in [
        ("user.create", &user["id"]),
        ("client.create", &client["client_id"]),
        ("api_client.create", &api_client["client_key"]),
        ("key.rotate", &key["kid"]),
    ] {
        let entry = find(action, target);
        assert_eq!(entry.actor_type, "system", "{entry:?}");
        let details: Value = serde_json::from_str(&entry.details).expect("details");
        assert_eq!(details["via"], "cli", "{entry:?}");
    }
    assert_eq!(entries.len(), 4, "a refused command writes nothing: {entries:?}");
}

/// RFC 7638 thumbprint of an RSA public JWK, computed here independently of the server.
fn rsa_thumbprint(public: &josekit::jwk::Jwk) -> String {
    let member = |name: &str| public.parameter(name).and_then(Value::as_str).expect("RSA member").to_string();
    let canonical = format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, member("e"), member("n"));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes()))
}

fn keys_by_kid(list: &serde_json::Map<String, Value>) -> Vec<(String, String, i64)> {
    let keys = list["keys"].as_array().unwrap_or_else(|| panic!("keys list: {list:?}"));
    // The RS256 timeline; ES256 and EdDSA keys rotate on their own (signing_algs.rs).
    keys.iter()
        .filter(|key| key["alg"] == "RS256")
        .map(|key| {
            (
                key["kid"].as_str().expect("kid").to_string(),
                key["status"].as_str().expect("status").to_string(),
                key["activates_at"].as_i64().expect("activates_at"),
            )
        })
        .collect()
}

async fn keys_list_rotate_and_import(backend: Backend) {
    use josekit::jwk::alg::rsa::RsaKeyPair;
    let cli = Cli::new(backend).await;

    let list = keys_by_kid(&cli.json(&["keys", "list"]));
    assert_eq!(list.len(), 1, "one key on a fresh database: {list:?}");
    let (first_kid, status, _) = &list[0];
    assert_eq!(status, "active");
    // Listing again neither creates nor changes keys.
    assert_eq!(keys_by_kid(&cli.json(&["keys", "list"])), list);

    let before = unix_now();
    let rotated = cli.json(&["keys", "rotate"]);
    let mut keys: Vec<&str> = rotated.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["activates_at", "alg", "kid"], "{rotated:?}");
    assert_eq!(rotated["alg"], "RS256");
    let rotated_kid = rotated["kid"].as_str().expect("kid").to_string();
    assert_ne!(&rotated_kid, first_kid);
    let activates_at = rotated["activates_at"].as_i64().expect("activates_at");
    // JWKS max-age (300) plus the reload interval (30).
    assert!(activates_at > unix_now(), "the new key activates in the future");
    assert!((before + 330..=unix_now() + 330).contains(&activates_at), "activates_at {activates_at}, now {before}");

    let list = keys_by_kid(&cli.json(&["keys", "list"]));
    assert_eq!(list.len(), 2, "{list:?}");
    let status_of =
        |list: &[(String, String, i64)], kid: &str| list.iter().find(|key| key.0 == kid).map(|key| key.1.clone());
    assert_eq!(status_of(&list, first_kid).as_deref(), Some("active"), "the first key still signs: {list:?}");
    assert_eq!(status_of(&list, &rotated_kid).as_deref(), Some("pending"), "{list:?}");
    assert!(list.contains(&(rotated_kid.clone(), "pending".into(), activates_at)), "{list:?}");

    // An operator's own key.
    let pair = RsaKeyPair::generate(2048).expect("generate RSA key");
    let pem_path = cli.dir.path().join("operator.pem");
    std::fs::write(&pem_path, pair.to_pem_private_key()).expect("write PEM");
    let imported = cli.json(&["keys", "import", "--pem", pem_path.to_str().expect("path")]);
    assert_eq!(imported["alg"], "RS256");
    assert_eq!(
        imported["kid"].as_str().expect("kid"),
        rsa_thumbprint(&pair.to_jwk_public_key()),
        "kid is the RFC 7638 thumbprint"
    );
    assert!(imported["activates_at"].as_i64().expect("activates_at") > unix_now());
    let list = keys_by_kid(&cli.json(&["keys", "list"]));
    assert_eq!(list.len(), 3, "{list:?}");
    assert_eq!(status_of(&list, imported["kid"].as_str().expect("kid")).as_deref(), Some("pending"), "{list:?}");
    assert_eq!(status_of(&list, first_kid).as_deref(), Some("active"), "{list:?}");
    assert_eq!(list.iter().filter(|(_, status, _)| status == "active").count(), 1, "{list:?}");

    // Garbage, a public key only, a too-small key and a missing file are invalid input.
    let garbage = cli.dir.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n").expect("write");
    cli.invalid(&["keys", "import", "--pem", garbage.to_str().expect("path")], &["--pem"]);
    std::fs::write(&garbage, b"\x00\x01 not a PEM at all").expect("write");
    cli.invalid(&["keys", "import", "--pem", garbage.to_str().expect("path")], &["--pem"]);
    let small = cli.dir.path().join("small.pem");
    std::fs::write(&small, RsaKeyPair::generate(1024).expect("generate").to_pem_private_key()).expect("write");
    cli.invalid(&["keys", "import", "--pem", small.to_str().expect("path")], &["--pem"]);
    cli.invalid(&["keys", "import", "--pem", cli.dir.path().join("missing.pem").to_str().expect("path")], &["--pem"]);
    cli.invalid(&["keys", "import"], &["--pem"]);
    // Nothing was added by the failures.
    assert_eq!(keys_by_kid(&cli.json(&["keys", "list"])).len(), 3);
}

async fn bad_configuration_and_migrate(backend: Backend) {
    let cli = Cli::new(backend).await;
    let bad = [
        ("OXIDP_ACCESS_TOKEN_TTL", "soon"),
        ("OXIDP_ACCESS_TOKEN_TTL", "-5"),
        ("OXIDP_CODE_TTL", "0"),
        ("OXIDP_ISSUER", "https://id.example.com/"),
        ("OXIDP_ISSUER", "not a url"),
        ("OXIDP_BIND", "somewhere"),
        ("OXIDP_RSA_BITS", "1024"),
        ("OXIDP_LOG_FORMAT", "xml"),
    ];
    for (variable, value) in bad {
        for args in
            [&["migrate"][..], &["client", "create", "--name", "X", "--redirect-uri", "https://app.example.com/cb"]]
        {
            cli.invalid_with(args, &[(variable, value)], &[variable]);
        }
    }
    cli.invalid_with(&["migrate"], &[("OXIDP_DATABASE_URL", "mysql://localhost/oxidp")], &["OXIDP_DATABASE_URL"]);

    // Nothing touched the database so far: migrate creates the schema, and running it again is fine.
    let run = cli.run(&["migrate"]);
    assert_eq!(run.code, Some(0), "migrate: {}", run.stderr);
    assert!(run.stdout.trim().is_empty(), "migrate prints nothing: {:?}", run.stdout);
    let run = cli.run(&["migrate"]);
    assert_eq!(run.code, Some(0), "migrate again: {}", run.stderr);
    let count = "SELECT COUNT(*) FROM clients";
    let clients: i64 = match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&cli.database_url).await.expect("open SQLite");
            sqlx::query_scalar(count).fetch_one(&pool).await.expect("the clients table exists")
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&cli.database_url).await.expect("connect PostgreSQL");
            sqlx::query_scalar(count).fetch_one(&pool).await.expect("the clients table exists")
        }
    };
    assert_eq!(clients, 0);
    // The good configuration works with the same commands.
    cli.json(&["client", "create", "--name", "X", "--redirect-uri", "https://app.example.com/cb"]);
    cli.json(&["keys", "list"]);
}

/// A `serve` child process; killed if the test fails before stopping it.
pub(crate) struct Serving {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: Vec<String>,
    pub(crate) log: std::path::PathBuf,
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Serving {
    pub(crate) fn start(cli: &Cli, env: &[(&str, &str)], log: &str) -> Serving {
        let log = cli.dir.path().join(log);
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut child =
            cli.command(&["serve"], env).stdout(Stdio::piped()).stderr(log_file).spawn().expect("spawn oxidp serve");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Serving { child, lines, stdout: Vec::new(), log }
    }

    /// Collects stdout until a line contains `marker`.
    pub(crate) fn wait_for_line(&mut self, marker: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.stdout.iter().any(|line| line.contains(marker)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::task::block_in_place(|| self.lines.recv_timeout(left)) {
                Ok(line) => self.stdout.push(line),
                Err(error) => panic!(
                    "serve did not print {marker:?} ({error}); stdout so far: {:?}; exit: {:?}; log:\n{}",
                    self.stdout,
                    self.child.try_wait(),
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                ),
            }
        }
    }

    /// Everything printed so far, waiting briefly for more.
    fn drain(&mut self, wait: Duration) -> String {
        while let Ok(line) = tokio::task::block_in_place(|| self.lines.recv_timeout(wait)) {
            self.stdout.push(line);
        }
        self.stdout.join("\n")
    }

    /// SIGTERM, then the exit code.
    pub(crate) fn terminate(&mut self) -> Option<i32> {
        self.signal_term();
        self.wait_exit()
    }

    pub(crate) fn child_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub(crate) fn signal_term(&self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(status.success(), "kill -TERM {pid}");
    }

    /// The exit code, waiting at most 20 s.
    pub(crate) fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "serve did not stop within 20 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

async fn serve_accepts_clients_created_while_it_runs(backend: Backend) {
    let cli = Cli::new(backend).await;
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let issuer = format!("http://127.0.0.1:{port}");
    let env = [("OXIDP_BIND", bind.as_str()), ("OXIDP_ISSUER", issuer.as_str())];

    let mut serving = Serving::start(&cli, &env, "serve-1.log");
    serving.wait_for_line("discovery");
    // The first steps follow once the server has looked at the database.
    let printed = serving.drain(Duration::from_millis(1000));
    assert!(printed.contains(&issuer), "{printed}");
    assert!(printed.contains(&format!("{issuer}/.well-known/openid-configuration")), "{printed}");
    assert!(
        printed.contains("oxidp user create") && printed.contains("oxidp client create"),
        "an empty database gets the first steps: {printed}"
    );

    let http = reqwest::Client::new();
    let discovery: Value = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("discovery JSON");
    assert_eq!(discovery["issuer"], issuer.as_str());
    assert_eq!(discovery["token_endpoint"], format!("{issuer}/token"));

    // A client created by another process while the server runs is accepted at once.
    let created = cli.json(&[
        "client",
        "create",
        "--name",
        "Service",
        "--grant-types",
        "client_credentials",
        "--scopes",
        "api:read",
    ]);
    let client_id = created["client_id"].as_str().expect("client_id");
    let secret = created["client_secret"].as_str().expect("secret");
    let response = http
        .post(format!("{issuer}/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.expect("token JSON");
    let token = body["access_token"].as_str().expect("access_token");
    assert_eq!(body["scope"], "api:read");
    let answer: Value = http
        .post(format!("{issuer}/introspect"))
        .basic_auth(client_id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .expect("introspect")
        .json()
        .await
        .expect("introspection JSON");
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["sub"], client_id);
    assert_eq!(answer["iss"], issuer.as_str());
    // The wrong secret is still refused: the server really checks the new client.
    let response = http
        .post(format!("{issuer}/token"))
        .basic_auth(client_id, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), 401);

    assert_eq!(serving.terminate(), Some(0), "serve exits 0 on SIGTERM");
    drop(serving);

    // Started again on the same, no longer empty, database: the first steps are not shown.
    let mut serving = Serving::start(&cli, &env, "serve-2.log");
    serving.wait_for_line("discovery");
    let response = http.get(format!("{issuer}/healthz")).send().await.expect("healthz");
    assert_eq!(response.status(), 200);
    let printed = serving.drain(Duration::from_millis(300));
    assert!(printed.contains(&issuer), "{printed}");
    assert!(!printed.contains("user create"), "the first steps are only for an empty database: {printed}");
    assert_eq!(serving.terminate(), Some(0), "serve exits 0 on SIGTERM");
}

/// `oxidp registration-token create` (issue #14): one JSON object with `token`; the token
/// registers a client at a running server with `OXIDP_DYNAMIC_REGISTRATION=token`, as often
/// as `--uses` says.
async fn registration_tokens_from_the_command_line_register_clients(backend: Backend) {
    let cli = Cli::new(backend).await;
    cli.invalid(&["registration-token", "create", "--uses", "0"], &["--uses"]);
    cli.invalid(&["registration-token", "create", "--expires-in", "0"], &["--expires-in"]);
    cli.invalid(&["registration-token", "create", "--expires-in", "soon"], &["--expires-in"]);
    let created = cli.json(&["registration-token", "create", "--expires-in", "600", "--uses", "1"]);
    let token = created["token"].as_str().expect("token").to_string();
    assert_eq!(created["uses"], 1);
    let expires_at = created["expires_at"].as_i64().expect("expires_at");
    assert!((expires_at - unix_now() - 600).abs() < 60, "{created:?}");
    let unlimited = cli.json(&["registration-token", "create"]);
    assert_eq!(unlimited["uses"], Value::Null, "unlimited by default");
    let default_expiry = unlimited["expires_at"].as_i64().expect("expires_at") - unix_now();
    assert!((default_expiry - 86_400).abs() < 60, "a day by default: {unlimited:?}");

    let port = free_port();
    let (bind, issuer) = (format!("127.0.0.1:{port}"), format!("http://127.0.0.1:{port}"));
    let env =
        [("OXIDP_BIND", bind.as_str()), ("OXIDP_ISSUER", issuer.as_str()), ("OXIDP_DYNAMIC_REGISTRATION", "token")];
    let mut serving = Serving::start(&cli, &env, "serve.log");
    serving.wait_for_line("discovery");
    let http = reqwest::Client::new();
    let metadata = json!({ "redirect_uris": [REDIRECT], "client_name": "From the CLI" });
    let register = || http.post(format!("{issuer}/register")).bearer_auth(&token).json(&metadata).send();
    let first = register().await.expect("register");
    assert_eq!(first.status(), 201);
    let body: Value = first.json().await.expect("JSON");
    assert_eq!(body["client_name"], "From the CLI");
    assert_eq!(register().await.expect("register").status(), 401, "one use only");
    assert_eq!(serving.terminate(), Some(0));
}
