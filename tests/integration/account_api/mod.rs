//! The account API (`/api/v1/auth/*` and `/api/v1/users/me/*`: `src/api/account.rs`,
//! `src/api/me.rs`, `src/account/`) over real HTTP: registration, first-party login, refresh and
//! logout, email verification and password recovery (auth.rs); profile, password change and
//! sessions (me.rs). Every failure must be RFC 9457 problem JSON. The login limits, for the API
//! and the login page alike, are in login_throttle.rs.

mod auth;
mod me;

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

use crate::common::*;

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
pub(crate) async fn login_tokens(server: &TestServer, email: &str, password: &str) -> Tokens {
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

pub(crate) struct Tokens {
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
pub(crate) async fn problem(response: reqwest::Response, status: u16) -> Value {
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
pub(crate) fn without_request_id(mut problem: Value) -> Value {
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

pub(crate) fn third_party_client_flags() -> [&'static str; 4] {
    ["--name", "x", "--redirect-uri", REDIRECT]
}

/// A browser that signed in as `email` through the login page (a browser session exists).
pub(crate) async fn browser_login(server: &TestServer, client: &TestClient, email: &str) -> Browser {
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
