//! Dynamic client registration (RFC 7591) and its management (RFC 7592), issue #14 item 1:
//! off by default; with an initial access token (`token`); open, limited per address and in
//! number, unused registrations expiring. A registered client is a third-party client and
//! signs in like one.

use reqwest::header::AUTHORIZATION;
use serde_json::{Value, json};

use crate::browser::{
    authorize_with, decide_consent, expect_code_redirect, expect_consent_page, expect_login_page, log_in,
};
use crate::common::*;
use crate::on_both_backends;
use oxidp::config::DynamicRegistration;
use oxidp::store::UserStore;

on_both_backends!(
    registration_is_off_by_default_and_not_advertised,
    a_client_registered_with_an_initial_access_token_signs_in_as_a_third_party,
    bad_metadata_gets_the_rfc_7591_errors_and_spends_no_token,
    the_registration_access_token_reads_updates_and_deletes,
    open_registration_is_limited_and_unused_registrations_expire,
);

pub(crate) const REGISTER: &str = "/register";

pub(crate) async fn register(server: &TestServer, token: Option<&str>, body: &Value) -> reqwest::Response {
    register_from(&reqwest::Client::new(), server, token, body).await
}

async fn register_from(
    http: &reqwest::Client,
    server: &TestServer,
    token: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut request = http.post(server.url(REGISTER)).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("POST /register")
}

/// An RFC 7591 §3.2.2 error: status, JSON, `error`, a description, no-store.
pub(crate) async fn expect_error(response: reqwest::Response, status: u16, error: &str) -> Value {
    assert_eq!(response.status(), status, "{}", response.url());
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body = json(response).await;
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
    body
}

pub(crate) async fn initial_token(server: &TestServer, uses: Option<i64>, expires_in: Option<i64>) -> String {
    // A fresh administrator's token each time (an initial access token needs a recent sign-in).
    let admin = match server.state.db.user_by_email("root@example.com").await.expect("lookup") {
        Some(_) => api_token(server, "root@example.com").await,
        None => admin_token(server).await,
    };
    let body = json!({ "uses": uses, "expires_in": expires_in });
    let response = api_post(server, "/api/v1/admin/registration-tokens", Some(&admin), &body).await;
    assert_eq!(response.status(), 201);
    json(response).await["token"].as_str().expect("token").to_string()
}

pub(crate) fn web_app() -> Value {
    json!({
        "client_name": "Registered App",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid profile email offline_access account admin",
        "client_uri": "https://app.example.com",
        "backchannel_logout_uri": "https://app.example.com/logout",
        "backchannel_logout_session_required": true,
        "contacts": ["ops@app.example.com"],
    })
}

pub(crate) fn with_mode(mode: DynamicRegistration) -> impl FnOnce(&mut oxidp::config::Config) {
    move |config| config.dynamic_registration = mode
}

async fn registration_is_off_by_default_and_not_advertised(backend: Backend) {
    let server = TestServer::start(backend).await;
    expect_error(register(&server, None, &web_app()).await, 403, "access_denied").await;
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let discovery = json(reqwest::get(server.url(path)).await.expect("discovery")).await;
        assert!(discovery.get("registration_endpoint").is_none(), "{path}: {discovery}");
    }
    let on = TestServer::start_with(backend, with_mode(DynamicRegistration::Token)).await;
    let discovery = json(reqwest::get(on.url("/.well-known/openid-configuration")).await.expect("discovery")).await;
    assert_eq!(discovery["registration_endpoint"], on.url(REGISTER));
}

async fn a_client_registered_with_an_initial_access_token_signs_in_as_a_third_party(backend: Backend) {
    let server = TestServer::start_with(backend, with_mode(DynamicRegistration::Token)).await;
    server.user("alice@example.com", PASSWORD).await;
    let response = register(&server, None, &web_app()).await;
    assert!(response.headers()["www-authenticate"].to_str().expect("header").starts_with("Bearer"));
    expect_error(response, 401, "invalid_token").await;
    expect_error(register(&server, Some("made-up"), &web_app()).await, 401, "invalid_token").await;

    let token = initial_token(&server, None, None).await;
    let response = register(&server, Some(&token), &web_app()).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let registered = json(response).await;
    let client_id = registered["client_id"].as_str().expect("client_id").to_string();
    assert!(registered["client_secret"].as_str().is_some_and(|s| s.len() >= 32), "{registered}");
    assert_eq!(registered["client_secret_expires_at"], 0);
    assert!(registered["client_id_issued_at"].as_i64().is_some_and(|t| t > 0));
    assert_eq!(registered["token_endpoint_auth_method"], "client_secret_basic", "the RFC 7591 default");
    assert_eq!(registered["grant_types"], json!(["authorization_code", "refresh_token"]));
    assert_eq!(registered["response_types"], json!(["code"]));
    assert_eq!(registered["redirect_uris"], json!([REDIRECT]));
    assert_eq!(registered["contacts"], json!(["ops@app.example.com"]));
    assert_eq!(registered["backchannel_logout_uri"], "https://app.example.com/logout");
    assert_eq!(registered["backchannel_logout_session_required"], true);
    // The administration's own rights are never self-registered: dropped, and the granted scope echoed.
    assert_eq!(registered["scope"], "openid profile email offline_access", "{registered}");
    assert!(registered["registration_access_token"].as_str().is_some_and(|t| t.len() >= 32));
    assert_eq!(registered["registration_client_uri"], server.url(&format!("/register/{client_id}")));

    // A third-party client: the consent page is shown, and tokens come with its secret.
    let client = TestClient { id: client_id.clone(), secret: registered["client_secret"].as_str().map(String::from) };
    let browser = Browser::new();
    let pkce = pkce();
    let login = expect_login_page(&browser.get(&authorize_url(&server, &client, &pkce, &[])).await);
    let consent = expect_consent_page(&log_in(&server, &browser, &login, "alice@example.com", PASSWORD).await);
    let approved = decide_consent(&server, &browser, &consent, "approve").await;
    let code = expect_code_redirect(&server, &approved, REDIRECT, "state-123");
    let tokens = json(redeem(&server, &client, &code, &pkce.verifier).await).await;
    assert!(tokens["access_token"].is_string() && tokens["refresh_token"].is_string(), "{tokens}");

    // The registration is audited by the core: an anonymous party through dynamic registration.
    let admin = api_token(&server, "root@example.com").await;
    let audit = reqwest::Client::new()
        .get(server.url(&format!("/api/v1/admin/audit?action=client.create&target={client_id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("audit");
    let audit = json(audit).await;
    let entry = &audit["items"][0];
    assert_eq!(entry["actor_type"], "anonymous", "{audit}");
    assert_eq!(entry["details"]["via"], "dynamic_registration", "{audit}");
    assert_eq!(entry["details"]["first_party"], false, "{audit}");

    // A token with one use registers once; an expired token not at all.
    let once = initial_token(&server, Some(1), None).await;
    assert_eq!(register(&server, Some(&once), &web_app()).await.status(), 201);
    expect_error(register(&server, Some(&once), &web_app()).await, 401, "invalid_token").await;
    let short = initial_token(&server, None, Some(60)).await;
    server.clock.advance(61);
    expect_error(register(&server, Some(&short), &web_app()).await, 401, "invalid_token").await;
}

async fn bad_metadata_gets_the_rfc_7591_errors_and_spends_no_token(backend: Backend) {
    let server = TestServer::start_with(backend, with_mode(DynamicRegistration::Token)).await;
    let token = initial_token(&server, Some(1), None).await;
    let cases: [(Value, &str); 11] = [
        (json!({"redirect_uris": ["http://app.example.com/cb"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["https://app.example.com/cb#frag"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "tls_client_auth"}),
            "invalid_client_metadata",
        ),
        (json!({"redirect_uris": [REDIRECT], "response_types": ["token"]}), "invalid_client_metadata"),
        (json!({"redirect_uris": [REDIRECT], "jwks_uri": "https://app.example.com/jwks"}), "invalid_client_metadata"),
        (
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (json!({"redirect_uris": [REDIRECT], "subject_type": "tribal"}), "invalid_client_metadata"),
        (
            json!({"redirect_uris": [REDIRECT], "backchannel_logout_uri": "https://10.0.0.1/logout"}),
            "invalid_client_metadata",
        ),
        (json!({"redirect_uris": [REDIRECT], "logo_uri": "javascript:alert(1)"}), "invalid_client_metadata"),
        (
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
            "invalid_client_metadata",
        ),
    ];
    for (body, error) in cases {
        let answer = expect_error(register(&server, Some(&token), &body).await, 400, error).await;
        assert!(answer.get("client_id").is_none(), "{body}: {answer}");
    }
    let not_json = reqwest::Client::new()
        .post(server.url(REGISTER))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("POST");
    expect_error(not_json, 400, "invalid_client_metadata").await;
    let form = reqwest::Client::new().post(server.url(REGISTER)).bearer_auth(&token).form(&[("a", "b")]).send().await;
    expect_error(form.expect("POST"), 400, "invalid_client_metadata").await;
    // None of the refused registrations spent the single use.
    assert_eq!(register(&server, Some(&token), &web_app()).await.status(), 201);
}

async fn the_registration_access_token_reads_updates_and_deletes(backend: Backend) {
    let server = TestServer::start_with(backend, with_mode(DynamicRegistration::Token)).await;
    server.user("alice@example.com", PASSWORD).await;
    let token = initial_token(&server, None, None).await;
    let registered = json(register(&server, Some(&token), &web_app()).await).await;
    let client_id = registered["client_id"].as_str().expect("id").to_string();
    let uri = registered["registration_client_uri"].as_str().expect("uri").to_string();
    let access = registered["registration_access_token"].as_str().expect("token").to_string();
    let http = reqwest::Client::new();

    let read = http.get(&uri).bearer_auth(&access).send().await.expect("GET");
    assert_eq!(read.status(), 200);
    let read = json(read).await;
    assert_eq!(read["client_id"], client_id.as_str());
    assert_eq!(read["redirect_uris"], registered["redirect_uris"]);
    assert!(read.get("client_secret").is_none(), "the secret is never shown again: {read}");
    for bearer in [None, Some("wrong"), Some(token.as_str())] {
        let mut request = http.get(&uri);
        if let Some(bearer) = bearer {
            request = request.header(AUTHORIZATION, format!("Bearer {bearer}"));
        }
        expect_error(request.send().await.expect("GET"), 401, "invalid_token").await;
    }
    // Another client's id with this token: the same 401, nothing learnt.
    let other = json(register(&server, Some(&token), &web_app()).await).await;
    let other_uri = other["registration_client_uri"].as_str().expect("uri");
    expect_error(http.get(other_uri).bearer_auth(&access).send().await.expect("GET"), 401, "invalid_token").await;

    // Update: the metadata is replaced and the access token renewed.
    let mut change = web_app();
    change["client_id"] = json!(client_id);
    change["redirect_uris"] = json!([REDIRECT, "https://app.example.com/callback"]);
    change["client_name"] = json!("Renamed App");
    let updated = http.put(&uri).bearer_auth(&access).json(&change).send().await.expect("PUT");
    assert_eq!(updated.status(), 200);
    let updated = json(updated).await;
    assert_eq!(updated["client_name"], "Renamed App");
    assert_eq!(updated["redirect_uris"][1], "https://app.example.com/callback");
    let renewed = updated["registration_access_token"].as_str().expect("new token").to_string();
    assert_ne!(renewed, access);
    expect_error(http.get(&uri).bearer_auth(&access).send().await.expect("GET"), 401, "invalid_token").await;
    assert_eq!(http.get(&uri).bearer_auth(&renewed).send().await.expect("GET").status(), 200);
    for (field, value) in [
        ("client_id", json!("someone-else")),
        ("token_endpoint_auth_method", json!("none")),
        ("client_secret", json!("not-the-secret")),
    ] {
        let mut bad = change.clone();
        bad[field] = value;
        let answer = http.put(&uri).bearer_auth(&renewed).json(&bad).send().await.expect("PUT");
        expect_error(answer, 400, "invalid_client_metadata").await;
    }

    // Tokens issued to the client stop working when the registration is deleted.
    let client = TestClient { id: client_id.clone(), secret: registered["client_secret"].as_str().map(String::from) };
    let (code, pkce) = obtain_code(&server, &Browser::new(), &client, &[]).await;
    let tokens = json(redeem(&server, &client, &code, &pkce.verifier).await).await;
    let refresh = tokens["refresh_token"].as_str().expect("refresh token");
    let deleted = http.delete(&uri).bearer_auth(&renewed).send().await.expect("DELETE");
    assert_eq!(deleted.status(), 204);
    expect_error(http.get(&uri).bearer_auth(&renewed).send().await.expect("GET"), 401, "invalid_token").await;
    let refreshed =
        token_request(&server, &client, &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!(refreshed.status(), 401, "the deleted client cannot authenticate");
    // Its grants are revoked, not just orphaned: a client made again under the same id (a
    // metadata document's URL) could otherwise use them.
    use oxidp::store::GrantStore;
    let jti = claims_of(tokens["access_token"].as_str().expect("access"))["jti"].as_str().expect("jti").to_string();
    let state = server.state.db.access_token_state(&jti).await.expect("read").expect("recorded");
    assert!(state.grant_revoked_at.is_some(), "the deleted client's grant is revoked");
}

/// A JWT's claims, unverified (the server verified it; the test reads what it says).
fn claims_of(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    serde_json::from_slice(&bytes).expect("claims")
}

async fn open_registration_is_limited_and_unused_registrations_expire(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.dynamic_registration = DynamicRegistration::Open;
        config.registration_rate_limit = 2;
        config.registration_max_open = 3;
    })
    .await;
    server.user("alice@example.com", PASSWORD).await;
    let from = |host: u8| {
        let ip: std::net::IpAddr = format!("127.0.0.{host}").parse().expect("ip");
        reqwest::Client::builder().local_address(ip).build().expect("client")
    };
    let (first, second) = (from(11), from(12));
    // Open registration never hands out client_credentials.
    let service = json!({"grant_types": ["client_credentials"]});
    expect_error(register_from(&first, &server, None, &service).await, 400, "invalid_client_metadata").await;
    let used = json(register_from(&first, &server, None, &web_app()).await).await;
    assert!(used["client_id"].is_string(), "{used}");
    let response = register_from(&first, &server, None, &web_app()).await;
    assert!(response.headers().get("retry-after").is_some(), "{:?}", response.headers());
    expect_error(response, 429, "temporarily_unavailable").await;
    let unused = json(register_from(&second, &server, None, &web_app()).await).await;
    assert!(unused["client_id"].is_string(), "{unused}");
    assert_eq!(register_from(&second, &server, None, &web_app()).await.status(), 201);
    // Three open registrations exist: the fourth is refused whatever its address.
    expect_error(register_from(&from(13), &server, None, &web_app()).await, 403, "access_denied").await;

    // The first client is used (a sign-in and a grant); the others are not.
    let client = TestClient {
        id: used["client_id"].as_str().expect("id").into(),
        secret: used["client_secret"].as_str().map(String::from),
    };
    let (code, pkce) = obtain_code(&server, &Browser::new(), &client, &[]).await;
    assert_eq!(redeem(&server, &client, &code, &pkce.verifier).await.status(), 200);
    server.clock.advance(86_401);
    let purged = oxidp::housekeeping::purge(&server.state).await.expect("purge");
    assert_eq!(purged.unused_registrations, 2, "{purged:?}");
    let http = reqwest::Client::new();
    let read = |body: &Value| {
        http.get(body["registration_client_uri"].as_str().expect("uri"))
            .bearer_auth(body["registration_access_token"].as_str().expect("token"))
            .send()
    };
    assert_eq!(read(&used).await.expect("GET").status(), 200, "the used client stays");
    expect_error(read(&unused).await.expect("GET"), 401, "invalid_token").await;
    // Room again for new registrations.
    assert_eq!(register_from(&from(14), &server, None, &web_app()).await.status(), 201);
}

/// Two instances of one deployment (one PostgreSQL, one Redis): a client registered at one is
/// used and managed at the other at once; initial and registration access tokens are spent or
/// replaced everywhere; a deletion at one is seen by the other's client cache at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_hold_across_instances() {
    let (a, b) = pair_with(with_mode(DynamicRegistration::Token)).await;
    a.user("alice@example.com", PASSWORD).await;
    let once = initial_token(&a, Some(1), None).await;
    let response = register(&a, Some(&once), &web_app()).await;
    assert_eq!(response.status(), 201);
    let registered = json(response).await;
    expect_error(register(&b, Some(&once), &web_app()).await, 401, "invalid_token").await;
    let client_id = registered["client_id"].as_str().expect("client_id").to_string();
    let access = registered["registration_access_token"].as_str().expect("token").to_string();
    let client = TestClient { id: client_id.clone(), secret: registered["client_secret"].as_str().map(String::from) };

    // Usable at B at once: sign-in, consent and code at B, tokens at B; the refresh at A.
    let (code, pkce) = obtain_code(&b, &Browser::new(), &client, &[]).await;
    let tokens = json(redeem(&b, &client, &code, &pkce.verifier).await).await;
    let refresh = tokens["refresh_token"].as_str().expect("refresh token").to_string();
    let refreshed = token_request(&a, &client, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(refreshed.status(), 200, "both instances now hold the client in their cache");
    let refresh = json(refreshed).await["refresh_token"].as_str().expect("rotated").to_string();

    // Read and replaced at B; the new redirect URI holds at A at once, the old token nowhere.
    let http = reqwest::Client::new();
    let at = |server: &TestServer| server.url(&format!("/register/{client_id}"));
    let read = http.get(at(&b)).bearer_auth(&access).send().await.expect("GET");
    assert_eq!(read.status(), 200);
    assert_eq!(json(read).await["client_name"], "Registered App");
    let mut change = web_app();
    change["client_id"] = json!(client_id);
    change["client_name"] = json!("Renamed at B");
    change["redirect_uris"] = json!([REDIRECT, "https://app.example.com/callback"]);
    let updated = http.put(at(&b)).bearer_auth(&access).json(&change).send().await.expect("PUT");
    assert_eq!(updated.status(), 200);
    let renewed = json(updated).await["registration_access_token"].as_str().expect("new token").to_string();
    expect_error(http.get(at(&a)).bearer_auth(&access).send().await.expect("GET"), 401, "invalid_token").await;
    let read = http.get(at(&a)).bearer_auth(&renewed).send().await.expect("GET");
    assert_eq!(read.status(), 200);
    assert_eq!(json(read).await["client_name"], "Renamed at B");
    let new_redirect = [("redirect_uri", Some("https://app.example.com/callback"))];
    expect_login_page(&Browser::new().get(&authorize_with(&a, &client_id, &pkce, &new_redirect)).await);
    let refreshed = token_request(&b, &client, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(refreshed.status(), 200, "B holds the updated client in its cache");
    let refresh = json(refreshed).await["refresh_token"].as_str().expect("rotated").to_string();

    // Deleted at A: refused at B at once (its grants outlive it: a stale cached client would refresh).
    let deleted = http.delete(at(&a)).bearer_auth(&renewed).send().await.expect("DELETE");
    assert_eq!(deleted.status(), 204);
    let refused = token_request(&b, &client, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(json(refused).await["error"], "invalid_client");
    expect_error(http.get(at(&b)).bearer_auth(&renewed).send().await.expect("GET"), 401, "invalid_token").await;
}
