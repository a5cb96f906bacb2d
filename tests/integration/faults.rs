//! Faults: Redis or PostgreSQL going away and coming back. Security checks fail closed (a login
//! is refused, never let through unlimited; a session that cannot be read is no "logged out"),
//! readiness reports the outage, and service returns by itself.

use std::process::{Child, Command, Stdio};

use serde_json::json;

use crate::common::*;

/// A private redis-server on a free port, so stopping it disturbs no other test.
struct PrivateRedis {
    child: Child,
    port: u16,
}

impl PrivateRedis {
    fn start_on(port: u16) -> PrivateRedis {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed by scripts/services.sh");
        PrivateRedis { child, port }
    }

    fn start() -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        PrivateRedis::start_on(port)
    }

    async fn wait_ready(&self) {
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start");
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn api_login(server: &TestServer) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": "alice@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("login")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_fails_closed_and_recovers() {
    let mut redis = PrivateRedis::start();
    redis.wait_ready().await;
    let port = redis.port;
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.redis_url = Some(format!("redis://127.0.0.1:{port}"));
    })
    .await;
    server.user("alice@example.com", PASSWORD).await;
    let client = server.client(&["--name", "App", "--redirect-uri", REDIRECT]).await;
    let login = api_login(&server).await;
    assert_eq!(login.status(), 200);
    let access = json(login).await["access_token"].as_str().expect("access token").to_string();
    let ready = json(reqwest::get(server.url("/readyz")).await.expect("readyz")).await;
    assert_eq!(ready["redis"], "ok");
    // A browser session, which lives in Redis.
    let signed_in = Browser::new();
    let (_, pkce_before) = obtain_code(&server, &signed_in, &client, &[]).await;

    redis.stop();
    // The session cannot be read: an error page, neither "logged out" (a login page or
    // login_required) nor a redirect anywhere.
    let silent = signed_in.get(&authorize_url(&server, &client, &pkce_before, &[("prompt", "none")])).await;
    assert_eq!(silent.status(), 503);
    assert!(silent.headers().get("location").is_none());
    let listed = reqwest::Client::new()
        .get(server.url("/api/v1/users/me/sessions"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("list sessions");
    assert_eq!(listed.status(), 503, "listing sessions needs Redis");
    assert!(listed.headers().contains_key("retry-after"));
    assert_eq!(listed.headers()["content-type"], "application/problem+json");
    // Logins need the brute-force counters: without Redis they are refused, never unlimited.
    let refused = api_login(&server).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    let browser = Browser::new();
    let authorize = browser.get(&authorize_url(&server, &client, &pkce(), &[])).await;
    assert_eq!(authorize.status(), 503, "the pending request cannot be kept: an error page, not a redirect");
    assert!(authorize.headers().get("location").is_none());
    // Readiness reports Redis without failing: the database and keys still serve.
    let ready = reqwest::get(server.url("/readyz")).await.expect("readyz");
    assert_eq!(ready.status(), 200);
    assert_eq!(json(ready).await["redis"], "unavailable");
    // Client authentication cannot count failures (nor tell a cached client is current): 503.
    let token = token_request(&server, &client, &[("grant_type", "client_credentials")]).await;
    assert_eq!(token.status(), 503);
    assert!(token.headers().contains_key("retry-after"));
    assert_eq!(json(token).await["error"], "temporarily_unavailable");

    // Service returns by itself once Redis is back.
    let redis = PrivateRedis::start_on(port);
    redis.wait_ready().await;
    let mut recovered = false;
    for _ in 0..50 {
        if api_login(&server).await.status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(recovered, "logins work again after Redis returns");
}

/// A private PostgreSQL server (initdb in a temp dir, run as the `postgres` user), so it can be
/// stopped and started without disturbing the shared one.
struct PrivatePostgres {
    dir: tempfile::TempDir,
    port: u16,
    bin: std::path::PathBuf,
}

impl PrivatePostgres {
    fn bin_dir() -> std::path::PathBuf {
        let versions =
            std::fs::read_dir("/usr/lib/postgresql").expect("PostgreSQL is installed by scripts/services.sh");
        let mut versions: Vec<_> = versions.filter_map(Result::ok).map(|entry| entry.path()).collect();
        versions.sort();
        versions.last().expect("a PostgreSQL version").join("bin")
    }

    fn as_postgres(command: &str) -> std::process::Output {
        Command::new("su").args(["postgres", "-s", "/bin/sh", "-c", command]).output().expect("su postgres")
    }

    fn create() -> PrivatePostgres {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let chown = Command::new("chown")
            .args(["-R", "postgres:postgres", &dir.path().display().to_string()])
            .status()
            .expect("chown");
        assert!(chown.success());
        let bin = Self::bin_dir();
        let data = dir.path().join("data");
        let init = Self::as_postgres(&format!(
            "{}/initdb -A trust -U postgres -D {} >/dev/null",
            bin.display(),
            data.display()
        ));
        assert!(init.status.success(), "initdb: {}", String::from_utf8_lossy(&init.stderr));
        let server = PrivatePostgres { dir, port, bin };
        server.start();
        server
    }

    fn start(&self) {
        let data = self.dir.path().join("data");
        let options =
            format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.path().display());
        let started = Self::as_postgres(&format!(
            "{}/pg_ctl -D {} -o '{}' -l {}/log -w start >/dev/null",
            self.bin.display(),
            data.display(),
            options,
            self.dir.path().display()
        ));
        assert!(started.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&started.stderr));
    }

    fn stop(&self) {
        let data = self.dir.path().join("data");
        Self::as_postgres(&format!(
            "{}/pg_ctl -D {} -m immediate -w stop >/dev/null",
            self.bin.display(),
            data.display()
        ));
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How long after PostgreSQL restarted the server is ready again (by itself, within 10 s).
async fn back_after_restart(server: &TestServer) -> std::time::Duration {
    let restarted = std::time::Instant::now();
    for _ in 0..100 {
        if reqwest::get(server.url("/readyz")).await.is_ok_and(|ready| ready.status() == 200) {
            return restarted.elapsed();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("service did not return by itself once PostgreSQL was back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_answers_503_and_recovers() {
    let postgres = PrivatePostgres::create();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_on(postgres.url(), dir, |_| {}).await;
    server.user("alice@example.com", PASSWORD).await;
    let client = server
        .client(&[
            "--name",
            "App",
            "--redirect-uri",
            REDIRECT,
            "--grant-types",
            "authorization_code,refresh_token,client_credentials",
        ])
        .await;
    // A client registered before the outage but never used: not in the client cache. (Registering
    // renews the cache stamp, so it comes before the other client's first use.)
    let unseen = server.client(&["--name", "Unseen", "--redirect-uri", REDIRECT]).await;
    assert_eq!(token_request(&server, &client, &[("grant_type", "client_credentials")]).await.status(), 200);
    let browser = Browser::new();
    let (code, pkce) = obtain_code(&server, &browser, &client, &[]).await;
    let before_outage = json(redeem(&server, &client, &code, &pkce.verifier).await).await;
    let refresh = before_outage["refresh_token"].as_str().expect("refresh").to_string();

    postgres.stop();
    let started = std::time::Instant::now();
    // /authorize cannot validate an unseen client's redirect URI: a 503 page, never a redirect.
    let authorize = Browser::new().get(&authorize_url(&server, &unseen, &pkce, &[])).await;
    assert_eq!(authorize.status(), 503);
    assert!(authorize.headers().get("location").is_none());
    assert!(authorize.headers()["content-type"].to_str().expect("type").starts_with("text/html"));
    // A cached client's request is validated from the cache and shows the login form; the
    // password check needs the database and answers 503. Nothing goes back to the client.
    let cached = Browser::new();
    let authorize = cached.get(&authorize_url(&server, &client, &pkce, &[])).await;
    assert_eq!(authorize.status(), 302);
    let login = location(&authorize);
    assert!(login.starts_with("/login?"), "only to our own login page: {login}");
    let page = cached.get(&server.url(&login)).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("login page");
    let (csrf, request) = (form_field(&html, "csrf").expect("csrf"), form_field(&html, "request").expect("request"));
    let form = [("csrf", csrf.as_str()), ("request", &request), ("email", "alice@example.com"), ("password", PASSWORD)];
    let submitted = cached.post_form(&server.url("/login"), &form).await;
    assert_eq!(submitted.status(), 503);
    assert!(submitted.headers().get("location").is_none());
    // client_credentials needs no database (a cached client, a self-contained JWT) and keeps working.
    assert_eq!(token_request(&server, &client, &[("grant_type", "client_credentials")]).await.status(), 200);
    // /token grants that need the database and the API: 503 JSON with Retry-After.
    let token = token_request(&server, &client, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(token.status(), 503);
    assert!(token.headers().contains_key("retry-after"));
    assert_eq!(json(token).await["error"], "temporarily_unavailable");
    let api = reqwest::Client::new()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": "alice@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(api.status(), 503);
    assert!(api.headers().contains_key("retry-after"));
    let ready = reqwest::get(server.url("/readyz")).await.expect("readyz");
    assert_eq!(ready.status(), 503);
    assert_eq!(reqwest::get(server.url("/healthz")).await.expect("healthz").status(), 200, "alive all along");
    let outage_answers = started.elapsed();

    postgres.start();
    let recovered = back_after_restart(&server).await;
    println!("outage answers took {outage_answers:?}; recovered {recovered:?} after PostgreSQL restarted");
    // Nothing written before the outage was lost or changed meaning.
    let refreshed =
        token_request(&server, &client, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(refreshed.status(), 200, "the refresh token issued before the outage still works");
    let replay = redeem(&server, &client, &code, &pkce.verifier).await;
    assert_eq!(json(replay).await["error"], "invalid_grant", "the consumed code is still consumed");
}

/// Dynamic registration and client ID metadata documents while PostgreSQL is away: OAuth JSON
/// 503 at /register (nothing spent), an error page at /authorize (never a redirect to the
/// document's unverified redirect URI); both work again once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_and_metadata_documents_answer_503_while_postgres_is_down() {
    use crate::registration::{expect_error, initial_token, register, web_app};
    use poem::{Route, get, handler};
    #[handler]
    fn document(req: &poem::Request) -> poem::Response {
        let host = req.headers().get("host").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let body = json!({ "client_id": format!("http://{host}/client.json"), "redirect_uris": [REDIRECT] });
        poem::Response::builder().content_type("application/json").body(body.to_string())
    }
    let documents = crate::federation::serve_mock(Route::new().at("/client.json", get(document))).await;
    let client_id = format!("{documents}/client.json");

    let postgres = PrivatePostgres::create();
    let server = TestServer::start_on(postgres.url(), tempfile::tempdir().expect("tempdir"), |config| {
        config.dynamic_registration = oxidp::config::DynamicRegistration::Token;
        config.client_id_metadata_documents = oxidp::config::Switch::On;
        config.outbound_allow_loopback = true;
    })
    .await;
    let registered = json(register(&server, Some(&initial_token(&server, None, None).await), &web_app()).await).await;
    let once = initial_token(&server, Some(1), None).await;
    let document_client = TestClient { id: client_id.clone(), secret: None };

    postgres.stop();
    let answer = register(&server, Some(&once), &web_app()).await;
    assert!(answer.headers().contains_key("retry-after"), "{:?}", answer.headers());
    expect_error(answer, 503, "temporarily_unavailable").await;
    let read = reqwest::Client::new()
        .get(registered["registration_client_uri"].as_str().expect("uri"))
        .bearer_auth(registered["registration_access_token"].as_str().expect("token"))
        .send()
        .await
        .expect("GET");
    expect_error(read, 503, "temporarily_unavailable").await;
    let authorize = Browser::new().get(&authorize_url(&server, &document_client, &pkce(), &[])).await;
    assert_eq!(authorize.status(), 503);
    assert!(authorize.headers().get("location").is_none(), "no redirect to an unverified redirect URI");
    assert!(authorize.headers()["content-type"].to_str().expect("type").starts_with("text/html"));

    postgres.start();
    back_after_restart(&server).await;
    assert_eq!(register(&server, Some(&once), &web_app()).await.status(), 201, "the outage spent no use");
    let authorize = Browser::new().get(&authorize_url(&server, &document_client, &pkce(), &[])).await;
    assert!(location(&authorize).starts_with("/login?"), "the document makes a client again");
}
