//! Bounded state (issue 12, item 6), replayed over HTTP: oversized parameters kept with a
//! pending authorization request, a flood of pending requests from one address, a flood that
//! fills the key-value store (in process on SQLite, a small `noeviction` Redis on PostgreSQL),
//! an evicting Redis at start, and audit rows and unverified self-registered accounts that
//! housekeeping must not keep for ever.

use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    oversized_request_parameters_are_refused_before_anything_is_stored,
    pending_requests_are_capped_per_source_address,
    a_full_store_refuses_new_pending_requests_with_503_and_evicts_nothing,
    an_evicting_redis_is_warned_about_at_start,
    housekeeping_applies_audit_retention_and_purges_only_unverified_self_registered_accounts,
);

/// A browser (it keeps cookies) at source address 127.0.0.`host`.
fn browser_from(host: u8) -> reqwest::Client {
    let ip: IpAddr = format!("127.0.0.{host}").parse().expect("ip");
    reqwest::Client::builder()
        .local_address(ip)
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn get(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client.get(url).send().await.expect("GET")
}

/// A private redis-server on a free port with the given extra arguments.
struct PrivateRedis {
    child: Child,
    url: String,
}

impl PrivateRedis {
    async fn start(args: &[&str]) -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed by scripts/services.sh");
        // Owned at once, so its Drop stops the server whatever happens next.
        let redis = PrivateRedis { child, url: format!("redis://127.0.0.1:{port}") };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return redis;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `state`, `nonce` and `login_hint` are kept for 30 minutes before anyone signs in: each is
/// bounded, and one byte more is `invalid_request` (an oversized state is not echoed back).
async fn oversized_request_parameters_are_refused_before_anything_is_stored(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client(&["--name", "App", "--redirect-uri", REDIRECT]).await;
    let browser = Browser::new();
    let pkce = pkce();
    for (name, max) in [("state", 1024), ("nonce", 512), ("login_hint", 320)] {
        let at_limit = "a".repeat(max);
        let response = browser.get(&authorize_url(&server, &client, &pkce, &[(name, &at_limit)])).await;
        let to = location(&response);
        assert!(to.starts_with("/login?request="), "{name} of {max} bytes is kept: {to}");
        let page = browser.get(&server.url(&to)).await;
        assert_eq!(page.status(), 200, "the pending request is there");

        let over = "a".repeat(max + 1);
        let response = browser.get(&authorize_url(&server, &client, &pkce, &[(name, &over)])).await;
        let to = location(&response);
        assert!(to.starts_with(REDIRECT), "{name}: {to}");
        let query = query_of(&to);
        assert_eq!(query.get("error").map(String::as_str), Some("invalid_request"), "{name}: {to}");
        assert!(query["error_description"].contains(name), "{query:?}");
        if name == "state" {
            assert_eq!(query.get("state"), None, "an oversized state is not echoed");
        } else {
            assert_eq!(query.get("state").map(String::as_str), Some("state-123"));
        }
    }
}

/// One address starting request after request (never signing in) gets 429 with `Retry-After`
/// once it has `OXIDP_PENDING_REQUESTS_PER_IP` pending; another address is not affected, and
/// the address may start again when its requests have expired.
async fn pending_requests_are_capped_per_source_address(backend: Backend) {
    let server = TestServer::start_with(backend, |config| config.pending_requests_per_ip = 5).await;
    let client = server.client(&["--name", "App", "--redirect-uri", REDIRECT]).await;
    let pkce = pkce();
    let url = authorize_url(&server, &client, &pkce, &[("state", &"s".repeat(1024))]);
    let attacker = browser_from(2);
    for n in 0..5 {
        let response = get(&attacker, &url).await;
        assert!(location(&response).starts_with("/login?request="), "request {n}");
    }
    let refused = get(&attacker, &url).await;
    assert_eq!(refused.status(), 429);
    let retry: i64 = refused.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=1800).contains(&retry), "{retry}");
    assert!(refused.headers()["content-type"].to_str().expect("type").starts_with("text/html"));
    assert!(refused.headers().get("location").is_none(), "never redirected");
    assert!(refused.text().await.expect("body").contains("Too many sign-in requests"));

    let neighbour = browser_from(3);
    assert!(location(&get(&neighbour, &url).await).starts_with("/login?request="), "another address");

    server.clock.advance(30 * 60);
    assert!(location(&get(&attacker, &url).await).starts_with("/login?request="), "a new window");
}

/// A flood of pending requests (from many addresses, so the per-address cap does not stop it)
/// fills the store: new ones are refused with 503 and `Retry-After`, and nothing already there is
/// evicted: an earlier pending request still opens, a sign-in lock still holds. In process, the
/// expired entries go first once their time has come.
async fn a_full_store_refuses_new_pending_requests_with_503_and_evicts_nothing(backend: Backend) {
    // On PostgreSQL the store is a Redis of its own with little memory and `noeviction`.
    let redis = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            Some(PrivateRedis::start(&["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"]).await)
        }
    };
    let redis_url = redis.as_ref().map(|redis| redis.url.clone());
    let server = TestServer::start_with(backend, |config| {
        config.kv_max_entries = 100;
        config.pending_requests_per_ip = 1_000_000;
        config.login_account_limit = 2;
        if redis_url.is_some() {
            config.redis_url = redis_url;
        }
    })
    .await;
    server.user("alice@example.com", PASSWORD).await;
    let client = server.client(&["--name", "App", "--redirect-uri", REDIRECT]).await;
    let pkce = pkce();
    let url = authorize_url(&server, &client, &pkce, &[("state", &"s".repeat(1024)), ("nonce", &"n".repeat(512))]);
    let http = browser_from(2);

    // Before the flood: a pending request, and alice's account locked by two failures.
    let first = location(&get(&http, &url).await);
    assert!(first.starts_with("/login?request="), "{first}");
    let login = |password: &'static str| {
        let http = http.clone();
        let url = server.url("/api/v1/auth/login");
        async move {
            let body = json!({"email": "alice@example.com", "password": password});
            http.post(url).json(&body).send().await.expect("POST").status().as_u16()
        }
    };
    assert_eq!(login("wrong password 1").await, 401);
    server.clock.advance(5);
    assert_eq!(login("wrong password 2").await, 401);

    let mut refused = None;
    for n in 0..5000 {
        let response = get(&http, &url).await;
        if response.status() != 302 {
            refused = Some((n, response));
            break;
        }
    }
    let (accepted, refused) = refused.expect("the flood fills the store");
    assert!(accepted > 10, "the store took some ({accepted})");
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().get("retry-after").is_some());
    assert!(refused.headers()["content-type"].to_str().expect("type").starts_with("text/html"));
    assert_eq!(get(&http, &url).await.status(), 503, "still full");

    // Nothing was evicted to make room.
    let page = get(&http, &server.url(&first)).await;
    assert_eq!(page.status(), 200, "the first pending request is still there");
    let correct = login(PASSWORD).await;
    match backend {
        Backend::Sqlite => assert_eq!(correct, 429, "the lock is still counted"),
        // A full noeviction Redis refuses even the address's counter update: 503, never through.
        Backend::Postgres => assert!(correct == 429 || correct == 503, "{correct}"),
    }

    if matches!(backend, Backend::Sqlite) {
        // Expired entries go first: after the pending lifetime there is room again.
        server.clock.advance(30 * 60);
        assert!(location(&get(&http, &url).await).starts_with("/login?request="), "room again");
    }
}

/// A Redis that may evict keys (here `allkeys-lru`) could drop sessions, single-use state and
/// throttles: the real server says so in its log at start; a `noeviction` Redis (the shared test
/// Redis) gets no warning.
async fn an_evicting_redis_is_warned_about_at_start(backend: Backend) {
    let evicting = PrivateRedis::start(&["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"]).await;
    let server = TestServer::start(backend).await;
    if let oxidp::kv::Kv::Redis(redis) = &server.state.kv {
        assert_eq!(redis.warn_unless_noeviction().await, None, "the test Redis does not evict");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("oxidp.db").display()),
        Backend::Postgres => fresh_postgres_database().await,
    };
    let log = dir.path().join("serve.log");
    let file = std::fs::File::create(&log).expect("log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_oxidp"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("OXIDP_") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .arg("serve")
        .current_dir(dir.path())
        .env("OXIDP_BIND", format!("127.0.0.1:{port}"))
        .env("OXIDP_ISSUER", format!("http://127.0.0.1:{port}"))
        .env("OXIDP_DATABASE_URL", database_url)
        .env("OXIDP_REDIS_URL", &evicting.url)
        .env("OXIDP_KEYS_DIR", dir.path().join("keys"))
        .env("OXIDP_MAIL_DIR", dir.path().join("mail"))
        .stdin(Stdio::null())
        .stdout(Stdio::from(file.try_clone().expect("clone")))
        .stderr(Stdio::from(file))
        .spawn()
        .expect("spawn serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut text = String::new();
    while Instant::now() < deadline {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("maxmemory-policy") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let line =
        text.lines().find(|line| line.contains("maxmemory-policy")).unwrap_or_else(|| panic!("no warning: {text}"));
    assert!(line.contains("WARN") && line.contains("allkeys-lru") && line.contains("noeviction"), "{line}");
}

async fn register(server: &TestServer, email: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url("/api/v1/auth/register"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("POST")
}

async fn login_status(server: &TestServer, email: &str) -> u16 {
    reqwest::Client::new()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("POST")
        .status()
        .as_u16()
}

async fn audit_count(server: &TestServer, action: &str) -> usize {
    use oxidp::store::AuditStore;
    let filter = oxidp::store::audit::AuditFilter { action: Some(action.into()), limit: 1000, ..Default::default() };
    server.state.db.query_audit(&filter).await.expect("audit").len()
}

/// Failed sign-ins each write an audit row, and anyone can register addresses they do not own:
/// housekeeping deletes audit rows older than `OXIDP_AUDIT_RETENTION` and self-registered
/// accounts never verified within `OXIDP_UNVERIFIED_ACCOUNT_TTL`, and nothing else: a verified
/// self-registered account, CLI- and administrator-made accounts, and an account made by an
/// upstream login all stay, verified or not.
async fn housekeeping_applies_audit_retention_and_purges_only_unverified_self_registered_accounts(backend: Backend) {
    use oxidp::store::{IdentityStore, NewUser, UserStore};
    let server = TestServer::start_with(backend, |config| {
        config.audit_retention = 10_000;
        config.unverified_account_ttl = 5_000;
    })
    .await;
    for n in 0..3 {
        assert_eq!(login_status(&server, &format!("nobody{n}@example.com")).await, 401);
    }
    let failed = audit_count(&server, "login.failed").await;
    assert!(failed >= 3, "each failed sign-in is audited ({failed})");

    assert_eq!(register(&server, "squatter@example.com").await.status(), 201);
    assert_eq!(register(&server, "owner@example.com").await.status(), 201);
    let code = mailed_code(&server, "owner@example.com", "Confirm");
    let verified = reqwest::Client::new()
        .post(server.url("/api/v1/auth/verify-email"))
        .json(&json!({"token": code}))
        .send()
        .await
        .expect("POST");
    assert_eq!(verified.status(), 204);
    server.user("cli@example.com", PASSWORD).await;
    let now = server.clock_now();
    let hash = oxidp::passwords::hash_password(PASSWORD).expect("hash");
    let unverified = |email: Option<&str>, hash: Option<String>| NewUser {
        email: email.map(str::to_string),
        email_verified: false,
        password_hash: hash,
        name: None,
        role: "user".into(),
    };
    // Made by another path than self-registration (an import, the admin API): not marked.
    let imported = server.state.db.create_user(unverified(Some("imported@example.com"), Some(hash)), now).await;
    let imported = imported.expect("imported");
    let upstream = server.state.db.create_user_with_identity(unverified(None, None), "github", "12345", now).await;
    let upstream = upstream.expect("upstream user");
    assert_eq!(login_status(&server, "squatter@example.com").await, 200, "sign-in needs no verified email");

    server.clock.advance(4_999);
    let purged = oxidp::housekeeping::purge(&server.state).await.expect("purge");
    assert_eq!((purged.unverified_accounts, purged.audit_rows), (0, 0), "not before their time");
    assert_eq!(login_status(&server, "squatter@example.com").await, 200);

    server.clock.advance(2);
    let purged = oxidp::housekeeping::purge(&server.state).await.expect("purge");
    assert_eq!(purged.unverified_accounts, 1, "{purged:?}");
    assert_eq!(login_status(&server, "squatter@example.com").await, 401, "the squatter's account is gone");
    assert!(server.state.db.user_by_email("squatter@example.com").await.expect("db").is_none());
    assert_eq!(register(&server, "squatter@example.com").await.status(), 201, "the address is free again");
    for email in ["owner@example.com", "cli@example.com", "imported@example.com"] {
        assert!(server.state.db.user_by_email(email).await.expect("db").is_some(), "{email} stays");
    }
    assert!(server.state.db.user_by_id(&imported.id).await.expect("db").is_some());
    assert!(server.state.db.user_by_id(&upstream).await.expect("db").is_some(), "the upstream account stays");
    assert_eq!(audit_count(&server, "login.failed").await, failed + 1, "audit rows within the retention stay");

    server.clock.advance(5_000);
    let purged = oxidp::housekeeping::purge(&server.state).await.expect("purge");
    assert!(purged.audit_rows >= failed as u64, "{purged:?}");
    assert_eq!(audit_count(&server, "login.failed").await, 1, "only the recent failure is left");
}
