//! The device authorization grant (RFC 8628): `/device_authorization`, the `/device` pages
//! (code entry, sign-in, confirmation) and polling at `/token`, with every failure path.

use serde_json::{Value, json};

use super::{expect_oauth_error, expect_token};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    device_flow_issues_tokens_once,
    concurrent_polls_redeem_an_approved_code_once,
    polling_too_fast_slows_down_and_the_interval_grows,
    denied_and_expired_device_codes,
    wrong_user_codes_get_a_page_and_entry_is_throttled,
    confirmation_is_required_even_through_the_link,
    client_rules_at_both_endpoints,
    dynamic_registration_and_admin_api_allow_the_grant,
    upstream_sign_in_continues_to_the_confirmation,
    public_clients_start_a_limited_number_per_address,
);

const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const ALPHABET: &str = "BCDFGHJKLMNPQRSTVWXZ";

async fn setup(backend: Backend) -> (TestServer, TestClient) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let client = device_client(&server).await;
    (server, client)
}

/// A public client (a TV app) with the device grant and refresh tokens.
pub(crate) async fn device_client(server: &TestServer) -> TestClient {
    server.client(&["--name", "Living Room TV", "--public", "--grant-types", &format!("{GRANT},refresh_token")]).await
}

pub(crate) async fn start(server: &TestServer, client: &TestClient, scope: &str) -> Value {
    let response = client_post(server, "/device_authorization", client, &[("scope", scope)]).await;
    assert_eq!(response.headers().get("cache-control").map(|v| v.to_str().expect("header")), Some("no-store"));
    let status = response.status();
    let body = json(response).await;
    assert_eq!(status, 200, "{body}");
    body
}

pub(crate) async fn poll(server: &TestServer, client: &TestClient, device_code: &str) -> reqwest::Response {
    token_request(server, client, &[("grant_type", GRANT), ("device_code", device_code)]).await
}

fn field(body: &Value, name: &str) -> String {
    body[name].as_str().unwrap_or_else(|| panic!("no {name} in {body}")).to_string()
}

/// Types `typed` at /device in `browser`; returns the answer to the form.
pub(crate) async fn enter(server: &TestServer, browser: &Browser, typed: &str) -> reqwest::Response {
    let page = browser.get(&server.url("/device")).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    let csrf = form_field(&html, "csrf").expect("csrf on the code form");
    browser.post_form(&server.url("/device"), &[("csrf", &csrf), ("user_code", typed)]).await
}

/// From an answer that leads to the confirmation page (through the login form when needed),
/// the confirmation page's HTML and its location.
async fn reach_confirmation(server: &TestServer, browser: &Browser, answer: reqwest::Response) -> (String, String) {
    assert_eq!(answer.status(), 303, "the code is accepted");
    let mut next = location(&answer);
    if next.starts_with("/login") {
        let html = browser.get(&server.url(&next)).await.text().await.expect("login page");
        let csrf = form_field(&html, "csrf").expect("csrf");
        let request = form_field(&html, "request").expect("request");
        assert!(request.starts_with("device."), "the login form carries the device ticket: {request}");
        assert!(html.contains("Living Room TV"), "the login page names the client");
        let login = browser
            .post_form(
                &server.url("/login"),
                &[("csrf", &csrf), ("request", &request), ("email", "alice@example.com"), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(login.status(), 303);
        next = location(&login);
    }
    assert!(next.starts_with("/device/confirm?ticket="), "{next}");
    let page = browser.get(&server.url(&next)).await;
    assert_eq!(page.status(), 200);
    (page.text().await.expect("confirmation page"), next)
}

/// Clicks Allow or Deny on a confirmation page; returns the answer.
async fn decide(server: &TestServer, browser: &Browser, html: &str, decision: &str) -> reqwest::Response {
    let csrf = form_field(html, "csrf").expect("csrf on the confirmation");
    let ticket = form_field(html, "ticket").expect("ticket");
    browser
        .post_form(&server.url("/device/confirm"), &[("csrf", &csrf), ("ticket", &ticket), ("decision", decision)])
        .await
}

/// The whole browser side: enter `typed`, sign in, confirm with `decision`.
pub(crate) async fn approve_in(server: &TestServer, browser: &Browser, typed: &str, decision: &str) {
    let answer = enter(server, browser, typed).await;
    let (html, _) = reach_confirmation(server, browser, answer).await;
    let done = decide(server, browser, &html, decision).await;
    assert_eq!(done.status(), 200);
    let text = done.text().await.expect("result page");
    let expected = if decision == "approve" { "return to your device" } else { "not connected" };
    assert!(text.contains(expected), "{text}");
}

async fn device_flow_issues_tokens_once(backend: Backend) {
    let (server, client) = setup(backend).await;
    let discovery = json(reqwest::get(server.url("/.well-known/openid-configuration")).await.expect("discovery")).await;
    assert_eq!(discovery["device_authorization_endpoint"], server.url("/device_authorization"));
    assert!(discovery["grant_types_supported"].as_array().expect("grants").iter().any(|g| g == GRANT));

    let started = start(&server, &client, "openid profile offline_access").await;
    let user_code = field(&started, "user_code");
    assert_eq!(user_code.len(), 9, "{user_code}");
    assert_eq!(&user_code[4..5], "-");
    assert!(user_code.chars().filter(|c| *c != '-').all(|c| ALPHABET.contains(c)), "{user_code}");
    assert_eq!(started["verification_uri"], server.url("/device"));
    assert_eq!(started["verification_uri_complete"], server.url(&format!("/device?user_code={user_code}")));
    assert_eq!(started["expires_in"], 600);
    assert_eq!(started["interval"], 5);
    let device_code = field(&started, "device_code");
    assert!(device_code.len() >= 32);

    expect_oauth_error(poll(&server, &client, &device_code).await, 400, "authorization_pending").await;

    // Typed in lower case with spaces instead of the dash.
    let typed = user_code.to_lowercase().replace('-', " ");
    let browser = Browser::new();
    let answer = enter(&server, &browser, &typed).await;
    let (html, _) = reach_confirmation(&server, &browser, answer).await;
    assert!(html.contains("Living Room TV"), "the confirmation names the client");
    assert!(html.contains(&user_code), "the confirmation repeats the code as shown on the device");
    assert!(html.contains("value=\"approve\"") && html.contains("value=\"deny\""), "Allow and Deny");
    assert_eq!(decide(&server, &browser, &html, "approve").await.status(), 200);

    server.clock.advance(5);
    let tokens = expect_token(poll(&server, &client, &device_code).await).await;
    let claims = server.verify_jwt(&field(&tokens, "access_token"), &client.id, "at+jwt").await;
    assert_eq!(claims["client_id"], client.id.as_str());
    assert!(tokens["id_token"].is_string(), "openid gives an ID token: {tokens}");
    let refresh = field(&tokens, "refresh_token");
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
    expect_token(token_request(&server, &client, &form).await).await;

    // Single use: the same device code again, even after the interval.
    server.clock.advance(5);
    let again = expect_oauth_error(poll(&server, &client, &device_code).await, 400, "invalid_grant").await;
    assert!(again["error_description"].as_str().expect("description").contains("already used"), "{again}");
    // Its user code no longer leads anywhere either.
    let late = enter(&server, &browser, &user_code).await;
    assert_eq!(late.status(), 400);
}

async fn polling_too_fast_slows_down_and_the_interval_grows(backend: Backend) {
    let (server, client) = setup(backend).await;
    let started = start(&server, &client, "openid").await;
    let device_code = field(&started, "device_code");
    expect_oauth_error(poll(&server, &client, &device_code).await, 400, "authorization_pending").await;
    // At once again: slow_down, the interval is now 10 s.
    expect_oauth_error(poll(&server, &client, &device_code).await, 400, "slow_down").await;
    // 5 s later would have been fine before; now it is too early, and the interval is 15 s.
    server.clock.advance(5);
    expect_oauth_error(poll(&server, &client, &device_code).await, 400, "slow_down").await;
    server.clock.advance(14);
    expect_oauth_error(poll(&server, &client, &device_code).await, 400, "slow_down").await;
    // Waiting the full (now 20 s) interval is answered normally, and the interval stays.
    server.clock.advance(20);
    expect_oauth_error(poll(&server, &client, &device_code).await, 400, "authorization_pending").await;
    server.clock.advance(19);
    expect_oauth_error(poll(&server, &client, &device_code).await, 400, "slow_down").await;
    server.clock.advance(25);
    expect_oauth_error(poll(&server, &client, &device_code).await, 400, "authorization_pending").await;
}

async fn denied_and_expired_device_codes(backend: Backend) {
    let (server, client) = setup(backend).await;
    let browser = Browser::new();
    let denied = start(&server, &client, "openid").await;
    approve_in(&server, &browser, &field(&denied, "user_code"), "deny").await;
    let answer = poll(&server, &client, &field(&denied, "device_code")).await;
    expect_oauth_error(answer, 400, "access_denied").await;

    let expiring = start(&server, &client, "openid").await;
    server.clock.advance(600);
    expect_oauth_error(poll(&server, &client, &field(&expiring, "device_code")).await, 400, "expired_token").await;
    // An expired user code is a page with a message, never a 5xx.
    let late = enter(&server, &browser, &field(&expiring, "user_code")).await;
    assert_eq!(late.status(), 400);
    assert!(late.headers()["content-type"].to_str().expect("type").starts_with("text/html"));
    assert!(late.text().await.expect("page").contains("has expired"));

    // Approved in time but redeemed after the expiry: expired as well.
    let slow = start(&server, &client, "openid").await;
    approve_in(&server, &browser, &field(&slow, "user_code"), "approve").await;
    server.clock.advance(600);
    expect_oauth_error(poll(&server, &client, &field(&slow, "device_code")).await, 400, "expired_token").await;

    // Both decisions are audited like consent, with the grant named.
    let admin = admin_token(&server).await;
    for action in ["consent.denied", "consent.granted"] {
        let url = server.url(&format!("/api/v1/admin/audit?action={action}&target={}", client.id));
        let audit = json(reqwest::Client::new().get(url).bearer_auth(&admin).send().await.expect("audit")).await;
        let entry = &audit["items"][0];
        assert_eq!(entry["actor_type"], "user", "{audit}");
        assert_eq!(entry["details"]["grant_type"], GRANT, "{audit}");
    }
}

async fn wrong_user_codes_get_a_page_and_entry_is_throttled(backend: Backend) {
    let (server, client) = setup(backend).await;
    let live = start(&server, &client, "openid").await;
    let browser = Browser::new();
    for wrong in ["hello", "BCDF-GHJ", "AEIO-UAEI", "<script>", &"B".repeat(500)] {
        let page = enter(&server, &browser, wrong).await;
        assert_eq!(page.status(), 400, "{wrong}");
        let html = page.text().await.expect("page");
        assert!(html.contains("not valid"), "{html}");
        assert!(!html.contains("<script>"), "the typed text is escaped");
    }
    // 20 entries per address in 10 minutes: the 5 above, 15 more, then 429 even for a live code.
    for _ in 0..15 {
        assert_eq!(enter(&server, &browser, "BBBB-BBBB").await.status(), 400);
    }
    let refused = enter(&server, &browser, &field(&live, "user_code")).await;
    assert_eq!(refused.status(), 429);
    let retry_after: i64 = refused.headers()["retry-after"].to_str().expect("header").parse().expect("seconds");
    assert!((1..=600).contains(&retry_after), "{retry_after}");
    assert!(refused.text().await.expect("page").contains("Too many codes"));
    // After the window codes are accepted again (the first one has expired meanwhile).
    server.clock.advance(601);
    let fresh = start(&server, &client, "openid").await;
    assert_eq!(enter(&server, &browser, &field(&fresh, "user_code")).await.status(), 303);
}

async fn confirmation_is_required_even_through_the_link(backend: Backend) {
    let (server, client) = setup(backend).await;
    let browser = Browser::new();
    // Alice is already signed in in this browser.
    let first = start(&server, &client, "openid").await;
    approve_in(&server, &browser, &field(&first, "user_code"), "approve").await;

    // The link prefills the form; nothing is approved by following it, nor by entering the code.
    let started = start(&server, &client, "openid").await;
    let device_code = field(&started, "device_code");
    let link = field(&started, "verification_uri_complete");
    let page = browser.get(&link).await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().expect("csp").to_string();
    assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.expect("entry page");
    assert_eq!(form_field(&html, "user_code").as_deref(), Some(field(&started, "user_code").as_str()));
    assert!(!html.contains("value=\"deny\""), "the code-entry page has no Deny");
    let no_csrf = browser.post_form(&server.url("/device"), &[("user_code", &field(&started, "user_code"))]).await;
    assert_eq!(no_csrf.status(), 403, "the code-entry form needs its CSRF token");
    let answer = enter(&server, &browser, &field(&started, "user_code")).await;
    let (confirmation, confirm_location) = reach_confirmation(&server, &browser, answer).await;
    expect_oauth_error(poll(&server, &client, &device_code).await, 400, "authorization_pending").await;

    // The confirmation answers only to the browser that entered the code.
    let other = Browser::new();
    let stolen = other.get(&server.url(&confirm_location)).await;
    assert_eq!(stolen.status(), 400);
    // A form without its CSRF token is refused.
    let ticket = form_field(&confirmation, "ticket").expect("ticket");
    let forged =
        browser.post_form(&server.url("/device/confirm"), &[("ticket", &ticket), ("decision", "approve")]).await;
    assert_eq!(forged.status(), 403);
    server.clock.advance(5);
    expect_oauth_error(poll(&server, &client, &device_code).await, 400, "authorization_pending").await;

    assert_eq!(decide(&server, &browser, &confirmation, "approve").await.status(), 200);
    server.clock.advance(5);
    expect_token(poll(&server, &client, &device_code).await).await;
    // The ticket is spent: a second decision finds nothing.
    assert_eq!(decide(&server, &browser, &confirmation, "deny").await.status(), 400);
}

async fn client_rules_at_both_endpoints(backend: Backend) {
    let (server, client) = setup(backend).await;
    // A client without the grant.
    let web = server.client(&["--name", "Web", "--redirect-uri", REDIRECT]).await;
    let refused = client_post(&server, "/device_authorization", &web, &[("scope", "openid")]).await;
    expect_oauth_error(refused, 400, "unauthorized_client").await;
    let started = start(&server, &client, "openid").await;
    let device_code = field(&started, "device_code");
    expect_oauth_error(poll(&server, &web, &device_code).await, 400, "unauthorized_client").await;

    // Missing client authentication: a confidential client without its secret, or nobody.
    let confidential = server.client(&["--name", "Kiosk", "--grant-types", GRANT]).await;
    let anonymous = TestClient { id: confidential.id.clone(), secret: None };
    let response = client_post(&server, "/device_authorization", &anonymous, &[]).await;
    expect_oauth_error(response, 401, "invalid_client").await;
    expect_oauth_error(poll(&server, &anonymous, &device_code).await, 401, "invalid_client").await;
    let nobody = reqwest::Client::new().post(server.url("/device_authorization")).form(&[("scope", "openid")]);
    expect_oauth_error(nobody.send().await.expect("POST"), 401, "invalid_client").await;
    // The confidential client with its secret works.
    start(&server, &confidential, "openid").await;

    // Another client's device code, an unknown one, none at all.
    let stranger = device_client(&server).await;
    expect_oauth_error(poll(&server, &stranger, &device_code).await, 400, "invalid_grant").await;
    expect_oauth_error(poll(&server, &client, "not-a-device-code").await, 400, "invalid_grant").await;
    let missing = token_request(&server, &client, &[("grant_type", GRANT)]).await;
    expect_oauth_error(missing, 400, "invalid_request").await;
    // Scopes the client may not ask for.
    let scope = client_post(&server, "/device_authorization", &client, &[("scope", "admin")]).await;
    expect_oauth_error(scope, 400, "invalid_scope").await;
}

async fn dynamic_registration_and_admin_api_allow_the_grant(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.dynamic_registration = oxidp::config::DynamicRegistration::Open;
    })
    .await;
    let body = json!({ "client_name": "CLI tool", "grant_types": [GRANT], "token_endpoint_auth_method": "none" });
    let registered = crate::registration::register(&server, None, &body).await;
    let status = registered.status();
    let registered = json(registered).await;
    assert_eq!(status, 201, "{registered}");
    assert_eq!(registered["grant_types"], json!([GRANT]));
    let client = TestClient { id: field(&registered, "client_id"), secret: None };
    start(&server, &client, "openid").await;

    let admin = admin_token(&server).await;
    let created = api_post(
        &server,
        "/api/v1/admin/clients",
        Some(&admin),
        &json!({ "name": "Set-top box", "public": true, "grant_types": [GRANT] }),
    )
    .await;
    let status = created.status();
    let created = json(created).await;
    assert_eq!(status, 201, "{created}");
    let client = TestClient { id: field(&created, "client_id"), secret: None };
    start(&server, &client, "openid").await;
}

async fn concurrent_polls_redeem_an_approved_code_once(backend: Backend) {
    let (server, client) = setup(backend).await;
    let started = start(&server, &client, "openid offline_access").await;
    approve_in(&server, &Browser::new(), &field(&started, "user_code"), "approve").await;
    let device_code = field(&started, "device_code");
    let mut polls = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (url, id, device_code) = (server.url("/token"), client.id.clone(), device_code.clone());
        polls.spawn(async move {
            let form = [("grant_type", GRANT), ("device_code", device_code.as_str()), ("client_id", id.as_str())];
            reqwest::Client::new().post(url).form(&form).send().await.expect("poll").status().as_u16()
        });
    }
    let statuses: Vec<u16> = polls.join_all().await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "one redemption: {statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 400), "{statuses:?}");
}

async fn upstream_sign_in_continues_to_the_confirmation(backend: Backend) {
    let setup = crate::federation::mock_setup(backend, false).await;
    let (server, browser) = (&setup.b, &setup.browser);
    let client = device_client(server).await;
    let started = start(server, &client, "openid").await;
    let answer = enter(server, browser, &field(&started, "user_code")).await;
    assert_eq!(answer.status(), 303);
    let login = location(&answer);
    let request = query_of(&login)["request"].clone();
    let page = browser.get(&server.url(&login)).await.text().await.expect("login page");
    assert!(page.contains(&format!("href=\"/login/corp?request={request}\"")), "the login page offers the upstream");

    let begun = setup.begin_from_login("corp", &request).await;
    let signed_in = setup.answer("corp", &begun, setup.claims(&begun, "tv-owner", "tv@example.com", true)).await;
    assert_eq!(signed_in.status(), 303);
    let next = location(&signed_in);
    assert!(next.starts_with("/device/confirm?ticket="), "{next}");
    let html = browser.get(&server.url(&next)).await.text().await.expect("confirmation");
    assert!(html.contains("Living Room TV") && html.contains(&field(&started, "user_code")), "{html}");
    assert_eq!(decide(server, browser, &html, "approve").await.status(), 200);
    let tokens = expect_token(poll(server, &client, &field(&started, "device_code")).await).await;
    assert!(tokens["id_token"].is_string());
}

async fn public_clients_start_a_limited_number_per_address(backend: Backend) {
    let (server, client) = setup(backend).await;
    // Each request writes a row, and a public client is named by its id alone: 60 per address
    // in 10 minutes.
    for _ in 0..60 {
        start(&server, &client, "openid").await;
    }
    let refused = client_post(&server, "/device_authorization", &client, &[("scope", "openid")]).await;
    assert!(refused.headers().get("retry-after").is_some(), "{:?}", refused.headers());
    expect_oauth_error(refused, 429, "temporarily_unavailable").await;
    server.clock.advance(601);
    start(&server, &client, "openid").await;
}
