//! Operations: health and readiness, request IDs, Prometheus metrics, and the audit log of
//! security events (logins, consent, refresh-token reuse).

use serde_json::json;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    health_readiness_and_request_ids,
    metrics_count_requests_tokens_and_failures,
    security_events_are_audited
);

async fn health_readiness_and_request_ids(backend: Backend) {
    let server = TestServer::start(backend).await;
    let health = reqwest::get(server.url("/healthz")).await.expect("healthz");
    assert_eq!(health.status(), 200);
    let ready = reqwest::get(server.url("/readyz")).await.expect("readyz");
    assert_eq!(ready.status(), 200);
    let ready = json(ready).await;
    assert_eq!(ready["database"], "ok");
    assert_eq!(ready["signing_keys"], "ok");
    // Sessions live in Redis when it is configured (the PostgreSQL servers of the tests), else
    // in the database.
    let sessions = if server.state.config.redis_url.is_some() { "redis" } else { "database" };
    assert_eq!(ready["sessions"], sessions);

    let http = reqwest::Client::new();
    let echoed = http.get(server.url("/healthz")).header("X-Request-Id", "trace-abc.123").send().await.expect("get");
    assert_eq!(echoed.headers()["x-request-id"], "trace-abc.123");
    // An unsafe incoming id is replaced, not echoed into logs and headers.
    let replaced =
        http.get(server.url("/healthz")).header("X-Request-Id", "bad id\twith spaces").send().await.expect("get");
    let id = replaced.headers()["x-request-id"].to_str().expect("id").to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
}

async fn metrics_count_requests_tokens_and_failures(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client(&["--name", "svc", "--grant-types", "client_credentials", "--scopes", "api"]).await;
    let before = metric_value(&server, "oxidp_tokens_issued_total{grant_type=\"client_credentials\"}").await;
    assert_eq!(token_request(&server, &client, &[("grant_type", "client_credentials")]).await.status(), 200);
    let after = metric_value(&server, "oxidp_tokens_issued_total{grant_type=\"client_credentials\"}").await;
    assert!(after >= before + 1.0, "{before} -> {after}");

    let failures_before = metric_value(&server, "oxidp_login_failures_total{channel=\"password\"}").await;
    reqwest::Client::new()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": "nobody@example.com", "password": "wrong wrong wrong" }))
        .send()
        .await
        .expect("login");
    assert!(metric_value(&server, "oxidp_login_failures_total{channel=\"password\"}").await >= failures_before + 1.0);

    let text = reqwest::get(server.url("/metrics")).await.expect("metrics").text().await.expect("text");
    assert!(
        text.contains("http_requests_total{route=\"/token\",method=\"POST\",status=\"200\"}"),
        "per-route request counter"
    );
    assert!(text.contains("http_request_duration_seconds_bucket{route=\"/token\""), "latency histogram");
    assert!(text.contains("oxidp_db_pool_connections{state=\"idle\"}"), "pool gauge");
}

/// The value of one metric line (0 when absent; metrics are process-wide and shared between tests).
async fn metric_value(server: &TestServer, series: &str) -> f64 {
    let text = reqwest::get(server.url("/metrics")).await.expect("metrics").text().await.expect("text");
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse::<f64>().ok()))
        .unwrap_or(0.0)
}

async fn security_events_are_audited(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user_with_role("root@example.com", PASSWORD, true).await;
    let alice = server.user("alice@example.com", PASSWORD).await;
    let client = server.client(&["--name", "App", "--redirect-uri", REDIRECT]).await;
    let http = reqwest::Client::new();
    // A failed and a successful login through the page, with consent.
    let browser = Browser::new();
    let pkce = pkce();
    let url = authorize_url(&server, &client, &pkce, &[]);
    let login_page = browser.get(&server.url(&location(&browser.get(&url).await))).await.text().await.expect("page");
    let csrf = form_field(&login_page, "csrf").expect("csrf");
    let request = form_field(&login_page, "request").expect("request");
    let failed = browser
        .post_form(
            &server.url("/login"),
            &[("csrf", &csrf), ("request", &request), ("email", "alice@example.com"), ("password", "not it at all")],
        )
        .await;
    assert_eq!(failed.status(), 401);
    let redirect = run_browser_flow(&server, &browser, &url, "alice@example.com", PASSWORD).await;
    let code = query_of(&redirect)["code"].clone();
    let tokens = json(redeem(&server, &client, &code, &pkce.verifier).await).await;
    let refresh = tokens["refresh_token"].as_str().expect("refresh").to_string();
    assert_eq!(
        token_request(&server, &client, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await.status(),
        200
    );
    server.clock.advance(6);
    assert_eq!(
        token_request(&server, &client, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await.status(),
        400
    );

    let admin = json(
        http.post(server.url("/api/v1/auth/login"))
            .json(&json!({ "email": "root@example.com", "password": PASSWORD }))
            .send()
            .await
            .expect("login"),
    )
    .await["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    let audit =
        json(http.get(server.url("/api/v1/admin/audit?limit=100")).bearer_auth(&admin).send().await.expect("audit"))
            .await;
    let entries = audit["items"].as_array().expect("items");
    let find = |action: &str| {
        entries.iter().find(|e| e["action"] == action).unwrap_or_else(|| panic!("{action} audited: {entries:?}"))
    };
    let failed = find("login.failed");
    assert_eq!(failed["ip"], "127.0.0.1");
    assert!(failed["request_id"].is_string() && failed["details"]["email_hash"].is_string());
    assert!(!failed.to_string().contains("not it at all"), "no password in the audit log");
    assert!(
        entries.iter().any(|e| e["action"] == "login.succeeded" && e["actor_id"] == alice.id.as_str()),
        "alice's login audited"
    );
    let consent = find("consent.granted");
    assert_eq!(consent["target_id"], client.id.as_str());
    assert_eq!(find("refresh_token.reuse_detected")["actor_id"], client.id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_only_for_configured_origins() {
    let server =
        TestServer::start_with(Backend::Sqlite, |config| config.cors_origins = vec!["https://app.example".into()])
            .await;
    let http = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        http.request(reqwest::Method::OPTIONS, server.url("/api/v1/users/me"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "authorization")
            .send()
    };
    let allowed = preflight("https://app.example").await.expect("preflight");
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example");
    assert!(allowed.headers().get("access-control-allow-credentials").is_none());
    let refused = preflight("https://evil.example").await.expect("preflight");
    assert!(refused.headers().get("access-control-allow-origin").is_none());
    let token = http.get(server.url("/jwks.json")).header("Origin", "https://app.example").send().await.expect("jwks");
    assert_eq!(token.headers()["access-control-allow-origin"], "https://app.example");
    // Browser clients send DPoP proofs and read the server's nonces (RFC 9449).
    let dpop = http
        .request(reqwest::Method::OPTIONS, server.url("/token"))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "dpop")
        .send()
        .await
        .expect("preflight");
    let allowed_headers = dpop.headers()["access-control-allow-headers"].to_str().expect("ascii").to_ascii_lowercase();
    assert!(allowed_headers.contains("dpop"), "{allowed_headers}");
    let token = http.get(server.url("/jwks.json")).header("Origin", "https://app.example").send().await.expect("jwks");
    let exposed = token.headers()["access-control-expose-headers"].to_str().expect("ascii").to_ascii_lowercase();
    assert!(exposed.contains("dpop-nonce"), "{exposed}");

    // Without configured origins there are no CORS headers at all.
    let plain = TestServer::start(Backend::Sqlite).await;
    let response =
        http.get(plain.url("/jwks.json")).header("Origin", "https://app.example").send().await.expect("jwks");
    assert!(response.headers().get("access-control-allow-origin").is_none());
}
