//! What the real `oxidp serve` binary logs at debug level while serving the flows holds none of
//! the secrets they hand out (SQLite only: one binary, one run).

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{ALICE, BOB, BOB_PASSWORD, NEW_PASSWORD, ROOT, assert_absent};
use crate::common::*;

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
