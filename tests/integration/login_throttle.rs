//! Password guessing (SPEC §8, issue #8): after the free failures each further failure makes the
//! next attempt for that account wait, the wait doubling, then the account locks for the rest of
//! the window. The answers never tell an existing account from an unknown one. Defaults: two
//! free failures, waits of 1 s then 2 s, the lock at five failures within 900 s. The limits hold
//! alike for the JSON login, the login page and across instances; per IP only the lock. Linking an
//! upstream identity with a password waits the same way (federation/linking.rs).

use serde_json::{Value, json};

use crate::account_api::{browser_login, login_tokens, problem, third_party_client_flags, without_request_id};
use crate::browser::{
    BOB, alert, authorize_with, expect_code_redirect, expect_consent_page, expect_login_page, expect_page, first_party,
    log_in, open_form, post_login, set_cookie,
};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    waits_double_after_the_free_failures_then_the_account_locks,
    a_success_resets_the_waits,
    unknown_accounts_wait_and_lock_identically,
    the_login_page_waits_without_redirecting,
    parallel_attempts_cannot_skip_the_wait,
    waits_and_locks_are_audited_with_their_reason,
    login_locks_the_account_after_repeated_failures,
    login_lockout_is_shared_with_the_login_page,
    wrong_password_and_account_lock_do_not_reveal_accounts,
    failed_logins_are_limited_per_ip,
    lockouts_are_audited_alike_for_known_and_unknown_accounts,
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

// ---------------------------------------------------------------------------------------------
// The lock on the JSON API, shared with the login page

/// One password attempt on the HTML login page, from a fresh /authorize request.
async fn login_page_attempt(
    server: &TestServer,
    browser: &Browser,
    client: &TestClient,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let pkce = pkce();
    let response = browser.get(&authorize_url(server, client, &pkce, &[])).await;
    assert_eq!(response.status(), 302);
    let next = location(&response);
    assert!(next.starts_with("/login"), "login page: {next}");
    let html = browser.get(&server.url(&next)).await.text().await.expect("html");
    let csrf = form_field(&html, "csrf").expect("csrf");
    let request = form_field(&html, "request").expect("request");
    browser
        .post_form(
            &server.url("/login"),
            &[("csrf", &csrf), ("request", &request), ("email", email), ("password", password)],
        )
        .await
}

fn retry_after(response: &reqwest::Response) -> i64 {
    response
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .expect("header")
        .parse()
        .expect("Retry-After in seconds")
}

async fn login_locks_the_account_after_repeated_failures(backend: Backend) {
    // The lock alone; the waits that lead up to it are tested above.
    let server = TestServer::start_with(backend, |c| c.login_delay = 0).await;
    server.user("alice@example.com", PASSWORD).await;
    server.user("bob@example.com", PASSWORD).await;
    let limit = server.state.config.login_account_limit;
    let window = server.state.config.login_lock_window;
    assert_eq!(limit, 5, "the default account limit");

    for attempt in 0..limit {
        let body = problem(login(&server, "alice@example.com", "wrong password!").await, 401).await;
        assert_eq!(body["code"], "invalid_credentials", "attempt {attempt}");
    }
    let response = login(&server, "alice@example.com", PASSWORD).await;
    let seconds = retry_after(&response);
    assert!((1..=window).contains(&seconds), "Retry-After {seconds}");
    let locked = problem(response, 429).await;
    assert_eq!(locked["code"], "rate_limited");

    // The lock is per account: another account still logs in.
    login_tokens(&server, "bob@example.com", PASSWORD).await;

    // An unknown email is locked the same way, so the lock does not reveal which accounts exist.
    for _ in 0..limit {
        problem(login(&server, "ghost@example.com", "wrong password!").await, 401).await;
    }
    let ghost = problem(login(&server, "ghost@example.com", PASSWORD).await, 429).await;
    assert_eq!(without_request_id(ghost), without_request_id(locked));

    // Still locked just before the window ends, open after it.
    server.clock.advance(window - 5);
    problem(login(&server, "alice@example.com", PASSWORD).await, 429).await;
    server.clock.advance(6);
    login_tokens(&server, "alice@example.com", PASSWORD).await;
}

async fn login_lockout_is_shared_with_the_login_page(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.login_delay = 0).await;
    server.user("alice@example.com", PASSWORD).await;
    server.user("bob@example.com", PASSWORD).await;
    server.user("carol@example.com", PASSWORD).await;
    let client = server.client(&third_party_client_flags()).await;
    let limit = server.state.config.login_account_limit;

    // Failures through the API lock the login page.
    for _ in 0..limit {
        problem(login(&server, "alice@example.com", "wrong password!").await, 401).await;
    }
    let browser = Browser::new();
    let response = login_page_attempt(&server, &browser, &client, "alice@example.com", PASSWORD).await;
    assert_eq!(response.status(), 429, "the page refuses the right password");
    assert!(retry_after(&response) >= 1);
    let cookies: Vec<_> = response.headers().get_all("set-cookie").iter().map(|c| c.to_str().unwrap_or("")).collect();
    assert!(cookies.iter().all(|c| !c.starts_with("oxidp_session=")), "no session is started: {cookies:?}");

    // Failures on the page lock the API.
    let browser = Browser::new();
    for _ in 0..limit {
        let response = login_page_attempt(&server, &browser, &client, "bob@example.com", "wrong password!").await;
        assert_eq!(response.status(), 401);
    }
    let response = login(&server, "bob@example.com", PASSWORD).await;
    assert!(retry_after(&response) >= 1);
    assert_eq!(problem(response, 429).await["code"], "rate_limited");

    // An account without failures is unaffected on both.
    browser_login(&server, &client, "carol@example.com").await;
    login_tokens(&server, "carol@example.com", PASSWORD).await;
}

// ---------------------------------------------------------------------------------------------
// The lock on the login page, and the limit per IP

async fn wrong_password_and_account_lock_do_not_reveal_accounts(backend: Backend) {
    // The lock alone; the waits that lead up to it are tested above.
    let server = TestServer::start_with(backend, |c| c.login_delay = 0).await;
    server.user(ALICE, PASSWORD).await;
    let client = server.client(&["--name", "Third Party App", "--redirect-uri", REDIRECT]).await;
    server.user(BOB, PASSWORD).await;
    assert_eq!(server.state.config.login_account_limit, 5);
    let browser = Browser::new();
    let login = expect_login_page(&browser.get(&authorize_with(&server, &client.id, &pkce(), &[])).await);
    let (mut csrf, request) = open_form(&server, &browser, &login).await;

    // Five wrong passwords: 401 with the form again, no session.
    let mut wrong_message = String::new();
    for _ in 0..5 {
        let response = post_login(&server, &browser, &csrf, &request, ALICE, "wrong password!").await;
        assert!(set_cookie(&response, "oxidp_session").is_none());
        let html = expect_page(response, 401).await;
        csrf = form_field(&html, "csrf").expect("the form again");
        assert_eq!(form_field(&html, "request").as_deref(), Some(request.as_str()));
        wrong_message = alert(&html);
    }
    // Now even the right password is refused.
    let response = post_login(&server, &browser, &csrf, &request, ALICE, PASSWORD).await;
    assert!(response.headers().get("retry-after").is_some(), "429 carries Retry-After");
    assert!(set_cookie(&response, "oxidp_session").is_none());
    let locked_message = alert(&expect_page(response, 429).await);
    assert_ne!(locked_message, wrong_message);

    // An email nobody has: the same answers after as many failures.
    for _ in 0..5 {
        let html = expect_page(
            post_login(&server, &browser, &csrf, &request, "ghost@example.com", "wrong password!").await,
            401,
        )
        .await;
        assert_eq!(alert(&html), wrong_message, "an unknown email looks like a wrong password");
    }
    let html =
        expect_page(post_login(&server, &browser, &csrf, &request, "ghost@example.com", PASSWORD).await, 429).await;
    assert_eq!(alert(&html), locked_message, "an unknown email locks like a real one");

    // The lock is per account: bob signs in from the same address.
    let response = post_login(&server, &browser, &csrf, &request, BOB, PASSWORD).await;
    assert!(set_cookie(&response, "oxidp_session").is_some());
    expect_consent_page(&response);

    // Still locked a little before the window ends; open after it.
    server.clock.advance(880);
    let login = expect_login_page(
        &browser.get(&authorize_with(&server, &client.id, &pkce(), &[("prompt", Some("login"))])).await,
    );
    let response = log_in(&server, &browser, &login, ALICE, PASSWORD).await;
    expect_page(response, 429).await;
    server.clock.advance(21);
    let login = expect_login_page(
        &browser.get(&authorize_with(&server, &client.id, &pkce(), &[("prompt", Some("login"))])).await,
    );
    let response = log_in(&server, &browser, &login, ALICE, PASSWORD).await;
    assert!(set_cookie(&response, "oxidp_session").is_some());
    expect_consent_page(&response);
}

async fn failed_logins_are_limited_per_ip(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.login_ip_limit = 3).await;
    for email in [ALICE, BOB, "carol@example.com"] {
        server.user(email, PASSWORD).await;
    }
    let client = first_party(&server).await;
    let browser = Browser::new();
    let login = expect_login_page(&browser.get(&authorize_with(&server, &client.id, &pkce(), &[])).await);
    let (csrf, request) = open_form(&server, &browser, &login).await;
    // One failure each for three emails: no account reaches its own limit.
    for email in [ALICE, BOB, "nobody@example.com"] {
        expect_page(post_login(&server, &browser, &csrf, &request, email, "wrong password!").await, 401).await;
    }
    let locked = alert(
        &expect_page(post_login(&server, &browser, &csrf, &request, "carol@example.com", PASSWORD).await, 429).await,
    );
    let unknown = alert(
        &expect_page(post_login(&server, &browser, &csrf, &request, "dave@example.com", PASSWORD).await, 429).await,
    );
    assert_eq!(locked, unknown, "the IP lock does not reveal which accounts exist");
    // Another browser on the same address is locked too.
    let other = Browser::new();
    let other_login = expect_login_page(&other.get(&authorize_with(&server, &client.id, &pkce(), &[])).await);
    expect_page(log_in(&server, &other, &other_login, "carol@example.com", PASSWORD).await, 429).await;

    server.clock.advance(server.state.config.login_lock_window + 1);
    let response = post_login(&server, &browser, &csrf, &request, "carol@example.com", PASSWORD).await;
    assert!(set_cookie(&response, "oxidp_session").is_some());
    expect_code_redirect(&server, &response, REDIRECT, "state-123");
}

// ---------------------------------------------------------------------------------------------
// Credential stuffing: locks are audited and look the same for accounts that do not exist

async fn lockouts_are_audited_alike_for_known_and_unknown_accounts(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.login_delay = 0).await;
    server.user(ALICE, PASSWORD).await;
    let limit = server.state.config.login_account_limit;
    for email in [ALICE, "ghost@example.com"] {
        for _ in 0..limit {
            let response =
                api_post(&server, "/api/v1/auth/login", None, &json!({ "email": email, "password": "wrong guess!" }))
                    .await;
            assert_eq!(response.status(), 401);
        }
        let response =
            api_post(&server, "/api/v1/auth/login", None, &json!({ "email": email, "password": PASSWORD })).await;
        assert_eq!(response.status(), 429, "{email} is locked");
        assert!(response.headers().get("retry-after").is_some());
    }
    use oxidp::store::{AuditFilter, AuditStore};
    let entries = |action: &str| {
        let filter = AuditFilter { action: Some(action.into()), limit: 100, ..AuditFilter::default() };
        let db = &server.state.db;
        async move { db.query_audit(&filter).await.expect("audit") }
    };
    let locked = entries("login.locked").await;
    assert_eq!(locked.len(), 2, "one audited lock each");
    assert_eq!(entries("login.failed").await.len() as i64, 2 * limit);
    let shape = |entry: &oxidp::store::AuditEntry| {
        let details: Value = serde_json::from_str(&entry.details).expect("details JSON");
        let keys: Vec<String> = details.as_object().expect("object").keys().cloned().collect();
        (entry.actor_type.clone(), entry.actor_id.clone(), entry.target_type.clone(), entry.target_id.clone(), keys)
    };
    assert_eq!(shape(&locked[0]), shape(&locked[1]), "the audit does not tell a real account from a ghost");
    for entry in &locked {
        assert!(!entry.details.contains(PASSWORD) && !entry.details.contains("ghost@example.com"));
        assert!(!entry.details.contains(ALICE), "the email is recorded hashed");
    }
}

// ---------------------------------------------------------------------------------------------
// Across instances (PostgreSQL and Redis)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_waits_and_limits_count_across_instances() {
    let (a, b) = pair().await;
    a.user("alice@example.com", PASSWORD).await;
    let login = |server: &TestServer, password: &str| {
        let url = server.url("/api/v1/auth/login");
        let body = json!({ "email": "alice@example.com", "password": password });
        async move {
            let response = reqwest::Client::new().post(url).json(&body).send().await.expect("login");
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().expect("header").to_string());
            (response.status().as_u16(), retry_after)
        }
    };
    let wrong = "wrong password!!";
    for server in [&a, &b, &a] {
        assert_eq!(login(server, wrong).await, (401, None));
    }
    // The wait the third failure set (at A) holds at B, and the next one's at A.
    assert_eq!(login(&b, PASSWORD).await, (429, Some("1".into())));
    a.clock.advance(1);
    assert_eq!(login(&b, wrong).await, (401, None));
    assert_eq!(login(&a, PASSWORD).await, (429, Some("2".into())));
    a.clock.advance(2);
    assert_eq!(login(&a, wrong).await, (401, None));
    // Five failures across both instances lock the account at both.
    let window = a.state.config.login_lock_window;
    assert_eq!(login(&a, PASSWORD).await, (429, Some((window - 3).to_string())));
    assert_eq!(login(&b, PASSWORD).await, (429, Some((window - 3).to_string())));
}
