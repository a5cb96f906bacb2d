//! The authorization-code grant (`src/oauth/grants/authorization_code.rs`) end to end, verified
//! with an independent JWT library: the code lives 60 s, is single-use (a replay revokes what it
//! issued), and is bound to its client, redirect URI and PKCE verifier (RFC 9700 §4.5). PKCE has
//! its own file (pkce.rs); that the store consumes a code once under concurrency is in storage.rs.

use super::refresh_token::{is_active, refresh, setup as replay_setup};
use crate::browser::{authorize_with, expect_code_redirect, setup as browser_setup};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    full_code_flow_issues_verifiable_tokens,
    code_lives_60_seconds,
    code_replay_revokes_what_the_code_issued,
    code_injection_a_code_needs_its_client_redirect_uri_and_verifier,
);

const ALICE: &str = "alice@example.com";

async fn setup(backend: Backend) -> (TestServer, TestClient, Browser) {
    let server = TestServer::start(backend).await;
    server.user("alice@example.com", PASSWORD).await;
    let client = server.client(&["--name", "Test App", "--redirect-uri", REDIRECT]).await;
    (server, client, Browser::new())
}

async fn full_code_flow_issues_verifiable_tokens(backend: Backend) {
    let (server, client, browser) = setup(backend).await;
    let (code, pkce) = obtain_code(&server, &browser, &client, &[("nonce", "n-0S6_WzA2Mj")]).await;
    let response = redeem(&server, &client, &code, &pkce.verifier).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body = json(response).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(body["refresh_token"].is_string(), "offline_access was granted: {body}");

    let access_token = body["access_token"].as_str().expect("access token");
    let access = server.verify_jwt(access_token, &client.id, "at+jwt").await;
    assert_eq!(access["client_id"], client.id.as_str());
    assert_eq!(access["iss"], server.base.as_str());
    assert!(access["jti"].is_string());
    assert_eq!(access["scope"], "openid profile email offline_access");

    let id = server.verify_jwt(body["id_token"].as_str().expect("id token"), &client.id, "JWT").await;
    assert_eq!(id["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(id["azp"], client.id.as_str());
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    assert_eq!(id["sub"], access["sub"]);
    assert_eq!(id["email"], "alice@example.com");
    let auth_time = id["auth_time"].as_i64().expect("auth_time");
    assert!((server.clock_now() - auth_time).abs() <= 1);
    assert_eq!(id["at_hash"], oxidp::oidc::id_token::at_hash("RS256", access_token).as_str());
}

async fn code_lives_60_seconds(backend: Backend) {
    let (server, client) = browser_setup(backend).await;
    let browser = Browser::new();
    let (code, pkce1) = obtain_code(&server, &browser, &client, &[]).await;
    server.clock.advance(61);
    let response = redeem(&server, &client, &code, &pkce1.verifier).await;
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["error"], "invalid_grant");

    let pkce2 = pkce();
    let response = browser.get(&authorize_with(&server, &client.id, &pkce2, &[])).await;
    let code = expect_code_redirect(&server, &response, REDIRECT, "state-123");
    server.clock.advance(59);
    assert_eq!(redeem(&server, &client, &code, &pkce2.verifier).await.status(), 200);
}

async fn code_replay_revokes_what_the_code_issued(backend: Backend) {
    let (server, client, browser) = replay_setup(backend).await;
    let (code, pkce) = obtain_code(&server, &browser, &client, &[]).await;
    let tokens = json(redeem(&server, &client, &code, &pkce.verifier).await).await;
    let access = tokens["access_token"].as_str().expect("access");
    let refresh_token = tokens["refresh_token"].as_str().expect("refresh");
    assert!(is_active(&server, &client, access).await);

    let replay = redeem(&server, &client, &code, &pkce.verifier).await;
    assert_eq!(replay.status(), 400);
    let body = json(replay).await;
    assert_eq!(body["error"], "invalid_grant");

    assert!(!is_active(&server, &client, access).await, "the access token the code issued is revoked");
    assert!(!is_active(&server, &client, refresh_token).await);
    assert_eq!(json(refresh(&server, &client, refresh_token).await).await["error"], "invalid_grant");
    let http = reqwest::Client::new();
    let info = http.get(server.url("/userinfo")).bearer_auth(access).send().await.expect("userinfo");
    assert_eq!(info.status(), 401);
}

// ---------------------------------------------------------------------------------------------
// RFC 9700 §4.5 authorization code injection

async fn code_injection_a_code_needs_its_client_redirect_uri_and_verifier(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user(ALICE, PASSWORD).await;
    let client = server.client(&["--name", "Victim RP", "--redirect-uri", REDIRECT]).await;
    let other = server.client(&["--name", "Attacker RP", "--redirect-uri", REDIRECT]).await;
    let public = server.client(&["--name", "Public RP", "--redirect-uri", REDIRECT, "--public"]).await;
    let browser = Browser::new();
    let attacker_pkce = pkce();

    let cases = [
        "another client",
        "a public client",
        "another redirect_uri",
        "no redirect_uri",
        "the attacker's verifier",
        "no verifier",
    ];
    for case in cases {
        let (code, pkce) = obtain_code(&server, &browser, &client, &[]).await;
        let (by, verifier, redirect_uri) = match case {
            "another client" => (&other, Some(&pkce.verifier), Some(REDIRECT)),
            "a public client" => (&public, Some(&pkce.verifier), Some(REDIRECT)),
            "another redirect_uri" => (&client, Some(&pkce.verifier), Some("http://127.0.0.1:9999/other")),
            "no redirect_uri" => (&client, Some(&pkce.verifier), None),
            "the attacker's verifier" => (&client, Some(&attacker_pkce.verifier), Some(REDIRECT)),
            _ => (&client, None, Some(REDIRECT)),
        };
        let mut form = vec![("grant_type", "authorization_code"), ("code", code.as_str())];
        form.extend(redirect_uri.map(|uri| ("redirect_uri", uri)));
        form.extend(verifier.map(|verifier| ("code_verifier", verifier.as_str())));
        let response = token_request(&server, by, &form).await;
        assert_eq!(response.status(), 400, "{case}");
        assert_eq!(json(response).await["error"], "invalid_grant", "{case}");
        // A code tried in the wrong place is spent: not even its own client gets tokens with it now.
        let response = redeem(&server, &client, &code, &pkce.verifier).await;
        assert_eq!(response.status(), 400, "{case}: the code is burnt");
    }
    // The genuine exchange works.
    let (code, pkce) = obtain_code(&server, &browser, &client, &[]).await;
    assert_eq!(redeem(&server, &client, &code, &pkce.verifier).await.status(), 200);
}
