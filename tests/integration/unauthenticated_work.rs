//! Unauthenticated work is bounded (issue 12, item 5), replayed over HTTP: registrations and
//! reset mails from many addresses, a burst of password hashes, and guessing the current
//! password through the password change.

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    registrations_and_mails_are_limited_per_address_and_per_email,
    a_full_password_gate_answers_503_with_retry_after,
    changing_the_password_is_throttled_and_audited_like_sign_in,
);

/// A client whose connections come from `127.0.0.<host>`.
fn from(host: u8) -> reqwest::Client {
    let ip: IpAddr = format!("127.0.0.{host}").parse().expect("ip");
    reqwest::Client::builder().local_address(ip).build().expect("client")
}

async fn post(client: &reqwest::Client, server: &TestServer, path: &str, body: &Value) -> reqwest::Response {
    client.post(server.url(&format!("/api/v1{path}"))).json(body).send().await.expect("POST")
}

fn mail_count(server: &TestServer, to: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(&server.state.config.mail_dir) else { return 0 };
    let first = format!("To: {to}");
    entries
        .filter_map(|entry| std::fs::read_to_string(entry.expect("entry").path()).ok())
        .filter(|text| text.lines().next() == Some(first.as_str()))
        .count()
}

async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let retry = response.headers().get("retry-after").map(|v| v.to_str().expect("ascii").to_string());
    assert!(retry.is_some_and(|seconds| seconds.parse::<i64>().is_ok_and(|s| s >= 1)), "Retry-After in seconds");
    let content_type = response.headers()["content-type"].to_str().expect("type").to_string();
    assert!(content_type.starts_with("application/problem+json"), "{content_type}");
    let body = json(response).await;
    assert_eq!(body["code"], code, "{body}");
    body
}

/// Three registrations per address and two per email (small limits for the test): the fourth
/// from one address is 429, another address still registers; reset requests beyond the email's
/// limit answer 202 as usual and mail nothing, whichever address they come from.
async fn registrations_and_mails_are_limited_per_address_and_per_email(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.mail_ip_limit = 3;
        config.mail_email_limit = 2;
    })
    .await;
    let attacker = from(2);
    for n in 0..3 {
        let body = json!({"email": format!("user{n}@example.com"), "password": PASSWORD});
        assert_eq!(post(&attacker, &server, "/auth/register", &body).await.status(), 201, "registration {n}");
    }
    let body = json!({"email": "user3@example.com", "password": PASSWORD});
    assert_problem(post(&attacker, &server, "/auth/register", &body).await, 429, "rate_limited").await;
    assert_eq!(mail_count(&server, "user3@example.com"), 0, "nothing made, nothing mailed");
    assert_eq!(post(&from(3), &server, "/auth/register", &body).await.status(), 201, "another address");

    // Per email: reset requests for one address from ever new addresses.
    let before = mail_count(&server, "user0@example.com");
    for host in 10..15 {
        let response =
            post(&from(host), &server, "/auth/forgot-password", &json!({"email": "user0@example.com"})).await;
        assert_eq!(response.status(), 202, "always 202");
    }
    assert_eq!(mail_count(&server, "user0@example.com"), before + 2, "two reset mails, then none");
    // Per address: one address asking for many emails (each under its own email's limit).
    let sender = from(20);
    let before: usize = (1..4).map(|n| mail_count(&server, &format!("user{n}@example.com"))).sum();
    for n in [1, 2, 3, 1, 2] {
        let email = json!({"email": format!("user{n}@example.com")});
        assert_eq!(post(&sender, &server, "/auth/forgot-password", &email).await.status(), 202);
    }
    let after: usize = (1..4).map(|n| mail_count(&server, &format!("user{n}@example.com"))).sum();
    assert_eq!(after - before, 3, "the address's three reset requests were mailed, the rest not");
    // Registration from a new address with an email over its limit: 429 too.
    let email = json!({"email": "user9@example.com", "password": PASSWORD});
    for host in 30..32 {
        let _ = post(&from(host), &server, "/auth/register", &email).await;
    }
    assert_problem(post(&from(33), &server, "/auth/register", &email).await, 429, "rate_limited").await;
}

/// One hash at a time and no queue: a burst of registrations and logins from many addresses
/// gets 503 with `Retry-After` (problem JSON) for what does not fit, never a 500, never a wait
/// without end; the page sign-in gets the 503 error page.
async fn a_full_password_gate_answers_503_with_retry_after(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.password_hash_concurrency = 1;
        config.password_hash_queue = 0;
    })
    .await;
    server.user("alice@example.com", PASSWORD).await;
    // Logins of distinct accounts (parallel attempts on one account count against its limit).
    for n in (1..24u8).step_by(2) {
        server.user(&format!("burst{n}@example.com"), PASSWORD).await;
    }
    let mut tasks = Vec::new();
    for n in 0..24u8 {
        let (client, url) = (from(40 + n), server.url("/api/v1"));
        tasks.push(tokio::spawn(async move {
            let (path, body) = if n % 2 == 0 {
                ("/auth/register", json!({"email": format!("burst{n}@example.com"), "password": PASSWORD}))
            } else {
                ("/auth/login", json!({"email": format!("burst{n}@example.com"), "password": PASSWORD}))
            };
            client.post(format!("{url}{path}")).json(&body).send().await.expect("POST")
        }));
    }
    let mut busy = 0;
    for task in tasks {
        let response = task.await.expect("join");
        match response.status().as_u16() {
            200 | 201 => {}
            503 => {
                busy += 1;
                assert_problem(response, 503, "busy").await;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(busy > 0, "a full gate refuses");
    // Afterwards the gate is free again.
    let body = json!({"email": "alice@example.com", "password": PASSWORD});
    assert_eq!(post(&from(99), &server, "/auth/login", &body).await.status(), 200);

    // The sign-in page while the gate's one slot is taken: the 503 error page, with Retry-After.
    let client = server.client(&["--name", "app", "--redirect-uri", REDIRECT]).await;
    let browser = Browser::new();
    let response = browser.get(&authorize_url(&server, &client, &pkce(), &[])).await;
    assert_eq!(response.status(), 302);
    let html = browser.get(&server.url(&location(&response))).await.text().await.expect("login page");
    let (csrf, request) = (form_field(&html, "csrf").expect("csrf"), form_field(&html, "request").expect("request"));
    let (release, held) = std::sync::mpsc::channel::<()>();
    let state = server.state.clone();
    let holder = tokio::spawn(async move { state.password_gate.run(move || held.recv().is_ok()).await });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let form = [("csrf", csrf.as_str()), ("request", &request), ("email", "alice@example.com"), ("password", PASSWORD)];
    let page = browser.post_form(&server.url("/login"), &form).await;
    assert_eq!(page.status(), 503);
    assert!(page.headers().contains_key("retry-after"));
    assert!(page.headers()["content-type"].to_str().expect("type").starts_with("text/html"));
    release.send(()).expect("release the slot");
    assert!(holder.await.expect("join").expect("ran"));
}

/// Guessing the current password through `POST /users/me/password` counts against the
/// sign-in's limits for the account: after the free failures the next attempt waits (429 with
/// `Retry-After`), the sign-in of the account waits too, and the failures are audited.
async fn changing_the_password_is_throttled_and_audited_like_sign_in(backend: Backend) {
    use oxidp::store::{AuditFilter, AuditStore};
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let token = api_token(&server, "alice@example.com").await;
    let change = |current: &'static str| {
        let (url, token) = (server.url("/api/v1/users/me/password"), token.clone());
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&json!({"current_password": current, "new_password": "a brand new passphrase"}))
                .send()
                .await
                .expect("change password")
        }
    };
    for _ in 0..3 {
        assert_eq!(change("a wrong guess!!").await.status(), 400, "a wrong current password");
    }
    assert_problem(change("another wrong guess").await, 429, "rate_limited").await;
    // Even the right password waits, and so does the sign-in: the counters are the sign-in's.
    assert_eq!(change(PASSWORD).await.status(), 429);
    let login = json!({"email": "alice@example.com", "password": PASSWORD});
    assert_eq!(post(&reqwest::Client::new(), &server, "/auth/login", &login).await.status(), 429);

    let filter = AuditFilter { action: Some("login.failed".into()), limit: 100, ..AuditFilter::default() };
    let failed = server.state.db.query_audit(&filter).await.expect("audit");
    let by_change = failed
        .iter()
        .filter(|entry| serde_json::from_str::<Value>(&entry.details).expect("details")["method"] == "password_change")
        .count();
    assert_eq!(by_change, 3, "each failed check is audited");
    // After the wait the right password changes it (and that is audited as before).
    server.clock.advance(1);
    assert_eq!(change(PASSWORD).await.status(), 204);
    let filter = AuditFilter { action: Some("user.password_change".into()), limit: 10, ..AuditFilter::default() };
    assert_eq!(server.state.db.query_audit(&filter).await.expect("audit").len(), 1);
}
