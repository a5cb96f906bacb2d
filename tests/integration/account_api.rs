//! The account API (`/api/v1/auth/*`, `/api/v1/users/me/*`) over real HTTP: registration,
//! first-party login and its lockout, refresh and logout, email verification, password recovery,
//! profile, password change and sessions. Every failure must be RFC 9457 problem JSON.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    register_creates_an_unverified_user_and_mails_a_code,
    register_enforces_the_password_policy,
    register_refuses_duplicate_and_invalid_emails,
    register_refuses_malformed_requests,
    register_is_forbidden_when_closed,
    login_issues_first_party_api_tokens,
    login_failures_look_the_same_for_unknown_emails,
    login_locks_the_account_after_repeated_failures,
    login_lockout_is_shared_with_the_login_page,
    login_is_forbidden_when_switched_off,
    refresh_rotates_and_refuses_old_or_foreign_tokens,
    logout_revokes_the_token_family,
    verify_email_with_the_mailed_code,
    forgot_password_answers_the_same_for_unknown_emails,
    reset_password_with_the_mailed_code_ends_sessions_and_tokens,
    reset_password_refuses_expired_codes_and_weak_passwords,
    a_refused_weak_password_keeps_the_reset_code,
    me_requires_an_account_token_for_the_api,
    patch_me_updates_the_profile_and_the_claims,
    change_password_ends_other_sessions_and_tokens,
    sessions_are_listed_paginated_and_revocable,
);

const API: &str = "/api/v1";
const NEW_PASSWORD: &str = "a brand new passphrase 42";
const VERIFY_SUBJECT: &str = "Confirm your email address";
const RESET_SUBJECT: &str = "Reset your password";

// ---------------------------------------------------------------------------------------------
// Helpers

fn api_url(server: &TestServer, path: &str) -> String {
    server.url(&format!("{API}{path}"))
}

async fn post_json(server: &TestServer, path: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new().post(api_url(server, path)).json(body).send().await.expect("POST")
}

/// A request with an arbitrary body and content type (or none).
async fn post_raw(server: &TestServer, path: &str, content_type: Option<&str>, body: String) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(api_url(server, path)).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    request.send().await.expect("POST")
}

async fn get_with(server: &TestServer, path: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new().get(api_url(server, path)).bearer_auth(token).send().await.expect("GET")
}

async fn get_me(server: &TestServer, token: &str) -> reqwest::Response {
    get_with(server, "/users/me", token).await
}

async fn patch_me(server: &TestServer, token: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .patch(api_url(server, "/users/me"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("PATCH")
}

async fn post_with(server: &TestServer, path: &str, token: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new().post(api_url(server, path)).bearer_auth(token).json(body).send().await.expect("POST")
}

async fn delete_with(server: &TestServer, path: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new().delete(api_url(server, path)).bearer_auth(token).send().await.expect("DELETE")
}

async fn register(server: &TestServer, email: &str, password: &str) -> reqwest::Response {
    post_json(server, "/auth/register", &json!({"email": email, "password": password})).await
}

async fn login(server: &TestServer, email: &str, password: &str) -> reqwest::Response {
    post_json(server, "/auth/login", &json!({"email": email, "password": password})).await
}

async fn refresh(server: &TestServer, refresh_token: &str) -> reqwest::Response {
    post_json(server, "/auth/refresh", &json!({"refresh_token": refresh_token})).await
}

async fn logout(server: &TestServer, refresh_token: &str) -> reqwest::Response {
    post_json(server, "/auth/logout", &json!({"refresh_token": refresh_token})).await
}

async fn verify_email(server: &TestServer, token: &str) -> reqwest::Response {
    post_json(server, "/auth/verify-email", &json!({"token": token})).await
}

async fn forgot_password(server: &TestServer, email: &str) -> reqwest::Response {
    post_json(server, "/auth/forgot-password", &json!({"email": email})).await
}

async fn reset_password(server: &TestServer, token: &str, password: &str) -> reqwest::Response {
    post_json(server, "/auth/reset-password", &json!({"token": token, "password": password})).await
}

/// A successful API login's token response.
async fn login_tokens(server: &TestServer, email: &str, password: &str) -> Tokens {
    let response = login(server, email, password).await;
    let status = response.status();
    let body = response.text().await.expect("body");
    assert_eq!(status, 200, "login of {email}: {body}");
    Tokens::from(serde_json::from_str::<Value>(&body).expect("token JSON"))
}

async fn refreshed_tokens(server: &TestServer, refresh_token: &str) -> Tokens {
    let response = refresh(server, refresh_token).await;
    let status = response.status();
    let body = response.text().await.expect("body");
    assert_eq!(status, 200, "refresh: {body}");
    Tokens::from(serde_json::from_str::<Value>(&body).expect("token JSON"))
}

struct Tokens {
    access: String,
    refresh: String,
    body: Value,
}

impl From<Value> for Tokens {
    fn from(body: Value) -> Tokens {
        Tokens {
            access: body["access_token"].as_str().expect("access_token").to_string(),
            refresh: body["refresh_token"].as_str().expect("refresh_token").to_string(),
            body,
        }
    }
}

fn scope_set(scope: &Value) -> BTreeSet<String> {
    scope.as_str().expect("scope string").split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect()
}

fn set_of(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Checks an RFC 9457 answer with the given status and returns its body.
async fn problem(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "status; body: {text}");
    check_problem(&headers, &text, status)
}

fn check_problem(headers: &reqwest::header::HeaderMap, text: &str, status: u16) -> Value {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(content_type.starts_with("application/problem+json"), "content type {content_type:?}; body {text}");
    let body: Value = serde_json::from_str(text).unwrap_or_else(|_| panic!("problem JSON: {text}"));
    assert_eq!(body["status"], status, "{body}");
    for member in ["type", "title", "code", "request_id"] {
        assert!(body[member].as_str().is_some_and(|v| !v.is_empty()), "problem member {member}: {body}");
    }
    let header_id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).expect("X-Request-Id header");
    assert_eq!(body["request_id"], header_id, "request_id is the request's ID");
    body
}

fn assert_field(problem: &Value, code: &str, field: &str) {
    assert_eq!(problem["code"], code, "{problem}");
    assert_eq!(problem["field"], field, "{problem}");
    assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()), "{problem}");
}

/// The problem body without its per-request ID, to compare two answers.
fn without_request_id(mut problem: Value) -> Value {
    problem.as_object_mut().expect("object").remove("request_id");
    problem
}

/// Every mail written to `to`, oldest first.
fn mails_to(server: &TestServer, to: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(&server.state.config.mail_dir) else { return Vec::new() };
    let mut files: Vec<_> = entries
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    files.sort();
    let first_line = format!("To: {to}");
    files
        .into_iter()
        .map(|path| std::fs::read_to_string(path).expect("mail file"))
        .filter(|text| text.lines().next() == Some(first_line.as_str()))
        .collect()
}

fn mails_with_subject(server: &TestServer, to: &str, subject: &str) -> Vec<String> {
    let header = format!("Subject: {subject}");
    mails_to(server, to).into_iter().filter(|mail| mail.lines().any(|line| line == header)).collect()
}

/// The code on its own line in a mail's body.
fn code_in(mail: &str) -> String {
    let (_, body) = mail.split_once("\n\n").expect("headers, blank line, body");
    body.lines()
        .map(str::trim)
        .find(|line| line.len() >= 20 && line.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or_else(|| panic!("no code in mail: {mail}"))
        .to_string()
}

fn latest_code(server: &TestServer, to: &str, subject: &str) -> String {
    let mails = mails_with_subject(server, to, subject);
    code_in(mails.last().unwrap_or_else(|| panic!("no mail '{subject}' to {to}")))
}

/// Asks for a reset code and returns it.
async fn reset_code(server: &TestServer, email: &str) -> String {
    let before = mails_with_subject(server, email, RESET_SUBJECT).len();
    assert_eq!(forgot_password(server, email).await.status(), 202);
    let mails = mails_with_subject(server, email, RESET_SUBJECT);
    assert_eq!(mails.len(), before + 1, "one reset mail per request");
    code_in(mails.last().expect("mail"))
}

fn third_party_client_flags() -> [&'static str; 4] {
    ["--name", "x", "--redirect-uri", REDIRECT]
}

/// A browser that signed in as `email` through the login page (a browser session exists).
async fn browser_login(server: &TestServer, client: &TestClient, email: &str) -> Browser {
    let browser = Browser::new();
    let pkce = pkce();
    let redirect =
        run_browser_flow(server, &browser, &authorize_url(server, client, &pkce, &[]), email, PASSWORD).await;
    assert!(query_of(&redirect).contains_key("code"), "signed in: {redirect}");
    browser
}

/// `prompt=none` in a browser: the client's redirect parameters (a code while the session lives).
async fn silent_authorize(server: &TestServer, browser: &Browser, client: &TestClient) -> HashMap<String, String> {
    let pkce = pkce();
    let response = browser.get(&authorize_url(server, client, &pkce, &[("prompt", "none")])).await;
    assert!([302, 303].contains(&response.status().as_u16()), "authorize redirects: {}", response.status());
    let redirect = location(&response);
    assert!(redirect.starts_with(REDIRECT), "back to the client: {redirect}");
    query_of(&redirect)
}

fn assert_session_alive(params: &HashMap<String, String>) {
    assert!(params.contains_key("code"), "the session still works: {params:?}");
}

fn assert_session_gone(params: &HashMap<String, String>) {
    assert_eq!(params.get("error").map(String::as_str), Some("login_required"), "{params:?}");
    assert!(!params.contains_key("code"));
}

/// Tokens of a third-party client from the full browser flow.
async fn code_flow_tokens(
    server: &TestServer,
    browser: &Browser,
    client: &TestClient,
    email: &str,
    extra: &[(&str, &str)],
) -> Value {
    let pkce = pkce();
    let redirect =
        run_browser_flow(server, browser, &authorize_url(server, client, &pkce, extra), email, PASSWORD).await;
    let code = query_of(&redirect).get("code").unwrap_or_else(|| panic!("no code in {redirect}")).clone();
    let response = redeem(server, client, &code, &pkce.verifier).await;
    assert_eq!(response.status(), 200);
    json(response).await
}

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

// ---------------------------------------------------------------------------------------------
// Registration

async fn register_creates_an_unverified_user_and_mails_a_code(backend: Backend) {
    let server = TestServer::start(backend).await;
    assert!(mails_to(&server, "dora@example.com").is_empty());
    let response = post_json(
        &server,
        "/auth/register",
        &json!({"email": "dora@example.com", "password": PASSWORD, "name": "Dora Explorer"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    assert!(response.headers()["content-type"].to_str().expect("ct").starts_with("application/json"));
    let user = json(response).await;
    assert_eq!(user["email"], "dora@example.com");
    assert_eq!(user["email_verified"], false);
    assert_eq!(user["name"], "Dora Explorer");
    assert_eq!(user["role"], "user");
    assert_eq!(user["status"], "active");
    assert!(user["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(user["sub"].as_str().is_some_and(|sub| !sub.is_empty()));
    let text = user.to_string();
    assert!(!text.contains("password") && !text.contains(PASSWORD), "no password material: {text}");

    let mails = mails_with_subject(&server, "dora@example.com", VERIFY_SUBJECT);
    assert_eq!(mails.len(), 1, "one verification mail");
    assert_eq!(mails_to(&server, "dora@example.com").len(), 1, "and nothing else");
    let code = code_in(&mails[0]);
    assert!(!text.contains(&code), "the code is only in the mail");

    // The new account logs in at once and is the one the answer described.
    let tokens = login_tokens(&server, "dora@example.com", PASSWORD).await;
    let claims = server.verify_jwt(&tokens.access, &format!("{}/api", server.base), "at+jwt").await;
    assert_eq!(claims["sub"], user["sub"]);
    let me = json(get_me(&server, &tokens.access).await).await;
    assert_eq!(me["id"], user["id"]);
    assert_eq!(me["email_verified"], false);
}

async fn register_enforces_the_password_policy(backend: Backend) {
    let server = TestServer::start(backend).await;
    let too_long = "a".repeat(257);
    let much_too_long = "b".repeat(1000);
    let weak = [
        "Sh0rt-pw!",       // 9 characters
        too_long.as_str(), // 257 characters
        much_too_long.as_str(),
        "password123",           // a common password
        "PASSWORD123",           // common, whatever the case
        "my-Erin-password-2024", // contains the email's local part
        "",
    ];
    for password in weak {
        let body = problem(register(&server, "erin@example.com", password).await, 400).await;
        assert_field(&body, "invalid_field", "password");
    }
    assert!(mails_to(&server, "erin@example.com").is_empty(), "no mail for refused registrations");
    assert_eq!(login(&server, "erin@example.com", "password123").await.status(), 401, "no account was created");

    // The limits themselves are allowed: 10 and 256 characters.
    assert_eq!(register(&server, "ten@example.com", "zq7!vx2#mw").await.status(), 201);
    assert_eq!(register(&server, "long@example.com", &"c".repeat(256)).await.status(), 201);
    assert_eq!(register(&server, "erin@example.com", PASSWORD).await.status(), 201);
}

async fn register_refuses_duplicate_and_invalid_emails(backend: Backend) {
    // More attempts per email than the default limit (unauthenticated_work.rs tests the limit).
    let server = TestServer::start_with(backend, |config| config.mail_email_limit = 10).await;
    server.user("alice@example.com", PASSWORD).await;
    let body = problem(register(&server, "Alice@Example.COM", PASSWORD).await, 409).await;
    assert_eq!(body["code"], "email_taken");

    assert_eq!(register(&server, "frank@example.com", PASSWORD).await.status(), 201);
    for duplicate in ["FRANK@example.com", "frank@EXAMPLE.com", " frank@example.com "] {
        let body = problem(register(&server, duplicate, NEW_PASSWORD).await, 409).await;
        assert_eq!(body["code"], "email_taken");
    }
    assert_eq!(mails_to(&server, "frank@example.com").len(), 1, "only the first registration mailed");
    // The first registration's password still holds.
    assert_eq!(login(&server, "frank@example.com", PASSWORD).await.status(), 200);

    for invalid in
        ["not-an-email", "frank@", "@example.com", "frank@localhost", "fr ank@example.com", "gus@@example.com", ""]
    {
        let body = problem(register(&server, invalid, PASSWORD).await, 400).await;
        assert_field(&body, "invalid_field", "email");
    }
}

async fn register_refuses_malformed_requests(backend: Backend) {
    let server = TestServer::start(backend).await;
    let valid = json!({"email": "gina@example.com", "password": PASSWORD}).to_string();

    // Malformed JSON, with the caller's request ID carried into the problem.
    let response = reqwest::Client::new()
        .post(api_url(&server, "/auth/register"))
        .header("content-type", "application/json")
        .header("x-request-id", "test-request-42")
        .body(r#"{"email": "gina@example.com", "password":"#)
        .send()
        .await
        .expect("POST");
    let body = problem(response, 400).await;
    assert_eq!(body["request_id"], "test-request-42");

    // An unknown field is refused, not ignored.
    let unknown = json!({"email": "gina@example.com", "password": PASSWORD, "role": "admin"});
    problem(post_json(&server, "/auth/register", &unknown).await, 400).await;
    // A missing field and a wrongly typed one.
    problem(post_json(&server, "/auth/register", &json!({"email": "gina@example.com"})).await, 400).await;
    problem(post_json(&server, "/auth/register", &json!({"email": 5, "password": PASSWORD})).await, 400).await;
    problem(post_json(&server, "/auth/register", &json!(["gina@example.com", PASSWORD])).await, 400).await;

    // Bodies over 64 KiB.
    let huge = json!({"email": "gina@example.com", "password": PASSWORD, "name": "n".repeat(70 * 1024)});
    let body = problem(post_json(&server, "/auth/register", &huge).await, 413).await;
    assert_eq!(body["code"], "payload_too_large");

    // Not JSON by its content type, or no content type at all.
    for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        problem(post_raw(&server, "/auth/register", content_type, valid.clone()).await, 415).await;
    }

    // None of that created the account or sent mail; a proper request does.
    assert!(mails_to(&server, "gina@example.com").is_empty());
    assert_eq!(post_raw(&server, "/auth/register", Some("application/json"), valid).await.status(), 201);
}

async fn register_is_forbidden_when_closed(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.registration = oxidp::config::Registration::Closed).await;
    server.user("alice@example.com", PASSWORD).await;
    let body = problem(register(&server, "hank@example.com", PASSWORD).await, 403).await;
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    assert!(mails_to(&server, "hank@example.com").is_empty());
    assert_eq!(login(&server, "hank@example.com", PASSWORD).await.status(), 401, "no account was created");
    // Only registration is closed: existing users still log in.
    login_tokens(&server, "alice@example.com", PASSWORD).await;
}

// ---------------------------------------------------------------------------------------------
// First-party login

async fn login_issues_first_party_api_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice@example.com", PASSWORD).await;
    let root = server.user_with_role("root@example.com", PASSWORD, true).await;
    let audience = format!("{}/api", server.base);

    let tokens = login_tokens(&server, "alice@example.com", PASSWORD).await;
    assert_eq!(tokens.body["token_type"], "Bearer");
    assert_eq!(tokens.body["expires_in"], 900);
    assert_eq!(scope_set(&tokens.body["scope"]), set_of(&["account", "offline_access"]));
    let claims = server.verify_jwt(&tokens.access, &audience, "at+jwt").await;
    assert_eq!(claims["sub"], alice.sub.as_str());
    assert_eq!(claims["client_id"], "oxidp-api");
    assert_eq!(scope_set(&claims["scope"]), set_of(&["account", "offline_access"]));
    let lifetime = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
    assert_eq!(lifetime, 900);
    let me = json(get_me(&server, &tokens.access).await).await;
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["role"], "user");

    // Emails are matched without regard to case.
    login_tokens(&server, "ALICE@Example.com", PASSWORD).await;

    let admin = login_tokens(&server, "root@example.com", PASSWORD).await;
    assert_eq!(scope_set(&admin.body["scope"]), set_of(&["account", "offline_access", "admin"]));
    let claims = server.verify_jwt(&admin.access, &audience, "at+jwt").await;
    assert_eq!(claims["sub"], root.sub.as_str());
    assert_eq!(scope_set(&claims["scope"]), set_of(&["account", "offline_access", "admin"]));
    assert_eq!(json(get_me(&server, &admin.access).await).await["role"], "admin");
}

async fn login_failures_look_the_same_for_unknown_emails(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let wrong = problem(login(&server, "alice@example.com", "not the right password").await, 401).await;
    assert_eq!(wrong["code"], "invalid_credentials");
    let unknown = problem(login(&server, "nobody@example.com", PASSWORD).await, 401).await;
    assert_ne!(wrong["request_id"], unknown["request_id"], "each answer has its own request ID");
    assert_eq!(without_request_id(wrong.clone()), without_request_id(unknown), "same body for both");
    let empty = problem(login(&server, "alice@example.com", "").await, 401).await;
    assert_eq!(without_request_id(empty), without_request_id(wrong));
    // Malformed login bodies are problems too.
    problem(post_json(&server, "/auth/login", &json!({"email": "alice@example.com"})).await, 400).await;
    let extra = json!({"email": "alice@example.com", "password": PASSWORD, "remember": true});
    problem(post_json(&server, "/auth/login", &extra).await, 400).await;
}

async fn login_locks_the_account_after_repeated_failures(backend: Backend) {
    // The lock alone; the waits that lead up to it are login_throttle.rs's.
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

async fn login_is_forbidden_when_switched_off(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.password_login_api = oxidp::config::Switch::Off).await;
    server.user("alice@example.com", PASSWORD).await;
    let client = server.client(&third_party_client_flags()).await;
    let limit = server.state.config.login_account_limit;
    let body = problem(login(&server, "alice@example.com", PASSWORD).await, 403).await;
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    // Refused before any password check: failures are not counted against the account.
    for _ in 0..=limit {
        problem(login(&server, "alice@example.com", "wrong password!").await, 403).await;
    }
    // The login page still works.
    browser_login(&server, &client, "alice@example.com").await;
}

// ---------------------------------------------------------------------------------------------
// Refresh and logout

async fn refresh_rotates_and_refuses_old_or_foreign_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice@example.com", PASSWORD).await;
    let first = login_tokens(&server, "alice@example.com", PASSWORD).await;

    let second = refreshed_tokens(&server, &first.refresh).await;
    assert_ne!(second.refresh, first.refresh, "rotated");
    assert_ne!(second.access, first.access);
    assert_eq!(scope_set(&second.body["scope"]), set_of(&["account", "offline_access"]));
    let claims = server.verify_jwt(&second.access, &format!("{}/api", server.base), "at+jwt").await;
    assert_eq!(claims["sub"], alice.sub.as_str());
    assert_eq!(get_me(&server, &second.access).await.status(), 200);

    // Within the grace window the old token yields the same successor (concurrent refreshes).
    let concurrent = refreshed_tokens(&server, &first.refresh).await;
    assert_eq!(concurrent.refresh, second.refresh);

    // Beyond it, the old token is refused and the family is revoked.
    server.clock.advance(6);
    let body = problem(refresh(&server, &first.refresh).await, 401).await;
    assert_eq!(body["code"], "invalid_grant");
    problem(refresh(&server, &second.refresh).await, 401).await;

    // Garbage, and another client's refresh token.
    let body = problem(refresh(&server, "garbage-refresh-token").await, 401).await;
    assert_eq!(body["code"], "invalid_grant");
    let client = server.client(&third_party_client_flags()).await;
    let browser = Browser::new();
    let foreign = code_flow_tokens(&server, &browser, &client, "alice@example.com", &[]).await;
    let foreign_refresh = foreign["refresh_token"].as_str().expect("refresh token");
    assert_eq!(problem(refresh(&server, foreign_refresh).await, 401).await["code"], "invalid_grant");
    problem(post_json(&server, "/auth/refresh", &json!({})).await, 400).await;
}

async fn logout_revokes_the_token_family(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let first = login_tokens(&server, "alice@example.com", PASSWORD).await;
    let second = login_tokens(&server, "alice@example.com", PASSWORD).await;
    assert_eq!(get_me(&server, &first.access).await.status(), 200);

    let response = logout(&server, &first.refresh).await;
    assert_eq!(response.status(), 204);
    assert!(response.text().await.expect("body").is_empty());
    assert_eq!(problem(refresh(&server, &first.refresh).await, 401).await["code"], "invalid_grant");
    let body = problem(get_me(&server, &first.access).await, 401).await;
    assert_eq!(body["code"], "invalid_token");

    // The other login is untouched.
    assert_eq!(get_me(&server, &second.access).await.status(), 200);
    refreshed_tokens(&server, &second.refresh).await;

    // Logging out with a rotated successor ends the access token issued before the rotation too.
    let third = login_tokens(&server, "alice@example.com", PASSWORD).await;
    let rotated = refreshed_tokens(&server, &third.refresh).await;
    assert_eq!(logout(&server, &rotated.refresh).await.status(), 204);
    problem(get_me(&server, &third.access).await, 401).await;
    problem(get_me(&server, &rotated.access).await, 401).await;
    problem(refresh(&server, &rotated.refresh).await, 401).await;

    // Unknown tokens and repeated logouts are quietly accepted.
    assert_eq!(logout(&server, "garbage-refresh-token").await.status(), 204);
    assert_eq!(logout(&server, &first.refresh).await.status(), 204);

    // A third-party client's refresh token is not the API's to revoke.
    let client = server.client(&third_party_client_flags()).await;
    let foreign = code_flow_tokens(&server, &Browser::new(), &client, "alice@example.com", &[]).await;
    let foreign_refresh = foreign["refresh_token"].as_str().expect("refresh token");
    assert_eq!(logout(&server, foreign_refresh).await.status(), 204);
    let response =
        token_request(&server, &client, &[("grant_type", "refresh_token"), ("refresh_token", foreign_refresh)]).await;
    assert_eq!(response.status(), 200, "the client's token still works");
    problem(post_json(&server, "/auth/logout", &json!({"token": "x"})).await, 400).await;
}

// ---------------------------------------------------------------------------------------------
// Email verification and password recovery

async fn verify_email_with_the_mailed_code(backend: Backend) {
    let server = TestServer::start(backend).await;
    for email in ["gina@example.com", "hank@example.com", "ivan@example.com", "jill@example.com"] {
        assert_eq!(register(&server, email, PASSWORD).await.status(), 201);
    }
    let code = latest_code(&server, "gina@example.com", VERIFY_SUBJECT);

    assert_field(&problem(verify_email(&server, "garbage-code").await, 400).await, "invalid_token", "token");
    let response = verify_email(&server, &code).await;
    assert_eq!(response.status(), 204);
    assert!(response.text().await.expect("body").is_empty());
    let tokens = login_tokens(&server, "gina@example.com", PASSWORD).await;
    assert_eq!(json(get_me(&server, &tokens.access).await).await["email_verified"], true);
    // Single use.
    assert_field(&problem(verify_email(&server, &code).await, 400).await, "invalid_token", "token");

    // A verification code is not a reset code, and trying it there does not use it up.
    let hank_code = latest_code(&server, "hank@example.com", VERIFY_SUBJECT);
    assert_field(
        &problem(reset_password(&server, &hank_code, NEW_PASSWORD).await, 400).await,
        "invalid_token",
        "token",
    );
    assert_eq!(login(&server, "hank@example.com", NEW_PASSWORD).await.status(), 401);
    assert_eq!(verify_email(&server, &hank_code).await.status(), 204);

    // Valid for 24 hours.
    let ivan_code = latest_code(&server, "ivan@example.com", VERIFY_SUBJECT);
    let jill_code = latest_code(&server, "jill@example.com", VERIFY_SUBJECT);
    server.clock.advance(24 * 3600 - 1);
    assert_eq!(verify_email(&server, &ivan_code).await.status(), 204);
    server.clock.advance(2);
    assert_field(&problem(verify_email(&server, &jill_code).await, 400).await, "invalid_token", "token");
    let jill = login_tokens(&server, "jill@example.com", PASSWORD).await;
    assert_eq!(json(get_me(&server, &jill.access).await).await["email_verified"], false);
    problem(post_json(&server, "/auth/verify-email", &json!({"code": jill_code})).await, 400).await;
}

async fn forgot_password_answers_the_same_for_unknown_emails(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let before = mails_to(&server, "alice@example.com").len();

    let known = forgot_password(&server, "alice@example.com").await;
    let unknown = forgot_password(&server, "nobody@example.com").await;
    assert_eq!(known.status(), 202);
    assert_eq!(unknown.status(), 202);
    let content_type = |r: &reqwest::Response| r.headers().get("content-type").map(|v| v.as_bytes().to_vec());
    assert_eq!(content_type(&known), content_type(&unknown));
    let known_body = known.bytes().await.expect("body");
    let unknown_body = unknown.bytes().await.expect("body");
    assert_eq!(known_body, unknown_body, "identical bodies");

    let alice_mails = mails_to(&server, "alice@example.com");
    assert_eq!(alice_mails.len(), before + 1, "one mail for the known account");
    assert!(alice_mails.last().expect("mail").contains(&format!("Subject: {RESET_SUBJECT}")));
    code_in(alice_mails.last().expect("mail"));
    assert!(mails_to(&server, "nobody@example.com").is_empty(), "none for the unknown one");

    // The email is matched without regard to case; an invalid one is answered the same way.
    assert_eq!(forgot_password(&server, "ALICE@example.COM").await.status(), 202);
    assert_eq!(mails_with_subject(&server, "alice@example.com", RESET_SUBJECT).len(), 2);
    assert_eq!(forgot_password(&server, "not-an-email").await.status(), 202);
    let all = std::fs::read_dir(&server.state.config.mail_dir).expect("mail dir").count();
    assert_eq!(all, before + 2, "no other mail was written");
    problem(post_json(&server, "/auth/forgot-password", &json!({"mail": "alice@example.com"})).await, 400).await;
}

async fn reset_password_with_the_mailed_code_ends_sessions_and_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let client = server.client(&third_party_client_flags()).await;
    let browser = browser_login(&server, &client, "alice@example.com").await;
    assert_session_alive(&silent_authorize(&server, &browser, &client).await);
    let before = login_tokens(&server, "alice@example.com", PASSWORD).await;

    let code = reset_code(&server, "alice@example.com").await;
    let response = reset_password(&server, &code, NEW_PASSWORD).await;
    assert_eq!(response.status(), 204);
    assert!(response.text().await.expect("body").is_empty());

    assert_eq!(problem(login(&server, "alice@example.com", PASSWORD).await, 401).await["code"], "invalid_credentials");
    let after = login_tokens(&server, "alice@example.com", NEW_PASSWORD).await;
    assert_eq!(get_me(&server, &after.access).await.status(), 200);

    // Everything from before the reset has ended.
    assert_eq!(problem(refresh(&server, &before.refresh).await, 401).await["code"], "invalid_grant");
    problem(get_me(&server, &before.access).await, 401).await;
    assert_session_gone(&silent_authorize(&server, &browser, &client).await);

    // Single use.
    assert_field(
        &problem(reset_password(&server, &code, "yet another passphrase 7").await, 400).await,
        "invalid_token",
        "token",
    );
    login_tokens(&server, "alice@example.com", NEW_PASSWORD).await;
}

async fn reset_password_refuses_expired_codes_and_weak_passwords(backend: Backend) {
    // More reset mails per email than the default limit (unauthenticated_work.rs tests the limit).
    let server = TestServer::start_with(backend, |config| config.mail_email_limit = 10).await;
    server.user("alice@example.com", PASSWORD).await;

    for weak in ["password123", "short", "my alice password!", &"z".repeat(257)] {
        let code = reset_code(&server, "alice@example.com").await;
        let body = problem(reset_password(&server, &code, weak).await, 400).await;
        assert_field(&body, "invalid_field", "password");
    }
    login_tokens(&server, "alice@example.com", PASSWORD).await;
    assert_field(
        &problem(reset_password(&server, "garbage-code", NEW_PASSWORD).await, 400).await,
        "invalid_token",
        "token",
    );

    // Valid for one hour.
    let expiring = reset_code(&server, "alice@example.com").await;
    server.clock.advance(3601);
    let body = problem(reset_password(&server, &expiring, NEW_PASSWORD).await, 400).await;
    assert_field(&body, "invalid_token", "token");
    assert_eq!(login(&server, "alice@example.com", NEW_PASSWORD).await.status(), 401);
    login_tokens(&server, "alice@example.com", PASSWORD).await;

    let in_time = reset_code(&server, "alice@example.com").await;
    server.clock.advance(3599);
    assert_eq!(reset_password(&server, &in_time, NEW_PASSWORD).await.status(), 204);
    login_tokens(&server, "alice@example.com", NEW_PASSWORD).await;
    problem(post_json(&server, "/auth/reset-password", &json!({"token": in_time})).await, 400).await;
}

// ---------------------------------------------------------------------------------------------
// /users/me

async fn me_requires_an_account_token_for_the_api(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice@example.com", PASSWORD).await;
    let tokens = login_tokens(&server, "alice@example.com", PASSWORD).await;
    let response = get_me(&server, &tokens.access).await;
    assert_eq!(response.status(), 200);
    let me = json(response).await;
    assert_eq!(me["sub"], alice.sub.as_str());
    assert_eq!(me["id"], alice.id.as_str());
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["name"], "Test User");
    assert!(!me.to_string().contains("password"));

    // No credentials, other schemes, garbage, and the refresh token in place of an access token.
    let http = reqwest::Client::new();
    problem(http.get(api_url(&server, "/users/me")).send().await.expect("GET"), 401).await;
    let basic = http.get(api_url(&server, "/users/me")).basic_auth("alice@example.com", Some(PASSWORD));
    problem(basic.send().await.expect("GET"), 401).await;
    assert_eq!(problem(get_me(&server, "garbage").await, 401).await["code"], "invalid_token");
    assert_eq!(problem(get_me(&server, &tokens.refresh).await, 401).await["code"], "invalid_token");

    // A third-party client's token is for that client, not for the API.
    let client = server.client(&third_party_client_flags()).await;
    let browser = Browser::new();
    let foreign = code_flow_tokens(&server, &browser, &client, "alice@example.com", &[]).await;
    let foreign_access = foreign["access_token"].as_str().expect("access token");
    let claims = server.verify_jwt(foreign_access, &client.id, "at+jwt").await;
    assert!(!scope_set(&claims["scope"]).contains("account"));
    let body = problem(get_me(&server, foreign_access).await, 401).await;
    assert_eq!(body["code"], "invalid_audience");
    let id_token = foreign["id_token"].as_str().expect("id token");
    assert_eq!(problem(get_me(&server, id_token).await, 401).await["code"], "invalid_token");

    // Even with the API as audience, a token without the account scope may not use it.
    let api_audience = format!("{}/api", server.base);
    let audience_client =
        server.client(&["--name", "y", "--redirect-uri", REDIRECT, "--audience", api_audience.as_str()]).await;
    let scoped = code_flow_tokens(&server, &browser, &audience_client, "alice@example.com", &[]).await;
    let scoped_access = scoped["access_token"].as_str().expect("access token");
    server.verify_jwt(scoped_access, &api_audience, "at+jwt").await;
    let body = problem(get_me(&server, scoped_access).await, 403).await;
    assert_eq!(body["code"], "insufficient_scope");

    // Expiry: 900 seconds.
    server.clock.advance(899);
    assert_eq!(get_me(&server, &tokens.access).await.status(), 200);
    server.clock.advance(2);
    assert_eq!(problem(get_me(&server, &tokens.access).await, 401).await["code"], "invalid_token");
}

async fn patch_me_updates_the_profile_and_the_claims(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let tokens = login_tokens(&server, "alice@example.com", PASSWORD).await;
    let created = json(get_me(&server, &tokens.access).await).await;
    server.clock.advance(10);

    let change = json!({
        "name": "Alice Liddell",
        "given_name": "Alice",
        "family_name": "Liddell",
        "locale": "en-GB",
        "phone_number": "+14155550100",
        "picture": "https://example.com/alice.png",
    });
    let response = patch_me(&server, &tokens.access, &change).await;
    assert_eq!(response.status(), 200);
    let updated = json(response).await;
    for (field, value) in change.as_object().expect("object") {
        assert_eq!(&updated[field], value, "{field}");
    }
    assert_eq!(updated["email"], "alice@example.com");
    assert!(updated["updated_at"].as_i64().expect("updated_at") > created["updated_at"].as_i64().expect("updated_at"));
    let me = json(get_me(&server, &tokens.access).await).await;
    assert_eq!(me, updated, "GET shows what PATCH answered");

    // An absent field is left alone; null clears.
    let updated = json(patch_me(&server, &tokens.access, &json!({"family_name": null})).await).await;
    assert_eq!(updated["family_name"], Value::Null);
    assert_eq!(updated["name"], "Alice Liddell");
    assert_eq!(updated["given_name"], "Alice");
    assert_eq!(updated["picture"], "https://example.com/alice.png");

    // Invalid values name their field and change nothing.
    let invalid = [
        (json!({"picture": "http://example.com/alice.png"}), "picture"),
        (json!({"picture": "not a url"}), "picture"),
        (json!({"phone_number": "555-0100"}), "phone_number"),
        (json!({"phone_number": "+1415abc0100"}), "phone_number"),
        (json!({"locale": "en GB"}), "locale"),
        (json!({"name": "Alice", "picture": "javascript:alert(1)"}), "picture"),
    ];
    for (body, field) in invalid {
        assert_field(&problem(patch_me(&server, &tokens.access, &body).await, 400).await, "invalid_field", field);
    }
    problem(patch_me(&server, &tokens.access, &json!({"nickname": "al"})).await, 400).await;
    problem(patch_me(&server, &tokens.access, &json!({"email": "mallory@example.com"})).await, 400).await;
    problem(patch_me(&server, &tokens.access, &json!({"name": ["Alice"]})).await, 400).await;
    let unchanged = json(get_me(&server, &tokens.access).await).await;
    assert_eq!(unchanged, updated, "failed patches changed nothing");
    // Without credentials.
    let anonymous = reqwest::Client::new().patch(api_url(&server, "/users/me")).json(&json!({"name": "x"}));
    problem(anonymous.send().await.expect("PATCH"), 401).await;

    // The changes reach /userinfo and new ID tokens.
    let client = server
        .client(&["--name", "x", "--redirect-uri", REDIRECT, "--scopes", "openid profile email phone offline_access"])
        .await;
    let browser = Browser::new();
    let issued = code_flow_tokens(
        &server,
        &browser,
        &client,
        "alice@example.com",
        &[("scope", "openid profile email phone offline_access")],
    )
    .await;
    let id = server.verify_jwt(issued["id_token"].as_str().expect("id token"), &client.id, "JWT").await;
    let access = issued["access_token"].as_str().expect("access token");
    let http = reqwest::Client::new();
    let info = json(http.get(server.url("/userinfo")).bearer_auth(access).send().await.expect("userinfo")).await;
    for claims in [&info, &Value::Object(id)] {
        assert_eq!(claims["name"], "Alice Liddell", "{claims}");
        assert_eq!(claims["given_name"], "Alice");
        assert!(claims.get("family_name").is_none_or(Value::is_null), "cleared: {claims}");
        assert_eq!(claims["locale"], "en-GB");
        assert_eq!(claims["phone_number"], "+14155550100");
        assert_eq!(claims["picture"], "https://example.com/alice.png");
        assert_eq!(claims["updated_at"], updated["updated_at"]);
    }

    // A later change shows in /userinfo at once.
    assert_eq!(patch_me(&server, &tokens.access, &json!({"name": "Alice L.", "locale": null})).await.status(), 200);
    let info = json(http.get(server.url("/userinfo")).bearer_auth(access).send().await.expect("userinfo")).await;
    assert_eq!(info["name"], "Alice L.");
    assert!(info.get("locale").is_none_or(Value::is_null), "{info}");
}

async fn change_password_ends_other_sessions_and_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let client = server.client(&third_party_client_flags()).await;
    let browser = browser_login(&server, &client, "alice@example.com").await;
    let caller = login_tokens(&server, "alice@example.com", PASSWORD).await;
    let other = login_tokens(&server, "alice@example.com", PASSWORD).await;
    let change = |current: &str, new: &str| json!({"current_password": current, "new_password": new});

    let body = problem(
        post_with(&server, "/users/me/password", &caller.access, &change("wrong password!", NEW_PASSWORD)).await,
        400,
    )
    .await;
    assert_field(&body, "wrong_password", "current_password");
    for weak in ["password123", "short", "alice-rocks-2024"] {
        let body =
            problem(post_with(&server, "/users/me/password", &caller.access, &change(PASSWORD, weak)).await, 400).await;
        assert_field(&body, "invalid_field", "new_password");
    }
    let extra = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD, "logout_others": false});
    problem(post_with(&server, "/users/me/password", &caller.access, &extra).await, 400).await;
    let anonymous =
        reqwest::Client::new().post(api_url(&server, "/users/me/password")).json(&change(PASSWORD, NEW_PASSWORD));
    problem(anonymous.send().await.expect("POST"), 401).await;

    // None of that changed anything.
    assert_session_alive(&silent_authorize(&server, &browser, &client).await);
    assert_eq!(get_me(&server, &other.access).await.status(), 200);
    assert_eq!(login(&server, "alice@example.com", NEW_PASSWORD).await.status(), 401);

    let response = post_with(&server, "/users/me/password", &caller.access, &change(PASSWORD, NEW_PASSWORD)).await;
    assert_eq!(response.status(), 204);
    assert!(response.text().await.expect("body").is_empty());

    // The caller's own login goes on.
    assert_eq!(get_me(&server, &caller.access).await.status(), 200);
    refreshed_tokens(&server, &caller.refresh).await;
    // The other login and the browser session end.
    assert_eq!(problem(refresh(&server, &other.refresh).await, 401).await["code"], "invalid_grant");
    problem(get_me(&server, &other.access).await, 401).await;
    assert_session_gone(&silent_authorize(&server, &browser, &client).await);

    assert_eq!(login(&server, "alice@example.com", PASSWORD).await.status(), 401);
    login_tokens(&server, "alice@example.com", NEW_PASSWORD).await;
}

async fn sessions_are_listed_paginated_and_revocable(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    server.user("bob@example.com", PASSWORD).await;
    let client = server.client(&third_party_client_flags()).await;
    let older_browser = browser_login(&server, &client, "alice@example.com").await;
    server.clock.advance(10);
    let newer_browser = browser_login(&server, &client, "alice@example.com").await;
    let bob_browser = browser_login(&server, &client, "bob@example.com").await;
    let tokens = login_tokens(&server, "alice@example.com", PASSWORD).await;

    let response = get_with(&server, "/users/me/sessions", &tokens.access).await;
    assert_eq!(response.status(), 200);
    let page = json(response).await;
    let items = page["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 2, "the two browser logins, not the API login: {page}");
    assert!(page.get("next_cursor").is_none_or(Value::is_null), "{page}");
    for item in &items {
        assert_eq!(item["ip"], "127.0.0.1", "{item}");
        assert_eq!(item["amr"], json!(["pwd"]));
        assert!(item["id"].as_str().is_some_and(|id| !id.is_empty()));
        assert!(item["expires_at"].as_i64().expect("expires_at") > server.clock_now());
    }
    let newer_created = items[0]["created_at"].as_i64().expect("created_at");
    let older_created = items[1]["created_at"].as_i64().expect("created_at");
    assert!(newer_created >= older_created + 10, "newest first: {page}");
    let newer_id = items[0]["id"].as_str().expect("id").to_string();
    let older_id = items[1]["id"].as_str().expect("id").to_string();
    assert_ne!(newer_id, older_id);

    // One at a time.
    let first = json(get_with(&server, "/users/me/sessions?limit=1", &tokens.access).await).await;
    assert_eq!(first["items"].as_array().expect("items").len(), 1);
    assert_eq!(first["items"][0]["id"], newer_id.as_str());
    let cursor = first["next_cursor"].as_str().expect("next_cursor on a partial page").to_string();
    let path = format!("/users/me/sessions?limit=1&cursor={}", urlencode(&cursor));
    let second = json(get_with(&server, &path, &tokens.access).await).await;
    assert_eq!(second["items"].as_array().expect("items").len(), 1);
    assert_eq!(second["items"][0]["id"], older_id.as_str());
    assert!(second.get("next_cursor").is_none_or(Value::is_null), "last page: {second}");

    // Bad paging parameters.
    for query in ["cursor=not-a-cursor!!", "cursor=Z2FyYmFnZQ", "limit=1&cursor=%25%25"] {
        let body = problem(get_with(&server, &format!("/users/me/sessions?{query}"), &tokens.access).await, 400).await;
        assert_field(&body, "invalid_field", "cursor");
    }
    for query in ["limit=0", "limit=101"] {
        let body = problem(get_with(&server, &format!("/users/me/sessions?{query}"), &tokens.access).await, 400).await;
        assert_field(&body, "invalid_field", "limit");
    }
    problem(get_with(&server, "/users/me/sessions?limit=abc", &tokens.access).await, 400).await;
    problem(get_with(&server, "/users/me/sessions?limit=-1", &tokens.access).await, 400).await;
    assert_eq!(get_with(&server, "/users/me/sessions?limit=100", &tokens.access).await.status(), 200);
    problem(reqwest::Client::new().get(api_url(&server, "/users/me/sessions")).send().await.expect("GET"), 401).await;

    // Ending one session signs out that browser only.
    assert_session_alive(&silent_authorize(&server, &older_browser, &client).await);
    let response = delete_with(&server, &format!("/users/me/sessions/{older_id}"), &tokens.access).await;
    assert_eq!(response.status(), 204);
    assert_session_gone(&silent_authorize(&server, &older_browser, &client).await);
    assert_session_alive(&silent_authorize(&server, &newer_browser, &client).await);
    let page = json(get_with(&server, "/users/me/sessions", &tokens.access).await).await;
    let ids: Vec<_> = page["items"].as_array().expect("items").iter().map(|item| item["id"].clone()).collect();
    assert_eq!(ids, vec![json!(newer_id)]);

    // Gone, unknown, and other users' sessions are all "not found".
    let body =
        problem(delete_with(&server, &format!("/users/me/sessions/{older_id}"), &tokens.access).await, 404).await;
    assert_eq!(body["code"], "not_found");
    problem(delete_with(&server, "/users/me/sessions/00000000-0000-0000-0000-000000000000", &tokens.access).await, 404)
        .await;
    let bob = login_tokens(&server, "bob@example.com", PASSWORD).await;
    let bob_page = json(get_with(&server, "/users/me/sessions", &bob.access).await).await;
    let bob_items = bob_page["items"].as_array().expect("items");
    assert_eq!(bob_items.len(), 1);
    let bob_session = bob_items[0]["id"].as_str().expect("id");
    assert!(bob_session != newer_id && bob_session != older_id);
    let body =
        problem(delete_with(&server, &format!("/users/me/sessions/{bob_session}"), &tokens.access).await, 404).await;
    assert_eq!(body["code"], "not_found");
    assert_session_alive(&silent_authorize(&server, &bob_browser, &client).await);
    assert_eq!(
        json(get_with(&server, "/users/me/sessions", &bob.access).await).await["items"]
            .as_array()
            .expect("items")
            .len(),
        1
    );
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

async fn a_refused_weak_password_keeps_the_reset_code(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let code = reset_code(&server, "alice@example.com").await;
    let body = problem(reset_password(&server, &code, "password123").await, 400).await;
    assert_field(&body, "invalid_field", "password");
    assert_eq!(
        reset_password(&server, &code, NEW_PASSWORD).await.status(),
        204,
        "the code survives a refused password"
    );
    login_tokens(&server, "alice@example.com", NEW_PASSWORD).await;
    assert_eq!(reset_password(&server, &code, "another long passphrase").await.status(), 400, "then it is used up");
}
