//! The authorization-code flow end to end, verified with an independent JWT library.

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(full_code_flow_issues_verifiable_tokens, userinfo_matches_id_token_and_rejects_bad_tokens);

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

async fn userinfo_matches_id_token_and_rejects_bad_tokens(backend: Backend) {
    let (server, client, browser) = setup(backend).await;
    let (code, pkce) = obtain_code(&server, &browser, &client, &[]).await;
    let body = json(redeem(&server, &client, &code, &pkce.verifier).await).await;
    let access_token = body["access_token"].as_str().expect("access token");
    let id = server.verify_jwt(body["id_token"].as_str().expect("id token"), &client.id, "JWT").await;

    let http = reqwest::Client::new();
    let info = http.get(server.url("/userinfo")).bearer_auth(access_token).send().await.expect("userinfo");
    assert_eq!(info.status(), 200);
    let info = json(info).await;
    assert_eq!(info["sub"], id["sub"]);
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["name"], "Test User");

    let mut tampered = access_token.to_string();
    tampered.pop();
    tampered.push(if access_token.ends_with('A') { 'B' } else { 'A' });
    for bad in [tampered.as_str(), "not-a-jwt", id["sub"].as_str().expect("sub")] {
        let response = http.get(server.url("/userinfo")).bearer_auth(bad).send().await.expect("userinfo");
        assert_eq!(response.status(), 401);
        let challenge = response.headers()["www-authenticate"].to_str().expect("header").to_string();
        assert!(challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""), "{challenge}");
    }
    // The ID token is not an access token.
    let response = http
        .get(server.url("/userinfo"))
        .bearer_auth(body["id_token"].as_str().expect("id"))
        .send()
        .await
        .expect("userinfo");
    assert_eq!(response.status(), 401);
    let response = http.get(server.url("/userinfo")).send().await.expect("userinfo");
    assert_eq!(response.status(), 401);
    // Expired: the clock moves past the token's lifetime.
    server.clock.advance(901);
    let response = http.get(server.url("/userinfo")).bearer_auth(access_token).send().await.expect("userinfo");
    assert_eq!(response.status(), 401);
}
