//! Secrets at rest and in logs (issue #8, item 5): every secret oxidp hands out — client and
//! API-client secrets, API keys, codes, access/refresh/ID tokens, verification and reset codes,
//! session and CSRF cookies, passwords — is issued through the real flows, then looked for in a
//! dump of every column of every table (it must be there only as a keyed hash), and in what
//! the real `oxidp serve` binary logs at debug level while serving those flows.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;

use crate::common::*;
use crate::on_both_backends;
use crate::threats::{api_login, api_post, cookie_at, http_with_jar, jar_cookie, mailed_code, mailed_code_in};

on_both_backends!(no_issued_secret_is_stored_in_clear, secret_key_file_is_private_and_signing_keys_are_encrypted);

const ALICE: &str = "alice@example.com";
const ROOT: &str = "root@example.com";
const BOB: &str = "bob@example.com";
const BOB_PASSWORD: &str = "a passphrase of his own 77";
const NEW_PASSWORD: &str = "a brand new passphrase 42";

/// The ways a stored secret could still be recognised: as it is, as plain (unkeyed) SHA-256
/// in hex or base64url, in standard base64, or URL-encoded.
fn forms_of(secret: &str) -> Vec<String> {
    let digest = sha2::Sha256::digest(secret.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let mut forms = vec![
        secret.to_string(),
        hex,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
        base64::engine::general_purpose::STANDARD.encode(secret.as_bytes()),
    ];
    let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    if encoded != secret {
        forms.push(encoded);
    }
    forms
}

/// Panics naming the first secret found in `haystack` (in any of its forms).
fn assert_absent(haystack: &str, secrets: &[(String, String)], place: &str) {
    for (what, secret) in secrets {
        for form in forms_of(secret) {
            if let Some(at) = haystack.find(&form) {
                let start = haystack[..at].char_indices().rev().nth(80).map_or(0, |(i, _)| i);
                let context = &haystack[start..(at + form.len() + 80).min(haystack.len())];
                panic!("{place} holds the {what} ({form:?}): …{context}…");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The database

/// Every value of every column of every table (text, bytes as text and hex, JSON), one string.
pub(crate) async fn full_database_dump(server: &TestServer) -> String {
    use oxidp::store::Db;
    use sqlx::{Column, Row};
    fn cell<'r, R>(row: &'r R, index: usize) -> Option<String>
    where
        R: Row,
        usize: sqlx::ColumnIndex<R>,
        String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        Value: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        if let Ok(Some(text)) = row.try_get::<Option<String>, _>(index) {
            return Some(text);
        }
        if let Ok(Some(bytes)) = row.try_get::<Option<Vec<u8>>, _>(index) {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            return Some(format!("{} {hex}", String::from_utf8_lossy(&bytes)));
        }
        if let Ok(Some(value)) = row.try_get::<Option<Value>, _>(index) {
            return Some(value.to_string());
        }
        None
    }
    let mut dump = String::new();
    match &server.state.db {
        Db::Sqlite(pool) => {
            let tables: Vec<String> =
                sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                    .fetch_all(pool)
                    .await
                    .expect("tables");
            for table in tables {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM \"{table}\"")))
                    .fetch_all(pool)
                    .await
                    .expect("rows");
                for row in &rows {
                    for index in 0..row.columns().len() {
                        let name = row.columns()[index].name();
                        if let Some(value) = cell(row, index) {
                            dump.push_str(&format!("{table}.{name}={value}\n"));
                        }
                    }
                }
            }
        }
        Db::Postgres(pool) => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename",
            )
            .fetch_all(pool)
            .await
            .expect("tables");
            for table in tables {
                // Every column as text, whatever its type (arrays, JSON and bytea included).
                let columns: Vec<String> = sqlx::query_scalar(
                    "SELECT column_name::text FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
                )
                .bind(&table)
                .fetch_all(pool)
                .await
                .expect("columns");
                let select: Vec<String> = columns.iter().map(|c| format!("\"{c}\"::text")).collect();
                let sql = format!("SELECT {} FROM \"{table}\"", select.join(", "));
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await.expect("rows");
                for row in &rows {
                    for (index, name) in columns.iter().enumerate() {
                        if let Some(value) = cell(row, index) {
                            dump.push_str(&format!("{table}.{name}={value}\n"));
                        }
                    }
                }
            }
        }
    }
    dump
}

async fn no_issued_secret_is_stored_in_clear(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user_with_role(ROOT, PASSWORD, true).await;
    server.user(ALICE, PASSWORD).await;
    let mut secrets: Vec<(String, String)> = Vec::new();
    let mut keep = |what: &str, value: &str| {
        assert!(value.len() >= 16, "{what} looks too short to be a secret: {value:?}");
        secrets.push((what.to_string(), value.to_string()));
    };
    keep("password", PASSWORD);
    keep("server secret", server.state.config.secret_key.as_deref().expect("test secret"));

    // OAuth client secrets: the CLI path, the admin API, and a rotation.
    let client = server.client(&["--name", "RP", "--redirect-uri", REDIRECT]).await;
    keep("client secret (CLI)", client.secret.as_deref().expect("secret"));
    let admin = api_login(&server, ROOT, PASSWORD).await;
    let admin_token = admin["access_token"].as_str().expect("admin token").to_string();
    keep("admin access token", &admin_token);
    keep("admin refresh token", admin["refresh_token"].as_str().expect("refresh"));
    let created = api_post(
        &server,
        "/api/v1/admin/clients",
        Some(&admin_token),
        &json!({ "name": "Portal", "redirect_uris": [REDIRECT] }),
    )
    .await;
    assert_eq!(created.status(), 201);
    let created = json(created).await;
    keep("client secret (API)", created["client_secret"].as_str().expect("secret"));
    let portal = created["client_id"].as_str().expect("id");
    let rotated =
        api_post(&server, &format!("/api/v1/admin/clients/{portal}/rotate-secret"), Some(&admin_token), &json!({}))
            .await;
    assert_eq!(rotated.status(), 200);
    keep("rotated client secret", json(rotated).await["client_secret"].as_str().expect("secret"));

    // API clients and API keys.
    let api_client =
        api_post(&server, "/api/v1/admin/api-clients", Some(&admin_token), &json!({ "name": "Billing" })).await;
    assert_eq!(api_client.status(), 201);
    let api_client = json(api_client).await;
    keep("API-client secret", api_client["api_key"].as_str().expect("api_key"));
    let used = reqwest::Client::new()
        .get(server.url("/api/v1/admin/users"))
        .header("X-Client-Key", api_client["client_key"].as_str().expect("client_key"))
        .header("X-API-Key", api_client["api_key"].as_str().expect("api_key"))
        .send()
        .await
        .expect("as API client");
    assert_eq!(used.status(), 200, "the API client works (and its hash is rewritten if needed)");
    let alice = api_login(&server, ALICE, PASSWORD).await;
    let alice_token = alice["access_token"].as_str().expect("token").to_string();
    let key = api_post(
        &server,
        "/api/v1/users/me/api-keys",
        Some(&alice_token),
        &json!({ "name": "laptop", "scopes": ["read:users"] }),
    )
    .await;
    assert_eq!(key.status(), 201);
    let key = json(key).await["key"].as_str().expect("key").to_string();
    keep("API key", &key);
    let used = reqwest::Client::new().get(server.url("/api/v1/users/me")).header("X-API-Key", &key).send().await;
    assert_eq!(used.expect("me").status(), 200);
    // API refresh: the rotated token and its successor.
    let refreshed = api_post(
        &server,
        "/api/v1/auth/refresh",
        None,
        &json!({ "refresh_token": alice["refresh_token"].as_str().expect("refresh") }),
    )
    .await;
    assert_eq!(refreshed.status(), 200);
    let refreshed = json(refreshed).await;
    keep("API refresh token", alice["refresh_token"].as_str().expect("refresh"));
    keep("API refresh successor", refreshed["refresh_token"].as_str().expect("successor"));

    // The browser flow: session and CSRF cookies, a redeemed code, tokens, a rotated refresh
    // token, and a code nobody redeemed (it stays in the database until it is purged).
    let (http, jar) = http_with_jar();
    let browser = Browser { http };
    let (code, pkce) = obtain_code(&server, &browser, &client, &[]).await;
    keep("session cookie", &jar_cookie(&server, &jar, "oxidp_session").expect("session"));
    keep("CSRF cookie", &jar_cookie(&server, &jar, "oxidp_csrf").expect("csrf"));
    keep("code", &code);
    let tokens = json(redeem(&server, &client, &code, &pkce.verifier).await).await;
    for name in ["access_token", "refresh_token", "id_token"] {
        keep(name, tokens[name].as_str().unwrap_or_else(|| panic!("{name}")));
    }
    let rotated = token_request(
        &server,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().expect("refresh"))],
    )
    .await;
    keep("rotated refresh token", json(rotated).await["refresh_token"].as_str().expect("successor"));
    let (unredeemed, _) = obtain_code(&server, &browser, &client, &[]).await;
    keep("unredeemed code", &unredeemed);

    // One-time codes: a pending verification and an unused reset.
    assert_eq!(
        api_post(&server, "/api/v1/auth/register", None, &json!({ "email": BOB, "password": BOB_PASSWORD }))
            .await
            .status(),
        201
    );
    keep("bob's password", BOB_PASSWORD);
    keep("verification code", &mailed_code(&server, BOB, "Confirm"));
    assert_eq!(api_post(&server, "/api/v1/auth/forgot-password", None, &json!({ "email": ALICE })).await.status(), 202);
    keep("reset code", &mailed_code(&server, ALICE, "Reset"));
    // And a reset that was used, with the new password.
    assert_eq!(api_post(&server, "/api/v1/auth/forgot-password", None, &json!({ "email": ROOT })).await.status(), 202);
    let used_reset = mailed_code(&server, ROOT, "Reset");
    let reset = api_post(
        &server,
        "/api/v1/auth/reset-password",
        None,
        &json!({ "token": used_reset, "password": NEW_PASSWORD }),
    )
    .await;
    assert_eq!(reset.status(), 204);
    keep("used reset code", &used_reset);
    keep("new password", NEW_PASSWORD);

    let dump = full_database_dump(&server).await;
    // The dump is real: it has the rows the flows wrote, with their keyed hashes.
    assert!(dump.contains(&client.id) && dump.contains(ALICE) && dump.contains(BOB), "dump:\n{dump}");
    let code_hash = server.state.secret.keyed_hash(oxidp::oauth::CODE_HASH_PURPOSE, &unredeemed);
    assert!(dump.contains(&code_hash), "the unredeemed code is stored as its keyed hash");
    assert!(dump.contains("$argon2id$"), "passwords are argon2id hashes");
    assert!(!dump.contains("PRIVATE KEY"), "signing keys are encrypted");
    assert_absent(&dump, &secrets, "the database");

    // With Redis (the PostgreSQL test servers), the same holds for every key and value there:
    // sessions, pending requests, counters, stamps.
    if let Some(redis_dump) = full_redis_dump(&server).await {
        assert!(redis_dump.contains("session:"), "the browser session is in Redis:\n{redis_dump}");
        assert_absent(&redis_dump, &secrets, "Redis");
    }
}

/// Every key under the server's Redis prefix with its value, whatever its type; `None` without Redis.
async fn full_redis_dump(server: &TestServer) -> Option<String> {
    use redis::AsyncCommands;
    let url = server.state.config.redis_url.clone()?;
    let prefix = server.state.config.redis_key_prefix.clone();
    let client = redis::Client::open(url).expect("redis URL");
    let mut redis = client.get_multiplexed_async_connection().await.expect("redis connection");
    let keys: Vec<String> = redis.keys(format!("{prefix}*")).await.expect("KEYS");
    let mut dump = String::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut redis).await.expect("TYPE");
        let value = match kind.as_str() {
            "string" => {
                let bytes: Vec<u8> = redis.get(&key).await.expect("GET");
                String::from_utf8_lossy(&bytes).into_owned()
            }
            "hash" => format!("{:?}", redis.hgetall::<_, Vec<(String, String)>>(&key).await.expect("HGETALL")),
            "set" => format!("{:?}", redis.smembers::<_, Vec<String>>(&key).await.expect("SMEMBERS")),
            "zset" => format!("{:?}", redis.zrange::<_, Vec<String>>(&key, 0, -1).await.expect("ZRANGE")),
            "list" => format!("{:?}", redis.lrange::<_, Vec<String>>(&key, 0, -1).await.expect("LRANGE")),
            other => format!("<{other}>"),
        };
        dump.push_str(&format!("{key} = {value}\n"));
    }
    Some(dump)
}

// ---------------------------------------------------------------------------------------------
// Key files and signing keys

async fn secret_key_file_is_private_and_signing_keys_are_encrypted(backend: Backend) {
    // No configured secret: the server generates keys/secret.key on first start.
    let server = TestServer::start_with(backend, |config| config.secret_key = None).await;
    let path = std::path::Path::new(&server.state.config.keys_dir).join("secret.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("secret.key exists").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "keys/secret.key is private to its owner: {mode:o}");
    }
    let master = std::fs::read_to_string(&path).expect("secret.key");
    use oxidp::store::SigningKeyStore;
    let records = server.state.db.signing_keys().await.expect("signing keys");
    assert!(!records.is_empty());
    let other = oxidp::crypto::ServerSecret::from_bytes(&[42u8; 32]);
    for record in &records {
        let sealed = &record.private_key_enc;
        assert!(!sealed.contains("PRIVATE") && !sealed.contains("BEGIN"), "the private key is not stored as PEM");
        let pem = server.state.secret.decrypt(sealed).expect("the server's own secret opens it");
        assert!(String::from_utf8_lossy(&pem).contains("PRIVATE KEY"));
        assert!(other.decrypt(sealed).is_err(), "another secret does not");
    }
    let dump = full_database_dump(&server).await;
    assert_absent(&dump, &[("server secret".into(), master.trim().to_string())], "the database");
}

// ---------------------------------------------------------------------------------------------
// Logs of the real binary

const BINARY: &str = env!("CARGO_BIN_EXE_oxidp");

struct Served {
    child: Child,
    log: std::path::PathBuf,
}

impl Served {
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().expect("wait").is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut text = String::new();
        std::fs::File::open(&self.log).expect("log").read_to_string(&mut text).expect("read log");
        text
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn command(dir: &std::path::Path, env: &[(&str, String)], args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("OXIDP_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .current_dir(dir)
        .env("OXIDP_DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.join("oxidp.db").display()))
        .env("OXIDP_KEYS_DIR", dir.join("keys"))
        .env("OXIDP_MAIL_DIR", dir.join("mail"))
        .env("OXIDP_LOG", "debug")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null());
    command
}

/// Runs a CLI command; returns its JSON output and appends its stderr (its log) to `logs`.
fn cli(dir: &std::path::Path, env: &[(&str, String)], args: &[&str], logs: &mut String) -> Value {
    let output = command(dir, env, args).output().expect("run oxidp");
    logs.push_str(&String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "oxidp {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_the_real_server_hold_no_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let base = format!("http://127.0.0.1:{port}");
    let internal_secret = oxidp::crypto::random_token(24);
    let env = [
        ("OXIDP_BIND", format!("127.0.0.1:{port}")),
        ("OXIDP_ISSUER", base.clone()),
        ("OXIDP_INTERNAL_SECRET", internal_secret.clone()),
        ("OXIDP_REFRESH_REUSE_GRACE", "0".to_string()),
    ];
    let mut secrets: Vec<(String, String)> = vec![
        ("password".into(), PASSWORD.into()),
        ("internal secret".into(), internal_secret.clone()),
        ("new password".into(), NEW_PASSWORD.into()),
        ("bob's password".into(), BOB_PASSWORD.into()),
    ];
    let mut logs = String::new();
    cli(dir.path(), &env, &["migrate"], &mut logs);
    cli(dir.path(), &env, &["user", "create", "--email", ROOT, "--password", PASSWORD, "--admin"], &mut logs);
    cli(dir.path(), &env, &["user", "create", "--email", ALICE, "--password", PASSWORD], &mut logs);
    let created = cli(
        dir.path(),
        &env,
        &[
            "client",
            "create",
            "--name",
            "RP",
            "--redirect-uri",
            REDIRECT,
            "--post-logout-redirect-uri",
            "https://app.example/bye",
        ],
        &mut logs,
    );
    let client = TestClient {
        id: created["client_id"].as_str().expect("client_id").to_string(),
        secret: created["client_secret"].as_str().map(str::to_string),
    };
    secrets.push(("client secret".into(), client.secret.clone().expect("secret")));
    let master = std::fs::read_to_string(dir.path().join("keys/secret.key")).expect("generated secret");
    secrets.push(("server secret".into(), master.trim().to_string()));

    let log = dir.path().join("serve.log");
    let file = std::fs::File::create(&log).expect("log file");
    let child = command(dir.path(), &env, &["serve"])
        .stdout(Stdio::from(file.try_clone().expect("clone")))
        .stderr(Stdio::from(file))
        .spawn()
        .expect("spawn serve");
    let served = Served { child, log };
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/healthz")).await.map(|r| r.status().as_u16()).unwrap_or(0) != 200 {
        assert!(Instant::now() < deadline, "serve did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let flow = drive(&base, &client, &internal_secret, dir.path()).await;
    secrets.extend(flow);
    let served_logs = served.stop();
    assert!(served_logs.contains("DEBUG"), "debug logging was on: {}", &served_logs[..served_logs.len().min(2000)]);
    assert!(served_logs.contains("served"), "the access log is in the capture");
    logs.push_str(&served_logs);
    assert_absent(&logs, &secrets, "the logs");
}

/// Every flow that hands out or takes a secret, over HTTP; returns what was handed out.
async fn drive(base: &str, client: &TestClient, internal_secret: &str, dir: &std::path::Path) -> Vec<(String, String)> {
    let mut secrets: Vec<(String, String)> = Vec::new();
    let mut keep = |what: &str, value: &str| secrets.push((what.to_string(), value.to_string()));
    let url = |path: &str| format!("{base}{path}");
    let plain = reqwest::Client::new();
    let (http, jar) = http_with_jar();

    // Authorization code flow with a wrong password first.
    let authorize = |pkce: &Pkce| {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("response_type", "code"),
                ("client_id", client.id.as_str()),
                ("redirect_uri", REDIRECT),
                ("scope", "openid profile email offline_access"),
                ("state", "log-state"),
                ("nonce", "log-nonce"),
                ("code_challenge", pkce.challenge.as_str()),
                ("code_challenge_method", "S256"),
            ])
            .finish();
        url(&format!("/authorize?{query}"))
    };
    let pkce = pkce();
    let response = http.get(authorize(&pkce)).send().await.expect("authorize");
    let login = location(&response);
    let html = http.get(url(&login)).send().await.expect("login page").text().await.expect("html");
    let (csrf, request) = (form_field(&html, "csrf").expect("csrf"), form_field(&html, "request").expect("request"));
    let wrong = "not-the-password-at-all";
    keep("wrong password", wrong);
    let form = [("csrf", csrf.as_str()), ("request", &request), ("email", ALICE), ("password", wrong)];
    let html = http.post(url("/login")).form(&form).send().await.expect("login").text().await.expect("html");
    let csrf = form_field(&html, "csrf").expect("csrf");
    let form = [("csrf", csrf.as_str()), ("request", &request), ("email", ALICE), ("password", PASSWORD)];
    let response = http.post(url("/login")).form(&form).send().await.expect("login");
    let consent = location(&response);
    let html = http.get(url(&consent)).send().await.expect("consent").text().await.expect("html");
    let (csrf, request) = (form_field(&html, "csrf").expect("csrf"), form_field(&html, "request").expect("request"));
    let form = [("csrf", csrf.as_str()), ("request", &request), ("decision", "approve")];
    let response = http.post(url("/consent")).form(&form).send().await.expect("consent");
    let code = query_of(&location(&response))["code"].clone();
    keep("code", &code);
    keep("session cookie", &cookie_at(base, &jar, "oxidp_session").expect("session cookie"));
    keep("CSRF cookie", &cookie_at(base, &jar, "oxidp_csrf").expect("CSRF cookie"));
    keep("CSRF token", &csrf);

    let secret = client.secret.as_deref().expect("secret");
    let token =
        |form: &[(&str, &str)]| plain.post(url("/token")).basic_auth(&client.id, Some(secret)).form(form).send();
    let tokens: Value = token(&[
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", pkce.verifier.as_str()),
    ])
    .await
    .expect("token")
    .json()
    .await
    .expect("tokens");
    keep("code verifier", &pkce.verifier);
    let access = tokens["access_token"].as_str().expect("access").to_string();
    let refresh = tokens["refresh_token"].as_str().expect("refresh").to_string();
    let id_token = tokens["id_token"].as_str().expect("id token").to_string();
    keep("access token", &access);
    keep("refresh token", &refresh);
    keep("ID token", &id_token);
    assert_eq!(plain.get(url("/userinfo")).bearer_auth(&access).send().await.expect("userinfo").status(), 200);
    // Replay the code (a warning is logged), refresh, reuse the old refresh token (audited).
    let replay = token(&[
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", pkce.verifier.as_str()),
    ])
    .await
    .expect("replay");
    assert_eq!(replay.status(), 400);
    // A second code: the session and the remembered consent give it at once.
    let pkce2 = crate::common::pkce();
    let response = http.get(authorize(&pkce2)).send().await.expect("authorize");
    let code2 = query_of(&location(&response))["code"].clone();
    keep("second code", &code2);
    let second: Value = token(&[
        ("grant_type", "authorization_code"),
        ("code", code2.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", pkce2.verifier.as_str()),
    ])
    .await
    .expect("token")
    .json()
    .await
    .expect("tokens");
    let refresh2 = second["refresh_token"].as_str().expect("refresh").to_string();
    keep("second refresh token", &refresh2);
    keep("second access token", second["access_token"].as_str().expect("access"));
    let rotated: Value = token(&[("grant_type", "refresh_token"), ("refresh_token", refresh2.as_str())])
        .await
        .expect("refresh")
        .json()
        .await
        .expect("rotated");
    keep("rotated refresh token", rotated["refresh_token"].as_str().expect("successor"));
    let reuse = token(&[("grant_type", "refresh_token"), ("refresh_token", refresh2.as_str())]).await.expect("reuse");
    assert_eq!(reuse.status(), 400, "reuse is refused and revokes the family");
    // A wrong client secret.
    let wrong_secret = format!("{secret}-but-wrong");
    keep("wrong client secret", &wrong_secret);
    let refused = plain
        .post(url("/token"))
        .basic_auth(&client.id, Some(&wrong_secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())])
        .send()
        .await
        .expect("token");
    assert_eq!(refused.status(), 401);
    // Introspection and revocation.
    let introspected = plain
        .post(url("/introspect"))
        .basic_auth(&client.id, Some(secret))
        .form(&[("token", refresh.as_str())])
        .send()
        .await
        .expect("introspect");
    assert_eq!(introspected.status(), 200);
    let revoked = plain
        .post(url("/revoke"))
        .basic_auth(&client.id, Some(secret))
        .form(&[("token", refresh.as_str())])
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 200);

    // The JSON API: login, refresh, API key, API client, registration, verification, reset.
    let login_api = |email: &str, password: &str| {
        plain.post(url("/api/v1/auth/login")).json(&json!({ "email": email, "password": password })).send()
    };
    assert_eq!(login_api(ROOT, wrong).await.expect("login").status(), 401);
    let admin: Value = login_api(ROOT, PASSWORD).await.expect("login").json().await.expect("tokens");
    let admin_access = admin["access_token"].as_str().expect("access").to_string();
    keep("API access token", &admin_access);
    keep("API refresh token", admin["refresh_token"].as_str().expect("refresh"));
    let refreshed: Value = plain
        .post(url("/api/v1/auth/refresh"))
        .json(&json!({ "refresh_token": admin["refresh_token"] }))
        .send()
        .await
        .expect("refresh")
        .json()
        .await
        .expect("tokens");
    keep("API refresh successor", refreshed["refresh_token"].as_str().expect("successor"));
    let created: Value = plain
        .post(url("/api/v1/users/me/api-keys"))
        .bearer_auth(&admin_access)
        .json(&json!({ "name": "ci", "scopes": ["read:users", "admin"] }))
        .send()
        .await
        .expect("api key")
        .json()
        .await
        .expect("key");
    let key = created["key"].as_str().expect("key").to_string();
    keep("API key", &key);
    let me = plain.get(url("/api/v1/users/me")).header("X-API-Key", &key).send().await.expect("me");
    assert_eq!(me.status(), 200);
    let bad_key = format!("{}{}", &key[..key.len() - 4], "zzzz");
    keep("wrong API key", &bad_key);
    assert_eq!(
        plain.get(url("/api/v1/users/me")).header("X-API-Key", &bad_key).send().await.expect("me").status(),
        401
    );
    let api_client: Value = plain
        .post(url("/api/v1/admin/api-clients"))
        .bearer_auth(&admin_access)
        .json(&json!({ "name": "Billing" }))
        .send()
        .await
        .expect("api client")
        .json()
        .await
        .expect("api client");
    let api_client_secret = api_client["api_key"].as_str().expect("api_key").to_string();
    keep("API-client secret", &api_client_secret);
    let users = plain
        .get(url("/api/v1/admin/users"))
        .header("X-Client-Key", api_client["client_key"].as_str().expect("client_key"))
        .header("X-API-Key", &api_client_secret)
        .send()
        .await
        .expect("users");
    assert_eq!(users.status(), 200);
    let rotated: Value = plain
        .post(url(&format!("/api/v1/admin/clients/{}/rotate-secret", client.id)))
        .bearer_auth(&admin_access)
        .send()
        .await
        .expect("rotate")
        .json()
        .await
        .expect("rotated");
    keep("rotated client secret", rotated["client_secret"].as_str().expect("secret"));
    let registered =
        plain.post(url("/api/v1/auth/register")).json(&json!({ "email": BOB, "password": BOB_PASSWORD })).send().await;
    assert_eq!(registered.expect("register").status(), 201);
    let verification = mailed_code_in(&dir.join("mail"), BOB, "Confirm");
    keep("verification code", &verification);
    let verified = plain.post(url("/api/v1/auth/verify-email")).json(&json!({ "token": verification })).send().await;
    assert_eq!(verified.expect("verify").status(), 204);
    let forgot = plain.post(url("/api/v1/auth/forgot-password")).json(&json!({ "email": ALICE })).send().await;
    assert_eq!(forgot.expect("forgot").status(), 202);
    let reset = mailed_code_in(&dir.join("mail"), ALICE, "Reset");
    keep("reset code", &reset);
    let done = plain
        .post(url("/api/v1/auth/reset-password"))
        .json(&json!({ "token": reset, "password": NEW_PASSWORD }))
        .send()
        .await;
    assert_eq!(done.expect("reset").status(), 204);
    let upserted = plain
        .post(url("/api/v1/internal/users/upsert-by-sub"))
        .header("X-Internal-Secret", internal_secret)
        .json(&json!({ "sub": "ak-carol", "email": "carol@example.com" }))
        .send()
        .await;
    assert_eq!(upserted.expect("upsert").status(), 200);

    // RP-initiated logout with the ID token as hint.
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("id_token_hint", id_token.as_str()), ("post_logout_redirect_uri", "https://app.example/bye")])
        .finish();
    let response = http.get(url(&format!("/logout?{query}"))).send().await.expect("logout");
    assert_eq!(response.status(), 303);
    secrets
}
