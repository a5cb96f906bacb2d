//! A real oxidp server on 127.0.0.1:0 per test, on SQLite or PostgreSQL, with a manual clock,
//! and a cookie-keeping HTTP client that fills the server's HTML forms.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use oxidp::clock::ManualClock;
use oxidp::config::Config;
use oxidp::state::SharedState;
use reqwest::cookie::{CookieStore, Jar};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Declares `sqlite::name` and `postgres::name` for each async test body `name(Backend)`.
/// The SQLite servers keep short-lived state in process; the PostgreSQL servers use Redis when
/// `TEST_REDIS_URL` is set (scripts/services.sh sets it), so the suite runs with and without it.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Backend::Postgres).await })*
        }
    };
}

pub struct TestServer {
    pub base: String,
    pub state: SharedState,
    pub clock: ManualClock,
    pub database_url: String,
    _dir: tempfile::TempDir,
}

/// A fresh PostgreSQL database on the server named by `TEST_POSTGRES_URL`.
pub async fn fresh_postgres_database() -> String {
    let admin_url = std::env::var("TEST_POSTGRES_URL")
        .expect("TEST_POSTGRES_URL is not set: run the suite with scripts/test, which starts PostgreSQL");
    let name = format!("oxidp_test_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&admin_url).await.expect("connect to PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.expect("create database");
    admin.close().await;
    let (base, _) = admin_url.rsplit_once('/').expect("URL has a database part");
    format!("{base}/{name}")
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestServer {
        Self::start_listening(backend, "127.0.0.1:0", adjust).await
    }

    /// Listening on every IPv6 and IPv4 address (`[::]`), where an IPv4 client's address
    /// arrives IPv4-mapped (`::ffff:127.0.0.1`); the base URL stays `http://127.0.0.1:PORT`.
    pub async fn start_dual_stack(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestServer {
        Self::start_listening(backend, "[::]:0", adjust).await
    }

    async fn start_listening(backend: Backend, listen: &'static str, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let (database_url, redis_url) = match backend {
            Backend::Sqlite => (format!("sqlite://{}?mode=rwc", dir.path().join("oxidp.db").display()), None),
            Backend::Postgres => (fresh_postgres_database().await, std::env::var("TEST_REDIS_URL").ok()),
        };
        // Each server gets its own Redis namespace, so parallel tests never share counters.
        let prefix = format!("oxidp-test:{}:", uuid::Uuid::new_v4().simple());
        let clock = ManualClock::starting_now();
        Self::start_at(listen, database_url, dir, clock, |config| {
            config.redis_url = redis_url;
            config.redis_key_prefix = prefix;
            adjust(config);
        })
        .await
    }

    pub async fn start_on(
        database_url: String,
        dir: tempfile::TempDir,
        adjust: impl FnOnce(&mut Config),
    ) -> TestServer {
        Self::start_on_with_clock(database_url, dir, ManualClock::starting_now(), adjust).await
    }

    /// Another instance of the same deployment: same configuration (so the same issuer behind
    /// one load balancer), database, clock and Redis namespace; only its files are its own.
    pub async fn second_instance(&self) -> TestServer {
        let shared = self.state.config.clone();
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_on_with_clock(self.database_url.clone(), dir, self.clock.clone(), |config| {
            let (keys_dir, mail_dir) = (config.keys_dir.clone(), config.mail_dir.clone());
            *config = shared;
            config.keys_dir = keys_dir;
            config.mail_dir = mail_dir;
        })
        .await
    }

    pub async fn start_on_with_clock(
        database_url: String,
        dir: tempfile::TempDir,
        clock: ManualClock,
        adjust: impl FnOnce(&mut Config),
    ) -> TestServer {
        Self::start_at("127.0.0.1:0", database_url, dir, clock, adjust).await
    }

    async fn start_at(
        listen: &str,
        database_url: String,
        dir: tempfile::TempDir,
        clock: ManualClock,
        adjust: impl FnOnce(&mut Config),
    ) -> TestServer {
        let bound = oxidp::server::bind(listen.parse().expect("addr")).expect("bind");
        let base = format!("http://127.0.0.1:{}", bound.local_addr.port());
        let mut config = Config {
            issuer: base.clone(),
            database_url: database_url.clone(),
            keys_dir: dir.path().join("keys").display().to_string(),
            secret_key: Some("dGVzdCBzZWNyZXQgdGhhdCBpcyBsb25nIGVub3VnaCBmb3IgaGtkZg==".into()),
            mail_dir: dir.path().join("mail").display().to_string(),
            ..Config::default()
        };
        adjust(&mut config);
        let state = oxidp::startup::start(config, Arc::new(clock.clone())).await.expect("server state");
        let serving = state.clone();
        tokio::spawn(async move {
            let _ = oxidp::server::serve(serving, bound, std::future::pending()).await;
        });
        TestServer { base, state, clock, database_url, _dir: dir }
    }

    pub fn clock_now(&self) -> i64 {
        use oxidp::clock::Clock;
        self.clock.now()
    }

    /// The issuer: this server's base URL, or for a [`Self::second_instance`] the first's.
    pub fn issuer(&self) -> &str {
        &self.state.config.issuer
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn user(&self, email: &str, password: &str) -> oxidp::store::User {
        self.user_with_role(email, password, false).await
    }

    pub async fn user_with_role(&self, email: &str, password: &str, admin: bool) -> oxidp::store::User {
        oxidp::admin::users::create(
            &self.state,
            &oxidp::audit::Initiator::cli(),
            email,
            password,
            Some("Test User".into()),
            admin,
        )
        .await
        .unwrap_or_else(|_| panic!("create user {email}"))
    }

    /// Registers a client the way `oxidp client create` does; `flags` are its CLI flags.
    pub async fn client(&self, flags: &[&str]) -> TestClient {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: oxidp::cli::CreateClientArgs,
        }
        let mut argv = vec!["client"];
        argv.extend_from_slice(flags);
        let args = Wrapper::try_parse_from(argv).expect("client flags").args;
        let output = match oxidp::cli::create_client(&self.state, args).await {
            Ok(output) => output,
            Err(_) => panic!("client create {flags:?} failed"),
        };
        TestClient {
            id: output["client_id"].as_str().expect("client_id").to_string(),
            secret: output["client_secret"].as_str().map(str::to_string),
        }
    }

    /// Fetches the JWKS over HTTP and verifies an RS256 token with the independent `jsonwebtoken` crate.
    pub async fn verify_jwt(&self, token: &str, audience: &str, typ: &str) -> serde_json::Map<String, Value> {
        self.verify_jwt_alg(token, audience, typ, jsonwebtoken::Algorithm::RS256).await
    }

    /// As [`Self::verify_jwt`], for a token that must be signed with `alg`.
    pub async fn verify_jwt_alg(
        &self,
        token: &str,
        audience: &str,
        typ: &str,
        alg: jsonwebtoken::Algorithm,
    ) -> serde_json::Map<String, Value> {
        let jwks: jsonwebtoken::jwk::JwkSet =
            reqwest::get(self.url("/jwks.json")).await.expect("jwks").json().await.expect("jwks json");
        let header = jsonwebtoken::decode_header(token).expect("header");
        assert_eq!(header.typ.as_deref(), Some(typ), "typ header");
        assert_eq!(header.alg, alg);
        let kid = header.kid.expect("kid");
        let jwk = jwks.find(&kid).expect("kid published in JWKS");
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("decoding key");
        let mut validation = jsonwebtoken::Validation::new(alg);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[self.issuer()]);
        // The server runs on a manual clock; expiry is checked against it by the tests themselves.
        validation.validate_exp = false;
        jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &validation).expect("token verifies").claims
    }
}

#[derive(Clone, Debug)]
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
}

/// A browser: keeps cookies, never follows redirects (tests look at each one).
pub struct Browser {
    pub http: reqwest::Client,
}

impl Browser {
    pub fn new() -> Browser {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        Browser { http }
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.http.get(url).send().await.expect("GET")
    }

    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(url).form(form).send().await.expect("POST")
    }
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("expected a redirect, got {}", response.status()))
        .to_str()
        .expect("location")
        .to_string()
}

/// The query parameters of a URL (absolute or path-only).
pub fn query_of(url: &str) -> HashMap<String, String> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

/// The value of a named input in an HTML page.
pub fn form_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    // askama escapes &, <, >, " and ' as numeric or named entities.
    let mut value = html[start..end].to_string();
    for (entity, text) in [
        ("&#43;", "+"),
        ("&#x2b;", "+"),
        ("&#34;", "\""),
        ("&#39;", "'"),
        ("&#60;", "<"),
        ("&#62;", ">"),
        ("&quot;", "\""),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&#38;", "&"),
        ("&amp;", "&"),
    ] {
        value = value.replace(entity, text);
    }
    Some(value)
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    use base64::Engine;
    use sha2::Digest;
    let verifier = oxidp::crypto::random_token(32);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    Pkce { verifier, challenge }
}

pub const REDIRECT: &str = "http://127.0.0.1:9999/callback";
pub const PASSWORD: &str = "correct horse battery staple";

/// Builds an /authorize URL with PKCE S256 and the given extra parameters.
pub fn authorize_url(server: &TestServer, client: &TestClient, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    let has = |name: &str| extra.iter().any(|(key, _)| *key == name);
    if !has("scope") {
        query.append_pair("scope", "openid profile email offline_access");
    }
    if !has("state") {
        query.append_pair("state", "state-123");
    }
    for (key, value) in extra {
        query.append_pair(key, value);
    }
    server.url(&format!("/authorize?{}", query.finish()))
}

/// Follows the browser flow from an /authorize URL: fills the login form (when shown) and
/// approves consent (when asked). Returns the final redirect to the client.
pub async fn run_browser_flow(
    server: &TestServer,
    browser: &Browser,
    authorize: &str,
    email: &str,
    password: &str,
) -> String {
    let response = browser.get(authorize).await;
    assert_eq!(response.status(), 302, "authorize redirects");
    let mut next = location(&response);
    for _ in 0..4 {
        if next.starts_with(REDIRECT) || !next.starts_with('/') {
            return next;
        }
        let page = browser.get(&server.url(&next)).await;
        assert_eq!(page.status(), 200, "page {next}");
        let html = page.text().await.expect("html");
        let response = if next.starts_with("/login") {
            let csrf = form_field(&html, "csrf").expect("csrf on login form");
            let request = form_field(&html, "request").expect("request on login form");
            browser
                .post_form(
                    &server.url("/login"),
                    &[("csrf", &csrf), ("request", &request), ("email", email), ("password", password)],
                )
                .await
        } else if next.starts_with("/consent") {
            let csrf = form_field(&html, "csrf").expect("csrf on consent form");
            let request = form_field(&html, "request").expect("request on consent form");
            browser
                .post_form(&server.url("/consent"), &[("csrf", &csrf), ("request", &request), ("decision", "approve")])
                .await
        } else {
            panic!("unexpected page {next}");
        };
        assert_eq!(response.status(), 303, "form answers with 303");
        next = location(&response);
    }
    panic!("the flow did not reach the client");
}

/// A code from the full flow, with its verifier.
pub async fn obtain_code(
    server: &TestServer,
    browser: &Browser,
    client: &TestClient,
    extra: &[(&str, &str)],
) -> (String, Pkce) {
    let pkce = pkce();
    let url = authorize_url(server, client, &pkce, extra);
    let redirect = run_browser_flow(server, browser, &url, "alice@example.com", PASSWORD).await;
    let params = query_of(&redirect);
    let code = params.get("code").unwrap_or_else(|| panic!("no code in {redirect}")).clone();
    (code, pkce)
}

pub async fn token_request(server: &TestServer, client: &TestClient, form: &[(&str, &str)]) -> reqwest::Response {
    client_post(server, "/token", client, form).await
}

pub async fn redeem(server: &TestServer, client: &TestClient, code: &str, verifier: &str) -> reqwest::Response {
    token_request(
        server,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

pub async fn json(response: reqwest::Response) -> Value {
    response.json().await.expect("JSON body")
}

/// POSTs to /introspect or /revoke as `client`.
pub async fn client_post(
    server: &TestServer,
    path: &str,
    client: &TestClient,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let http = reqwest::Client::new();
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let request = match &client.secret {
        Some(secret) => http.post(server.url(path)).basic_auth(&client.id, Some(secret)),
        None => {
            form.push(("client_id", &client.id));
            http.post(server.url(path))
        }
    };
    request.form(&form).send().await.expect("client request")
}

/// A Bearer token for oxidp's own API from the first-party password login (scope `account`,
/// plus `admin` for administrators).
pub async fn api_token(server: &TestServer, email: &str) -> String {
    let response = reqwest::Client::new()
        .post(server.url("/api/v1/auth/login"))
        .json(&serde_json::json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 200, "login of {email}");
    json(response).await["access_token"].as_str().expect("access_token").to_string()
}

/// Creates the administrator root@example.com and returns its API token.
pub async fn admin_token(server: &TestServer) -> String {
    server.user_with_role("root@example.com", PASSWORD, true).await;
    api_token(server, "root@example.com").await
}

/// Two instances of one deployment: one PostgreSQL, one Redis, one server secret.
pub async fn pair() -> (TestServer, TestServer) {
    pair_with(|_| {}).await
}

/// As [`pair`], both instances configured by `adjust`.
pub async fn pair_with(adjust: impl FnOnce(&mut Config)) -> (TestServer, TestServer) {
    assert!(std::env::var("TEST_REDIS_URL").is_ok(), "TEST_REDIS_URL is not set: run the suite with scripts/test");
    let a = TestServer::start_with(Backend::Postgres, adjust).await;
    let b = a.second_instance().await;
    (a, b)
}

/// A client that keeps cookies in a jar the test can read, and never follows redirects.
pub fn http_with_jar() -> (reqwest::Client, Arc<Jar>) {
    let jar = Arc::new(Jar::default());
    let http = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    (http, jar)
}

/// The value of cookie `name` in the jar, for the origin `base`.
pub fn cookie_at(base: &str, jar: &Jar, name: &str) -> Option<String> {
    let url = reqwest::Url::parse(base).expect("base URL");
    let header = jar.cookies(&url)?;
    let prefix = format!("{name}=");
    header.to_str().ok()?.split("; ").find_map(|pair| pair.strip_prefix(prefix.as_str())).map(str::to_string)
}

/// The value of cookie `name` in the jar, for the test server's origin.
pub fn jar_cookie(server: &TestServer, jar: &Jar, name: &str) -> Option<String> {
    cookie_at(&server.base, jar, name)
}

/// The one-time code on its own line in the newest mail to `to` whose subject contains
/// `subject` (the default mailer writes one `.eml` file per message into the mail directory).
pub fn mailed_code_in(mail_dir: &std::path::Path, to: &str, subject: &str) -> String {
    let mut files: Vec<_> = std::fs::read_dir(mail_dir)
        .expect("mail directory")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    files.sort();
    let first_line = format!("To: {to}");
    let mail = files
        .into_iter()
        .rev()
        .map(|path| std::fs::read_to_string(path).expect("mail file"))
        .find(|text| {
            text.lines().next() == Some(first_line.as_str())
                && text.lines().any(|line| line.starts_with("Subject:") && line.contains(subject))
        })
        .unwrap_or_else(|| panic!("no mail '{subject}' to {to}"));
    let (_, body) = mail.split_once("\n\n").expect("headers, blank line, body");
    body.lines()
        .map(str::trim)
        .find(|line| line.len() >= 20 && line.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or_else(|| panic!("no code in mail: {mail}"))
        .to_string()
}

pub fn mailed_code(server: &TestServer, to: &str, subject: &str) -> String {
    mailed_code_in(std::path::Path::new(&server.state.config.mail_dir), to, subject)
}

pub async fn api_post(server: &TestServer, path: &str, bearer: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(server.url(path)).json(body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("POST")
}

/// The first-party password login of the JSON API: its token answer.
pub async fn api_login(server: &TestServer, email: &str, password: &str) -> Value {
    let response = api_post(server, "/api/v1/auth/login", None, &json!({ "email": email, "password": password })).await;
    assert_eq!(response.status(), 200, "API login of {email}");
    json(response).await
}
