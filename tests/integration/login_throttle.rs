//! Password guessing (SPEC §8, issue #8): after the free failures each further failure makes the
//! next attempt for that account wait, the wait doubling, then the account locks for the rest of
//! the window. The answers never tell an existing account from an unknown one. Defaults: two
//! free failures, waits of 1 s then 2 s, the lock at five failures within 900 s.

use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    waits_double_after_the_free_failures_then_the_account_locks,
    a_success_resets_the_waits,
    unknown_accounts_wait_and_lock_identically,
    the_login_page_waits_without_redirecting,
    parallel_attempts_cannot_skip_the_wait,
    waits_and_locks_are_audited_with_their_reason,
);

const ALICE: &str = "alice@example.com";
const WRONG: &str = "not the password!";

async fn login(server: &TestServer, email: &str, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("login")
}

/// What a caller learns from one attempt: status, `Retry-After` and the body without its request ID.
async fn answer(response: reqwest::Response) -> (u16, Option<i64>, Value) {
    let status = response.status().as_u16();
    let retry_after =
        response.headers().get("retry-after").map(|v| v.to_str().expect("header").parse().expect("seconds"));
    let mut body: Value = response.json().await.unwrap_or(Value::Null);
    if let Some(map) = body.as_object_mut() {
        map.remove("request_id");
    }
    (status, retry_after, body)
}

async fn attempt(server: &TestServer, email: &str, password: &str) -> (u16, Option<i64>) {
    let (status, retry_after, body) = answer(login(server, email, password).await).await;
    if status == 429 {
        assert_eq!(body["code"], "rate_limited", "{body}");
    }
    (status, retry_after)
}

async fn fail(server: &TestServer, email: &str) {
    assert_eq!(attempt(server, email, WRONG).await, (401, None), "a counted failure");
}

async fn waits_double_after_the_free_failures_then_the_account_locks(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user(ALICE, PASSWORD).await;
    let window = server.state.config.login_lock_window;

    // Two free failures and a third: no waiting in between.
    for _ in 0..3 {
        fail(&server, ALICE).await;
    }
    // The third makes the next attempt wait 1 s, even with the right password.
    assert_eq!(attempt(&server, ALICE, PASSWORD).await, (429, Some(1)));
    server.clock.advance(1);
    fail(&server, ALICE).await;
    // The fourth: 2 s.
    assert_eq!(attempt(&server, ALICE, PASSWORD).await, (429, Some(2)));
    server.clock.advance(1);
    assert_eq!(attempt(&server, ALICE, PASSWORD).await, (429, Some(1)), "still inside the wait");
    server.clock.advance(1);
    // The fifth reaches the limit: locked until the window that began at the first failure ends.
    fail(&server, ALICE).await;
    server.clock.advance(60);
    assert_eq!(attempt(&server, ALICE, PASSWORD).await, (429, Some(window - 63)), "waiting does not help");
    server.clock.advance(window - 64);
    assert_eq!(attempt(&server, ALICE, PASSWORD).await, (429, Some(1)));
    server.clock.advance(1);
    assert_eq!(attempt(&server, ALICE, PASSWORD).await.0, 200, "open when the window ends");

    // Another account was never affected.
    server.user("bob@example.com", PASSWORD).await;
    assert_eq!(attempt(&server, "bob@example.com", PASSWORD).await.0, 200);
}

async fn a_success_resets_the_waits(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user(ALICE, PASSWORD).await;
    for _ in 0..3 {
        fail(&server, ALICE).await;
    }
    server.clock.advance(1);
    fail(&server, ALICE).await;
    server.clock.advance(2);
    assert_eq!(attempt(&server, ALICE, PASSWORD).await.0, 200);
    // Counted from zero again: three failures without a wait, then 1 s (not 4 s).
    for _ in 0..3 {
        fail(&server, ALICE).await;
    }
    assert_eq!(attempt(&server, ALICE, PASSWORD).await, (429, Some(1)));
}

async fn unknown_accounts_wait_and_lock_identically(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user(ALICE, PASSWORD).await;
    // The same script for a real account (whose right password is tried) and an unknown one.
    let mut transcripts = Vec::new();
    for email in [ALICE, "ghost@example.com"] {
        let mut transcript = Vec::new();
        let steps: [(i64, &str); 9] = [
            (0, WRONG),
            (0, WRONG),
            (0, WRONG),
            (0, PASSWORD),
            (1, WRONG),
            (0, PASSWORD),
            (2, WRONG),
            (0, PASSWORD),
            (70, PASSWORD),
        ];
        for (wait, password) in steps {
            server.clock.advance(wait);
            transcript.push(answer(login(&server, email, password).await).await);
        }
        transcripts.push(transcript);
    }
    let statuses: Vec<u16> = transcripts[0].iter().map(|(status, _, _)| *status).collect();
    assert_eq!(statuses, [401, 401, 401, 429, 401, 429, 401, 429, 429]);
    assert_eq!(transcripts[0], transcripts[1], "same status, Retry-After and body for both");
}

async fn the_login_page_waits_without_redirecting(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user(ALICE, PASSWORD).await;
    let client = server.client(&["--name", "App", "--redirect-uri", REDIRECT]).await;
    let browser = Browser::new();
    let page_attempt = |password: &'static str| {
        let (server, browser, client) = (&server, &browser, &client);
        async move {
            let response = browser.get(&authorize_url(server, client, &pkce(), &[])).await;
            let next = location(&response);
            assert!(next.starts_with("/login"), "login page: {next}");
            let html = browser.get(&server.url(&next)).await.text().await.expect("html");
            let form = [
                ("csrf", form_field(&html, "csrf").expect("csrf")),
                ("request", form_field(&html, "request").expect("request")),
                ("email", ALICE.to_string()),
                ("password", password.to_string()),
            ];
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            browser.post_form(&server.url("/login"), &form).await
        }
    };
    for _ in 0..3 {
        assert_eq!(page_attempt(WRONG).await.status(), 401);
    }
    let refused = page_attempt(PASSWORD).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    assert!(refused.headers().get("location").is_none(), "never redirected to the client");
    let cookies: Vec<String> =
        refused.headers().get_all("set-cookie").iter().map(|c| c.to_str().unwrap_or("").to_string()).collect();
    assert!(cookies.iter().all(|c| !c.starts_with("oxidp_session=")), "no session: {cookies:?}");
    let html = refused.text().await.expect("html");
    assert!(html.contains("Too many failed attempts"), "the page says why: {html}");
    assert!(form_field(&html, "password").is_some() || html.contains("name=\"password\""), "the form again");

    // The API sees the same wait.
    assert_eq!(attempt(&server, ALICE, PASSWORD).await, (429, Some(1)));
    server.clock.advance(1);
    let accepted = page_attempt(PASSWORD).await;
    assert_eq!(accepted.status(), 303, "signed in after the wait");
}

async fn parallel_attempts_cannot_skip_the_wait(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user(ALICE, PASSWORD).await;
    // Twelve guesses at once: a check made before any was counted would let all of them through.
    let mut guesses = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let request = reqwest::Client::new()
            .post(server.url("/api/v1/auth/login"))
            .json(&json!({ "email": ALICE, "password": WRONG }));
        guesses.spawn(async move {
            let response = request.send().await.expect("login");
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().expect("h").parse::<i64>());
            (response.status().as_u16(), retry_after.map(|seconds| seconds.expect("seconds")))
        });
    }
    let answers = guesses.join_all().await;
    let checked = answers.iter().filter(|(status, _)| *status == 401).count();
    let refused = answers.iter().filter(|answer| **answer == (429, Some(1))).count();
    assert_eq!((checked, refused), (3, 9), "{answers:?}");
    // The refused ones were not counted: after 1 s the fourth attempt is admitted.
    server.clock.advance(1);
    assert_eq!(attempt(&server, ALICE, PASSWORD).await.0, 200);
}

async fn waits_and_locks_are_audited_with_their_reason(backend: Backend) {
    use oxidp::store::{AuditFilter, AuditStore};
    let server = TestServer::start(backend).await;
    server.user(ALICE, PASSWORD).await;
    for _ in 0..3 {
        fail(&server, ALICE).await;
    }
    assert_eq!(attempt(&server, ALICE, PASSWORD).await.0, 429);
    server.clock.advance(1);
    fail(&server, ALICE).await;
    server.clock.advance(2);
    fail(&server, ALICE).await;
    assert_eq!(attempt(&server, ALICE, PASSWORD).await.0, 429);

    let entries = |action: &str| {
        let filter = AuditFilter { action: Some(action.into()), limit: 100, ..AuditFilter::default() };
        let db = &server.state.db;
        async move { db.query_audit(&filter).await.expect("audit") }
    };
    let mut reasons: Vec<(i64, String)> = entries("login.locked")
        .await
        .iter()
        .map(|entry| {
            let details: Value = serde_json::from_str(&entry.details).expect("details");
            assert_eq!(details["method"], "pwd");
            (entry.at, details["reason"].as_str().expect("reason").to_string())
        })
        .collect();
    reasons.sort();
    let reasons: Vec<&str> = reasons.iter().map(|(_, reason)| reason.as_str()).collect();
    assert_eq!(reasons, ["delay", "lock"]);
    assert_eq!(entries("login.failed").await.len(), 5);
}
