//! Pushed authorization requests (RFC 9126): `POST /par` authenticates the client like /token,
//! validates the request like /authorize and answers a one-time `request_uri` that lives 60 s;
//! /authorize then uses only that request. Per-client and global requirement; discovery.

use serde_json::json;

use super::{expect_oauth_error, expect_token, post_with_authorization};
use crate::browser::{ALICE, authorize_with, expect_error_redirect, expect_login_page, expect_page};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    a_pushed_request_runs_the_code_flow_to_tokens,
    par_authenticates_the_client_like_the_token_endpoint,
    par_errors_are_json_never_redirects,
    a_request_uri_works_once_and_for_60_seconds,
    a_request_uri_belongs_to_the_client_that_pushed_it,
    only_this_servers_request_uris_are_accepted,
    authorize_ignores_parameters_beside_the_pushed_request,
    a_client_that_requires_par_must_push,
    the_global_requirement_applies_to_every_client,
    discovery_advertises_par,
);

const PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
const OTHER_REDIRECT: &str = "https://app.example.com/elsewhere";

/// The usual authorization parameters for a push.
fn pushed_params<'a>(pkce: &'a Pkce, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("scope", "openid profile email offline_access"),
        ("state", "pushed-state"),
    ];
    for (key, value) in extra {
        form.retain(|(name, _)| name != key);
        form.push((key, value));
    }
    form
}

async fn push(server: &TestServer, client: &TestClient, form: &[(&str, &str)]) -> reqwest::Response {
    client_post(server, "/par", client, form).await
}

/// A successful push: 201, `no-store`, a PAR URN and `expires_in` 60. Returns the request_uri.
async fn push_ok(server: &TestServer, client: &TestClient, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
    let response = push(server, client, &pushed_params(pkce, extra)).await;
    let status = response.status().as_u16();
    let cache = response.headers().get("cache-control").map(|v| v.to_str().expect("ascii").to_string());
    let text = response.text().await.expect("body");
    assert_eq!(status, 201, "push refused: {text}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    let body: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(body["expires_in"], 60, "{body}");
    let request_uri = body["request_uri"].as_str().expect("request_uri").to_string();
    assert!(request_uri.starts_with(PREFIX) && request_uri.len() > PREFIX.len() + 20, "{request_uri}");
    request_uri
}

fn par_authorize_url(server: &TestServer, client_id: &str, request_uri: &str, extra: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("client_id", client_id).append_pair("request_uri", request_uri);
    for (key, value) in extra {
        query.append_pair(key, value);
    }
    server.url(&format!("/authorize?{}", query.finish()))
}

async fn web_client(server: &TestServer, extra: &[&str]) -> TestClient {
    let mut flags = vec!["--name", "Web App", "--redirect-uri", REDIRECT];
    flags.extend_from_slice(extra);
    server.client(&flags).await
}

async fn a_pushed_request_runs_the_code_flow_to_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user(ALICE, PASSWORD).await;
    for client in [web_client(&server, &[]).await, web_client(&server, &["--public"]).await] {
        let pkce = pkce();
        let request_uri = push_ok(&server, &client, &pkce, &[("nonce", "n-1")]).await;
        let browser = Browser::new();
        let url = par_authorize_url(&server, &client.id, &request_uri, &[]);
        let redirect = run_browser_flow(&server, &browser, &url, ALICE, PASSWORD).await;
        assert!(redirect.starts_with(&format!("{REDIRECT}?")), "{redirect}");
        let params = query_of(&redirect);
        assert_eq!(params.get("state").map(String::as_str), Some("pushed-state"), "{redirect}");
        assert_eq!(params.get("iss"), Some(&server.base), "{redirect}");
        let code = params.get("code").unwrap_or_else(|| panic!("no code in {redirect}"));
        let tokens = expect_token(redeem(&server, &client, code, &pkce.verifier).await).await;
        let id_token = tokens["id_token"].as_str().expect("id_token");
        let claims = server.verify_jwt(id_token, &client.id, "JWT").await;
        assert_eq!(claims["nonce"], "n-1", "the pushed nonce reaches the ID token");
        assert!(tokens["refresh_token"].is_string());
    }
}

async fn par_authenticates_the_client_like_the_token_endpoint(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = web_client(&server, &[]).await;
    let pkce = pkce();
    let form = pushed_params(&pkce, &[]);
    // No authentication at all.
    expect_oauth_error(post_with_authorization(&server, "/par", None, &form).await, 401, "invalid_client").await;
    // A confidential client naming itself without its secret.
    let mut named = form.clone();
    named.push(("client_id", &client.id));
    expect_oauth_error(post_with_authorization(&server, "/par", None, &named).await, 401, "invalid_client").await;
    // A wrong secret, in the header and in the form.
    let wrong = TestClient { id: client.id.clone(), secret: Some("wrong".into()) };
    expect_oauth_error(push(&server, &wrong, &form).await, 401, "invalid_client").await;
    let mut posted = named.clone();
    posted.push(("client_secret", "wrong"));
    expect_oauth_error(post_with_authorization(&server, "/par", None, &posted).await, 401, "invalid_client").await;
    // The same failure counting as /token, in the same counter; a correct credential is never refused.
    for _ in 0..server.state.config.client_auth_failure_limit {
        let _ = push(&server, &wrong, &form).await;
    }
    let limited = push(&server, &wrong, &form).await;
    assert_eq!(limited.status(), 429, "failed client authentications at /par are counted");
    let limited = token_request(&server, &wrong, &[("grant_type", "client_credentials")]).await;
    assert_eq!(limited.status(), 429, "…in the same counter as /token");
    push_ok(&server, &client, &pkce, &[]).await;
}

async fn par_errors_are_json_never_redirects(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = web_client(&server, &[]).await;
    let pkce = pkce();
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("redirect_uri", "https://evil.example/cb")], "invalid_request"),
        (&[("request_uri", "urn:ietf:params:oauth:request_uri:abc")], "invalid_request"),
        (&[("code_challenge", "")], "invalid_request"),
        (&[("response_type", "token")], "unsupported_response_type"),
        (&[("scope", "openid admin-of-everything")], "invalid_scope"),
        (&[("state", &"s".repeat(1025))], "invalid_request"),
    ];
    for (extra, error) in cases {
        let response = push(&server, &client, &pushed_params(&pkce, extra)).await;
        assert!(response.headers().get("location").is_none(), "{extra:?}: a push error never redirects");
        expect_oauth_error(response, 400, error).await;
    }
    // A GET is not a push.
    let get = reqwest::Client::new().get(server.url("/par")).send().await.expect("GET");
    assert_eq!(get.status(), 405);
}

async fn a_request_uri_works_once_and_for_60_seconds(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = web_client(&server, &[]).await;
    let pkce = pkce();
    let browser = Browser::new();

    let request_uri = push_ok(&server, &client, &pkce, &[]).await;
    let url = par_authorize_url(&server, &client.id, &request_uri, &[]);
    expect_login_page(&browser.get(&url).await);
    let html = expect_page(browser.get(&url).await, 400).await;
    assert!(html.contains("expired or was already used"), "a request_uri works once: {html}");

    let request_uri = push_ok(&server, &client, &pkce, &[]).await;
    server.clock.advance(59);
    expect_login_page(&browser.get(&par_authorize_url(&server, &client.id, &request_uri, &[])).await);

    let request_uri = push_ok(&server, &client, &pkce, &[]).await;
    server.clock.advance(61);
    let html = expect_page(browser.get(&par_authorize_url(&server, &client.id, &request_uri, &[])).await, 400).await;
    assert!(html.contains("expired or was already used"), "a request_uri lives 60 s: {html}");
}

async fn a_request_uri_belongs_to_the_client_that_pushed_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let pusher = web_client(&server, &[]).await;
    let other = web_client(&server, &["--public"]).await;
    let request_uri = push_ok(&server, &pusher, &pkce(), &[]).await;
    let browser = Browser::new();
    let html = expect_page(browser.get(&par_authorize_url(&server, &other.id, &request_uri, &[])).await, 400).await;
    assert!(html.contains("not issued to the application"), "{html}");
    // Without a client_id, nothing is looked up.
    let request_uri = push_ok(&server, &pusher, &pkce(), &[]).await;
    let query = url::form_urlencoded::Serializer::new(String::new()).append_pair("request_uri", &request_uri).finish();
    let html = expect_page(browser.get(&server.url(&format!("/authorize?{query}"))).await, 400).await;
    assert!(html.contains("no client_id"), "{html}");
}

async fn only_this_servers_request_uris_are_accepted(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = web_client(&server, &[]).await;
    let browser = Browser::new();
    for request_uri in [
        "https://client.example/request.jwt".to_string(),
        format!("http://127.0.0.1:9999/{PREFIX}abc"),
        PREFIX.to_string(),
    ] {
        let html =
            expect_page(browser.get(&par_authorize_url(&server, &client.id, &request_uri, &[])).await, 400).await;
        assert!(html.contains("not issued by this server"), "{request_uri}: {html}");
    }
    let unknown = format!("{PREFIX}{}", oxidp::crypto::random_token(24));
    let html = expect_page(browser.get(&par_authorize_url(&server, &client.id, &unknown, &[])).await, 400).await;
    assert!(html.contains("expired or was already used"), "{html}");
}

async fn authorize_ignores_parameters_beside_the_pushed_request(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user(ALICE, PASSWORD).await;
    let client = web_client(&server, &["--redirect-uri", OTHER_REDIRECT]).await;
    let pkce = pkce();
    let request_uri = push_ok(&server, &client, &pkce, &[("scope", "openid")]).await;
    let tampered = [
        ("redirect_uri", OTHER_REDIRECT),
        ("state", "front-channel-state"),
        ("scope", "openid profile email offline_access"),
        ("response_type", "token"),
        ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
        ("prompt", "none"),
    ];
    let browser = Browser::new();
    let url = par_authorize_url(&server, &client.id, &request_uri, &tampered);
    let redirect = run_browser_flow(&server, &browser, &url, ALICE, PASSWORD).await;
    assert!(redirect.starts_with(&format!("{REDIRECT}?")), "the pushed redirect_uri is used: {redirect}");
    let params = query_of(&redirect);
    assert_eq!(params.get("state").map(String::as_str), Some("pushed-state"), "{redirect}");
    let code = params.get("code").unwrap_or_else(|| panic!("no code in {redirect}"));
    let tokens = expect_token(redeem(&server, &client, code, &pkce.verifier).await).await;
    assert_eq!(tokens["scope"], "openid", "the pushed scope is used");
}

async fn a_client_that_requires_par_must_push(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = web_client(&server, &["--require-par"]).await;
    let browser = Browser::new();
    let plain = browser.get(&authorize_with(&server, &client.id, &pkce(), &[])).await;
    expect_error_redirect(&server, &plain, REDIRECT, "invalid_request", Some("state-123"));
    let request_uri = push_ok(&server, &client, &pkce(), &[]).await;
    expect_login_page(&browser.get(&par_authorize_url(&server, &client.id, &request_uri, &[])).await);
    // Clients without the flag are unaffected.
    let free = web_client(&server, &[]).await;
    expect_login_page(&browser.get(&authorize_with(&server, &free.id, &pkce(), &[])).await);

    // The admin API sets and clears it.
    let admin = admin_token(&server).await;
    let body = json!({ "name": "API App", "redirect_uris": [REDIRECT], "require_pushed_authorization_requests": true });
    let created = api_post(&server, "/api/v1/admin/clients", Some(&admin), &body).await;
    assert_eq!(created.status(), 201);
    let created = json(created).await;
    assert_eq!(created["require_pushed_authorization_requests"], true, "{created}");
    let id = created["client_id"].as_str().expect("client_id").to_string();
    let plain = browser.get(&authorize_with(&server, &id, &pkce(), &[])).await;
    expect_error_redirect(&server, &plain, REDIRECT, "invalid_request", Some("state-123"));
    let patched = reqwest::Client::new()
        .patch(server.url(&format!("/api/v1/admin/clients/{id}")))
        .bearer_auth(&admin)
        .json(&json!({ "require_pushed_authorization_requests": false }))
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), 200);
    assert_eq!(json(patched).await["require_pushed_authorization_requests"], false);
    expect_login_page(&browser.get(&authorize_with(&server, &id, &pkce(), &[])).await);
}

async fn the_global_requirement_applies_to_every_client(backend: Backend) {
    let server = TestServer::start_with(backend, |config| config.require_par = true).await;
    let client = web_client(&server, &[]).await;
    let browser = Browser::new();
    let plain = browser.get(&authorize_with(&server, &client.id, &pkce(), &[])).await;
    expect_error_redirect(&server, &plain, REDIRECT, "invalid_request", Some("state-123"));
    let request_uri = push_ok(&server, &client, &pkce(), &[]).await;
    expect_login_page(&browser.get(&par_authorize_url(&server, &client.id, &request_uri, &[])).await);
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let document = json(reqwest::get(server.url(path)).await.expect("discovery")).await;
        assert_eq!(document["require_pushed_authorization_requests"], true, "{path}");
    }
}

async fn discovery_advertises_par(backend: Backend) {
    let server = TestServer::start(backend).await;
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let document = json(reqwest::get(server.url(path)).await.expect("discovery")).await;
        assert_eq!(document["pushed_authorization_request_endpoint"], format!("{}/par", server.base), "{path}");
        assert_eq!(document["require_pushed_authorization_requests"], false, "{path}");
    }
    let document = json(reqwest::get(server.url("/.well-known/openid-configuration")).await.expect("discovery")).await;
    assert_eq!(document["request_uri_parameter_supported"], false, "no request_uri other than PAR's own");
}

/// Two instances of one deployment: a request pushed at A is used at B, and only once in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_uri_pushed_at_one_instance_works_once_at_any() {
    let (a, b) = pair().await;
    a.user(ALICE, PASSWORD).await;
    let client = web_client(&a, &[]).await;
    let pkce = pkce();
    let request_uri = push_ok(&a, &client, &pkce, &[("nonce", "n-cluster")]).await;
    let url = par_authorize_url(&b, &client.id, &request_uri, &[]);
    let redirect = run_browser_flow(&b, &Browser::new(), &url, ALICE, PASSWORD).await;
    let params = query_of(&redirect);
    assert_eq!(params.get("state").map(String::as_str), Some("pushed-state"), "{redirect}");
    let code = params.get("code").unwrap_or_else(|| panic!("no code in {redirect}"));
    let tokens = expect_token(redeem(&a, &client, code, &pkce.verifier).await).await;
    let claims = a.verify_jwt(tokens["id_token"].as_str().expect("id_token"), &client.id, "JWT").await;
    assert_eq!(claims["nonce"], "n-cluster", "the request pushed at A was the one used at B");

    // Used at B: spent at A too, and at B.
    for server in [&a, &b] {
        let again = Browser::new().get(&par_authorize_url(server, &client.id, &request_uri, &[])).await;
        let html = expect_page(again, 400).await;
        assert!(html.contains("expired or was already used"), "a request_uri works once: {html}");
    }
}
