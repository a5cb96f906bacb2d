//! Faults: Redis going away and coming back. Security checks fail closed (a login is refused,
//! never let through unlimited), readiness reports Redis, and service returns by itself.

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
    assert_eq!(api_login(&server).await.status(), 200);
    let ready = json(reqwest::get(server.url("/readyz")).await.expect("readyz")).await;
    assert_eq!(ready["redis"], "ok");

    redis.stop();
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
    let token = token_request(&server, &client, &[("grant_type", "client_credentials")]).await;
    assert!(token.status() == 503 || token.status() == 400, "never a 5xx other than 503: {}", token.status());

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
